"""Storage failures and start-up, with `sandbox serve` as a real subprocess: a full disk (a small tmpfs) is
answered 507 and recovered from by itself, SIGTERM stops the process even while the disk is full, a
read-only data folder is one line and exit 2, control calls during start-up answer 503 or succeed, and files
of hop-1 requests that never committed are removed at the next start."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from sandbox.center.dicomstore import new_id
from sandbox.spec.codes import ENVELOPE_CODES
from sandbox.spec.fields import HOP1
from tests.chain.test_serve import ROOT, Served, kill, start_serve, stop_serve
from tests.conftest import free_port

WAIT_S = 30.0
ROLES = ("hospital", "center", "province", "dicom", "dashboard")


@contextlib.contextmanager
def tmpfs(path: Path, *options: str) -> Iterator[Path]:
    """A small tmpfs mounted at `path` (the test is skipped where mounting is not allowed)."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(folder: Path) -> Path:
    """Write a file until the file system is full; returns it (remove it to free the space)."""
    filler = folder / "filler"
    with contextlib.suppress(OSError), filler.open("wb") as fh:
        while True:
            fh.write(b"\0" * 65536)
            fh.flush()
    return filler


def fresh_message(served: Served, n: int) -> bytes:
    """The banner's first message as a new exam: another exam time in its index, another msgid."""
    message = json.loads(served.data.joinpath("first-message.json").read_text(encoding="utf-8"))
    record = message["data"][0]
    parts = record["hiImgIndx"].split("-")
    parts[2] = parts[2][:-2] + f"{n:02d}"  # the exam time's seconds (doc-example profile)
    record["hiImgIndx"] = "-".join(parts)
    message["msgid"] = message["msgid"][:-4] + f"{n:04d}"
    return json.dumps(message, ensure_ascii=False).encode()


async def post_hop1(s: aiohttp.ClientSession, served: Served, body: bytes) -> tuple[int, dict]:  # type: ignore[type-arg]
    async with s.post(served.url("center") + HOP1.path, data=body,
                      headers={"Content-Type": "application/json"}) as r:
        return r.status, await r.json()


async def journal(s: aiohttp.ClientSession, served: Served) -> list[dict]:  # type: ignore[type-arg]
    async with s.get(served.url("hospital") + "/_sandbox/journal?hop=1") as r:
        assert r.status == 200
        return (await r.json())["data"]  # type: ignore[no-any-return]


async def test_disk_full_is_507_the_journal_writes_again_once_freed_and_sigterm_stops(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "size=64m") as disk:
        ports = {r: free_port() for r in ROLES}
        served = start_serve(disk / "data", ports)
        try:
            filler = fill(disk)
            async with aiohttp.ClientSession() as s:
                status, body = await post_hop1(s, served, fresh_message(served, 1))
                assert status == 507 and body["code"] == ENVELOPE_CODES["storage_full"].code
                assert body["message"].startswith("存储空间不足") and body["data"] == []
                async with s.get(served.url("hospital") + "/_sandbox/") as r:
                    assert r.status == 200  # the control plane keeps answering, and says why the journal waits
                    assert (await r.json())["data"]["journal"]["writeError"] == "磁盘已满"
                filler.unlink()
                deadline = time.monotonic() + WAIT_S  # the journal's writer catches up by itself
                while not any(e["status"] == 507 for e in await journal(s, served)):
                    assert time.monotonic() < deadline, "the journal never wrote the refused exchange"
                    await asyncio.sleep(0.2)
                async with s.get(served.url("hospital") + "/_sandbox/") as r:
                    assert (await r.json())["data"]["journal"]["writeError"] is None
                status, body = await post_hop1(s, served, fresh_message(served, 1))  # the same message again
                assert status == 200 and body["data"][0]["succFlag"] in ("1", "0"), body
                entries = await journal(s, served)
                assert [(e["status"], e["code"]) for e in entries][-2:] == [(507, 1090), (200, 0)]
            fill(disk)  # full again: SIGTERM must still stop it
            served.proc.send_signal(signal.SIGTERM)
            out, err = served.proc.communicate(timeout=WAIT_S)
            assert served.proc.returncode == 0 and "已停止" in out, err
            assert "Traceback" not in err and "存储空间不足" in err and "+08:00" in err
        finally:
            kill(served)


