"""Recording exchanges on the server side: a middleware on each receiving role."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from sandbox.common.http import Handler
from sandbox.journal.entry import HOP_PATHS, HOP_ROLES, Entry, classify, describe_request, parse_request
from sandbox.journal.store import Journal
from sandbox.typedefs import ABORTED, FAULT_EFFECT, FAULTS_APPLIED, PARSED_BODY


def journal_middleware(journal: Journal, role: str) -> web.middleware:  # type: ignore[valid-type]
    """Record every hop-1/hop-2 POST this role answers: bodies, status, duration, faults applied."""

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        hop = HOP_PATHS.get(request.path)
        if hop is None or request.method != "POST":
            return await handler(request)
        started = time.time()
        t0 = time.perf_counter()
        response: web.StreamResponse | None = None
        failure: BaseException | None = None
        try:
            response = await handler(request)
            return response
        except web.HTTPException as exc:
            response = exc
            raise
        except BaseException as exc:
            failure = exc
            raise
        finally:
            elapsed = time.perf_counter() - t0
            body = await _body(request) if failure is None else b""
            journal.record(_entry(role, hop, request, body, started, elapsed, response, failure))

    return record


async def _body(request: web.Request) -> bytes:
    """The request body (cached by aiohttp once the role read it)."""
    if not request.body_exists:
        return b""
    try:
        return await request.read()
    except Exception:  # an oversize body the role refused unread
        return b""


def _entry(role: str, hop: int, request: web.Request, body: bytes, started: float, elapsed: float,
           response: web.StreamResponse | None, failure: BaseException | None) -> Entry:
    parsed = request.get(PARSED_BODY)
    message: dict[str, Any] | None
    if isinstance(parsed, dict):  # read by the role already (read_json)
        message, text = parsed, body.decode("utf-8", "replace")
    else:
        message, text = parse_request(body)
    entry = Entry(hop=hop, from_role=HOP_ROLES[hop][0], to_role=role, side="server", url=str(request.url),
                  request=text, started=started, duration_ms=round(elapsed * 1000, 3))
    describe_request(entry, message)
    names = request.get(FAULTS_APPLIED)
    entry.fault = ",".join(names) if names else None
    effect = request.get(FAULT_EFFECT)
    if request.get(ABORTED):  # the client went away before its request was complete or answered
        entry.status, entry.outcome, entry.transport = None, "aborted", "aborted"
    elif effect is not None:
        kind, sent = effect
        classify(entry, response.status if response is not None else None, sent.decode("utf-8", "replace"),
                 transport=kind)
    elif failure is not None:
        classify(entry, None, None, transport="dropped")
        entry.extra["error"] = type(failure).__name__
    elif response is not None:
        body_out = response.body if isinstance(response, web.Response) else None
        if isinstance(body_out, bytes):
            out: str | None = body_out.decode("utf-8", "replace")
        elif isinstance(response, web.HTTPException):
            out = response.text
        else:
            out = None
        classify(entry, response.status, out)
    return entry
