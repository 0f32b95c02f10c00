"""Running a scenario: the whole chain in this process on free loopback ports and a temporary data folder.

The runner's defaults make failure scenarios quick (tiny retry backoffs, short timeouts, tiny images); a
scenario's `settings` override them. The hospital's clock is fixed, so msgids and infTime do not depend on
when the scenario runs.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sandbox.app import Sandbox
from sandbox.common.ports import free_port
from sandbox.config import Settings
from sandbox.scenario.checks import CHECKS, expectation_text, judge, show
from sandbox.scenario.driver import Driver, StepFailed
from sandbox.scenario.model import Check, Scenario, Step
from sandbox.synth.images import ImageSpec

RUNNER_DEFAULTS: dict[str, Any] = {
    "retry_base_s": 0.02,
    "retry_cap_s": 0.2,
    "retry_max_attempts": 6,
    "send_timeout_s": 2.0,
    "fetch_timeout_s": 3.0,
}
SCENARIO_CLOCK = datetime(2025, 12, 1, 9, 0, 0)
TINY_IMAGES = ImageSpec(slices=2, matrix=32, xray_matrix=32, us_shape=(32, 32), us_images=1)
WAIT_POLL_S = 0.02


def scenario_clock() -> datetime:
    return SCENARIO_CLOCK


def hospital_options() -> dict[str, Any]:
    """The emulated hospital as scenarios run it: fixed clock, tiny images, no embedded font."""
    return {"now": scenario_clock, "image_spec": TINY_IMAGES, "embedded_font": False}


@dataclass(slots=True)
class CheckResult:
    check: Check
    ok: bool
    observed: Any
    error: str | None = None

    @property
    def text(self) -> str:
        return expectation_text(self.check)

    @property
    def observed_text(self) -> str:
        return self.error or show(self.observed)


@dataclass(slots=True)
class StepResult:
    label: str
    seconds: float
    error: str | None = None


@dataclass(slots=True)
class RunResult:
    scenario: Scenario
    steps: list[StepResult] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0
    journal: list[dict[str, Any]] = field(default_factory=list)  # kept when asked (determinism, export)
    ports: dict[int, str] = field(default_factory=dict)  # the free ports this run got, by role

    @property
    def ok(self) -> bool:
        return all(s.error is None for s in self.steps) and all(c.ok for c in self.checks)


# The words of a step's description, per language.
_STEP_WORDS: dict[str, dict[str, str]] = {
    "zh": {"send": "发送 {count} 条检查", "records": "发送错误数据目录中的每种记录错误", "envelopes": "发送每种报文头错误",
           "errata": "发送文档示例的每种异写", "malform": "，含错误数据 {kinds}", "dup": "，批内重复索引号",
           "start": "（从第 {start} 条检查起）", "hospital": "，机构 {code}", "resend": "原样重发报文 {message}",
           "wait": "等待：{what}（最多 {timeout} 秒）", "restart": "重启 {role}", "stop": "停止 {role}",
           "start_role": "启动 {role}", "heal_all": "恢复全部故障", "heal": "恢复故障「{name}」",
           "fault": "加入故障「{name}」", "configure": "修改配置 {changes}", "sleep": "等待 {seconds} 秒",
           "requeue": "共享中心重新发送暂停或失败的批次（POST /api/forward/retry）", "sep": "、"},
    "en": {"send": "send {count} exams", "records": "send every record malformation of the catalogue",
           "envelopes": "send every envelope malformation", "errata": "send every spelling of the document's examples",
           "malform": ", malformed: {kinds}", "dup": ", an index repeated in the batch",
           "start": " (from exam {start})", "hospital": ", institution {code}", "resend": "resend message {message} unchanged",
           "wait": "wait: {what} (at most {timeout} s)", "restart": "restart {role}", "stop": "stop {role}",
           "start_role": "start {role}", "heal_all": "heal every fault", "heal": "heal fault \"{name}\"",
           "fault": "add fault \"{name}\"", "configure": "change settings {changes}", "sleep": "wait {seconds} s",
           "requeue": "the sharing center sends its held and failed batches again (POST /api/forward/retry)", "sep": ", "},
}


def describe_step(step: Step, lang: str = "zh") -> str:
    """A step as one line in Chinese (the journal's step label) or English."""
    w = _STEP_WORDS[lang]
    a = step.action
    if a == "send":
        s = step.send
        assert s is not None
        what = w["send"].format(count=s.count)
        if isinstance(s.malform, str):
            what = w[s.malform]
        elif s.malform:
            what += w["malform"].format(kinds=w["sep"].join(m.kind for m in s.malform))
        if s.duplicates:
            what += w["dup"]
        if s.start is not None:
            what += w["start"].format(start=s.start)
        if s.hospital:
            what += w["hospital"].format(code=s.hospital)
        return what
    if a == "resend":
        return w["resend"].format(message=step.resend.message if step.resend else "")
    if a == "wait":
        assert step.wait is not None
        return w["wait"].format(what=expectation_text(step.wait, lang), timeout=f"{step.wait.timeout:g}")
    if a in ("restart", "stop", "start"):
        return w["start_role" if a == "start" else a].format(role=getattr(step, a))
    if a == "heal":
        return w["heal_all"] if step.heal == "all" else w["heal"].format(name=step.heal)
    if a == "fault":
        assert step.fault is not None
        text = w["fault"].format(name=step.fault.label)
        return text + "：" + step.fault.describe() if lang == "zh" else text
    if a == "configure":
        return w["configure"].format(changes=", ".join(f"{k}={v}" for k, v in (step.configure or {}).items()))
    if a == "sleep":
        return w["sleep"].format(seconds=f"{step.sleep:g}")
    return w["requeue"]


async def observe(driver: Driver, check: Check) -> CheckResult:
    try:
        observed = await CHECKS[check.check].observe(driver, check)
    except StepFailed as exc:
        return CheckResult(check, False, None, str(exc))
    except Exception as exc:  # a role that is not running, a store that is closed
        return CheckResult(check, False, None, f"无法观察：{type(exc).__name__} {exc}")
    return CheckResult(check, judge(check, observed), observed)


async def execute(sandbox: Sandbox, driver: Driver, step: Step) -> None:
    """Carry out one step; raises StepFailed with a Chinese reason."""
    a = step.action
    if a == "send":
        assert step.send is not None
        await driver.send(step.send)
    elif a == "resend":
        assert step.resend is not None
        await driver.resend(step.resend)
    elif a == "wait":
        assert step.wait is not None
        deadline = time.monotonic() + step.wait.timeout
        while True:
            result = await observe(driver, step.wait)
            if result.ok:
                return
            if time.monotonic() >= deadline:
                raise StepFailed(f"{step.wait.timeout:g} 秒内未满足：{result.text}；实际 {result.observed_text}")
            await asyncio.sleep(WAIT_POLL_S)
    elif a == "restart":
        await sandbox.restart(str(step.restart))
    elif a == "stop":
        await sandbox.stop_role(str(step.stop))
    elif a == "start":
        await sandbox.start_role(str(step.start))
    elif a == "heal":
        sandbox.faults.heal(None if step.heal == "all" else step.heal)
    elif a == "fault":
        assert step.fault is not None
        sandbox.faults.load([step.fault])
    elif a == "configure":
        await sandbox.reconfigure(**(step.configure or {}))
    elif a == "sleep":
        await asyncio.sleep(step.sleep or 0)
    elif a == "requeue":
        await sandbox.state("center").requeue()


def scenario_settings(scenario: Scenario, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir, "seed": scenario.seed, "hospital_port": free_port(), "center_port": free_port(),
        "province_port": free_port(), "dicom_port": free_port(), **RUNNER_DEFAULTS, **scenario.settings,
    }
    values.update(overrides)
    return Settings(**values)


async def run_scenario(scenario: Scenario, *, data_dir: Path | None = None, keep_journal: bool = False,
                       **overrides: Any) -> RunResult:
    """Run one scenario from a clean state; the result holds each step and each expectation."""
    t0 = time.perf_counter()
    result = RunResult(scenario)
    with tempfile.TemporaryDirectory(prefix=f"sandbox-{scenario.name}-") as tmp:
        settings = scenario_settings(scenario, data_dir or Path(tmp), **overrides)
        sandbox = Sandbox(settings, hospital_options=hospital_options(), shutdown_timeout=1.0)
        result.ports = {sandbox.port(r): r for r in sandbox.roles}
        await sandbox.start()
        try:
            journal = sandbox.journal
            assert journal is not None
            journal.context["scenario"] = scenario.name
            sandbox.faults.load(scenario.faults)
            driver = Driver(sandbox)
            for i, step in enumerate(scenario.steps, 1):
                label = f"{i}. {step.label or describe_step(step)}"
                journal.context["step"] = label
                s0 = time.perf_counter()
                error = None
                try:
                    await execute(sandbox, driver, step)
                except StepFailed as exc:
                    error = str(exc)
                result.steps.append(StepResult(label, time.perf_counter() - s0, error))
                if error is not None:
                    break
            journal.context["step"] = "检查预期"
            for check in scenario.expect:
                result.checks.append(await observe(driver, check))
            if keep_journal:
                result.journal = [e async for e in journal.entries()]
        finally:
            await sandbox.stop()
    result.seconds = time.perf_counter() - t0
    return result
