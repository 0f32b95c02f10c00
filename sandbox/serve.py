"""`sandbox serve`: the roles in one process until Ctrl-C or SIGTERM, with a banner and an optional demo.

The ports listen first; then the first message is written and the banner is printed. Its DICOM study and
report are written in the background (pydicom, numpy and reportlab load then, not before the banner); a
request for them meanwhile waits until they are (`Hospital.register_soon`). The demo's exams are made in the
background too. Stopping lets requests in flight finish, then each role persists its
work (the center's outbox, a batch being forwarded) and closes its database; nothing is half-written.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import logging
import os
import signal
import sys
import tempfile
import time
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from sandbox.app import ROLE_TITLES, ROLES, Sandbox
from sandbox.common.csrf import TOKEN_HEADER
from sandbox.config import Settings
from sandbox.control.domain import TEXTS, ControlPlane
from sandbox.dashboard.app import DashboardServer
from sandbox.spec.fields import HOP1, HOP2, URL_PREFIX
from sandbox.spec.formats import china_now

log = logging.getLogger("sandbox.serve")

FIRST_MESSAGE = "first-message.json"
INDEX_PATH = URL_PREFIX + "index/"
DEMO_INTERVAL_S = 5.0
DEMO_BATCH = 3


@dataclass(slots=True)
class ServeOptions:
    roles: tuple[str, ...] = ROLES
    demo: bool = False
    demo_interval: float = DEMO_INTERVAL_S
    demo_batch: int = DEMO_BATCH
    scenario: str | None = None
    dashboard: bool = True  # the trainer's dashboard on settings.dashboard_port


async def serve(settings: Settings, options: ServeOptions, out: TextIO = sys.stdout,
                started: float | None = None, stop: asyncio.Event | None = None) -> int:
    """Run until `stop` is set (by SIGINT/SIGTERM when not given); returns the exit status."""
    t0 = started if started is not None else time.perf_counter()
    stop = stop or _signal_event()
    sandbox = Sandbox(settings, options.roles)
    await sandbox.start(ready=False)  # the control plane answers 503 until the banner is printed
    control = sandbox.control = ControlPlane(sandbox)
    background: list[asyncio.Task[Any]] = []
    dashboard: DashboardServer | None = None
    writing: asyncio.Task[None] | None = None
    try:
        if options.dashboard:
            dashboard = await DashboardServer.beside(sandbox, out)
        first = await _first_message(sandbox, control)
        if first is not None and first.prepare is not None:
            writing = await first.prepare()
        if options.scenario:
            print(await control.load_scenario(options.scenario), file=out)
        sandbox.ready = True
        elapsed = since_process_start() if started is None else None
        print(banner(sandbox, first, elapsed if elapsed is not None else time.perf_counter() - t0, options,
                     dashboard.url if dashboard is not None else None), file=out, flush=True)
        if options.demo and "hospital" in sandbox.roles:
            background.append(asyncio.create_task(_demo(control, options, out), name="demo"))
        await stop.wait()
        print("正在停止：等待进行中的请求完成并保存转发队列…", file=out, flush=True)
    finally:
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if writing is not None:  # not cancelled: a registration is never left half-written
            with contextlib.suppress(Exception):
                await writing
        if dashboard is not None:
            await dashboard.stop()
        await sandbox.stop()
    print(f"已停止，数据保存在 {settings.data_dir}", file=out, flush=True)
    return 0


def since_process_start() -> float | None:
    """Seconds since this process started (Linux /proc), so the banner counts interpreter start-up too."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _signal_event() -> asyncio.Event:
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, event.set)
    return event


# ---- the first message --------------------------------------------------------------------------------

@dataclass(slots=True)
class FirstMessage:
    path: Path
    index: str
    # Once the ports listen: starts writing the exam's files (the task; requests for them wait for it).
    prepare: Callable[[], Awaitable[asyncio.Task[None]]] | None


