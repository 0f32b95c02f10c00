"""Receivers against clients that misbehave, with `sandbox serve` as a real subprocess on loopback: a client
trickling its head or body is cut off while a normal client is served, one holding too many connections is
refused, one that leaves mid-body is an `aborted` journal entry and no traceback, and JSON nested too deep
is refused with its own code yet exports and shows on the dashboard."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from sandbox.spec.codes import ENVELOPE_CODES
from sandbox.spec.fields import HOP1
from tests.chain.test_serve import ROOT, Served, kill, start_serve, stop_serve
from tests.conftest import free_port

TIMEOUT_S = 1.5
PER_CLIENT = 6
WAIT_S = 30.0  # generous: two loaded cores


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[Served]:
    config = tmp_path / "sandbox.toml"
    config.write_text(f"request_timeout_s = {TIMEOUT_S}\nmax_connections_per_client = {PER_CLIENT}\n",
                      encoding="utf-8")
    ports = {r: free_port() for r in ("hospital", "center", "province", "dicom", "dashboard")}
    running = start_serve(tmp_path / "data", ports, "--config", str(config))
    try:
        yield running
    finally:
        kill(running)


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
    sock.settimeout(WAIT_S)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _head_and_json(raw: bytes) -> tuple[str, dict]:  # type: ignore[type-arg]
    head, _, body = raw.partition(b"\r\n\r\n")
    assert body, raw
    return head.decode("latin-1"), json.loads(body)


async def _normal_request(served: Served) -> dict:  # type: ignore[type-arg]
    body = served.data.joinpath("first-message.json").read_bytes()
    async with aiohttp.ClientSession() as s, s.post(served.url("center") + HOP1.path, data=body,
                                                   headers={"Content-Type": "application/json"}) as r:
        assert r.status == 200
        return await r.json()  # type: ignore[no-any-return]


async def test_slow_head_and_slow_body_are_cut_off_while_a_normal_client_is_served(guarded: Served) -> None:
    port = guarded.ports["center"]
    slow_head = await asyncio.to_thread(_connect, port)
    slow_head.sendall(b"POST " + HOP1.path.encode() + b" HTTP/1.1\r\nHost: x\r\n")  # never finishes its head
    slow_body = await asyncio.to_thread(_connect, port)
    slow_body.sendall(b"POST " + HOP1.path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                      b"\r\nContent-Length: 1000\r\n\r\n{\"infno\":")  # 991 bytes never come
    answer = await _normal_request(guarded)  # served while both are held
    assert answer["code"] == 0 and answer["data"][0]["succFlag"] == "1"

    # The trickling head: closed without an answer once the timeout passed.
    t0 = time.monotonic()
    assert await asyncio.to_thread(_read_all, slow_head) == b""
    # The trickling body: HTTP 408 with envelope code 1006, then closed.
    head, body = _head_and_json(await asyncio.to_thread(_read_all, slow_body))
    assert head.startswith("HTTP/1.1 408")
    assert body["code"] == ENVELOPE_CODES["request_timeout"].code and "秒内完整到达" in body["message"]
    assert time.monotonic() - t0 < WAIT_S  # not held until the test's own socket timeout
    slow_head.close()
    slow_body.close()
    _, err = stop_serve(guarded)
    assert "请求体未在 1.5 秒内到达" in err and "+08:00" in err


async def test_one_client_holding_too_many_connections_is_refused_but_others_still_served(guarded: Served) -> None:
    port = guarded.ports["dashboard"]  # no client of the sandbox's own holds connections there
    # All at once: an idle connection is itself closed after the (short) request timeout.
    *held, extra = await asyncio.to_thread(lambda: [_connect(port) for _ in range(PER_CLIENT + 1)])
    head, body = _head_and_json(await asyncio.to_thread(_read_all, extra))
    assert head.startswith("HTTP/1.1 503")
    assert body["code"] == ENVELOPE_CODES["too_many_connections"].code and str(PER_CLIENT) in body["message"]
    for sock in held:
        sock.close()
    # Once they are closed the same address is served again (the count is released on close).
    async with aiohttp.ClientSession() as s:
        for _ in range(20):
            try:
                async with s.get(guarded.url("dashboard") + "/api/state") as r:
                    if r.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
        else:
            raise AssertionError("the province never served again after the held connections closed")
    extra.close()


async def test_a_client_leaving_mid_body_is_journaled_aborted_without_a_traceback(guarded: Served) -> None:
    sock = await asyncio.to_thread(_connect, guarded.ports["center"])
    sock.sendall(b"POST " + HOP1.path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 5000\r\n\r\n{\"infno\": \"saveExamRpotImgInfo\", ")
    await asyncio.sleep(0.3)  # let the handler start reading
    sock.close()
    journal = guarded.url("hospital") + "/_sandbox/journal?hop=1"
    async with aiohttp.ClientSession() as s:
        deadline = time.monotonic() + WAIT_S
        entries: list[dict] = []  # type: ignore[type-arg]
        while time.monotonic() < deadline:
            async with s.get(journal) as r:
                entries = (await r.json())["data"]
            if entries:
                break
            await asyncio.sleep(0.2)
    assert [e["outcome"] for e in entries] == ["aborted"]
    assert entries[0]["status"] is None
    _, err = stop_serve(guarded)
    assert "Traceback" not in err and "ConnectionResetError" not in err
    assert err.count("客户端在请求完成前断开") == 1


def _deep_message(served: Served, depth: int) -> bytes:
    """The first message with a wrong key and an array nested `depth` levels deep beside its records."""
    message = json.loads(served.data.joinpath("first-message.json").read_text(encoding="utf-8"))
    message["key"] = "WRONG"
    text = json.dumps(message, ensure_ascii=False)
    return (text[:-1] + ', "nested": ' + "[" * depth + "]" * depth + "}").encode()


async def test_deep_nesting_is_refused_and_the_journal_still_exports_and_shows_it(guarded: Served) -> None:
    url = guarded.url("center") + HOP1.path
    async with aiohttp.ClientSession() as s:
        for depth in (300, 2000):  # past orjson's serialiser (254) and past its parser (1024)
            async with s.post(url, data=_deep_message(guarded, depth),
                              headers={"Content-Type": "application/json"}) as r:
                body = await r.json()
            assert body["code"] == ENVELOPE_CODES["too_deep"].code and "64 层" in body["message"], body
        journal = guarded.url("hospital") + "/_sandbox/journal?hop=1"
        async with s.get(journal) as r:
            entries = (await r.json())["data"]
        assert [e["code"] for e in entries] == [1005, 1005]
        for entry in entries:  # the dashboard answers JSON, masked by default, the body kept as text
            async with s.get(f"{guarded.url('dashboard')}/api/exchanges/{entry['seq']}") as r:
                assert r.status == 200 and r.content_type == "application/json"
                view = (await r.json())["data"]
            assert isinstance(view["request"], str) and "[[[[" in view["request"]
            assert "WRONG" not in view["request"] and '"key":"WRON' in view["request"].replace(" ", "")
    for fmt in ("jsonl", "har"):
        out = guarded.data.parent / f"journal.{fmt}"
        done = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "sandbox", "journal", "export", "--format", fmt,
                             "--data-dir", str(guarded.data), "--out", str(out)],
            cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
        text = out.read_text(encoding="utf-8")
        rows = [json.loads(line) for line in text.splitlines()] if fmt == "jsonl" else \
            json.loads(text)["log"]["entries"]
        assert len(rows) == 2
        requests = [r["request"] if fmt == "jsonl" else r["request"]["postData"]["text"] for r in rows]
        assert all("[" * 300 in t and "WRONG" not in t for t in requests)
