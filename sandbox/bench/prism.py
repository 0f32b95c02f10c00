"""The province beside a schema-only mock: hop-2 records per second of this province, of Prism in mock mode
on the province's own `/openapi.json` (as started, and with errors-only logging), and of a bare aiohttp
handler, all running at once and driven in turn — four rounds, every other one in reverse order, after a
warm-up — by Debian `wrk` (one thread, 16 connections) with the same Lua script (`hop2.lua`).

Every request is a saveExamRpotImgIndx body of RECORDS records with a msgid and indexes never sent before,
so the province validates and stores every record; it must answer each one `1` (the script counts any
other answer as bad) and hold at least that many rows afterwards (a request wrk cut off at the end of a run may be stored too). Prism checks the body against the schema
and answers an example; the bare handler parses the body and answers a constant. The figures are taken in
the same run, so a busy machine slows all of them: the ratio is what the target is about.

`make bench` installs wrk (apt-get) and Prism (npm, into `.bench/`) when missing; a peer that cannot be
started is reported in its row instead.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from sandbox.bench import Row, cpu_seconds, stop
from sandbox.common.ports import free_port
from sandbox.config import Settings
from sandbox.province.samples import record
from sandbox.spec.fields import HOP2

RECORDS = 12
THREADS = 1
CONNECTIONS = 16
RATIO_TARGET = 1.5
ROUNDS = 4  # each server is driven ROUNDS times, taking turns with the others (wrk turns 0..ROUNDS-1; 9 warms up)
SCRIPT = Path(__file__).with_name("hop2.lua")
PRISM = Path(__file__).resolve().parents[2] / ".bench" / "node_modules" / ".bin" / "prism"  # scripts/bench-deps.sh
_INST = "@INST@"
# Prism as `prism mock FILE` starts it (a log line per request, here discarded), and with errors-only logging,
# its fastest setting: the target is against the first, the second is shown beside it.
PRISM_MODES: tuple[tuple[str, tuple[str, ...]], ...] = (("Prism 5 mock", ()),
                                                        ("Prism 5 mock, -v error", ("-v", "error")))


@dataclass(frozen=True, slots=True)
class Run:
    """One wrk run's totals (from the script's `done`)."""

    requests: int
    seconds: float
    bad: int
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def records_per_s(self) -> float:
        return self.requests * RECORDS / self.seconds


def template(settings: Settings) -> str:
    """The body the script sends: RECORDS strictly valid records of the first center, msgid and each
    index's institution segment left as placeholders."""
    center = settings.center
    records = []
    for n in range(RECORDS):
        rec = record(settings, n)
        parts = rec["hiImgIndx"].split("-")
        parts[3] = _INST  # doc-example: type-certno-time-institution-part-uscc
        rec["hiImgIndx"] = "-".join(parts)
        records.append(rec)
    body = {"infno": HOP2.infno, "msgid": "@MSGID@", "infTime": "2025-03-01 08:00:00", "infCode": center.code,
            "key": center.key, "data": records}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def _wrk(url: str, template_file: Path, seconds: int, check: bool, turn: int) -> Run:
    """One wrk run; `turn` (0-9) numbers the runs of one benchmark, so that no two send the same msgid or index."""
    nonce = "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(2)) + str(turn)
    base = 1_735_689_600 + secrets.randbelow(10 * 86_400) + turn * 3_000_000  # 2025; wrk threads add 10^6 s each
    cmd = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "30s", "-s", str(SCRIPT),
           url, "--", str(template_file), nonce, str(base), "1" if check else "0"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("WRKJSON "))
    d = json.loads(line.removeprefix("WRKJSON "))
    errors = d["connect"] + d["read"] + d["write"] + d["timeout"]
    return Run(d["requests"], d["duration_us"] / 1e6, d["bad"], errors, d["p50_us"] / 1e3, d["p99_us"] / 1e3)


