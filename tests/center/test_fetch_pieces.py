"""The center's HTTP client gives the same result however an answer's bytes are cut into reads.

An answer whose head arrives whole in one read is parsed from that read, and its sized body handed on as one
piece (the fast path, no copy through the buffer); any other cut goes through the buffer (the plain path). The
same answers — sized bodies with and without bytes after them, a 100 Continue before the answer, an empty
204 with bytes after it, chunked and close-delimited bodies, a body spilled to a file, one over the size
limit, a malformed head — are fed whole, cut at every point around the head, and one byte at a time: the
body, the status, the headers, whether the connection may be reused, or the error, must all be the same.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from sandbox.center.fetch import MAX_ERROR_BODY, Target, _Connection, _Sink

BODY = bytes(range(256)) * 40  # 10 KB


def _answer(head: str, body: bytes = b"") -> bytes:
    return head.replace("\n", "\r\n").encode() + b"\r\n" + body


ANSWERS = {
    "sized": _answer("HTTP/1.1 200 OK\nContent-Type: application/pdf\nContent-Length: 10240\n", BODY),
    "sized, bytes after": _answer("HTTP/1.1 200 OK\nContent-Length: 10240\n", BODY + b"HTTP/1.1 200"),
    "100 Continue first": _answer("HTTP/1.1 100 Continue\n") + _answer("HTTP/1.1 200 OK\nContent-Length: 10240\n", BODY),
    "204, bytes after": _answer("HTTP/1.1 204 No Content\n", b"xyz"),
    "empty": _answer("HTTP/1.1 200 OK\nContent-Length: 0\n"),
    "chunked": _answer("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n",
                       b"1000\r\n" + BODY[:4096] + b"\r\n1800\r\n" + BODY[4096:] + b"\r\n0\r\n\r\n"),
    "until close": _answer("HTTP/1.1 200 OK\nContent-Type: application/dicom\n", BODY),
    "closes after": _answer("HTTP/1.1 200 OK\nContent-Length: 10240\nConnection: close\n", BODY),
    "404": _answer("HTTP/1.1 404 Not Found\nContent-Length: 9\n", b"not found"),
    "too large": _answer("HTTP/1.1 200 OK\nContent-Length: 99999\n", BODY),
    "not HTTP": _answer("SPDY/3 200 OK\nContent-Length: 4\n", b"abcd"),
}


class _Transport:
    def write(self, data: bytes) -> None:
        pass

    def abort(self) -> None:
        pass


def _outcome(answer: bytes, cuts: list[int], tmp_path: Path, spill: int) -> tuple[Any, ...]:
    """Feed `answer` to a connection in pieces cut at `cuts`; what the fetch gets."""
    loop = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        conn = _Connection()
        conn.connection_made(_Transport())  # type: ignore[arg-type]

        def make_sink(status: int) -> _Sink:
            ok = 200 <= status < 300
            return _Sink(50_000 if ok else MAX_ERROR_BODY, spill, tmp_path, "http://h/a", keep=ok)

        async def run() -> asyncio.Future[Any]:
            return conn.request(Target("http://h/a", False, "h", 80, "/a"), "*/*", make_sink)

        waiter = loop.run_until_complete(run())
        bounds = [0, *(c for c in cuts if 0 < c < len(answer)), len(answer)]
        for start, end in zip(bounds, bounds[1:], strict=False):
            if not conn.closed:  # a transport delivers no empty reads
                conn.data_received(answer[start:end])
        if not waiter.done():
            conn.connection_lost(None)
        if waiter.exception() is not None:
            exc = waiter.exception()
            return ("error", type(exc).__name__, str(exc))
        resp = waiter.result()
        body = resp.sink.finish(resp.headers.get("content-type", "application/octet-stream"))
        data = body.data if body.data is not None else body.path.read_bytes() if body.path else None
        where = "file" if body.path is not None else "memory"
        body.discard()
        return (resp.status, resp.headers, body.content_type, body.size, data, where, conn.reusable)
    finally:
        asyncio.set_event_loop(None)
        loop.close()


@pytest.mark.parametrize("spill", [1_000_000, 4_000])
@pytest.mark.parametrize("name", list(ANSWERS))
def test_every_cut_of_an_answer_gives_what_one_read_gives(name: str, spill: int, tmp_path: Path) -> None:
    answer = ANSWERS[name]
    whole = _outcome(answer, [], tmp_path, spill)
    head_end = answer.find(b"\r\n\r\n") + 4
    cuts = sorted({1, head_end - 3, head_end - 1, head_end, head_end + 1, head_end + 5, len(answer) // 2,
                   len(answer) - 1} & set(range(1, len(answer))))
    for cut in cuts:
        assert _outcome(answer, [cut], tmp_path, spill) == whole, (name, cut)
    assert _outcome(answer, [head_end, head_end + 3000], tmp_path, spill) == whole
    step = 1 if len(answer) < 200 else 97
    assert _outcome(answer, list(range(step, len(answer), step)), tmp_path, spill) == whole
    # and the outcome is what the answer says
    if name in ("sized", "closes after", "sized, bytes after", "100 Continue first", "chunked", "until close"):
        assert whole[0] == 200 and whole[4] == BODY
        assert whole[5] == ("file" if spill < len(BODY) else "memory")
    if name in ("too large", "not HTTP"):
        assert whole[0] == "error"
    else:
        assert whole[-1] is (name in ("sized", "100 Continue first", "empty", "chunked", "404"))
