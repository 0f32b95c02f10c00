"""Center throughput: hop-1 exams ingested per second, and MB/s of DICOM fetched, parsed and stored.

The center runs in its own process (`python -m sandbox.bench.center serve …`) exactly as `create_app` builds
it: Storage SCP listening, forwarder delivering hop 2 to a province. This process plays the hospitals and
the province: a minimal keep-alive HTTP file server answering every file from memory (so that the number
measures the center, not a file server), concurrent hop-1 senders, and a province that answers every
hop-2 record `1`. Both processes share this machine's cores.

- small case: synthetic exams (sandbox.synth), each naming a one-page report PDF and one small DICOM
  instance by URL; messages filled up to the 40000-character limit, several in flight. WARM_UP exams go
  first, before the clock (the center loads pydicom and qpdf on first use, as it loaded them at start before
  issue 19; measured in the same run, their one-off cost was ~0.15 s of CPU); the clock runs from the first request to the last answer; every record must be answered `1` and stored.
- the steps alone: each step a small exam needs (its share of the hop-1 message parsed and checked, two GETs,
  qpdf, the DICOM header, the pack, the SQL of its rows) timed on its own in the same run, on one thread,
  with the bench's files and the rows the run stored; the center's CPU per exam is printed beside their
  sum, and the difference is what running them together costs.
- CT case: 20-slice 512×512 CT studies (sandbox.synth), each served as one multipart/related WADO-RS
  answer; MB/s counts the DICOM bytes the center stored.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import aiohttp
import orjson
from aiohttp import web

from sandbox.bench import Row, cpu_seconds, machine_cpu_seconds, reference_us, times_reference, wait_ready
from sandbox.center.dicomstore import PackStore, inspect, new_id
from sandbox.center.domain import DB_FILE
from sandbox.center.files import WRITER_THREADS as FILE_WRITERS
from sandbox.center.files import parse_pdf
from sandbox.common.loop import new_loop
from sandbox.common.loop import run as run_loop
from sandbox.common.ports import free_port
from sandbox.config import Settings
from sandbox.spec.fields import HOP1, HOP2
from sandbox.synth.batching import batches, envelope
from sandbox.synth.dicom import ImageSpec, iter_study
from sandbox.synth.exams import Exam, ExamFactory
from sandbox.synth.pdf import render_report
from sandbox.validate import validator

TARGET_EXAMS = 2_000.0
TARGET_MBPS = 50.0
TARGET_CPU_US = 600.0  # issue 19
IN_FLIGHT = 8
SMALL = ImageSpec(slices=1, matrix=64, xray_matrix=64, us_shape=(48, 64), us_images=1)
CT = ImageSpec(slices=20, matrix=512)
PDF_VARIANTS = 8
WARM_UP = 100  # small exams sent before the clock starts
WARM_UP_SEQ = 9000  # msgid sequence of the warm-up messages (the small case's start at 1, the CT case's at 5000)


THREADS_PATH = "/_bench/threads"  # the served center's threads by native id (added by `_serve`, bench only)
# What each thread of the center does, in the order the breakdown rows are printed.
THREAD_ROLES = {
    "loop": "event loop (HTTP both ways, validation, fetching, PDF and DICOM checks, forwarding)",
    "writes": "database writes (the receiving transaction, the outbox)",
    "reads": "database reads (known records, the outbox, status)",
    "files": "pack and file writers",
    "other": "other threads (Storage SCP, asyncio.to_thread)",
}


def thread_cpu(pid: int) -> dict[int, float]:
    """User + system CPU seconds of each thread of a process so far (Linux /proc; empty elsewhere)."""
    out: dict[int, float] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def by_role(before: dict[int, float], after: dict[int, float], roles: dict[int, str]) -> dict[str, float]:
    """CPU seconds spent between two `thread_cpu` snapshots, summed per THREAD_ROLES key."""
    out = dict.fromkeys(THREAD_ROLES, 0.0)
    for tid, seconds in after.items():
        out[roles.get(tid, "other")] += seconds - before.get(tid, 0.0)
    return out


def _settings(data_dir: Path, ports: dict[str, int]) -> Settings:
    return Settings(data_dir=data_dir, center_port=ports["center"], dicom_port=ports["dicom"],
                    province_port=ports["province"], hospital_port=ports["files"])


# ---- the hospital side ------------------------------------------------------------------------------


class _FileProtocol(asyncio.Protocol):
    """GET → the registered bytes, over keep-alive HTTP/1.1."""

    def __init__(self, files: dict[str, tuple[bytes, bytes]]) -> None:
        self.files = files
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's do not subclass asyncio.Transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buf = self.buf[:end], self.buf[end + 4:]
            path = head.split(b" ", 2)[1].decode()
            found = self.files.get(path)
            if found is None:
                self.transport.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                continue
            ctype, body = found
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype + b"\r\nContent-Length: "
                                 + str(len(body)).encode() + b"\r\n\r\n" + body)


def _exams(settings: Settings, count: int, keep: Callable[[Exam], bool] = lambda e: True,
           offset: int = 0) -> list[Exam]:
    factories = [ExamFactory(h, settings.center.uscc, settings.seed, index_profile=settings.index_profile)
                 for h in settings.hospitals]
    out: list[Exam] = []
    n = offset
    while len(out) < count:
        for f in factories:
            exam = f.exam(n)
            if keep(exam):
                out.append(exam)
        n += 1
    return out[:count]


def _small_case(settings: Settings, count: int, files: dict[str, tuple[bytes, bytes]], base: str,
                tmp: Path) -> list[tuple[Exam, dict[str, Any]]]:
    """Exams with a one-page PDF and one small instance each, their files registered with the server."""
    exams = _exams(settings, count)
    pdfs = [render_report(e) for e in exams[:PDF_VARIANTS]]
    out = []
    for k, exam in enumerate(exams):
        first = next(iter_study(exam, tmp / "small" / str(k), SMALL))
        files[f"/d/{k}.dcm"] = (b"application/dicom", first.path.read_bytes())
        files[f"/p/{k}.pdf"] = (b"application/pdf", pdfs[k % PDF_VARIANTS])
        rec = exam.record(base)
        rec.update(examRpotPdfI=f"{base}/p/{k}.pdf", imgInfoDcm=f"{base}/d/{k}.dcm")
        out.append((exam, rec))
    return out


def _ct_case(settings: Settings, count: int, files: dict[str, tuple[bytes, bytes]], base: str,
             tmp: Path) -> tuple[list[tuple[Exam, dict[str, Any]]], int]:
    """CT exams whose 20-slice study is one multipart/related answer; and the DICOM bytes served."""
    exams = _exams(settings, count, keep=lambda e: e.modality == "CT" and not e.enhanced and len(e.items) == 1,
                   offset=1_000_000)
    out = []
    total = 0
    boundary = "benchboundary0123456789"
    for k, exam in enumerate(exams):
        body = bytearray()
        for f in iter_study(exam, tmp / "ct" / str(k), CT):
            data = f.path.read_bytes()
            total += len(data)
            body += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + data + b"\r\n"
            f.path.unlink()
        body += f"--{boundary}--\r\n".encode()
        files[f"/ct/{k}"] = (f'multipart/related; type="application/dicom"; boundary={boundary}'.encode(), bytes(body))
        files[f"/ctp/{k}.pdf"] = (b"application/pdf", render_report(exam, embedded_font=False))
        rec = exam.record(base)
        rec.update(examRpotPdfI=f"{base}/ctp/{k}.pdf", imgInfoDcm=f"{base}/ct/{k}")
        out.append((exam, rec))
    return out, total


def _messages(settings: Settings, items: list[tuple[Exam, dict[str, Any]]], max_records: int,
              first_seq: int) -> list[bytes]:
    """hop-1 messages per hospital, each as full as the data limit (or max_records) allows."""
    by_hospital: dict[str, list[dict[str, Any]]] = {}
    for exam, rec in items:
        by_hospital.setdefault(exam.hospital.code, []).append(rec)
    out: list[bytes] = []
    when = datetime(2025, 12, 1, 8, 0, 0)
    for code, recs in by_hospital.items():
        inst = settings.institution(code)
        assert inst is not None
        for batch in batches(recs, max_records=max_records):
            seq = first_seq + len(out)
            msg = envelope(batch, inst, when + timedelta(seconds=seq), seq)
            out.append(json.dumps(msg, ensure_ascii=False).encode())
    return out


async def _send_all(url: str, bodies: list[bytes], in_flight: int) -> int:
    """POST every message with `in_flight` senders; the number of records answered `1`."""
    queue = list(reversed(bodies))
    ok = 0
    problems: list[str] = []

    async def sender(session: aiohttp.ClientSession) -> None:
        nonlocal ok
        while queue:
            body = queue.pop()
            async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as resp:
                answer = await resp.json()
            for a in answer["data"]:
                if a["succFlag"] == "1":
                    ok += 1
                else:
                    problems.append(a["message"])

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
        await asyncio.gather(*(sender(session) for _ in range(in_flight)))
    if problems:
        raise RuntimeError(f"中心未全部接收基准检查：{problems[:3]}")
    return ok


async def _province(request: web.Request) -> web.Response:
    """A province that answers every record 1 (its own cost is not what is measured)."""
    message = await request.json()
    data = [{"hiImgIndx": r.get("hiImgIndx"), "succFlag": "1", "message": "保存数据成功"} for r in message["data"]]
    return web.json_response({"code": 0, "type": "success", "message": "成功", "data": data})


async def _summary(session: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    async with session.get(base + "/api/summary") as resp:
        result: dict[str, Any] = await resp.json()
        return result


async def _drive(settings: Settings, ports: dict[str, int], small: int, ct: int, tmp: Path,
                 pid: int) -> dict[str, Any]:
    files: dict[str, tuple[bytes, bytes]] = {}
    base = f"http://127.0.0.1:{ports['files']}"
    small_items = _small_case(settings, small + WARM_UP, files, base, tmp)
    warm_up = _messages(settings, small_items[small:], 1000, WARM_UP_SEQ)
    ct_items, ct_bytes = _ct_case(settings, ct, files, base, tmp)
    small_msgs = _messages(settings, small_items[:small], 1000, 1)
    ct_msgs = _messages(settings, ct_items, 2, 5000)
    loop = asyncio.get_running_loop()
    file_server = await loop.create_server(lambda: _FileProtocol(files), "127.0.0.1", ports["files"])
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post(HOP2.path, _province)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", ports["province"]).start()
    center = settings.url(settings.center_port)
    await wait_ready(center + "/api/summary", "center")
    out: dict[str, Any] = {"messages": len(small_msgs), "ct_bytes": ct_bytes}
    try:
        async with aiohttp.ClientSession() as session:
            # Exams before the clock: what the center loads on first use (pydicom, qpdf), and the garbage
            # collections that move those modules' objects to the oldest generation, are not per exam.
            await _send_all(center + HOP1.path, warm_up, 1)
            threads0 = thread_cpu(pid)
            t0, cpu0, all0 = time.perf_counter(), cpu_seconds(pid), machine_cpu_seconds()
            out["small_ok"] = await _send_all(center + HOP1.path, small_msgs, IN_FLIGHT)
            out["small_s"] = time.perf_counter() - t0
            out["small_cpu"] = cpu_seconds(pid) - cpu0
            threads1 = thread_cpu(pid)
            async with session.get(center + THREADS_PATH) as resp:  # after: pool threads start when first needed
                roles = {int(k): v for k, v in (await resp.json()).items()}
            out["small_threads"] = by_role(threads0, threads1, roles)
            out["small_machine_cpu"] = machine_cpu_seconds() - all0
            while (s := await _summary(session, center))["forwarded"] < small + WARM_UP:
                await asyncio.sleep(0.05)
            out["forward_s"] = time.perf_counter() - t0
            before = s["instanceBytes"]
            t0 = time.perf_counter()
            out["ct_ok"] = await _send_all(center + HOP1.path, ct_msgs, 4)
            out["ct_s"] = time.perf_counter() - t0
            s = await _summary(session, center)
            out["ct_stored_bytes"] = s["instanceBytes"] - before
            out["summary"] = s
    finally:
        file_server.close()
        await runner.cleanup()
    return out


def run(quick: bool) -> list[Row]:
    small, ct = (400, 6) if quick else (6000, 30)
    before = reference_us()
    with tempfile.TemporaryDirectory(dir=os.environ.get("CENTER_BENCH_DIR")) as tmp:
        data_dir = Path(tmp) / "data"
        ports = {k: free_port() for k in ("center", "dicom", "province", "files")}
        settings = _settings(data_dir, ports)
        server = subprocess.Popen([sys.executable, "-m", "sandbox.bench.center", "serve", str(data_dir),
                                   json.dumps(ports)], env={**os.environ, "PYTHONOPTIMIZE": ""})
        try:
            got = run_loop(_drive(settings, ports, small, ct, Path(tmp), server.pid))
        finally:
            server.terminate()
            server.wait(timeout=30)
        floors, stored = _floors(settings, data_dir, Path(tmp), round(small / got["messages"]))
    if got["small_ok"] != small or got["ct_ok"] != ct or got["ct_stored_bytes"] != got["ct_bytes"]:
        raise RuntimeError(f"基准数据未全部保存：{got}")
    ref = (before + reference_us()) / 2  # the floor, before and after the run
    per_exam = got["small_cpu"] / small * 1e6
    floor = sum(floors.values())
    mb = got["ct_stored_bytes"] / 1e6
    cores = os.cpu_count() or 1

    return [
        Row("hop-1 exams ingested (PDF + 1 instance, by URL)", small / got["small_s"], "exams/s", TARGET_EXAMS,
            f"{small} exams in {got['messages']} messages, {IN_FLIGHT} in flight; center in its own process; "
            f"{times_reference(got['small_s'] / small * 1e6, ref)} per exam"),
        Row("…and forwarded to the province (hop 2)", small / got["forward_s"], "exams/s", None,
            f"from the first hop-1 request to the last hop-2 answer; {times_reference(got['forward_s'] / small * 1e6, ref)} per exam"),
        Row("center CPU per exam ingested", per_exam, "µs", TARGET_CPU_US,
            f"user+sys of the center process: {small / max(got['small_cpu'], 1e-9):,.0f} exams per CPU-second; "
            f"{times_reference(per_exam, ref)} ({ref:.0f} µs in this run, sandbox.bench.reference_us)",
            lower_is_better=True),
        *(Row(f"…of which {THREAD_ROLES[role]}", seconds / small * 1e6, "µs", None,
              f"{100 * seconds / max(got['small_cpu'], 1e-9):.0f}% of the center's CPU; {times_reference(seconds / small * 1e6, ref)}",
              lower_is_better=True)
          for role, seconds in got["small_threads"].items()),
        Row("…the steps an exam needs, each timed alone", floor, "µs", None,
            f"the sum of the rows below, timed in this run on one thread with this bench's files and the rows the "
            f"run stored ({stored} exams); the center spends {per_exam / floor:.2f}× it: {per_exam - floor:,.0f} µs "
            f"per exam go to running the steps together (asyncio, aiohttp, aiosqlite, threads, the GIL); "
            f"{times_reference(floor, ref)}", lower_is_better=True),
        *(Row(f"…step: {FLOOR_ROWS[step]}", us, "µs", None, f"{100 * us / floor:.0f}% of the steps; {times_reference(us, ref)}",
              lower_is_better=True) for step, us in floors.items()),
        Row("machine CPU per exam ingested", got["small_machine_cpu"] / small * 1e6, "µs", None,
            f"all cores, all processes (the center, and the hospitals, file server and province of this "
            f"benchmark): {cores} cores allow at most {cores * small / max(got['small_machine_cpu'], 1e-9):,.0f} "
            f"exams/s; {times_reference(got['small_machine_cpu'] / small * 1e6, ref)}"),
        Row("DICOM ingested (20-slice 512² CT, multipart)", mb / got["ct_s"], "MB/s", TARGET_MBPS,
            f"{ct} studies, {mb:.0f} MB fetched, parsed and stored; {times_reference(got['ct_s'] / mb * 1e6, ref)} per MB"),
        Row("CT studies ingested", ct / got["ct_s"], "studies/s", None, f"{times_reference(got['ct_s'] / ct * 1e6, ref)} per study"),
    ]


# ---- the floor: each step of a small exam timed alone ----------------------------------------------------
# Each step the center cannot do without, with the cheapest code there is for it here (a library's, or the
# sandbox's own where that is faster), timed alone on this thread (CPU, time.thread_time) with the bench's own
# files and the rows the run left in the center's database. Their sum is what an exam costs with nothing spent
# on running the steps together; the center's CPU per exam is compared with it.

FLOOR_FILES = 64  # exams whose PDF and instance are timed (each file checked FLOOR_REPEAT times)
FLOOR_REPEAT = 8
FLOOR_GETS = 2_000


def _cpu_per_call(calls: list[Callable[[], object]], repeat: int = FLOOR_REPEAT) -> float:
    """CPU µs per call, the best of `repeat` passes over the calls."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.thread_time()
        for call in calls:
            call()
        best = min(best, time.thread_time() - t0)
    return best / len(calls) * 1e6


