"""`sandbox serve` as a real subprocess: ready quickly, a hop-1 message posted as curl would post it reaches the
province, and the three links it carries open; SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import aiohttp
import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
# Not a speed target (that is `make bench`'s): only that serve gets ready at all, on a loaded machine.
READY_LIMIT_S = 60.0


class Served:
    def __init__(self, proc: subprocess.Popen[str], ports: dict[str, int], data: Path, ready: float,
                 banner: list[str]) -> None:
        self.proc, self.ports, self.data, self.ready, self.banner = proc, ports, data, ready, banner

    def url(self, role: str) -> str:
        return f"http://127.0.0.1:{self.ports[role]}"


def start_serve(data: Path, ports: dict[str, int], *extra: str, stderr: TextIO | None = None) -> Served:
    """Start `sandbox serve` (with `extra` arguments) and read its banner; its standard error goes to a pipe,
    or to `stderr` (a file the test can read while the process runs)."""
    args = [sys.executable, "-m", "sandbox", "serve", "--data-dir", str(data), *extra]
    for role, port in ports.items():
        args += [f"--{role}-port", str(port)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr or subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    banner: list[str] = []
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline()
        if not line:
            proc.kill()
            raise AssertionError("sandbox serve exited: " + (proc.stderr.read() if proc.stderr else ""))
        banner.append(line.rstrip("\n"))
        if line.startswith("按 Ctrl-C 停止"):
            return Served(proc, ports, data, time.perf_counter() - t0, banner)


def stop_serve(served: Served) -> tuple[str, str]:
    """SIGTERM, then the rest of its output; it must exit 0 without a traceback."""
    served.proc.send_signal(signal.SIGTERM)
    out, err = served.proc.communicate(timeout=30)
    assert served.proc.returncode == 0, err
    assert "Traceback" not in err
    return out, err


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    ports = {r: free_port() for r in ("hospital", "center", "province", "dicom", "dashboard")}
    running = start_serve(tmp_path / "data", ports)
    try:
        yield running
    finally:
        kill(running)


def kill(served: Served) -> None:
    if served.proc.poll() is None:
        served.proc.kill()
        served.proc.communicate(timeout=10)


async def _post(url: str, body: bytes) -> dict:  # type: ignore[type-arg]
    async with aiohttp.ClientSession() as s, s.post(url, data=body,
                                                     headers={"Content-Type": "application/json"}) as r:
        assert r.status == 200
        answer: dict = await r.json()  # type: ignore[type-arg]
        return answer


async def test_serve_subprocess_carries_a_curl_message_to_the_province_and_the_links_open(served: Served) -> None:
    assert served.ready < READY_LIMIT_S
    text = "\n".join(served.banner)
    assert "医保影像云沙箱已就绪" in text
    for role in ("hospital", "center", "province", "dashboard"):
        assert served.url(role) in text
    assert "H51080200001  key GYSY2025KEY0001XQ" in text
    curl = next(line.strip() for line in served.banner if line.strip().startswith("curl -X POST"))
    first = served.data / "first-message.json"
    assert curl == (f"curl -X POST -H 'Content-Type: application/json' --data @{first} "
                    f"{served.url('center')}/mie/api/mie/saveExamRpotImgInfo")

    # What that curl does: POST the file's bytes as application/json.
    answer = await _post(f"{served.url('center')}/mie/api/mie/saveExamRpotImgInfo", first.read_bytes())
    index = json.loads(first.read_text(encoding="utf-8"))["data"][0]["hiImgIndx"]
    assert answer["code"] == 0
    assert answer["data"] == [{"hiImgIndx": index, "succFlag": "1", "message": "保存数据成功"}]

    async with aiohttp.ClientSession() as s:
        deadline = time.monotonic() + 15
        while True:
            async with s.get(f"{served.url('province')}/mie/api/mie/index/{index}") as r:
                if r.status == 200:
                    view = (await r.json())["data"]
                    break
            assert time.monotonic() < deadline, "the index never reached the province"
            await asyncio.sleep(0.1)
        links = view["links"]
        assert set(links) == {"examRpotLinkUrl", "imgInfoLinkUrl", "imgDldLink"}
        for key in ("examRpotLinkUrl", "imgInfoLinkUrl"):  # pages a plain browser opens
            async with s.get(links[key]) as r:
                assert r.status == 200, key
                assert r.content_type == "text/html"
                assert "<html" in (await r.text()).lower()
        async with s.get(links["imgDldLink"], headers={"Accept": 'multipart/related; type="application/dicom"'}) as r:
            assert r.status == 200
            assert r.content_type == "multipart/related"
            assert b"DICM" in await r.read()

    out, _ = stop_serve(served)
    assert "已停止" in out


async def test_sigterm_mid_forward_persists_the_outbox_and_a_restart_delivers_it(tmp_path: Path) -> None:
    ports = {r: free_port() for r in ("hospital", "center", "province", "dicom", "dashboard")}
    first = start_serve(tmp_path / "data", ports)
    try:
        async with aiohttp.ClientSession() as s:
            control = first.url("hospital") + "/_sandbox"
            async with s.post(control + "/faults", json={"name": "慢", "at": "province", "kind": "drop",
                                                          "when": "before"}) as r:
                assert r.status == 200
            async with s.post(control + "/send", json={"count": 4, "settle": "none"}) as r:
                assert (await r.json())["message"] == "医疗机构已发送 1 个报文、4 条记录"
            deadline = time.monotonic() + 15
            while True:  # the batch is being forwarded: the province drops every attempt
                async with s.get(first.url("center") + "/api/summary") as r:
                    summary = await r.json()
                if summary["forwardSending"] == 4:
                    break
                assert time.monotonic() < deadline, summary
                await asyncio.sleep(0.1)
        stop_serve(first)
    finally:
        kill(first)

    second = start_serve(tmp_path / "data", ports)  # same data folder, no fault loaded any more
    try:
        async with aiohttp.ClientSession() as s:
            deadline = time.monotonic() + 30
            while True:
                async with s.get(second.url("province") + "/mie/api/mie/index") as r:
                    total = (await r.json())["data"]["total"]
                if total == 4:
                    break
                assert time.monotonic() < deadline, "the persisted outbox was not delivered after the restart"
                await asyncio.sleep(0.2)
            async with s.get(second.url("center") + "/api/summary") as r:
                summary = await r.json()
        assert summary["stored"] == 4 and summary["forwarded"] == 4 and summary["forwardFailed"]["total"] == 0
        stop_serve(second)
    finally:
        kill(second)


def test_serve_refuses_a_missing_center_without_a_url(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "sandbox", "serve", "--roles", "hospital",
                           "--data-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "--center-url" in proc.stderr
