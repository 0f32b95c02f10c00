"""What the control API does to a running sandbox. No HTTP here.

A developer points their own client at `sandbox serve` and scripts what it meets: reset everything, set
the seed, load a scenario of the library (its settings and faults; with `run`, also its steps and
expectations, in the background), add or heal faults, make the emulated hospital send.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from sandbox.faults.model import Fault
from sandbox.scenario import library
from sandbox.scenario.checks import expectation_text
from sandbox.scenario.driver import Driver, StepFailed
from sandbox.scenario.model import SETTABLE, ScenarioError, SendStep, translate
from sandbox.scenario.runner import describe_step, execute, observe

if TYPE_CHECKING:
    from sandbox.app import Sandbox

TEXTS: Mapping[str, str] = MappingProxyType({
    "state": "沙箱状态",
    "reset": "已清空全部数据、日志与故障",
    "reset_seed": "已清空全部数据、日志与故障，随机种子为 {seed}",
    "seed": "随机种子已设为 {seed}（各角色已按新种子重启）",
    "scenario_loaded": "已加载场景「{name}」：{title}；故障 {faults} 个",
    "scenario_running": "已加载场景「{name}」并在后台执行其步骤，完成后 GET /_sandbox/ 可见结果",
    "scenario_busy": "场景「{name}」仍在执行，请稍后或先 POST /_sandbox/reset",
    "healed": "已恢复故障：{names}",
    "healed_none": "没有名为「{name}」的故障",
    "healed_all": "已恢复全部故障（{count} 个）",
    "fault_added": "已加入故障「{name}」：{description}",
    "sent": "医疗机构已发送 {messages} 个报文、{records} 条记录",
    "demo_sent": "演示：医疗机构已发送 {messages} 个报文、{records} 条记录",
    "demo_paused": "演示已暂停：场景「{name}」进行中，结束后自动继续",
    "restarting": "（应答本请求的角色随后按新配置重启，约 0.2 秒）",
    "bad_body": "请求体应为 JSON 对象：{detail}",
    "bad_seed": "seed 应为整数",
    "bad_name": "需要场景名称 name",
    "no_hospital": "本进程未运行医疗机构角色，无法发送",
    "no_journal": "本沙箱未开启日志",
    "not_found": "日志中没有第 {seq} 条交互",
    "invalid": "参数错误：{detail}",
    "busy": "另一个控制请求正在按新配置重启角色，请稍后重试",
    "run_broken": "场景「{name}」在步骤 {label} 中断：{error}",
    "run_broken_step": "未能执行：{error}",
})
# How long a reconfiguring control call waits for another one (and its restart) before answering 503; well
# under the roles' shutdown timeout, so that a call waiting on a role being restarted still gets its answer.
BUSY_WAIT_S = 3.0

log = logging.getLogger("sandbox.control")


class ControlError(Exception):
    """A control request refused; `status` is the HTTP status, the text is Chinese."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


# What the control plane restores when a scenario ends and on every reset: every setting a scenario may
# change (mode, response style, profile, retry settings …) and the seed.
RESTORED = (*SETTABLE, "seed")
DEMO_STREAM = "demo"  # the demo's exams come from their own seed stream: never a scenario's patients or indexes


