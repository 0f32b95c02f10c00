"""The sandbox's hospitals as Locust users (`HospitalUser`); `sandbox/load/locustfile.py` runs them.

Each user is one hospital (see `sandbox.load.plan`): it makes exams with the sandbox's generator, posts
hop-1 `saveExamRpotImgInfo` messages to the target center, and checks every answer — the envelope's `code`
and each record's `succFlag` — marking the request failed, by kind, when anything is not `1`. The files the
records name (report PDF, DICOMweb study) are served by a small gevent WSGI server inside each worker
process, from a pool of exams rendered once per worker (`sandbox.load.pool`), so file traffic grows with
the workers. Each worker sends its counts (succFlag, failure kinds, exams acknowledged, file bytes served,
its CPU) to the master with Locust's `report_to_master` event; the master writes them to
`--sandbox-report` when it quits.

`HospitalUser` is abstract: importing it into your own locustfile runs only your subclasses::

    from locust import constant, task
    from sandbox.load.users import HospitalUser

    class NightlyHospital(HospitalUser):
        wait_time = constant(2)          # a message every two seconds per hospital

        @task
        def upload(self) -> None:        # the sandbox's task: make exams, post, check
            super().upload()

        @task
        def ask_status(self) -> None:    # something of your own
            self.client.get("/api/summary", name="center summary")

and run `sandbox load --target URL --locustfile my_locustfile.py`. Options are Locust options: every
`--sandbox-*` option below is given to the master and to each worker (`sandbox load` does that).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import gevent
from gevent.pywsgi import WSGIServer
from locust import FastHttpUser, events, task
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import LocalRunner, MasterRunner, WorkerRunner

from sandbox.config import load_settings
from sandbox.load.plan import (
    PlanError,
    Slot,
    UserPlan,
    add_data_options,
    judge,
    load_hospitals,
    parse_modalities,
    parse_range,
    record_for,
)
from sandbox.load.pool import FilePool, fixed_uid
from sandbox.spec.fields import HOP1
from sandbox.synth.dicom import ImageSpec
from sandbox.synth.exams import ExamFactory
from sandbox.synth.regions import REGIONS

log = logging.getLogger("sandbox.load")


def add_options(parser: Any, *, locust: bool) -> None:
    """The `--sandbox-*` options, on Locust's parser (locust=True) or a plain argparse one."""
    hidden: dict[str, Any] = {"include_in_web_ui": False} if locust else {}
    parser.add_argument("--sandbox-seed", default="", help="随机种子（默认配置 seed）")
    parser.add_argument("--sandbox-config", default="", help="TOML 配置文件（机构与密钥、索引号规则）")
    parser.add_argument("--sandbox-hospitals", type=int, default=0, help="生成多少家医疗机构（0：用配置中的医疗机构）")
    add_data_options(parser, "sandbox-")
    parser.add_argument("--sandbox-file-host", default="127.0.0.1",
                        help="共享中心取文件所用的本负载机地址（写进记录的链接）", **hidden)
    parser.add_argument("--sandbox-file-bind", default="", help="文件服务监听地址（默认同 --sandbox-file-host）",
                        **hidden)
    parser.add_argument("--sandbox-file-port", type=int, default=0, help="文件服务端口（0：任选空闲端口）", **hidden)
    parser.add_argument("--sandbox-report", default="", help="主控进程退出时写出沙箱统计（JSON）的文件", **hidden)


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    add_options(parser, locust=True)  # Locust's own parser: include_in_web_ui works only there


def own_options(argv: list[str]) -> argparse.Namespace:
    """This process's own `--sandbox-*` options, read before Locust starts (see `prepare`)."""
    parser = argparse.ArgumentParser(add_help=False)
    add_options(parser, locust=False)
    return parser.parse_known_args(argv)[0]


