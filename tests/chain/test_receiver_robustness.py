"""Receivers against clients that misbehave, with `sandbox serve` as a real subprocess on loopback: a client
trickling its head or body is cut off while a normal client is served, one holding too many connections is
refused, one that leaves mid-body is an `aborted` journal entry and no traceback, and JSON nested too deep
is refused with its own code yet exports and shows on the dashboard."""

from __future__ import annotations

import asyncio
import json
import signal
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
from tests.chain.test_serve import ROOT, Served, kill, start_serve
from tests.conftest import free_port

TIMEOUT_S = 1.5
PER_CLIENT = 6
WAIT_S = 30.0  # generous: two loaded cores


class Guarded(Served):
    """A running `sandbox serve` whose standard error goes to a file, readable while it runs."""

    def __init__(self, served: Served, log: Path) -> None:
        super().__init__(served.proc, served.ports, served.data, served.ready, served.banner)
        self.log = log

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8")

    async def wait_log(self, text: str) -> str:
        deadline = time.monotonic() + WAIT_S
        while text not in (log := self.log_text()):
            assert time.monotonic() < deadline, f"{text!r} never logged:\n{log}"
            await asyncio.sleep(0.1)
        return log


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guarded]:
    """One `sandbox serve` with short limits for the whole module (each test looks only at its own traffic)."""
    root = tmp_path_factory.mktemp("guarded")
    config = root / "sandbox.toml"
    config.write_text(f"request_timeout_s = {TIMEOUT_S}\nmax_connections_per_client = {PER_CLIENT}\n",
                      encoding="utf-8")
    ports = {r: free_port() for r in ("hospital", "center", "province", "dicom", "dashboard")}
    log = root / "stderr.log"
    with log.open("w", encoding="utf-8") as err:
        running = Guarded(start_serve(root / "data", ports, "--config", str(config), stderr=err), log)
    try:
        yield running
        running.proc.send_signal(signal.SIGTERM)
        running.proc.communicate(timeout=WAIT_S)
        assert running.proc.returncode == 0
        text = running.log_text()
        assert "Traceback" not in text and "ConnectionResetError" not in text, text
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


async def test_slow_head_and_slow_body_are_cut_off_while_a_normal_client_is_served(guarded: Guarded) -> None:
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
    log = await guarded.wait_log("请求体未在 1.5 秒内到达")
    assert "+08:00 INFO sandbox.receiver: 请求体未在 1.5 秒内到达：POST " + HOP1.path in log


async def test_one_client_holding_too_many_connections_is_refused_but_others_still_served(guarded: Guarded) -> None:
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


async def test_a_client_leaving_mid_body_is_journaled_aborted_without_a_traceback(guarded: Guarded) -> None:
    journal = guarded.url("hospital") + "/_sandbox/journal?hop=1&outcome=aborted"
    before = guarded.log_text().count("客户端在请求完成前断开")
    sock = await asyncio.to_thread(_connect, guarded.ports["center"])
    sock.sendall(b"POST " + HOP1.path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 5000\r\n\r\n{\"infno\": \"saveExamRpotImgInfo\", ")
    await asyncio.sleep(0.3)  # let the handler start reading
    sock.close()
    async with aiohttp.ClientSession() as s:
        deadline = time.monotonic() + WAIT_S
        entries: list[dict] = []  # type: ignore[type-arg]
        while time.monotonic() < deadline:
            async with s.get(journal) as r:
                entries = (await r.json())["data"]
            if entries:
                break
            await asyncio.sleep(0.2)
    assert [(e["outcome"], e["status"], e["transport"]) for e in entries] == [("aborted", None, "aborted")]
    log = await guarded.wait_log("客户端在请求完成前断开")
    assert log.count("客户端在请求完成前断开") == before + 1  # one line, no traceback (checked at the end)
    assert f"客户端在请求完成前断开：POST {HOP1.path}（来自 127.0.0.1），已记入日志为 aborted" in log


def _deep_message(served: Guarded, depth: int) -> bytes:
    """The first message with a wrong key and an array nested `depth` levels deep beside its records."""
    message = json.loads(served.data.joinpath("first-message.json").read_text(encoding="utf-8"))
    message["key"] = "WRONG"
    text = json.dumps(message, ensure_ascii=False)
    return (text[:-1] + ', "nested": ' + "[" * depth + "]" * depth + "}").encode()


async def test_deep_nesting_is_refused_and_the_journal_still_exports_and_shows_it(guarded: Guarded) -> None:
    url = guarded.url("center") + HOP1.path
    async with aiohttp.ClientSession() as s:
        for depth in (300, 2000):  # past orjson's serialiser (254) and past its parser (1024)
            async with s.post(url, data=_deep_message(guarded, depth),
                              headers={"Content-Type": "application/json"}) as r:
                body = await r.json()
            assert body["code"] == ENVELOPE_CODES["too_deep"].code and "64 层" in body["message"], body
        journal = guarded.url("hospital") + "/_sandbox/journal?hop=1&code=1005"
        async with s.get(journal) as r:
            entries = (await r.json())["data"]
        assert [e["outcome"] for e in entries] == ["rejected", "rejected"]
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
                             "--data-dir", str(guarded.data), "--out", str(out), "--hop", "1"],
            cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
        text = out.read_text(encoding="utf-8")
        rows = [json.loads(line) for line in text.splitlines()] if fmt == "jsonl" else \
            json.loads(text)["log"]["entries"]
        requests = [r["request"] if fmt == "jsonl" else r["request"]["postData"]["text"] for r in rows]
        deep = [t for t in requests if "[" * 300 in t]
        assert len(deep) == 2 and not any("WRONG" in t for t in deep)