async def _first_message(sandbox: Sandbox, control: ControlPlane) -> FirstMessage | None:
    """A valid hop-1 message for exam 0 of the first hospital, written to the data folder for curl."""
    settings = sandbox.settings
    path = settings.data_dir / FIRST_MESSAGE
    prepare: Callable[[], Awaitable[asyncio.Task[None]]] | None = None
    if "hospital" in sandbox.roles:
        hospital = control.driver.hospital()
        exam = hospital.make_exams(1, 0)[0]
        record = exam.record(hospital.base_url)

        async def prepare() -> asyncio.Task[None]:
            registered = await hospital.store.exams_besides(exam.exam_id, exam.study_uid) + 1
            control.driver.next_exam.setdefault(hospital.institution.code, max(1, registered))
            return hospital.register_soon(exam)
    else:
        from sandbox.synth.exams import BASE_DATE, ExamFactory

        inst = settings.hospitals[0]
        exam = ExamFactory(inst, settings.center.uscc, settings.seed, index_profile=settings.index_profile,
                           base_date=settings.exam_base_date or BASE_DATE).exam(0)
        record = exam.record(settings.url(settings.hospital_port))
        record["examRpotPdfI"], record["imgInfoDcm"] = await asyncio.to_thread(_inline_files, exam)
    from sandbox.synth.batching import envelope

    inst = settings.institution(record["fixmedinsCode"]) or settings.hospitals[0]
    when = control.driver.now()
    message = envelope([record], inst, when, 9999)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(message, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return FirstMessage(path, record["hiImgIndx"], prepare)


def _inline_files(exam: Any) -> tuple[str, str]:
    """The exam's report and (tiny) study as inline base64, for a message sent without the hospital role."""
    from sandbox.scenario.runner import TINY_IMAGES
    from sandbox.synth.dataset import write_exam_files

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        entry = write_exam_files(exam, root, dicom=True, pdf=True, spec=TINY_IMAGES, embedded_font=False)
        pdf = (root / entry["report"]["path"]).read_bytes()
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for d in entry["dicom"]:
                z.write(root / d["path"], Path(d["path"]).name)
    return ("data:application/pdf;base64," + base64.b64encode(pdf).decode(),
            "data:application/zip;base64," + base64.b64encode(buf.getvalue()).decode())


# ---- the banner ---------------------------------------------------------------------------------------

def banner(sandbox: Sandbox, first: FirstMessage | None, seconds: float, options: ServeOptions,
           dashboard_url: str | None = None) -> str:
    s = sandbox.settings
    mode = "严格模式" if str(s.mode) == "strict" else "宽松模式"
    style = "逐条应答" if s.response_style == "per-record" else "汇总应答（文档示例）"
    lines = [f"医保影像云沙箱已就绪（{seconds:.2f} 秒）· 种子 {s.seed} · {mode} · {style} · 索引号规则 {s.index_profile}"]
    if s.control_token:
        lines.append(f"警告：沙箱监听在 {s.host}，同一网络中的其他计算机也能访问它；沙箱只用于测试，切勿载入真实患者数据。")
        lines.append(f"控制令牌（控制接口、看板操作、共享中心维护接口的请求头 {TOKEN_HEADER}）：{s.control_token}")
    paths = {"hospital": "文件下载 /files/…、DICOMweb /dicomweb/studies/…",
             "center": f"第一跳 POST {HOP1.path}", "province": f"第二跳 POST {HOP2.path}"}
    for role in ROLES:
        where = "本进程" if role in sandbox.roles else "外部"
        url = sandbox.url(role) if role in sandbox.roles or role != "hospital" else "—"
        lines.append(f"  {ROLE_TITLES[role]:<12}  {url:<28} {where}  {paths[role]}")
    if "center" in sandbox.roles:
        lines.append(f"  DICOM（存储、查询/检索、存储确认） {s.dicom_ae_title}@{s.host}:{s.dicom_port}")
    if dashboard_url is not None:
        # The token travels in the fragment: the page reads it, the browser never sends it anywhere.
        shown = f"{dashboard_url}#token={s.control_token}" if s.control_token else dashboard_url
        lines.append(f"培训看板（浏览器打开，中文 / English）：{shown}")
    lines.append("机构与密钥（infCode / key）：")
    titles = {"hospital": "医疗机构", "center": "共享中心"}
    for inst in s.institutions:
        lines.append(f"  {titles[inst.role]}  {inst.code}  key {inst.key}  {inst.name}")
    control = sandbox.url(sandbox.roles[0]) + "/_sandbox/"
    lines.append(f"控制接口：{control}（reset、seed、scenario、heal、faults、journal、send）")
    if sandbox.journal is not None:
        lines.append(f"日志：{sandbox.journal.path}（导出：sandbox journal export --format har）")
    if first is not None and "center" in sandbox.roles:
        lines.append("发送第一条报文（复制即可运行）：")
        lines.append(f"  curl -X POST -H 'Content-Type: application/json' --data @{_shown(first.path)} "
                     f"{sandbox.url('center')}{HOP1.path}")
        if "province" in sandbox.roles:
            lines.append("几秒后在省级模块查看它的索引与三个链接：")
            lines.append(f"  curl {sandbox.url('province')}{INDEX_PATH}{first.index}")
    if options.demo:
        lines.append(f"演示：医疗机构每 {options.demo_interval:g} 秒上传 {options.demo_batch} 条合成检查")
    lines.append("按 Ctrl-C 停止。")
    return "\n".join(lines)


def _shown(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(Path.cwd()))
    return str(path)


# ---- the demo -----------------------------------------------------------------------------------------

async def _demo(control: ControlPlane, options: ServeOptions, out: TextIO) -> None:
    """A trickle of synthetic exams from the emulated hospital, one small batch at a time, from the demo's
    own seed stream; it pauses while a scenario is active (ControlPlane.demo)."""
    paused = False
    while True:
        await asyncio.sleep(options.demo_interval)
        try:
            message = await control.demo(options.demo_batch)
        except Exception as exc:  # the demo never stops the sandbox
            log.warning("演示发送失败：%s", exc)
            continue
        if message is None:
            if not paused and control.active is not None:
                print(f"[演示] {china_now():%H:%M:%S}+08:00 " + TEXTS["demo_paused"].format(name=control.active),
                      file=out, flush=True)
            paused = True
            continue
        paused = False
        print(f"[演示] {china_now():%H:%M:%S}+08:00 {message}", file=out, flush=True)