class Worker:
    """This process's part of the run: the pool, the file server and the counts not yet reported."""

    def __init__(self) -> None:
        self.error: str | None = None
        self.note = ""
        self.pool: FilePool | None = None
        self.server: WSGIServer | None = None
        self.base_url = ""
        self.hospitals: tuple[Any, ...] = ()
        self.settings: Any = None
        self.seed: str | int = 0
        self.users = 0
        self.pool_seconds = 0.0
        self.max_cpu = 0.0
        self.cpu_warning = False
        self.cpu_start: tuple[float, float] | None = None  # (wall, process CPU) at the first message
        self.counts: dict[str, Any] = fresh_counts()

    def start(self, options: Any) -> None:
        """Render the pool and start the file server. Called when the locustfile is imported, before the
        worker connects to the master: the master starts the run (--expect-workers) only once every worker
        is ready, so the pool's rendering time never eats into --run-time."""
        try:
            self.settings = load_settings(Path(options.sandbox_config) if options.sandbox_config else None)
            self.seed = int(options.sandbox_seed) if options.sandbox_seed.lstrip("-").isdigit() else (
                options.sandbox_seed or self.settings.seed)
            if options.sandbox_hospitals and options.sandbox_region not in REGIONS:
                raise PlanError(f"--sandbox-region 不认识「{options.sandbox_region}」，"
                                f"可选：{'、'.join(sorted(REGIONS))}")
            self.hospitals = load_hospitals(self.settings, options.sandbox_hospitals or None, options.sandbox_region,
                                            self.seed)
            parse_range(options.sandbox_records, "--sandbox-records")
            modalities = parse_modalities(options.sandbox_modalities)
            if options.sandbox_pool < 1:
                raise PlanError("--sandbox-pool 至少为 1")
            t0 = time.perf_counter()
            factory = ExamFactory(self.hospitals[0], self.settings.center.uscc, f"{self.seed}:pool",
                                  index_profile=self.settings.index_profile)
            self.pool = FilePool(factory, options.sandbox_pool, modalities,
                                 ImageSpec(slices=options.sandbox_slices, matrix=options.sandbox_matrix))
            self.pool_seconds = time.perf_counter() - t0
            host = options.sandbox_file_host
            self.server = WSGIServer((options.sandbox_file_bind or host, options.sandbox_file_port), self.wsgi,
                                     log=None, error_log=log)
            self.server.start()
            shown = f"[{host}]" if ":" in host else host
            self.base_url = f"http://{shown}:{self.server.server_port}"
            self.note = (f"负载进程 {os.getpid()}：文件池 {self.pool.size} 个检查（{self.pool_seconds:.1f} 秒），"
                         f"文件服务 {self.base_url}")
        except (PlanError, ValueError, OSError) as exc:
            self.error = f"负载进程无法开始：{exc}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(timeout=5)
            self.server = None

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        """GET /files/{examId}/report.pdf and /dicomweb/studies/{StudyInstanceUID} of the exams sent."""
        assert self.pool is not None
        path = environ.get("PATH_INFO", "")
        parts = path.strip("/").split("/")
        found = None
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return self._answer(start_response, "405 Method Not Allowed", "text/plain; charset=utf-8",
                                "只支持 GET".encode())
        if len(parts) == 3 and parts[0] == "files" and parts[2] == "report.pdf":
            found = self.pool.by_exam(parts[1])
            if found is not None:
                return self._answer(start_response, "200 OK", "application/pdf", found.pooled.pdf, count=True)
        elif len(parts) == 3 and parts[:2] == ["dicomweb", "studies"]:
            found = self.pool.by_study(parts[2])
            if found is not None:
                content_type, body = found.study()
                return self._answer(start_response, "200 OK", content_type, body, count=True)
        return self._answer(start_response, "404 Not Found", "text/plain; charset=utf-8",
                            f"没有这个文件：{path}（负载进程只提供本次压测发送的检查）".encode())

    def _answer(self, start_response: Any, status: str, content_type: str, body: bytes,
                count: bool = False) -> list[bytes]:
        start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        if count:
            self.counts["files"] += 1
            self.counts["bytes"] += len(body)
        return [body]

    def drain(self) -> dict[str, Any]:
        """The counts since the last report (and this worker's facts), for the master."""
        out, self.counts = self.counts, fresh_counts()
        out["pool"] = {"exams": self.pool.size if self.pool else 0, "seconds": round(self.pool_seconds, 2),
                       "pdfBytes": self.pool.pdf_bytes if self.pool else [],
                       "dicomBytes": self.pool.dicom_bytes if self.pool else []}
        busy = 0.0
        if self.cpu_start is not None:
            wall = time.time() - self.cpu_start[0]
            busy = 100 * (time.process_time() - self.cpu_start[1]) / wall if wall > 0 else 0.0
        out["cpu"] = {"max": self.max_cpu, "busy": round(busy, 1), "warning": self.cpu_warning}
        out["error"] = self.error
        return out


def fresh_counts() -> dict[str, Any]:
    return {"messages": 0, "exams": 0, "flags": Counter(), "kinds": Counter(), "acknowledged": [],
            "files": 0, "bytes": 0, "first": None, "last": None}


WORKER = Worker()
TOTALS: dict[str, Any] = {"workers": {}}


def merge(into: dict[str, Any], node: str, data: dict[str, Any]) -> None:
    """Add a worker's report to the master's totals (per worker, then summed by `sandbox load`)."""
    w = into["workers"].setdefault(node, {**fresh_counts(), "flags": {}, "kinds": {}})
    for key in ("messages", "exams", "files", "bytes"):
        w[key] += data[key]
    for key in ("flags", "kinds"):
        for k, v in data[key].items():
            w[key][k] = w[key].get(k, 0) + v
    w["acknowledged"].extend(data["acknowledged"])
    if data["first"] is not None:
        w["first"] = data["first"] if w["first"] is None else min(w["first"], data["first"])
    if data["last"] is not None:
        w["last"] = data["last"] if w["last"] is None else max(w["last"], data["last"])
    w["pool"], w["cpu"], w["error"] = data["pool"], data["cpu"], data["error"]