class _GetProtocol(asyncio.Protocol):
    """The least an HTTP/1.1 keep-alive GET can do on asyncio: write the request, read Content-Length bytes."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.waiter: asyncio.Future[bytes] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        length = int(self.buf[:end].lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
        if len(self.buf) >= end + 4 + length and self.waiter is not None:
            self.waiter.set_result(bytes(self.buf[end + 4:end + 4 + length]))
            self.buf.clear()

    async def get(self, path: bytes) -> bytes:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(b"GET " + path + b" HTTP/1.1\r\nHost: bench\r\n\r\n")
        return await self.waiter


def _serve_files(files: dict[str, tuple[bytes, bytes]], port: int, ready: Any) -> None:
    """The bench's file server alone in a process (`_get_floor`): answers until terminated."""
    async def main() -> None:
        await asyncio.get_running_loop().create_server(lambda: _FileProtocol(files), "127.0.0.1", port)
        ready.set()
        await asyncio.Event().wait()

    run_loop(main())


def _get_floor(files: dict[str, tuple[bytes, bytes]]) -> float:
    """CPU µs of one GET of the bench's files by a bare asyncio client on the center's event loop (uvloop),
    the file server running in a process of its own (not counted, and not sharing this one's GIL)."""
    spawn = multiprocessing.get_context("spawn")
    ready = spawn.Event()
    port = free_port()
    server = spawn.Process(target=_serve_files, args=(files, port, ready), daemon=True)
    server.start()
    paths = [p.encode() for p in files]

    async def fetch() -> float:
        _, proto = await asyncio.get_running_loop().create_connection(_GetProtocol, "127.0.0.1", port)
        for path in paths[:50]:  # connection and caches warm
            await proto.get(path)
        t0 = time.thread_time()
        for k in range(FLOOR_GETS):
            await proto.get(paths[k % len(paths)])
        spent = time.thread_time() - t0
        assert proto.transport is not None
        proto.transport.close()
        return spent / FLOOR_GETS * 1e6

    try:
        if not ready.wait(60):
            raise RuntimeError("基准的文件服务进程未能启动")
        return run_loop(fetch())
    finally:
        server.terminate()
        server.join(timeout=10)


