"""Acknowledged means delivered, with real processes: the province (its own `sandbox serve`) is killed with
SIGKILL for several times the old 8-attempt retry budget while hospitals keep uploading to the center (another
`sandbox serve`); once the province is started again every acknowledged exam is indexed exactly once, with no
operator call."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from tests.chain.test_serve import ROOT, kill, start_serve, stop_serve
from tests.conftest import free_port

# With these settings the old budget (8 attempts) was spent in 0.05+0.1+0.2+0.4+4×0.5 ≤ 2.75 s.
# `sandbox send --file-port 0` serves its files on any free port: the center must be told so.
CONFIG = 'retry_base_s = 0.05\nretry_cap_s = 0.5\nsend_timeout_s = 3.0\nallowed_fetch_hosts = ["127.0.0.1:*"]\n'
OUTAGE_S = 9.0


def send(center: str, offset: int, count: int, config: Path, data: Path) -> None:
    """`sandbox send` as a hospital would run it: every record answered succFlag 1."""
    proc = subprocess.run([sys.executable, "-m", "sandbox", "send", "--to", center, "--count", str(count),
                           "--seed", "7", "--offset", str(offset), "--file-port", "0", "--config", str(config),
                           "--data-dir", str(data), "--slices", "2", "--matrix", "64"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


async def acknowledged(session: aiohttp.ClientSession, center: str) -> list[str]:
    """The indexes of every exam the center has stored (answered succFlag 1 or 0)."""
    async with session.get(f"{center}/api/exams", params={"size": "500"}) as resp:
        body = await resp.json()
    return [item["hiImgIndx"] for item in body["items"] if item["succFlag"] in ("1", "0")]


async def indexed(session: aiohttp.ClientSession, province: str, index: str) -> bool:
    async with session.get(f"{province}/mie/api/mie/index/{index}") as resp:
        return resp.status == 200


async def test_province_killed_longer_than_any_old_budget_every_acknowledged_exam_indexed_once(
        tmp_path: Path) -> None:
    config = tmp_path / "sandbox.toml"
    config.write_text(CONFIG, encoding="utf-8")
    pport = free_port()
    province_args = ("--roles", "province", "--no-dashboard", "--config", str(config))
    province = start_serve(tmp_path / "province", {"province": pport}, *province_args)
    cports = {"center": free_port(), "dicom": free_port()}
    center = start_serve(tmp_path / "center", cports,
                         "--roles", "center", "--no-dashboard", "--config", str(config),
                         "--province-url", f"http://127.0.0.1:{pport}")
    curl = f"http://127.0.0.1:{cports['center']}"
    purl = f"http://127.0.0.1:{pport}"
    sent = 4
    try:
        await asyncio.to_thread(send, curl, 0, 4, config, tmp_path / "h")
        kill(province)  # SIGKILL
        down = time.monotonic()
        offset = 4
        while time.monotonic() - down < OUTAGE_S:  # hospitals keep uploading while the province is away
            await asyncio.to_thread(send, curl, offset, 3, config, tmp_path / "h")
            offset += 3
            sent += 3
            await asyncio.sleep(1.0)
        async with aiohttp.ClientSession() as session:
            acked = await acknowledged(session, curl)
            assert len(acked) == sent
            async with session.get(f"{curl}/api/summary") as resp:
                during = await resp.json()
            assert during["forwardFailed"]["total"] == 0 and during["oldestUndelivered"] is not None
            province = start_serve(tmp_path / "province", {"province": pport}, *province_args)
            deadline = time.monotonic() + 60
            missing = list(acked)
            while missing and time.monotonic() < deadline:
                missing = [i for i in missing if not await indexed(session, purl, i)]
                await asyncio.sleep(0.3)
            assert missing == [], f"{len(missing)} of {len(acked)} acknowledged exams never indexed"
            async with session.get(f"{curl}/api/summary") as resp:
                after = await resp.json()
            assert after["forwarded"] == len(acked) and after["forwardFailed"]["total"] == 0
            assert after["oldestUndelivered"] is None
            # Exactly once: one record per index at the province, none refused as a duplicate.
            async with session.get(f"{purl}/mie/api/mie/index", params={"size": "100"}) as resp:
                listing = await resp.json()
            assert listing["data"]["total"] == len(acked) == len(set(acked))
        _, err = stop_serve(center)
        assert "Traceback" not in err
    finally:
        kill(center)
        kill(province)