REPORT_EVERY = 2.0  # seconds between a worker's reports to the master


def report(runner: Any) -> None:
    """Send this worker's counts since the last report to the master (a custom message: the master takes it
    even from a worker that has already said it stopped, unlike Locust's own stats)."""
    WORKER.max_cpu = max(WORKER.max_cpu, runner.current_cpu_usage)
    data = WORKER.drain()
    if isinstance(runner, LocalRunner):
        merge(TOTALS, "local", data)
    else:
        runner.send_message("sandbox_counts", data)


@events.init.add_listener
def _init(environment: Environment, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner | LocalRunner):
        if WORKER.error is not None:
            log.error("%s", WORKER.error)
        else:
            log.info("%s", WORKER.note)

        def every() -> None:
            while True:
                gevent.sleep(REPORT_EVERY)
                report(runner)

        gevent.spawn(every)

        @events.test_stop.add_listener
        def _stopped(**_: Any) -> None:  # the users have finished their last message: report it now
            report(runner)

        @events.cpu_warning.add_listener
        def _cpu(**_: Any) -> None:
            WORKER.cpu_warning = True

    if isinstance(runner, MasterRunner):
        runner.register_message("sandbox_counts", lambda msg, **_: merge(TOTALS, msg.node_id, msg.data))


@events.quitting.add_listener
def _quit(environment: Environment, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, LocalRunner):
        report(runner)
    if isinstance(runner, WorkerRunner | LocalRunner):
        WORKER.stop()
    path = environment.parsed_options.sandbox_report if environment.parsed_options else ""
    if path and isinstance(runner, MasterRunner | LocalRunner):
        Path(path).write_text(json.dumps(TOTALS, ensure_ascii=False), encoding="utf-8")


class HospitalUser(FastHttpUser):
    """One hospital uploading hop-1 messages to the target center (`--host`, e.g. http://127.0.0.1:8701)."""

    abstract = True  # run by subclassing (sandbox/load/locustfile.py, or yours)
    think = 0.0

    def wait_time(self) -> float:
        """--sandbox-think seconds between two messages of a user (0: the next as soon as answered)."""
        return self.think

    def on_start(self) -> None:
        if WORKER.error is not None:
            raise StopUser()
        runner = self.environment.runner
        local = WORKER.users
        WORKER.users += 1
        o = self.environment.parsed_options  # the master's options (forwarded with the spawn message)
        if isinstance(runner, WorkerRunner):
            worker, workers = runner.worker_index, max(1, int(getattr(o, "expect_workers", 1) or 1))
        else:
            worker, workers = 0, 1
        try:
            self.slot = Slot.of(worker, workers, local, WORKER.hospitals)
        except PlanError as exc:
            log.error("%s", exc)
            raise StopUser() from None
        assert WORKER.pool is not None
        self.plan = UserPlan.create(self.slot, WORKER.settings, WORKER.seed, tuple(WORKER.pool.pooled),
                                    parse_range(o.sandbox_records, "--sandbox-records"))
        self.think = float(o.sandbox_think)

    @task
    def upload(self) -> None:
        """Make the next exams, post them as hop-1 message(s), check every answer."""
        assert WORKER.pool is not None
        exams = self.plan.exams()
        records = []
        for exam in exams:
            study = fixed_uid(WORKER.seed, "load-study", self.slot.hospital.code, exam.n)
            WORKER.pool.serve(exam, exam.n, study)
            records.append(record_for(exam, WORKER.base_url, study))
        for message in self.plan.messages(records):
            self.post(message)

    def post(self, message: dict[str, Any]) -> None:
        batch = message["data"]
        started = time.time()
        if WORKER.cpu_start is None:
            WORKER.cpu_start = (started, time.process_time())
        if WORKER.counts["first"] is None:
            WORKER.counts["first"] = started
        WORKER.counts["messages"] += 1
        WORKER.counts["exams"] += len(batch)
        with self.client.post(HOP1.path, json=message, name=HOP1.infno, catch_response=True) as resp:
            body = None
            if resp.status_code:
                try:
                    body = resp.json()
                except ValueError:
                    body = None
            verdict = judge(message, resp.status_code, body, "" if resp.status_code else str(resp.error))
            counts = WORKER.counts  # read after the answer: a report may have taken the counts meanwhile
            counts["flags"].update(verdict.flags)
            counts["kinds"].update(verdict.kinds)
            counts["acknowledged"].extend(verdict.acknowledged)
            counts["last"] = time.time()
            if verdict.failure is None:
                resp.success()
            else:
                resp.failure(verdict.failure)


def prepare(argv: list[str]) -> None:
    """A worker (or a single local process) renders its pool as soon as the locustfile is imported."""
    if "--master" in argv or "-h" in argv or "--help" in argv or "--version" in argv or "-V" in argv:
        return
    WORKER.start(own_options(argv))


prepare(sys.argv[1:])