def _sql_floor(db_path: Path, tmp: Path, synchronous: str) -> tuple[float, int]:
    """CPU µs per small exam of storing the rows the run left (one transaction per hop-1 message, as the
    center does), then batching and answering its outbox rows (one transaction per batch each), in a fresh
    file of the same schema and pragmas by sqlite3 alone; and how many exams that was."""
    src = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)

    def columns(table: str) -> dict[str, int]:
        return {d[0]: i for i, d in enumerate(src.execute(f"SELECT * FROM {table} LIMIT 0").description)}  # noqa: S608

    exams = src.execute("SELECT * FROM exams WHERE instances = 1 ORDER BY received").fetchall()
    col, at = columns("exams"), columns("outbox")
    ids = {r[col["exam_id"]] for r in exams}
    studies = {r[col["study_uid"]] for r in exams}
    msgids = {r[col["msgid"]] for r in exams}

    def rows(table: str, key: str, keep: set[str]) -> dict[str, list[tuple[Any, ...]]]:
        k = columns(table)[key]
        out: dict[str, list[tuple[Any, ...]]] = {}
        for row in src.execute(f"SELECT * FROM {table}"):  # noqa: S608 - the bench's own table names
            if row[k] in keep:
                out.setdefault(row[k], []).append(row)
        return out

    by_exam = {t: rows(t, "exam_id", ids) for t in ("exam_studies", "receipts", "outbox")}
    instances = rows("instances", "study_uid", studies)
    messages = rows("messages", "msgid", msgids)
    batches = src.execute("SELECT * FROM batches").fetchall()
    schema = [sql for (sql,) in src.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL "
                                             "AND name NOT LIKE 'sqlite_%'")]
    src.close()

    def insert(table: str, batch: list[tuple[Any, ...]]) -> tuple[str, list[tuple[Any, ...]]]:
        return f"INSERT INTO {table} VALUES ({','.join('?' * len(batch[0]))})", batch  # noqa: S608

    # The transactions, built before the clock: (statement, rows) each.
    per_message: dict[str, list[tuple[Any, ...]]] = {}
    for row in exams:
        per_message.setdefault(row[col["msgid"]], []).append(row)
    work: list[list[tuple[str, list[tuple[Any, ...]]]]] = []
    for msgid, group in per_message.items():
        keys = [row[col["exam_id"]] for row in group]
        tx = [insert("exams", group)]
        for table in ("exam_studies", "receipts"):
            tx.append(insert(table, [r for k in keys for r in by_exam[table].get(k, [])]))
        tx.append(insert("instances", [r for row in group for r in instances.get(row[col["study_uid"]], [])]))
        # queued as pending, with no batch yet
        tx.append(insert("outbox", [tuple(None if c == "batch_id" else "pending" if c == "state" else o[i]
                                          for c, i in at.items())
                                    for k in keys for o in by_exam["outbox"].get(k, [])]))
        tx.append(insert("messages", messages[msgid]))
        work.append([(sql, batch) for sql, batch in tx if batch])
    members: dict[int, list[tuple[Any, ...]]] = {}
    for outbox_rows in by_exam["outbox"].values():
        for o in outbox_rows:
            members.setdefault(o[at["batch_id"]], []).append(o)
    for batch in batches:
        rows_ = members.get(batch[0], [])
        work.append([insert("batches", [batch]),
                     ("UPDATE outbox SET state = 'sending', batch_id = ? WHERE exam_id = ?",
                      [(batch[0], o[at["exam_id"]]) for o in rows_])])
        work.append([("UPDATE outbox SET state = ?, succFlag = ?, message = ?, updated = ? WHERE exam_id = ?",
                      [(o[at["state"]], o[at["succFlag"]], o[at["message"]], o[at["updated"]], o[at["exam_id"]])
                       for o in rows_]),
                     ("UPDATE batches SET state = ? WHERE batch_id = ?", [(batch[4], batch[0])])])
    path = tmp / "floor.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    for sql in schema:
        conn.execute(sql)
    t0 = time.thread_time()
    for tx in work:
        conn.execute("BEGIN IMMEDIATE")
        for sql, batch in tx:
            conn.executemany(sql, batch)
        conn.execute("COMMIT")
    spent = time.thread_time() - t0
    conn.close()
    return spent / max(len(exams), 1) * 1e6, len(exams)


