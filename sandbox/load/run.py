"""`sandbox load` orchestration: Locust master and workers as child processes, the sandbox's own center and
province when asked (`--serve`), then the summary and the end-to-end check. Never imports Locust or gevent:
they patch the standard library, and this process may share it with asyncio code.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sandbox.common.ports import free_port
from sandbox.config import Institution
from sandbox.spec.fields import HOP1

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
INDEX_PATH = "/mie/api/mie/index/{index}"
SERVE_READY = "按 Ctrl-C 停止"
CLIENT_BUSY = 80.0  # % of a core a worker may use on average before the summary calls it the bottleneck


class LoadError(Exception):
    """The load cannot run (message in Chinese)."""


def locust_missing() -> bool:
    import importlib.util

    return importlib.util.find_spec("locust") is None


@dataclass(slots=True)
class Options:
    """What `sandbox load` was asked for (see its --help)."""

    target: str
    users: int
    spawn_rate: float
    run_time: str
    headless: bool
    workers: int
    remote_workers: int
    out: Path
    locustfile: Path
    locust_args: list[str]  # the --sandbox-* options, given to master and workers alike
    file_host: str
    file_bind: str
    file_port_base: int
    master_bind: str
    master_port: int
    web_host: str
    web_port: int
    stop_timeout: int
    province: str | None = None
    center_api: str | None = None


def target_config(hospitals: tuple[Institution, ...], center: Institution, fetch_hosts: list[str]) -> str:
    """The TOML a sandbox center needs to take this load (a real center needs the same facts)."""
    lines = ["# sandbox load：目标共享中心需要登记的机构与密钥，以及允许取文件的负载机地址",
             f"allowed_fetch_hosts = {json.dumps(fetch_hosts, ensure_ascii=False)}", ""]
    for inst in (*hospitals, center):
        lines.append("[[institutions]]")
        lines.extend(f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in inst.model_dump().items())
        lines.append("")
    return "\n".join(lines)


@dataclass(slots=True)
class ServedSandbox:
    proc: subprocess.Popen[str]
    center: str
    province: str
    data: Path
    log: Path


@contextmanager
def serve_sandbox(config_text: str, work: Path, python: str = sys.executable) -> Iterator[ServedSandbox]:
    """The sandbox's own center and province (`sandbox serve --roles center,province`) on free loopback ports,
    with a data folder of its own, stopped (SIGTERM) and removed afterwards."""
    data = Path(tempfile.mkdtemp(prefix="sandbox-load-serve-"))
    config = work / "serve.toml"
    config.write_text(config_text, encoding="utf-8")
    ports = {role: free_port() for role in ("hospital", "center", "province", "dicom")}
    log = work / "serve.log"
    args = [python, "-m", "sandbox", "serve", "--roles", "center,province", "--config", str(config),
            "--data-dir", str(data), "--no-dashboard", *[a for r, p in ports.items() for a in (f"--{r}-port", str(p))]]
    with open(log, "w", encoding="utf-8") as err:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        while True:
            line = proc.stdout.readline()
            if not line:
                raise LoadError(f"沙箱的共享中心未能启动，见 {log}")
            if line.startswith(SERVE_READY):
                break
        yield ServedSandbox(proc, f"http://127.0.0.1:{ports['center']}", f"http://127.0.0.1:{ports['province']}", data, log)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        shutil.rmtree(data, ignore_errors=True)


def locust_commands(o: Options) -> tuple[list[str], list[list[str]]]:
    """(master, local workers) command lines."""
    base = [sys.executable, "-m", "locust", "-f", str(o.locustfile), *o.locust_args]
    master = [*base, "--master", "--master-bind-host", o.master_bind, "--master-bind-port", str(o.master_port),
              "--expect-workers", str(o.workers + o.remote_workers), "--host", o.target,
              "--users", str(o.users), "--spawn-rate", str(o.spawn_rate),
              "--stop-timeout", f"{o.stop_timeout}s",
              "--web-host", o.web_host, "--web-port", str(o.web_port),
              "--csv", str(o.out / "locust"), "--html", str(o.out / "locust.html"),
              "--sandbox-report", str(o.out / "sandbox-workers.json"),
              "--logfile", str(o.out / "locust-master.log")]
    if o.headless:
        # --autostart rather than --headless: at the end Locust *stops* the users (each finishes the message in
        # flight, within --stop-timeout) and the workers report their last counts before it quits
        master += ["--autostart", "--autoquit", "2", "--run-time", o.run_time]
    elif o.run_time:
        master += ["--run-time", o.run_time]
    master_host = "127.0.0.1" if o.master_bind in ("0.0.0.0", "*", "::") else o.master_bind
    workers = []
    for i in range(o.workers):
        port = o.file_port_base + i if o.file_port_base else 0
        workers.append([*base, "--worker", "--master-host", master_host, "--master-port", str(o.master_port),
                        "--sandbox-file-host", o.file_host, "--sandbox-file-bind", o.file_bind,
                        "--sandbox-file-port", str(port), "--logfile", str(o.out / f"locust-worker-{i + 1}.log")])
    return master, workers


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run_locust(o: Options, say: Callable[[str], None]) -> int:
    """Start master and workers, wait for the master, then end the workers; returns the master's exit status.

    The children run in sessions of their own, so a terminal's Ctrl-C reaches only this process, which then
    asks the master to quit (SIGTERM: Locust stops the users, writes its reports and quits) and goes on to
    the summary."""
    master_cmd, worker_cmds = locust_commands(o)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs: list[subprocess.Popen[bytes]] = []
    out = open(o.out / "locust-output.log", "wb")  # noqa: SIM115 - closed below, after the processes
    handlers = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        master = subprocess.Popen(master_cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        procs.append(master)
        for cmd in worker_cmds:
            procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                          start_new_session=True))
        say(f"Locust 网页（运行期间可看）：http://{o.web_host}:{o.web_port}/")
        try:
            code = master.wait()
        except KeyboardInterrupt:
            say("正在停止：Locust 主控写出报告后退出 …")
            master.send_signal(signal.SIGTERM)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            code = master.wait()
        # The workers reported their last counts when their users stopped; a worker the master already saw
        # stop is no longer told to quit (Locust waits --stop-timeout before it rejoins), so end them here.
        for p in procs[1:]:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs[1:]:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return code
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        out.close()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


# ---- the report ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class Summary:
    """The sandbox's own summary of a run (written as sandbox-summary.json beside Locust's files)."""

    target: str
    users: int
    workers: int
    messages: int = 0
    requests: int = 0
    failed_requests: int = 0
    exams_sent: int = 0
    acknowledged: int = 0
    seconds: float = 0.0
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    flags: dict[str, int] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)
    files: int = 0
    file_bytes: int = 0
    pool_exams: int = 0
    pool_pdf_bytes: list[int] = field(default_factory=list)
    pool_dicom_bytes: list[int] = field(default_factory=list)
    worker_cpu: list[float] = field(default_factory=list)  # % of one core each worker used while sending
    worker_cpu_peak: list[float] = field(default_factory=list)  # Locust's own samples (psutil), highest seen
    cpu_warning: bool = False
    errors: list[str] = field(default_factory=list)
    e2e: dict[str, Any] | None = None
    indexes: list[str] = field(default_factory=list, repr=False)

    @property
    def exams_per_s(self) -> float:
        return self.acknowledged / self.seconds if self.seconds > 0 else 0.0

    @property
    def client_bound(self) -> bool:
        """The load generator, not the center, may have set the rate: Locust's CPU warning (90 % of a core)
        fired, or a worker used more than 80 % of a core on average while sending."""
        return self.cpu_warning or any(c > CLIENT_BUSY for c in self.worker_cpu)

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.target, "users": self.users, "workers": self.workers, "messages": self.messages,
            "requests": self.requests, "failedRequests": self.failed_requests, "examsSent": self.exams_sent,
            "examsAcknowledged": self.acknowledged, "seconds": round(self.seconds, 2),
            "examsPerSecond": round(self.exams_per_s, 2),
            "latencyMs": {"p50": self.p50, "p95": self.p95, "p99": self.p99},
            "succFlag": self.flags, "failureKinds": self.kinds,
            "filesServed": self.files, "fileBytesServed": self.file_bytes,
            "pool": {"exams": self.pool_exams, "pdfBytes": self.pool_pdf_bytes, "dicomBytes": self.pool_dicom_bytes},
            "workerCpuPercent": self.worker_cpu, "workerCpuPeakPercent": self.worker_cpu_peak, "cpuWarning": self.cpu_warning,
            "clientBound": self.client_bound, "errors": self.errors, "endToEnd": self.e2e,
        }


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def read_summary(o: Options) -> Summary:
    """Locust's CSV (latency percentiles, requests) and the workers' counts the master wrote."""
    s = Summary(o.target, o.users, o.workers + o.remote_workers)
    stats = o.out / "locust_stats.csv"
    if stats.is_file():
        with open(stats, encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("Name") == HOP1.infno:
                    s.requests = int(row["Request Count"])
                    s.failed_requests = int(row["Failure Count"])
                    s.p50, s.p95, s.p99 = (_number(row[k]) for k in ("50%", "95%", "99%"))
    report = o.out / "sandbox-workers.json"
    if not report.is_file():
        raise LoadError(f"Locust 主控进程没有写出统计 {report}，见 {o.out / 'locust-output.log'}")
    data = json.loads(report.read_text(encoding="utf-8"))
    flags: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    first: list[float] = []
    last: list[float] = []
    for w in data["workers"].values():
        s.messages += w["messages"]
        s.exams_sent += w["exams"]
        s.files += w["files"]
        s.file_bytes += w["bytes"]
        flags.update(w["flags"])
        kinds.update(w["kinds"])
        s.indexes.extend(w["acknowledged"])
        first += [w["first"]] if w["first"] is not None else []
        last += [w["last"]] if w["last"] is not None else []
        pool = w.get("pool") or {}
        s.pool_exams = max(s.pool_exams, pool.get("exams", 0))
        s.pool_pdf_bytes = pool.get("pdfBytes") or s.pool_pdf_bytes
        s.pool_dicom_bytes = pool.get("dicomBytes") or s.pool_dicom_bytes
        cpu = w.get("cpu") or {}
        s.worker_cpu.append(round(float(cpu.get("busy", 0.0)), 1))
        s.worker_cpu_peak.append(round(float(cpu.get("max", 0.0)), 1))
        s.cpu_warning = s.cpu_warning or bool(cpu.get("warning"))
        if w.get("error"):
            s.errors.append(w["error"])
    s.flags, s.kinds = dict(flags), dict(kinds.most_common())
    s.acknowledged = len(s.indexes)
    if first and last:
        s.seconds = max(last) - min(first)
    return s


def _get_json(url: str, timeout: float = 10.0) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback or the user's URL
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None


def end_to_end(center_api: str, province: str, indexes: list[str], *, fresh: bool,
               wait: float = 120.0) -> dict[str, Any]:
    """Every acknowledged exam indexed at the province: wait (bounded) for the center's outbox to drain,
    then look each index up. A `fresh` center (started for this run) must also have stored exactly the
    exams acknowledged: one more would be an answer the load lost."""
    deadline = time.monotonic() + wait
    summary: dict[str, Any] = {}
    while True:
        status, summary = _get_json(center_api.rstrip("/") + "/api/summary")
        if status != 200 or not isinstance(summary, dict):
            raise LoadError(f"无法读取共享中心的统计 {center_api}/api/summary（HTTP {status}）")
        pending = int(summary.get("forwardPending", 0)) + int(summary.get("forwardSending", 0))
        if pending == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)

    def indexed(index: str) -> bool:
        status, _ = _get_json(province.rstrip("/") + INDEX_PATH.format(index=quote(index, safe="")))
        return status == 200

    unique = list(dict.fromkeys(indexes))
    with ThreadPoolExecutor(max_workers=8) as pool:
        found = list(pool.map(indexed, unique))
    missing = [i for i, ok in zip(unique, found, strict=True) if not ok]
    return {
        "acknowledged": len(indexes), "distinct": len(unique), "indexed": len(unique) - len(missing),
        "missing": missing[:20], "missingCount": len(missing),
        "centerStored": int(summary.get("stored", 0)) + int(summary.get("storedPartial", 0)),
        "centerForwarded": int(summary.get("forwarded", 0)),
        "outboxLeft": int(summary.get("forwardPending", 0)) + int(summary.get("forwardSending", 0)),
        "fresh": fresh,
        "ok": bool(unique) and not missing and len(unique) == len(indexes) and (
            not fresh or int(summary.get("stored", 0)) + int(summary.get("storedPartial", 0)) == len(unique)),
    }
