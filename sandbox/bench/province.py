"""Province throughput: hop-2 records accepted and stored per second.

The province runs in its own process (`python -m sandbox.bench.province serve …`), as it would in front of
real senders; several concurrent senders — each a configured sharing center with its own key — post
pre-serialised batches that fill the 40000-character `data` limit over keep-alive connections on loopback.
The clock runs from the first request to the last answer; every answer must be code 0 with every record
`1 保存数据成功`, and the rows are counted in the database afterwards. Both processes share this machine's
cores, so the server's own CPU time per record is reported too: it varies less with other load.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from sandbox.bench import Row, cpu_seconds, per_reference, reference_us, wait_ready
from sandbox.common.loop import new_loop
from sandbox.common.loop import run as run_loop
from sandbox.common.ports import free_port
from sandbox.config import Institution, Settings, default_institutions
from sandbox.province.samples import message
from sandbox.spec.checksums import uscc_check_char
from sandbox.spec.fields import DATA_MAX_CHARS, HOP2
from sandbox.spec.index_profiles import PROFILES
from sandbox.spec.messages import RESULTS
from sandbox.synth.exams import ExamFactory
from sandbox.validate import data_length

TARGET = 25_000.0
SENDERS = 4
POOL = 1_000  # synthetic exams per sender


def _settings(data_dir: Path, port: int) -> Settings:
    """The default institutions plus SENDERS - 1 more sharing centers."""
    extra = tuple(
        Institution(code=f"C5108000000{i}", name=f"模拟地方影像云数据共享中心{i}", key=f"BENCHCENTERKEY000{i}",
                    role="center", uscc=f"12510800MB0L4{i:04d}" + uscc_check_char(f"12510800MB0L4{i:04d}"))
        for i in range(2, SENDERS + 1)
    )
    return Settings(data_dir=data_dir, province_port=port, institutions=default_institutions() + extra)


def _pool(settings: Settings, center: Institution) -> list[dict[str, Any]]:
    """POOL realistic hop-2 records of this center (synthetic exams of the configured hospitals)."""
    out: list[dict[str, Any]] = []
    hospitals = settings.hospitals
    fields = HOP2.by_code
    for h, hospital in enumerate(hospitals):
        factory = ExamFactory(hospital, center.uscc, settings.seed, index_profile=settings.index_profile)
        for n, exam in enumerate(factory.exams(POOL // len(hospitals))):
            hop1 = exam.record(settings.url(settings.hospital_port))
            rec = {code: value for code, value in hop1.items() if code in fields}
            if "postcode" in hop1:  # the hop-2 table spells it poscode
                rec["poscode"] = hop1["postcode"]
            base = f"{settings.url(settings.center_port)}/exams/{h}-{n}"
            rec.update(stogInsUscc=center.uscc, examRpotLinkUrl=f"{base}/report", imgInfoLinkUrl=f"{base}/viewer",
                       imgDldLink=f"{settings.url(settings.center_port)}/dicomweb/studies/{exam.study_uid}")
            out.append(rec)
    return out


def _batches(settings: Settings, center: Institution, count: int) -> list[bytes]:
    """`count` messages, each filling the data limit. The pool's exams are sent again and again, each time
    under a fresh index: its 12-character institution segment becomes a counter (nothing cross-checks it)."""
    profile = PROFILES[settings.index_profile]
    pool = _pool(settings, center)
    out: list[bytes] = []
    n = 0
    for seq in range(1, count + 1):
        records: list[dict[str, Any]] = []
        length = 2  # the brackets; each record adds its length and a comma
        while True:
            rec = dict(pool[n % len(pool)])
            parts = profile.parse(rec["hiImgIndx"])
            assert parts is not None
            rec["hiImgIndx"] = profile.build({**parts, "inst_code": f"B{n:011d}"})
            length += data_length(rec) + (1 if records else 0)
            if length > DATA_MAX_CHARS:
                break
            records.append(rec)
            n += 1
        assert data_length(records) <= DATA_MAX_CHARS
        out.append(json.dumps(message(settings, records, seq, center=center), ensure_ascii=False).encode())
    return out


async def _sender(session: aiohttp.ClientSession, url: str, bodies: list[bytes]) -> int:
    saved = 0
    for body in bodies:
        async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as resp:
            answer = await resp.json()
        if answer["code"] != 0 or any(a["message"] != RESULTS["saved"] for a in answer["data"]):
            raise RuntimeError(f"省级模块拒绝了基准报文：{answer['message']}")
        saved += len(answer["data"])
    return saved


async def _drive(settings: Settings, per_sender: int, server_pid: int) -> tuple[int, float, float, int]:
    """(records saved, seconds, server CPU seconds, bytes per batch)."""
    centers = [i for i in settings.institutions if i.role == "center"]
    work = [_batches(settings, c, per_sender) for c in centers]
    size = sum(len(b) for b in work[0]) // len(work[0])
    base = settings.url(settings.province_port)
    await wait_ready(base + "/openapi.json", "province", timeout=20.0)
    url = base + HOP2.path
    sessions = [aiohttp.ClientSession() for _ in centers]
    try:
        cpu0, t0 = cpu_seconds(server_pid), time.perf_counter()
        saved = await asyncio.gather(*(_sender(s, url, w) for s, w in zip(sessions, work, strict=True)))
        elapsed, cpu = time.perf_counter() - t0, cpu_seconds(server_pid) - cpu0
    finally:
        for s in sessions:
            await s.close()
    return sum(saved), elapsed, cpu, size


def run(quick: bool) -> list[Row]:
    per_sender = 60 if quick else 600
    before = reference_us()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        port = free_port()
        settings = _settings(data_dir, port)
        server = subprocess.Popen([sys.executable, "-m", "sandbox.bench.province", "serve", str(data_dir), str(port)],
                                  env={**os.environ, "PYTHONOPTIMIZE": ""})
        try:
            saved, elapsed, cpu, size = run_loop(_drive(settings, per_sender, server.pid))
        finally:
            server.terminate()
            server.wait(timeout=20)
        with sqlite3.connect(data_dir / "province.db") as db:
            stored = db.execute("SELECT COUNT(*) FROM img_index").fetchone()[0]
    if stored != saved:
        raise RuntimeError(f"answered {saved} records saved but {stored} rows stored")
    ref = (before + reference_us()) / 2  # the floor, before and after the run
    batches = per_sender * SENDERS
    note = (f"{SENDERS} senders × {per_sender} batches of {saved / batches:.0f} records ({size:,} bytes), "
            f"server in its own process; load average {os.getloadavg()[0]:.1f}")
    return [
        Row("records accepted and stored", saved / elapsed, "records/s", TARGET, note),
        Row("batches answered", batches / elapsed, "batches/s"),
        Row("server CPU per record", cpu / saved * 1e6, "µs", None,
            f"{saved / cpu:,.0f} records per second of server CPU (all its threads); "
            f"{per_reference(cpu / saved * 1e6, ref)}", lower_is_better=True),
    ]


def _serve(data_dir: str, port: int) -> None:
    from aiohttp import web

    from sandbox.province import create_app

    web.run_app(create_app(_settings(Path(data_dir), port)), host="127.0.0.1", port=port, print=None, loop=new_loop(),
                access_log=None)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        _serve(sys.argv[2], int(sys.argv[3]))
    else:
        print(run("--quick" in sys.argv))