def _header_and_digest(data: bytes) -> str:
    inspect(data)
    return hashlib.sha256(data).hexdigest()


def _floors(settings: Settings, data_dir: Path, tmp: Path, per_message: int) -> tuple[dict[str, float], int]:
    """CPU µs per small exam of each step it needs, timed alone (FLOOR_ROWS order); and how many exams'
    rows the database step stored."""
    files: dict[str, tuple[bytes, bytes]] = {}
    items = _small_case(settings, FLOOR_FILES, files, "http://127.0.0.1:9", tmp / "floor")
    pdfs = [body for path, (_, body) in files.items() if path.startswith("/p/")]
    dicoms = [body for path, (_, body) in files.items() if path.startswith("/d/")]
    message = _messages(settings, items[:per_message], per_message, 1)[0]
    check = validator(1, settings.mode)
    packs = PackStore(tmp / "floor-packs")
    packs.open()
    entries = [(f"{new_id()}.{kind}", body) for k in range(per_message)
               for kind, body in (("pdf", pdfs[k % len(pdfs)]), ("dcm", dicoms[k % len(dicoms)]))]
    sql, stored = _sql_floor(data_dir / DB_FILE, tmp, settings.db_synchronous)
    return {
        "message": _cpu_per_call([lambda: check.validate_records(orjson.loads(message)["data"])]) / per_message,
        "fetch": 2 * _get_floor(files),
        "pdf": _cpu_per_call([functools.partial(parse_pdf, b) for b in pdfs]),
        "dicom": _cpu_per_call([functools.partial(_header_and_digest, b) for b in dicoms]),
        "pack": _cpu_per_call([lambda: packs.write(new_id(), entries)], repeat=FLOOR_REPEAT * 4) / per_message,
        "sql": sql,
    }, stored