def _wait(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (loopback, our own URL)
                if resp.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("did not start")


@dataclass(slots=True)
class Target:
    """One server wrk drives: where, whether its answers are checked, and its runs so far."""

    name: str
    url: str
    check: bool
    pid: int
    runs: list[Run]
    cpu: float = 0.0  # the server's CPU seconds during the counted runs

    def drive(self, body: Path, seconds: int, turn: int) -> None:
        cpu0 = cpu_seconds(self.pid)
        self.runs.append(_wrk(self.url, body, seconds, self.check, turn))
        self.cpu += cpu_seconds(self.pid) - cpu0

    def cpu_note(self) -> str:
        """The server's own CPU per record: it varies less than the rate with the machine's other load."""
        records = self.total().requests * RECORDS
        return f"server CPU {self.cpu / records * 1e6:,.0f} µs per record" if records else "no records"

    def total(self) -> Run:
        """The runs added up (median-ish latency: the mean of the runs' p50, the worst p99)."""
        r = self.runs
        return Run(sum(x.requests for x in r), sum(x.seconds for x in r), sum(x.bad for x in r),
                   sum(x.errors for x in r), sum(x.p50_ms for x in r) / len(r), max(x.p99_ms for x in r))


def run(quick: bool) -> list[Row]:
    """All servers up at once, a one-second warm-up each, then wrk on each in turn for a quarter of the time,
    four times, every other round in reverse order: a machine that gets busier or quieter during the run moves
    every figure alike."""
    seconds = 4 if quick else 20
    if shutil.which("wrk") is None:
        return [Row("province ÷ Prism 5 mock", 0.0, "×", RATIO_TARGET, "wrk 未安装 / wrk not installed: not measured")]
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        port = free_port()
        settings = Settings(data_dir=data_dir, province_port=port)
        body = data_dir / "hop2-template.json"
        body.write_text(template(settings), encoding="utf-8")
        try:
            procs.append(subprocess.Popen([sys.executable, "-m", "sandbox.bench.province", "serve", str(data_dir),
                                           str(port)]))
            _wait(settings.url(port) + "/openapi.json", procs[-1])
            targets = [Target("province", settings.url(port) + HOP2.path, True, procs[-1].pid, [])]
            missing: dict[str, str] = {}
            for name, args in PRISM_MODES:
                started = _start_prism(settings, data_dir, args)
                if isinstance(started, str):
                    missing[name] = started
                    continue
                procs.append(started[0])
                targets.append(Target(name, started[1], False, started[0].pid, []))
            bare_port = free_port()
            procs.append(subprocess.Popen([sys.executable, "-m", "sandbox.bench.prism", "bare", str(bare_port)]))
            _wait(f"http://127.0.0.1:{bare_port}/", procs[-1])
            targets.append(Target("bare aiohttp", f"http://127.0.0.1:{bare_port}{HOP2.path}", False, procs[-1].pid,
                                  []))
            for t in targets:  # warm-up, not counted: Node compiles the schema's checks on first use
                _wrk(t.url, body, 1, t.check, 9)
            for turn in range(ROUNDS):  # in turn, every other round in reverse order
                for t in (targets if turn % 2 == 0 else targets[::-1]):
                    t.drive(body, seconds // ROUNDS, turn)
        finally:
            for proc in procs:
                stop(proc)
        with sqlite3.connect(data_dir / "province.db") as db:
            stored = db.execute("SELECT COUNT(*) FROM img_index").fetchone()[0]
    totals = {t.name: t.total() for t in targets}
    cpu = {t.name: t.cpu_note() for t in targets}
    province, bare = totals["province"], totals["bare aiohttp"]
    if province.bad or province.errors:
        raise RuntimeError(f"province: {province.bad} bad answers, {province.errors} socket errors")
    if stored < province.requests * RECORDS:
        raise RuntimeError(f"answered {province.requests * RECORDS} records saved but {stored} rows stored")
    load = os.getloadavg()[0]
    rows = [Row("province records stored", province.records_per_s, "records/s", None,
                f"{province.requests:,} requests of {RECORDS} records, p50 {province.p50_ms:.1f} ms, "
                f"p99 {province.p99_ms:.1f} ms, {cpu['province']}; wrk -t{THREADS} -c{CONNECTIONS}, "
                f"{ROUNDS} × {seconds // ROUNDS} s interleaved with the peers; load {load:.1f}")]
    for k, (name, args) in enumerate(PRISM_MODES):
        target = RATIO_TARGET if k == 0 else None
        if name in missing:
            rows.append(Row(f"province ÷ {name}", 0.0, "×", target, missing[name]))
            continue
        prism = totals[name]
        rows.append(Row(f"{name}: records checked", prism.records_per_s, "records/s", None,
                        f"prism mock {' '.join(args)}{' ' if args else ''}openapi.json: {prism.requests:,} "
                        f"requests, p50 {prism.p50_ms:.1f} ms, {cpu[name]}; {prism.bad} answers not 200"))
        rows.append(Row(f"province ÷ {name}", province.records_per_s / prism.records_per_s, "×", target,
                        "same wrk, same script, same run"))
    rows.append(Row("bare aiohttp floor", bare.records_per_s, "records/s", None,
                    f"parses and answers, {cpu['bare aiohttp']}; province is "
                    f"{province.records_per_s / bare.records_per_s:.0%} of it"))
    return rows


def _start_prism(settings: Settings, data_dir: Path,
                 args: tuple[str, ...]) -> tuple[subprocess.Popen[bytes], str] | str:
    """Prism in mock mode on the province's OpenAPI document (written to a file: what the province serves at
    /openapi.json), its log discarded; (process, hop-2 URL), or why it could not start."""
    if not PRISM.exists():
        return "Prism 未安装（npm 不可用？）/ Prism not installed: not measured"
    from sandbox.province.routes import openapi_document

    doc = data_dir / "openapi.json"
    doc.write_text(json.dumps(openapi_document(settings), ensure_ascii=False), encoding="utf-8")
    port = free_port()
    proc = subprocess.Popen([str(PRISM), "mock", "-h", "127.0.0.1", "-p", str(port), *args, str(doc)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(f"http://127.0.0.1:{port}/openapi.json", proc)
    except RuntimeError as exc:
        stop(proc)
        return f"Prism 未能启动 / Prism did not start: {exc}"
    return proc, f"http://127.0.0.1:{port}{HOP2.path}"


def _serve_bare(port: int) -> None:
    """The floor: aiohttp reads and parses the body and answers a constant."""
    import orjson
    from aiohttp import web

    from sandbox.common.loop import new_loop

    answer = orjson.dumps({"code": 0, "type": "success", "message": "成功", "data": []})

    async def handle(request: web.Request) -> web.Response:
        orjson.loads(await request.read())
        return web.Response(body=answer, content_type="application/json")

    async def ready(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(client_max_size=1 << 20)
    app.router.add_post(HOP2.path, handle)
    app.router.add_get("/", ready)
    web.run_app(app, host="127.0.0.1", port=port, print=None, loop=new_loop(), access_log=None)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "bare":
        _serve_bare(int(sys.argv[2]))
    else:
        print(run("--quick" in sys.argv))