class ControlPlane:
    """The control operations of one sandbox.

    The settings the sandbox started with (or that `seed`/`reset` set) are the base; a scenario's settings,
    its `configure` steps and its faults are overrides that last while it is loaded or running: they are
    undone when its run ends, when another scenario is loaded and by every reset. While a scenario is active
    the demo trickle (`demo`) pauses, so the scenario meets only its own traffic; it resumes afterwards.
    """

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.base = {k: getattr(sandbox.settings, k) for k in RESTORED}
        self.driver = Driver(sandbox)
        self.demo_driver = Driver(sandbox, stream=DEMO_STREAM)  # kept across resets: its exams never repeat
        self.demo_lock = asyncio.Lock()  # held while a demo batch is sent; a scenario waits for it
        self.active: str | None = None  # the scenario whose settings and faults are in force
        self.task: asyncio.Task[None] | None = None
        self.restarting: asyncio.Task[None] | None = None  # the answering role, restarted after its answer
        self.deferred: str | None = None  # a role whose restart the caller must schedule (restart_later)
        self.restarted = asyncio.Event()  # clear while a deferred restart is due or running
        self.restarted.set()
        self.run: dict[str, Any] | None = None  # the background scenario run: steps and expectation results
        self._busy = asyncio.Lock()  # held by a reconfiguring call (reset, seed, scenario)

    async def state(self) -> dict[str, Any]:
        sb = self.sandbox
        s = sb.settings
        roles = {}
        for role in ("hospital", "center", "province"):
            roles[role] = {"url": sb.url(role), "inProcess": role in sb.roles, "running": sb.running(role)}
        out: dict[str, Any] = {
            "roles": roles,
            "settings": {"seed": s.seed, "mode": str(s.mode), "responseStyle": s.response_style,
                         "indexProfile": s.index_profile, "dataDir": str(s.data_dir)},
            # the configuration the sandbox returns to, and what the active scenario changed (restored at its end)
            "base": {k: _shown(v) for k, v in self.base.items()},
            "overrides": self.overrides(),
            "scenarioActive": self.active is not None,
            "demoPaused": self.active is not None,
            "institutions": [{"code": i.code, "name": i.name, "role": i.role, "key": i.key} for i in s.institutions],
            "scenario": sb.scenario.name if sb.scenario is not None else None,
            "faults": sb.faults.state(),
            "run": self.run,
        }
        if sb.journal is not None:
            # writeError: why writing the journal fails now (disk full …), None when it does not; pending
            # entries are kept in memory and written once it works again, `dropped` beyond what memory keeps.
            out["journal"] = {**await sb.journal.stats(), "writeError": sb.journal.failing,
                              "dropped": sb.journal.dropped}
        return out

    def overrides(self) -> dict[str, Any]:
        """The settings that differ from the base now (a scenario's settings and configure steps)."""
        s = self.sandbox.settings
        return {k: _shown(getattr(s, k)) for k, v in self.base.items() if getattr(s, k) != v}

    async def _restore(self, keep: str | None) -> None:
        """Back to the base configuration with no fault: the end of every scenario and every reset."""
        self.active = None
        self.sandbox.faults.heal()
        await self._reconfigure(keep, **self.base)

    async def _reconfigure(self, keep: str | None, **updates: Any) -> None:
        if await self.sandbox.reconfigure(keep=keep, **updates) and keep is not None:
            self.deferred = keep
            self.restarted.clear()

    def restart_later(self) -> None:
        """Restart the role that answered a reconfiguring call, now that its answer has been sent."""
        role, self.deferred = self.deferred, None
        if role is None:
            return

        async def restart() -> None:
            try:
                await self.sandbox.restart(role)
            finally:
                self.restarted.set()

        self.restarting = asyncio.create_task(restart(), name=f"restart-{role}")

    async def settled(self) -> None:
        """Wait for a deferred restart to finish."""
        await self.restarted.wait()

    @contextlib.asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[None]:
        """One reconfiguring call at a time, after any deferred restart. A call that would wait longer than
        BUSY_WAIT_S is refused (503): it may be waiting on the very role another call is restarting, whose
        shutdown would otherwise cut it off without an answer."""
        try:
            async with asyncio.timeout(BUSY_WAIT_S):
                await self._busy.acquire()
        except TimeoutError:
            raise ControlError(503, TEXTS["busy"]) from None
        try:
            try:
                async with asyncio.timeout(BUSY_WAIT_S):
                    await self.settled()
            except TimeoutError:
                raise ControlError(503, TEXTS["busy"]) from None
            yield
        finally:
            self._busy.release()

    async def reset(self, seed: int | None = None, keep: str | None = None) -> str:
        async with self._exclusive():
            return await self._reset(seed, keep)

    async def _reset(self, seed: int | None, keep: str | None) -> str:
        await self._cancel()
        if seed is not None:
            self.base["seed"] = seed
        async with self.demo_lock:  # a demo batch in flight finishes first
            await self._restore(keep)
            await self.sandbox.reset()
        self.sandbox.scenario = None
        self.driver = Driver(self.sandbox)
        self.run = None
        if self.sandbox.journal is not None:
            self.sandbox.journal.context.update(scenario=None, step=None)
        return TEXTS["reset_seed"].format(seed=seed) if seed is not None else TEXTS["reset"]

    async def seed(self, seed: int, keep: str | None = None) -> str:
        async with self._exclusive():
            self.base["seed"] = seed
            await self._reconfigure(keep, seed=seed)
            self.driver = Driver(self.sandbox)
            return TEXTS["seed"].format(seed=seed)

    async def load_scenario(self, name: str, run: bool = False, keep: str | None = None,
                            reset: bool | None = None) -> str:
        """Load a scenario (its settings over the base, its faults); with `run`, carry out its steps and judge
        its expectations in the background. `reset` (by default when running) empties every store and the
        journal first, so the expectations count the scenario's own traffic only."""
        reset = run if reset is None else reset
        async with self._exclusive():
            if reset:
                await self._cancel()  # a scenario still running is replaced (everything is emptied anyway)
            return await self._load_scenario(name, run, keep, reset)

    async def _load_scenario(self, name: str, run: bool, keep: str | None, reset: bool) -> str:
        if self.task is not None and not self.task.done():
            raise ControlError(409, TEXTS["scenario_busy"].format(name=self.run["name"] if self.run else ""))
        try:
            scenario = library.find(name)
        except ScenarioError as exc:
            raise ControlError(404, str(exc)) from exc
        sb = self.sandbox
        async with self.demo_lock:  # the demo pauses: a batch in flight finishes before the scenario starts
            self.active = scenario.name
            sb.faults.heal()
            await self._reconfigure(keep, **{**self.base, **scenario.settings, "seed": scenario.seed})
            if reset:
                await sb.reset()
                self.run = None
        sb.faults.load(scenario.faults)
        sb.scenario = scenario
        self.driver = Driver(sb)
        if sb.journal is not None:
            sb.journal.context.update(scenario=scenario.name, step=None)
        if not run:
            self.run = None
            return TEXTS["scenario_loaded"].format(name=scenario.name, title=scenario.title.zh,
                                                   faults=len(scenario.faults))
        self.run = {"name": scenario.name, "state": "running", "steps": [], "expectations": []}
        self.task = asyncio.create_task(self._run(), name=f"scenario-{scenario.name}")
        return TEXTS["scenario_running"].format(name=scenario.name)

    async def _run(self) -> None:
        sb = self.sandbox
        scenario = sb.scenario
        assert scenario is not None and self.run is not None
        run = self.run
        try:
            await self.settled()  # the role that answered the call restarts first
            for i, step in enumerate(scenario.steps, 1):
                label = f"{i}. {step.label or describe_step(step)}"
                if sb.journal is not None:
                    sb.journal.context["step"] = label
                t0 = time.perf_counter()
                try:
                    await execute(sb, self.driver, step)
                except StepFailed as exc:
                    run["steps"].append({"label": label, "error": str(exc)})
                    break
                except Exception as exc:  # e.g. a role restarted under the run by another control call
                    log.warning(TEXTS["run_broken"].format(name=scenario.name, label=label, error=exc))
                    run["steps"].append({"label": label, "error": TEXTS["run_broken_step"].format(error=exc)})
                    break
                run["steps"].append({"label": label, "seconds": round(time.perf_counter() - t0, 3)})
            for check in scenario.expect:
                try:
                    r = await observe(self.driver, check)
                except Exception as exc:
                    run["expectations"].append({"ok": False, "expectation": str(check),
                                                "observed": TEXTS["run_broken_step"].format(error=exc),
                                                "expectationEn": expectation_text(check, "en")})
                    continue
                run["expectations"].append({"ok": r.ok, "expectation": r.text, "observed": r.observed_text,
                                            "expectationEn": expectation_text(check, "en")})
            verdict = "passed" if all(e["ok"] for e in run["expectations"]) and not any(
                "error" in s for s in run["steps"]) else "failed"
            if sb.journal is not None:
                sb.journal.context.update(scenario=None, step=None)
            # Its settings and faults end with it (the roles restart with the base settings, ~0.2 s); the
            # verdict is published once they are back, and the demo resumes.
            async with self.demo_lock:
                await self._restore(None)
            run["state"] = verdict
        finally:
            if run["state"] == "running":
                run["state"] = "cancelled"
            if sb.journal is not None:
                sb.journal.context.update(scenario=None, step=None)
            if self.active == scenario.name:  # an unexpected error: restore all the same
                async with self.demo_lock:
                    await self._restore(None)

    async def _cancel(self) -> None:
        if self.task is not None and not self.task.done():
            self.active = None  # the caller restores (a reset restarts the role answering it only afterwards)
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self.task = None

    def heal(self, name: str | None) -> str:
        gone = self.sandbox.faults.heal(name)
        if name is None:
            return TEXTS["healed_all"].format(count=len(gone))
        if not gone:
            raise ControlError(404, TEXTS["healed_none"].format(name=name))
        return TEXTS["healed"].format(names="、".join(gone))

    def add_fault(self, data: Any) -> str:
        try:
            fault = Fault.model_validate(data)
        except ValidationError as exc:
            raise ControlError(400, TEXTS["invalid"].format(detail="；".join(translate(exc)))) from exc
        self.sandbox.faults.load([fault])
        return TEXTS["fault_added"].format(name=fault.label, description=fault.describe())

    async def send(self, data: Any) -> tuple[str, list[dict[str, Any]]]:
        if "hospital" not in self.sandbox.roles or not self.sandbox.running("hospital"):
            raise ControlError(409, TEXTS["no_hospital"])
        try:
            step = SendStep.model_validate(data)
        except ValidationError as exc:
            raise ControlError(400, TEXTS["invalid"].format(detail="；".join(translate(exc)))) from exc
        try:
            sent = await self.driver.send(step)
        except StepFailed as exc:
            raise ControlError(400, str(exc)) from exc
        messages = [{"msgid": m.msgid, "records": len(m.records)} for m in sent]
        return TEXTS["sent"].format(messages=len(sent), records=sum(len(m.records) for m in sent)), messages

    async def demo(self, count: int) -> str | None:
        """One batch of the demo trickle from the demo's own exams; None while a scenario is active."""
        if self.active is not None or "hospital" not in self.sandbox.roles:
            return None
        async with self.demo_lock:
            if self.active is not None or not self.sandbox.running("hospital"):
                return None
            # settle: the center forwards the batch before the lock is released, so a scenario starting next
            # meets none of the demo's hop-2 traffic
            sent = await self.demo_driver.send(SendStep(count=count))
        return TEXTS["demo_sent"].format(messages=len(sent), records=sum(len(m.records) for m in sent))

    async def journal_page(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        journal = self.sandbox.journal
        if journal is None:
            raise ControlError(404, TEXTS["no_journal"])
        params: dict[str, Any] = {}
        try:
            after = int(query.get("after", "0"))
            limit = min(int(query.get("limit", "100")), 1000)
            for key, value in query.items():
                if key in ("after", "limit"):
                    continue
                params[key] = int(value) if key in ("hop", "code") else value
            return await journal.page(after=after, limit=limit, **params)
        except ValueError as exc:
            raise ControlError(400, TEXTS["invalid"].format(detail=exc)) from exc

    async def journal_entry(self, seq: int) -> dict[str, Any]:
        journal = self.sandbox.journal
        if journal is None:
            raise ControlError(404, TEXTS["no_journal"])
        entry = await journal.get(seq)
        if entry is None:
            raise ControlError(404, TEXTS["not_found"].format(seq=seq))
        return entry

    async def close(self) -> None:
        await self._cancel()
        if self.restarting is not None:
            with contextlib.suppress(Exception):
                await self.restarting


def _shown(value: Any) -> Any:
    """A setting as JSON shows it."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def scenarios() -> list[dict[str, Any]]:
    """The library, one entry per scenario (bad files are listed with their error)."""
    out: list[dict[str, Any]] = []
    for path in library.files():
        try:
            sc = library.load(path)
        except ScenarioError as exc:
            out.append({"file": path.name, "error": str(exc)})
            continue
        out.append({"name": sc.name, "file": path.name, "title": sc.title.model_dump(),
                    "description": sc.description.model_dump(), "faults": len(sc.faults), "steps": len(sc.steps),
                    "expectations": len(sc.expect)})
    return out