@pytest.mark.parametrize("read_only", ["data", "data/center"])
def test_a_read_only_data_folder_is_one_line_and_exit_2(tmp_path: Path, read_only: str) -> None:
    """The whole data folder read-only, or only the center's folder in it (found while the roles start)."""
    data = tmp_path / "data"
    with tmpfs(tmp_path / read_only, "ro", "size=1m"):
        ports = [f"--{r}-port={free_port()}" for r in ROLES]
        done = subprocess.run([sys.executable, "-m", "sandbox", "serve", "--data-dir", str(data), *ports],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)  # no hang
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"sandbox serve: 数据目录 {data} 不可写（文件系统只读），请检查磁盘空间与权限，或用 --data-dir 指定其他目录"]


async def test_control_calls_during_start_up_answer_503_or_succeed_and_never_crash(tmp_path: Path) -> None:
    ports = {r: free_port() for r in ROLES}
    args = [sys.executable, "-m", "sandbox", "serve", "--data-dir", str(tmp_path / "data")]
    args += [f"--{r}-port={p}" for r, p in ports.items()]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    ready = threading.Event()
    out: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        with contextlib.suppress(ValueError):  # communicate() below closes the pipe once the process has ended
            for line in proc.stdout:
                out.append(line)
                if line.startswith("按 Ctrl-C 停止"):
                    ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    statuses: list[int] = []
    calls = [("/_sandbox/scenario", {"name": "happy-path"}), ("/_sandbox/reset", {}), ("/_sandbox/", None)]
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT_S)) as s:
            deadline = time.monotonic() + 120
            while not ready.is_set():  # from the first moment a port listens until the banner
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline
                for path, body in calls:
                    for role in ("hospital", "center", "province"):
                        url = f"http://127.0.0.1:{ports[role]}{path}"
                        try:
                            request = s.post(url, json=body) if body is not None else s.get(url)
                            async with request as r:
                                statuses.append(r.status)
                                if r.status == 503:
                                    assert "尚未就绪" in (await r.json())["message"]
                        except aiohttp.ClientConnectionError:
                            pass  # not listening yet
                try:
                    async with s.get(f"http://127.0.0.1:{ports['dashboard']}/api/state") as r:
                        statuses.append(r.status)
                except aiohttp.ClientConnectionError:
                    pass
            async with s.post(f"http://127.0.0.1:{ports['hospital']}/_sandbox/reset", json={}) as r:
                assert r.status == 200  # once ready, control works
        assert set(statuses) <= {200, 503}, statuses
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=WAIT_S)
        assert proc.returncode == 0 and "Traceback" not in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


async def test_files_of_requests_that_never_committed_are_removed_at_start(tmp_path: Path) -> None:
    ports = {r: free_port() for r in ROLES}
    data = tmp_path / "data"
    served = start_serve(data, ports)
    try:
        async with aiohttp.ClientSession() as s:
            status, body = await post_hop1(s, served, fresh_message(served, 3))
            assert status == 200 and body["data"][0]["succFlag"] in ("1", "0")
        stop_serve(served)
    finally:
        kill(served)
    kept = sorted(p for p in (data / "center").rglob("*") if p.is_file() and p.suffix in (".pdf", ".dcm", ".zip"))
    assert kept  # the committed exam's files
    planted = []  # what a process killed between writing and committing leaves behind
    for folder, suffix in (("pdf", ".pdf"), ("dicom", ".dcm"), ("packs", ".zip")):
        file_id = new_id()
        path = data / "center" / folder / file_id[-2:] / f"{file_id}{suffix}"
        path.parent.mkdir(exist_ok=True)  # as its writer did: the center makes a folder with its first file
        path.write_bytes(b"\0" * 100_000)
        planted.append(path)
    again = start_serve(data, ports)
    try:
        assert not any(p.exists() for p in planted)
        assert all(p.exists() for p in kept)
        async with aiohttp.ClientSession() as s:  # the committed exam's report still opens
            async with s.get(again.url("center") + "/api/summary") as r:
                assert (await r.json())["stored"] == 1
        _, err = stop_serve(again)
        assert "删除 3 个未提交请求遗留的文件（0.3 MB）" in err
    finally:
        kill(again)