# What each step `_floors` times is, in the order printed.
FLOOR_ROWS = {
    "message": "hop-1 JSON parsed (orjson) and its records checked (the sandbox's validator)",
    "fetch": "two GETs (report, instance) by a bare asyncio client",
    "pdf": "report opened by qpdf (pikepdf, stream mode)",
    "dicom": "instance header read and checked, SHA-256",
    "pack": "the message's pack written (ZIP in memory, one file)",
    "sql": "its rows stored, batched and answered by sqlite3 alone",
}


async def _threads(request: web.Request) -> web.Response:
    """THREADS_PATH: native thread id → its THREAD_ROLES key, for the per-thread CPU rows."""
    from sandbox.typedefs import CENTER

    store = request.app[CENTER].store
    roles = {threading.main_thread().native_id: "loop",
             await store.db.conn._execute(threading.get_native_id): "writes",
             await store.reader.conn._execute(threading.get_native_id): "reads"}
    for thread in threading.enumerate():
        if thread.name.startswith(FILE_WRITERS) and thread.native_id is not None:
            roles[thread.native_id] = "files"
    return web.json_response({str(k): v for k, v in roles.items()})


def _serve(data_dir: str, ports: str) -> None:
    from sandbox.center import create_app

    settings = _settings(Path(data_dir), json.loads(ports))
    app = create_app(settings)
    app.router.add_get(THREADS_PATH, _threads)
    web.run_app(app, host="127.0.0.1", port=settings.center_port, print=None, access_log=None, loop=new_loop())


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        _serve(sys.argv[2], sys.argv[3])
    else:
        print(run("--quick" in sys.argv))
