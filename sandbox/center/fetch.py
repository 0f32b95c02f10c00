"""Fetching the hospital's files: only from allowed hosts, within a time and a size limit.

A URL is checked before any network access: its host and port must be in `allowed_fetch_hosts`
(sandbox.center.allowlist: names normalised, resolved once, the checked address is the one connected to);
anything else is refused with a FetchError naming host and port and is never contacted. Redirects are
followed (at most MAX_REDIRECTS) only to allowed hosts. Errors never quote the bytes that were fetched.

The client is a small HTTP/1.1 GET client on asyncio protocols with a keep-alive pool per origin. It
exists because a hop-1 record carries two files and the center fetches thousands per second: aiohttp's
client costs about 200 µs of CPU per request on this machine, this one about 60 µs. It speaks exactly
what a file server answers with: Content-Length, chunked or close-delimited bodies, 1xx interim
answers, redirects, TLS for https. The size limit is enforced on the Content-Length before reading and
again while reading; bodies beyond SPILL_BYTES are streamed to a temporary file instead of memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote, urljoin, urlsplit

from sandbox.center.allowlist import FetchPolicy
from sandbox.center.errors import FetchError
from sandbox.common.storage import storage_problem

SPILL_BYTES = 8 * 1024 * 1024
MAX_REDIRECTS = 3
MAX_HEAD_BYTES = 64 * 1024
MAX_ERROR_BODY = 1024 * 1024  # bytes of a non-2xx answer read (and dropped) to keep the connection
MAX_PER_ORIGIN = 32
CONNECT_FAILED = "连接失败"
USER_AGENT = "yibao-imgcloud-sandbox-center/1.0"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_SAFE_URL_CHARS = "/:@!$&'()*+,;=-._~%?"


@dataclass(slots=True)
class Body:
    """A fetched file: in memory (`data`) or, when large, in a temporary file (`path`) the caller owns."""

    url: str
    content_type: str
    size: int
    data: bytes | None = None
    path: Path | None = None

    @property
    def media_type(self) -> str:
        return self.content_type.split(";", 1)[0].strip().lower()

    def head(self, n: int) -> bytes:
        if self.data is not None:
            return self.data[:n]
        assert self.path is not None
        with self.path.open("rb") as fh:
            return fh.read(n)

    def discard(self) -> None:
        """Remove the temporary file, if any."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL: where to connect and what to ask for."""

    url: str
    https: bool
    host: str
    port: int
    path: str  # request target: path and query, percent-encoded

    @property
    def origin(self) -> tuple[bool, str, int]:
        return (self.https, self.host, self.port)

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.https else 80
        return host if self.port == default else f"{host}:{self.port}"


_PLAIN_URL = re.compile(r"(https?)://([A-Za-z0-9.\-]+)(?::([0-9]{1,5}))?(/[!-~]*)?", re.ASCII)


