"""What every receiver (each role, the dashboard, the control plane) does before a handler sees a request.

- **Headers in time.** aiohttp's keep-alive timer, set to `request_timeout_s`, closes a connection that has
  not delivered a complete request head within that time of opening (or of the previous answer).
- **Body in time.** `guard_middleware` gives the body as long again once the head is in; a body still
  incomplete then makes the handler's read fail (`BodyTimeout`), the client gets HTTP 408 with envelope
  code 1006 and the connection is closed.
- **Connections per client.** `GuardedSite` counts the connections each client address holds on a port;
  one over `max_connections_per_client` is answered 503 (code 1007) and closed before it is read, so a
  client trickling thousands of connections cannot take the descriptors everyone else needs.
- **A client that goes away** mid-request is one info line and an `aborted` journal entry: whatever the
  handler was doing when its read failed is not an error of the receiver.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any, cast

import orjson
from aiohttp import web

from sandbox.common.envelope import envelope_body
from sandbox.spec.codes import ENVELOPE_CODES
from sandbox.spec.messages import RECEIVER
from sandbox.typedefs import ABORTED, TIMED_OUT

log = logging.getLogger("sandbox.receiver")

Handler = Callable[[web.Request], Any]


class BodyTimeout(Exception):
    """The request body did not arrive within the request timeout."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


def runner_options(timeout_s: float) -> dict[str, Any]:
    """AppRunner keyword arguments bounding how long a request head may take to arrive (see module doc)."""
    # lingering_time: how long an unread body (a request refused by its headers) is drained before closing.
    return {"keepalive_timeout": timeout_s, "lingering_time": min(10.0, timeout_s)}


def client_gone(request: web.BaseRequest) -> bool:
    """Whether the request's connection is closed (the client disconnected, or a timeout closed it)."""
    transport = request.transport
    return transport is None or transport.is_closing()


def _peer(request: web.BaseRequest) -> str:
    return request.remote or "?"


def note_aborted(request: web.BaseRequest) -> None:
    """One info line for a request its client abandoned; the journal records it as `aborted`."""
    request[ABORTED] = True
    log.info(RECEIVER["aborted"].format(method=request.method, path=request.path, client=_peer(request)))


def guard_middleware(timeout_s: float) -> Any:
    """A receiver's first middleware (the sandbox's journal and fault middlewares wrap it): the body
    deadline, and clients that disconnect."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        timer: asyncio.TimerHandle | None = None
        if request.body_exists and not request.content.is_eof():
            timer = asyncio.get_running_loop().call_later(timeout_s, _expire, request, timeout_s)
        try:
            response: web.StreamResponse = await handler(request)
        except BodyTimeout:  # a handler with no mapping of its own
            response = timeout_response(timeout_s)
        except web.HTTPException:
            raise
        except Exception:
            if not client_gone(request):
                raise
            if not request.get(ABORTED):
                note_aborted(request)
            return web.Response(status=400)  # never sent: nobody is listening
        finally:
            if timer is not None:
                timer.cancel()
        if request.get(TIMED_OUT) and not client_gone(request):
            # Answer, then close: the rest of the body is not worth waiting for.
            response.force_close()
            if not response.prepared:
                await response.prepare(request)
                await response.write_eof()
            request.protocol.force_close()
        return response

    return guard


def timeout_response(timeout_s: float) -> web.Response:
    """HTTP 408 with envelope code 1006."""
    spec = ENVELOPE_CODES["request_timeout"]
    return web.Response(body=orjson.dumps(envelope_body("request_timeout", seconds=timeout_s)),
                        status=spec.http_status, content_type="application/json", charset="utf-8")


def _expire(request: web.Request, timeout_s: float) -> None:
    """The body deadline passed: fail the handler's read unless the body is complete."""
    if request.content.is_eof() or client_gone(request):
        return
    request[TIMED_OUT] = True
    log.info(RECEIVER["body_timeout"].format(method=request.method, path=request.path, client=_peer(request),
                                             seconds=timeout_s))
    request.content.set_exception(BodyTimeout(timeout_s))


# ---- connections per client address ----------------------------------------------------------------------

class _Limited(asyncio.Protocol):
    """A connection's protocol behind the per-client count: passes everything to aiohttp's handler, or refuses
    the connection before the handler ever sees it."""

    def __init__(self, site: GuardedSite) -> None:
        self.site = site
        self.inner: Any = None
        self.client: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        client = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        counts = self.site.connections
        if counts[client] >= self.site.limit:
            log.info(RECEIVER["too_many_connections"].format(client=client, limit=self.site.limit))
            writer = cast(asyncio.WriteTransport, transport)  # uvloop's transports do not subclass asyncio's
            writer.write(_refusal(client, self.site.limit))
            writer.close()
            return
        counts[client] += 1
        self.client = client
        server = self.site.runner_server()
        self.inner = server()
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.inner is not None:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.client is not None:
            counts = self.site.connections
            counts[self.client] -= 1
            if counts[self.client] <= 0:
                del counts[self.client]
            self.client = None
        if self.inner is not None:
            self.inner.connection_lost(exc)


def _refusal(client: str, limit: int) -> bytes:
    spec = ENVELOPE_CODES["too_many_connections"]
    body = orjson.dumps(envelope_body("too_many_connections", client=client, limit=limit))
    head = (f"HTTP/1.1 {spec.http_status} Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n")
    return head.encode() + body


class GuardedSite(web.TCPSite):
    """A TCPSite that holds at most `limit` connections per client address."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *, limit: int, **kw: Any) -> None:
        super().__init__(runner, host, port, **kw)
        self.limit = limit
        self.connections: Counter[str] = Counter()
        self._runner_ref = runner

    def runner_server(self) -> Any:
        server = self._runner_ref.server
        assert server is not None
        return server

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Limited(self), self._host, self._port,
                                                backlog=self._backlog, reuse_address=self._reuse_address,
                                                reuse_port=self._reuse_port)
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port