def check_url(url: str, policy: FetchPolicy) -> Target:
    """The URL as a Target, or FetchError when it is not http(s) or its host and port are not allowed.
    No I/O: a host not on the list is not even looked up."""
    m = _PLAIN_URL.fullmatch(url)
    if m is not None and "#" not in url and "%" not in url:
        # The common form (scheme://host[:port]/path?query, printable ASCII) without urlsplit's cost.
        scheme, host, port_text, path = m.groups()
        https = scheme == "https"
        number = int(port_text) if port_text else (443 if https else 80)
        if 0 < number < 65536:
            return Target(url, https, policy.check(host, number, url), number, path or "/")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FetchError("bad_url", url=url[:200]) from exc
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if scheme not in ("http", "https") or not host:
        raise FetchError("bad_url", url=url[:200])
    https = scheme == "https"
    number = port or (443 if https else 80)
    host = policy.check(host, number, url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    path = quote(path, safe=_SAFE_URL_CHARS)
    if any(c in path for c in " \r\n\t"):
        raise FetchError("bad_url", url=url[:200])
    return Target(url, https, host, number, path)


class _Sink:
    """Collects a body within the size limit, in memory up to `spill` bytes and in a file beyond. A body that
    arrives as one `bytes` piece is kept as it came: each copy of a 40 KB report costs ~15 µs here (a fresh
    allocation that large is new pages, each faulted in)."""

    __slots__ = ("limit", "spill", "tmp_dir", "url", "buf", "whole", "file", "path", "size", "keep")

    def __init__(self, limit: int, spill: int, tmp_dir: Path, url: str, keep: bool = True) -> None:
        self.limit = limit
        self.spill = spill
        self.tmp_dir = tmp_dir
        self.url = url
        self.buf = bytearray()
        self.whole: bytes | None = None  # the body so far, when it came as one bytes piece
        self.file: Any = None
        self.path: Path | None = None
        self.size = 0
        self.keep = keep

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        first = self.size == 0
        self.size += len(chunk)
        if self.size > self.limit:
            raise FetchError("fetch_too_large", limit=self.limit, url=self.url[:200])
        if not self.keep:
            return
        if self.file is not None:
            self.file.write(chunk)
            return
        if first and type(chunk) is bytes:
            self.whole = chunk
        else:
            if self.whole is not None:
                self.buf += self.whole
                self.whole = None
            self.buf += chunk
        if self.size > self.spill:
            self.path = self.tmp_dir / f"{uuid.uuid4().hex}.part"
            self.file = self.path.open("wb")
            self.file.write(self.whole if self.whole is not None else self.buf)
            self.buf, self.whole = bytearray(), None

    def finish(self, content_type: str) -> Body:
        if self.file is not None:
            self.file.close()
            self.file = None
            return Body(self.url, content_type, self.size, None, self.path)
        data = self.whole if self.whole is not None else bytes(self.buf)
        return Body(self.url, content_type, self.size, data)

    def abort(self) -> None:
        self.whole = None
        if self.file is not None:
            self.file.close()
            self.file = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None


class _Malformed(ValueError):
    """An answer that is not HTTP/1.1; the text is the sandbox's own and never quotes the answer."""


class _Stale(Exception):
    """A kept-alive connection the server had closed before answering: retry on a new one."""


class _Response:
    __slots__ = ("status", "headers", "keep_alive", "sink")

    def __init__(self, status: int, headers: dict[str, str], keep_alive: bool) -> None:
        self.status = status
        self.headers = headers
        self.keep_alive = keep_alive
        self.sink: _Sink | None = None


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: sends a GET, parses the answer as it arrives."""

    # parser states
    IDLE, HEAD, LENGTH, CHUNK_SIZE, CHUNK_DATA, CHUNK_END, TRAILER, UNTIL_CLOSE = range(8)

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.state = self.IDLE
        self.buf = bytearray()
        self.remaining = 0
        self.received_any = False
        self.response: _Response | None = None
        self.waiter: asyncio.Future[_Response] | None = None
        self.make_sink: Any = None
        self.reusable = False

    # -- asyncio.Protocol --------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports have the Transport methods without subclassing asyncio.Transport
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if self.state == self.UNTIL_CLOSE and self.response is not None:
            self._finish()
        elif not self.received_any:
            waiter.set_exception(_Stale())
        else:
            waiter.set_exception(ConnectionError(f"连接在应答结束前断开{f'：{exc}' if exc else ''}"))

    def data_received(self, data: bytes) -> None:
        self.received_any = True
        if self.waiter is None or self.waiter.done():
            # Bytes nobody asked for: the connection cannot be trusted any more.
            self.reusable = False
            self.close()
            return
        try:
            self._feed(data)
        except FetchError as exc:
            self._fail(exc)
        except _Malformed as exc:
            self._fail(exc)
        except (ValueError, UnicodeDecodeError):
            # Python's own texts quote the bytes that failed: answers never echo what was fetched.
            self._fail(_Malformed("应答格式错误"))

    # -- the exchange ------------------------------------------------------------------------------

    def request(self, target: Target, accept: str, make_sink: Any) -> asyncio.Future[_Response]:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self.waiter = loop.create_future()
        self.state = self.HEAD
        self.buf = bytearray()
        self.received_any = False
        self.response = None
        self.make_sink = make_sink
        self.reusable = False
        self.transport.write(
            f"GET {target.path} HTTP/1.1\r\nHost: {target.host_header}\r\nAccept: {accept}\r\n"
            f"Accept-Encoding: identity\r\nUser-Agent: {USER_AGENT}\r\nConnection: keep-alive\r\n\r\n".encode()
        )
        return self.waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, exc: BaseException) -> None:
        if self.response is not None and self.response.sink is not None:
            self.response.sink.abort()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)
        self.close()

    def _finish(self) -> None:
        self.state = self.IDLE
        assert self.response is not None and self.waiter is not None
        self.reusable = self.response.keep_alive and not self.buf and not self.closed
        if not self.waiter.done():
            self.waiter.set_result(self.response)

    def _feed(self, data: bytes) -> None:
        state = self.state
        if state == self.LENGTH and not self.buf:
            # The common case: body bytes of a sized answer go straight to the sink.
            n = min(len(data), self.remaining)
            assert self.response is not None and self.response.sink is not None
            self.response.sink.write(data if n == len(data) else memoryview(data)[:n])
            self.remaining -= n
            if n < len(data):
                self.buf += data[n:]
            if self.remaining == 0:
                self._finish()
            return
        if state == self.UNTIL_CLOSE:
            assert self.response is not None and self.response.sink is not None
            self.response.sink.write(data)
            return
        if state == self.HEAD and not self.buf:
            # The common case: a whole head in one read, parsed from `data` itself; a sized body after it goes
            # to the sink as one piece instead of through the buffer (two copies fewer).
            end = data.find(b"\r\n\r\n")
            if end >= 0:
                rest = data[end + 4:]
                if self._start(data[:end].decode("latin-1")) and self.state == self.LENGTH:
                    if rest:
                        self._feed(rest)
                    return
                if self.state == self.IDLE and rest:
                    self.reusable = False  # bytes after a complete answer: as `_finish` decides with them buffered
                self.buf += rest
                self._parse()
                return
        self.buf += data
        self._parse()

    def _parse(self) -> None:
        buf = self.buf
        while True:
            state = self.state
            if state == self.HEAD:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > MAX_HEAD_BYTES:
                        raise _Malformed("应答头过长")
                    return
                head = bytes(buf[:end]).decode("latin-1")
                del buf[: end + 4]
                if not self._start(head):
                    continue  # 1xx interim answer: the real head follows
            elif state == self.LENGTH:
                n = min(len(buf), self.remaining)
                if n:
                    self._sink().write(memoryview(buf)[:n])
                    del buf[:n]
                    self.remaining -= n
                if self.remaining == 0:
                    self._finish()
                return
            elif state == self.CHUNK_SIZE:
                end = buf.find(b"\r\n")
                if end < 0:
                    if len(buf) > 4096:
                        raise _Malformed("分块长度行过长")
                    return
                line = bytes(buf[:end]).split(b";", 1)[0].strip()
                del buf[: end + 2]
                size = int(line, 16)
                if size < 0:
                    raise _Malformed("分块长度为负")
                if size == 0:
                    self.state = self.TRAILER
                else:
                    self.remaining, self.state = size, self.CHUNK_DATA
            elif state == self.CHUNK_DATA:
                n = min(len(buf), self.remaining)
                if n == 0:
                    return
                self._sink().write(memoryview(buf)[:n])
                del buf[:n]
                self.remaining -= n
                if self.remaining == 0:
                    self.state = self.CHUNK_END
            elif state == self.CHUNK_END:
                if len(buf) < 2:
                    return
                if buf[:2] != b"\r\n":
                    raise _Malformed("分块数据后缺少 CRLF")
                del buf[:2]
                self.state = self.CHUNK_SIZE
            elif state == self.TRAILER:
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                del buf[: end + 2]
                if end == 0:
                    self._finish()
                    return
            elif state == self.UNTIL_CLOSE:
                if buf:
                    self._sink().write(buf)
                    buf.clear()
                return
            else:
                return

    def _sink(self) -> _Sink:
        assert self.response is not None and self.response.sink is not None
        return self.response.sink

    def _start(self, head: str) -> bool:
        """Parse a head; False for a 1xx interim answer."""
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise _Malformed("状态行不是 HTTP/1.x")
        status = int(parts[1])
        if 100 <= status < 200:
            return False
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise _Malformed("应答头格式错误")
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        connection = headers.get("connection", "").lower()
        keep_alive = ("close" not in connection) if parts[0] == "HTTP/1.1" else ("keep-alive" in connection)
        encoding = headers.get("content-encoding", "identity").lower()
        if encoding not in ("identity", ""):
            raise _Malformed("不支持的内容编码（Content-Encoding）")
        resp = _Response(status, headers, keep_alive)
        resp.sink = self.make_sink(status)
        self.response = resp
        if status in (204, 304):
            self._finish()
            return True
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self.state = self.CHUNK_SIZE
        elif "content-length" in headers:
            length = int(headers["content-length"].split(",")[0])
            if length < 0:
                raise _Malformed("Content-Length 为负")
            if length > resp.sink.limit:
                raise FetchError("fetch_too_large", limit=resp.sink.limit, url=resp.sink.url[:200])
            self.remaining = length
            self.state = self.LENGTH
            if length == 0:
                self._finish()
        else:
            resp.keep_alive = False
            self.state = self.UNTIL_CLOSE
        return True


class _Share(asyncio.Semaphore):
    """One group's connections to an origin, and how many of its fetches hold or wait for one. (A class
    rather than an asynccontextmanager: two fetches per exam made its generator a measurable cost.)"""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.users = 0


class _Origin:
    """Idle connections to one origin, a bound on how many are open at once, and a smaller bound per group
    (one message's fetches): a message whose files stall holds at most its share of the origin, so the next
    message from the same hospital is not queued behind it."""

    def __init__(self, limit: int, per_group: int) -> None:
        self.idle: deque[_Connection] = deque()
        self.slots = asyncio.Semaphore(limit)
        self.per_group = per_group
        self.groups: dict[int, _Share] = {}

    def share(self, key: object) -> _Share | None:
        """The share of the group `key` (None: no group), counted as used until `leave`."""
        if key is None:
            return None
        share = self.groups.get(id(key))
        if share is None:
            share = self.groups[id(key)] = _Share(self.per_group)
        share.users += 1
        return share

    def leave(self, key: object, share: _Share) -> None:
        share.users -= 1
        if share.users == 0:
            del self.groups[id(key)]


_NO_GROUP = contextlib.nullcontext()  # a fetch of no group: only the origin's bound


class Fetcher:
    """Fetches files from allowed hosts. One per application; `close()` in its cleanup."""

    def __init__(self, *, policy: FetchPolicy, timeout: float, max_bytes: int, tmp_dir: Path,
                 spill_bytes: int = SPILL_BYTES, per_origin: int = MAX_PER_ORIGIN,
                 per_group: int = MAX_PER_ORIGIN) -> None:
        self.policy = policy
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.tmp_dir = tmp_dir
        self.spill_bytes = spill_bytes
        self.per_origin = per_origin
        self.per_group = per_group
        self._origins: dict[tuple[bool, str, int], _Origin] = {}
        self._ssl: ssl.SSLContext | None = None

    def check(self, url: str) -> Target:
        """Refuse a URL before any I/O (FetchError)."""
        return check_url(url, self.policy)

    async def get(self, url: str, accept: str = "*/*", *, limit: int | None = None, group: object = None) -> Body:
        """GET a URL within the time and size limits (`limit` lowers max_bytes for this fetch); fetches of one
        `group` share at most `per_group` connections of an origin. FetchError names what went wrong."""
        target = self.check(url)
        max_bytes = self.max_bytes if limit is None else min(limit, self.max_bytes)
        try:
            async with asyncio.timeout(self.timeout):
                for _ in range(MAX_REDIRECTS + 1):
                    resp = await self._exchange(target, accept, max_bytes, group)
                    location = resp.headers.get("location")
                    if resp.status in _REDIRECTS and location:
                        target = self.check(urljoin(target.url, location))
                        continue
                    assert resp.sink is not None
                    if not 200 <= resp.status < 300:
                        raise FetchError("fetch_status", status=resp.status, url=target.url[:200])
                    return resp.sink.finish(resp.headers.get("content-type", "application/octet-stream"))
                raise FetchError("fetch_redirects", limit=MAX_REDIRECTS, url=url[:200])
        except TimeoutError as exc:
            raise FetchError("fetch_timeout", seconds=self.timeout, url=url[:200]) from exc

    async def _exchange(self, target: Target, accept: str, max_bytes: int, group: object) -> _Response:
        origin = self._origins.get(target.origin)
        if origin is None:
            origin = self._origins[target.origin] = _Origin(self.per_origin, self.per_group)

        def make_sink(status: int) -> _Sink:
            ok = 200 <= status < 300
            return _Sink(max_bytes if ok else MAX_ERROR_BODY, self.spill_bytes, self.tmp_dir,
                         target.url, keep=ok)

        share = origin.share(group)
        try:
            async with share or _NO_GROUP, origin.slots:
                for fresh in (False, True):
                    conn = self._idle(origin) if not fresh else None
                    if conn is None:
                        conn = await self._connect(target)
                        fresh = True
                    try:
                        resp = await conn.request(target, accept, make_sink)
                    except _Stale:
                        conn.close()
                        if fresh:
                            raise FetchError("fetch_connect", url=target.url[:200], detail="连接被对方关闭") from None
                        continue
                    except FetchError:
                        conn.close()
                        raise
                    except (ValueError, ConnectionError, OSError) as exc:
                        conn.close()
                        if storage_problem(exc) is not None:  # our disk, not the sender's file: the message waits
                            raise
                        if isinstance(exc, ValueError):
                            raise FetchError("fetch_bad_response", url=target.url[:200], detail=str(exc)) from exc
                        raise FetchError("fetch_connect", url=target.url[:200], detail=CONNECT_FAILED) from exc
                    except BaseException:
                        # Timeout or cancellation in the middle of an answer: the connection is unusable.
                        if conn.response is not None and conn.response.sink is not None:
                            conn.response.sink.abort()
                        conn.close()
                        raise
                    if conn.reusable:
                        origin.idle.append(conn)
                    else:
                        conn.close()
                    return resp
        finally:
            if share is not None:
                origin.leave(group, share)
        raise AssertionError("unreachable")

    @staticmethod
    def _idle(origin: _Origin) -> _Connection | None:
        while origin.idle:
            conn = origin.idle.pop()
            if not conn.closed:
                return conn
        return None

    async def _connect(self, target: Target) -> _Connection:
        loop = asyncio.get_running_loop()
        ctx = None
        if target.https:
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            ctx = self._ssl
        # Resolved once and checked; the connection goes to that address, not to a second look-up of the name.
        address = await self.policy.resolve(target.host, target.port, target.url)
        try:
            _, conn = await loop.create_connection(
                _Connection, address, target.port, ssl=ctx, server_hostname=target.host if ctx else None
            )
        except (OSError, ssl.SSLError) as exc:
            # One wording for refused, unreachable and reset: the answer must not map the hospital's ports.
            raise FetchError("fetch_connect", url=target.url[:200], detail=CONNECT_FAILED) from exc
        return conn

    async def close(self) -> None:
        """Close every idle connection."""
        for origin in self._origins.values():
            while origin.idle:
                origin.idle.pop().close()
        self._origins.clear()
        # Let the transports run their connection_lost callbacks before the loop goes away.
        await asyncio.sleep(0)
