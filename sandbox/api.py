"""The sandbox inside your own tests: a public, documented Python API.

    from sandbox.api import Sandbox

    async with Sandbox() as sb:                         # hospital, center and province on free ports
        message = await sb.messages.hop1(count=3)        # valid hop-1 message; its files are served
        answer = await sb.post_hop1(message)             # or POST it to sb.urls.hop1 with your own client
        assert_accepted(answer)                          # fails with each record's Chinese field errors
        await sb.wait_until(lambda: sb.province.index(message["data"][0]["hiImgIndx"]))

`SyncSandbox` is the same for synchronous code (a Django or Flask HIS, plain pytest): the sandbox runs on
its own event loop in a background thread and every method returns its result. The pytest plugin
(`sandbox.pytest_plugin`, registered as `imgcloud`) builds its fixtures on `SyncSandbox`.

Everything a role stores is read through `sb.center`, `sb.province` and `sb.journal`; nothing here reaches
into private state that a later version may change without saying so.
"""

from __future__ import annotations

import asyncio
import errno
import inspect
import shutil
import tempfile
import threading
from collections.abc import Callable, Coroutine, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from sandbox.app import ROLES, SandboxError
from sandbox.app import Sandbox as Chain
from sandbox.common.ports import free_port
from sandbox.config import Institution, Settings
from sandbox.spec.fields import HOP1, HOP2
from sandbox.spec.formats import china_now
from sandbox.synth.images import ImageSpec

T = TypeVar("T")

# Small images: a generated exam's study is a few kilobytes, so a test makes dozens in a second.
TEST_IMAGES = ImageSpec(slices=2, matrix=64, xray_matrix=64, us_shape=(64, 64), us_images=1)
PORT_ATTEMPTS = 5  # another process may take a free port between choosing it and binding it
PORT_KEYS = ("hospital_port", "center_port", "province_port", "dicom_port", "dashboard_port")


class AnswerError(AssertionError):
    """An answer that is not what the test expected; the text lists each record's Chinese errors."""


@dataclass(frozen=True, slots=True)
class Urls:
    """Where the sandbox's roles answer. A role not started is None (its URL given in settings aside)."""

    hospital: str | None
    center: str | None
    province: str | None
    hop1: str | None  # POST saveExamRpotImgInfo (the center)
    hop2: str | None  # POST saveExamRpotImgIndx (the province)
    files: str | None  # the hospital's file server (/files/…, /dicomweb/…)
    dicomweb: str | None  # the center's DICOMweb root
    dicom_ae: str  # the center's Storage SCP: AE title …
    dicom_host: str
    dicom_port: int | None  # … and port
    control: str | None  # the control plane of the first running role


def _settings(settings: Settings | Mapping[str, Any] | None, data_dir: Path, overrides: Mapping[str, Any]) -> Settings:
    """The user's settings, with free ports and a data folder for whatever the user did not set."""
    if isinstance(settings, Settings):
        given = settings.model_dump(exclude_unset=True)
    else:
        given = dict(settings or {})
    given.update(overrides)
    for key in PORT_KEYS:
        given.setdefault(key, free_port(given.get("host", "127.0.0.1")))
    given.setdefault("data_dir", data_dir)
    return Settings.model_validate(given)


class Sandbox:
    """Some or all of the three roles in this process, on free loopback ports, for the length of an
    `async with` block. `settings` is a Settings or a mapping of its fields (ports and data folder are chosen
    when not given; the folder is removed afterwards when it was chosen); keyword arguments override them.

    A center started without the province forwards to `province_url` when given, else to a closed port:
    its exams then wait in the outbox (state `sending`), which is what a test of a hospital's client wants.
    """

    def __init__(self, roles: Iterable[str] | str = ROLES, settings: Settings | Mapping[str, Any] | None = None,
                 *, journal: bool = True, image_spec: ImageSpec = TEST_IMAGES, **overrides: Any) -> None:
        self.roles = tuple(r.strip() for r in roles.split(",")) if isinstance(roles, str) else tuple(roles)
        unknown = set(self.roles) - set(ROLES)
        if unknown:
            raise SandboxError(f"未知的角色：{'、'.join(sorted(unknown))}；可选：{'、'.join(ROLES)}")
        self._given = settings
        self._overrides = dict(overrides)
        self._journal = journal
        self._image_spec = image_spec
        self._tmp: Path | None = None
        self._chain: Chain | None = None
        self._base: Settings | None = None  # the settings a reset returns to
        self._session: aiohttp.ClientSession | None = None
        self._file_server = False  # the hospital role started for messages.hop1, not asked for
        self.messages = Messages(self)
        self.center = CenterView(self)
        self.province = ProvinceView(self)
        self.journal = JournalView(self)

    # ---- life cycle ---------------------------------------------------------------------------------

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._chain is not None:
            return
        given = self._given
        user_dir = (given.model_dump(exclude_unset=True) if isinstance(given, Settings)
                    else dict(given or {})).get("data_dir") or self._overrides.get("data_dir")
        if user_dir is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="imgcloud-"))
        extra = dict(self._overrides)
        if "center" in self.roles and "province" not in self.roles and not _has(given, extra, "province_url"):
            extra["province_url"] = f"http://127.0.0.1:{free_port()}"  # nothing listens: exams wait in the outbox
        for attempt in range(PORT_ATTEMPTS):
            settings = _settings(given, self._tmp / "data" if self._tmp else Path(str(user_dir)), extra)
            chain = Chain(settings, self.roles, journal=self._journal,
                          hospital_options={"image_spec": self._image_spec})
            try:
                await chain.start()
            except SandboxError as exc:
                if attempt + 1 < PORT_ATTEMPTS and _port_taken(exc):
                    continue
                await self._cleanup()
                raise
            except BaseException:
                await self._cleanup()
                raise
            self._chain, self._base = chain, chain.settings
            self._session = aiohttp.ClientSession()
            return

    async def stop(self) -> None:
        """Stop every role (in-flight work is persisted as on any shutdown) and remove the temporary folder."""
        chain, self._chain = self._chain, None
        try:
            if self._session is not None:
                await self._session.close()
                self._session = None
            if chain is not None:
                if self._file_server:
                    await chain.stop_role("hospital")
                    self._file_server = False
                await chain.stop()
        finally:
            await self._cleanup()

    async def _cleanup(self) -> None:
        if self._tmp is not None:
            tmp, self._tmp = self._tmp, None
            await asyncio.to_thread(shutil.rmtree, tmp, True)

    @property
    def chain(self) -> Chain:
        if self._chain is None:
            raise SandboxError("沙箱未启动：请在 async with Sandbox(...) 块内使用")
        return self._chain

    # ---- where things are -------------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        return self.chain.settings

    @property
    def institutions(self) -> tuple[Institution, ...]:
        return self.settings.institutions

    @property
    def urls(self) -> Urls:
        chain, s = self.chain, self.settings
        running = {r: chain.url(r) for r in chain.roles}
        center, province = running.get("center"), running.get("province")
        return Urls(
            hospital=running.get("hospital"), center=center, province=province,
            hop1=(center or s.center_url or "").rstrip("/") + HOP1.path if center or s.center_url else None,
            hop2=province + HOP2.path if province else None,
            files=running.get("hospital"), dicomweb=center + "/dicomweb" if center else None,
            dicom_ae=s.dicom_ae_title, dicom_host=s.host, dicom_port=s.dicom_port if center else None,
            control=next(iter(running.values())) + "/_sandbox/" if running else None)

    # ---- scenarios, faults, settings ---------------------------------------------------------------

    async def load_scenario(self, name_or_path: str | Path) -> str:
        """Apply a library scenario's (or a YAML/TOML file's) settings, seed and faults; its steps are not
        run. `reset()` undoes it. Returns the scenario's name."""
        from sandbox.scenario.library import find

        scenario = find(str(name_or_path))
        await self.chain.reconfigure(**{**scenario.settings, "seed": scenario.seed})
        self.chain.faults.heal()
        self.chain.faults.load(scenario.faults)
        return scenario.name

    async def configure(self, **settings: Any) -> None:
        """Change settings (mode, response_style, retry_* …): every role restarts with them."""
        await self.chain.reconfigure(**settings)

    async def fault(self, spec: Mapping[str, Any] | None = None, **fields: Any) -> str:
        """Add a fault, as a scenario file writes one (`at`, `kind`, …); returns its name for `heal`."""
        from sandbox.faults.model import Fault

        fault = Fault.model_validate({**(spec or {}), **fields})
        self.chain.faults.load([fault])
        return fault.label

    async def heal(self, name: str | None = None) -> list[str]:
        """Remove one fault by name, or all; returns the names removed."""
        return self.chain.faults.heal(name)

    async def reset(self) -> None:
        """Empty every store and the journal, heal every fault, and restore the settings the sandbox
        started with (a scenario's or `configure`'s changes undone)."""
        chain = self.chain
        assert self._base is not None
        back = {k: v for k, v in self._base.model_dump().items() if getattr(chain.settings, k) != v}
        if back:
            await chain.reconfigure(**back)
        await chain.reset()
        self.messages.forget()

    async def wait_until(self, condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
        """Poll `condition` (a function, or a coroutine function) until it returns something truthy, and return
        that; TimeoutError with the last value after `timeout` seconds."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            value = condition()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            if asyncio.get_running_loop().time() >= deadline:
                raise TimeoutError(f"{timeout:g} 秒内条件未满足（最后的值：{value!r}）")
            await asyncio.sleep(interval)

    # ---- sending -----------------------------------------------------------------------------------

    async def post_hop1(self, message: Any) -> dict[str, Any]:
        """POST a message to the center's saveExamRpotImgInfo; its answer (any HTTP status) as a dict."""
        url = self.urls.hop1
        if url is None:
            raise SandboxError("本沙箱没有共享中心（center）：启动时 roles 包含 center，或设置 center_url")
        return await self._post(url, message)

    async def post_hop2(self, message: Any) -> dict[str, Any]:
        """POST a message to the province's saveExamRpotImgIndx; its answer as a dict."""
        url = self.urls.hop2
        if url is None:
            raise SandboxError("本沙箱没有省级模块（province）：启动时 roles 包含 province")
        return await self._post(url, message)

    async def _post(self, url: str, message: Any) -> dict[str, Any]:
        assert self._session is not None
        body = message if isinstance(message, bytes | str) else None
        async with self._session.post(url, json=None if body is not None else message, data=body,
                                      headers={"Content-Type": "application/json"}) as resp:
            answer: dict[str, Any] = await resp.json(content_type=None)
            return answer


def _has(settings: Any, extra: Mapping[str, Any], key: str) -> bool:
    if extra.get(key) is not None:
        return True
    if isinstance(settings, Settings):
        return getattr(settings, key) is not None
    return bool(settings and settings.get(key) is not None)


def _port_taken(exc: SandboxError) -> bool:
    cause = exc.__cause__
    return isinstance(cause, OSError) and cause.errno == errno.EADDRINUSE


# ---- what the roles stored ------------------------------------------------------------------------------


class _View:
    def __init__(self, sb: Sandbox) -> None:
        self._sb = sb

    def _state(self, role: str) -> Any:
        chain = self._sb.chain
        if not chain.running(role):
            raise SandboxError(f"角色 {role} 未在本沙箱中运行")
        return chain.state(role)


class CenterView(_View):
    """What the sharing center stored: the same answers as its status API."""

    async def exam(self, key: str) -> dict[str, Any] | None:
        """An exam by hiImgIndx or examId (answer, files, links, forwarding), or None."""
        from sandbox.center.errors import ExamNotFound

        try:
            view: dict[str, Any] = await self._state("center").exam_status(key)
        except ExamNotFound:
            return None
        return view if view.get("stored") else None

    async def summary(self) -> dict[str, Any]:
        """Counts received, stored, forwarded, held and failed by reason (GET /api/summary)."""
        summary: dict[str, Any] = await self._state("center").summary()
        return summary

    async def requeue(self, *reasons: str) -> int:
        """Send held and failed batches again (POST /api/forward/retry); returns how many."""
        center = self._state("center")
        return int(await (center.requeue(reasons) if reasons else center.requeue()))


class ProvinceView(_View):
    """What the provincial index module stored."""

    async def index(self, hi_img_indx: str) -> dict[str, Any] | None:
        """One stored index (record, links, sender, msgid, time), as GET …/index/{hiImgIndx} gives it, or None."""
        from sandbox.common.envelope import EnvelopeError

        try:
            body: dict[str, Any] = await self._state("province").get_index(hi_img_indx)
        except EnvelopeError:
            return None
        view: dict[str, Any] = body["data"]
        return view

    async def count(self) -> int:
        """How many indexes are stored."""
        return int(await self._state("province").indexes.count())


class JournalView(_View):
    """Every exchange of every hop, as `sandbox journal export` writes it."""

    async def entries(self, hop: int | None = None, *, limit: int = 1000, bodies: bool = True,
                      **filters: Any) -> list[dict[str, Any]]:
        """Entries oldest first, with request and response bodies; filters: hop, outcome, side, transport …"""
        journal = self._sb.chain.journal
        if journal is None:
            raise SandboxError("本沙箱未开启日志（journal=False）")
        if hop is not None:
            filters["hop"] = hop
        return await journal.page(limit=limit, bodies=bodies, **filters)


# ---- messages ---------------------------------------------------------------------------------------------


class Messages:
    """Valid messages built from the synthetic generator (the same as `sandbox send` and the scenarios)."""

    def __init__(self, sb: Sandbox) -> None:
        self._sb = sb
        self._next: dict[str, int] = {}  # institution → next exam number
        self._seq = 0

    def forget(self) -> None:
        self._next.clear()

    def _numbers(self, code: str, count: int) -> int:
        first = self._next.get(code, 0)
        self._next[code] = first + count
        return first

    def _msgid_seq(self) -> int:
        self._seq += 1
        return self._seq

    async def hop1(self, count: int = 3, overrides: Mapping[str, Any] | None = None,
                   hospital: str | None = None) -> dict[str, Any]:
        """A saveExamRpotImgInfo message of `count` new exams of a hospital (the first configured by default),
        whose PDF and DICOM the sandbox's hospital serves (its file server starts now when the hospital role
        was not asked for). `overrides` sets fields of every record (a value None removes the field)."""
        from sandbox.hospital.domain import Hospital
        from sandbox.synth.batching import envelope

        sb = self._sb
        chain = sb.chain
        inst = _hospital(sb.settings, hospital)
        first = self._numbers(inst.code, count)
        if not chain.running("hospital"):  # the hospital's file server, for these exams' PDF and DICOM
            await chain.start_role("hospital")
            sb._file_server = True
        main: Hospital = chain.state("hospital")
        h = main if inst.code == main.institution.code else Hospital(
            sb.settings, main.store, main.session, institution=inst, image_spec=sb._image_spec)
        records = h.records(await h.generate_exams(count, first))
        return envelope([_apply(r, overrides) for r in records], inst, china_now(), self._msgid_seq())

    async def hop2(self, count: int = 3, overrides: Mapping[str, Any] | None = None,
                   hospital: str | None = None) -> dict[str, Any]:
        """A saveExamRpotImgIndx message from the configured center, of `count` new exams, whose links point
        at the sandbox's center (its report page, image page and DICOMweb)."""
        from sandbox.center.domain import hop2_record
        from sandbox.synth.batching import envelope
        from sandbox.synth.exams import BASE_DATE, ExamFactory

        sb = self._sb
        s = sb.settings
        inst = _hospital(s, hospital)
        first = self._numbers(inst.code, count)
        factory = ExamFactory(inst, s.center.uscc, s.seed, index_profile=s.index_profile,
                              base_date=s.exam_base_date or BASE_DATE)
        base = (s.public_base_url or s.url(s.center_port)).rstrip("/")
        records = []
        for exam in factory.exams(count, first):
            links = {"examRpotLinkUrl": f"{base}/report/{exam.exam_id}",
                     "imgInfoLinkUrl": f"{base}/viewer/{exam.exam_id}",
                     "imgDldLink": f"{base}/dicomweb/studies/{exam.study_uid}"}
            records.append(_apply(hop2_record(exam.record(s.url(s.hospital_port)), links, s.center.uscc), overrides))
        return envelope(records, s.center, china_now(), self._msgid_seq(), infno=HOP2.infno)


def _hospital(settings: Settings, code: str | None) -> Institution:
    if code is None:
        if not settings.hospitals:
            raise SandboxError("配置中没有医疗机构（role = hospital）")
        return settings.hospitals[0]
    inst = settings.institution(code)
    if inst is None or inst.role != "hospital":
        known = "、".join(i.code for i in settings.hospitals)
        raise SandboxError(f"医疗机构「{code}」不在配置中（已配置：{known}）")
    return inst


def _apply(record: dict[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    if not overrides:
        return record
    out = dict(record)
    for key, value in overrides.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


# ---- assertions ---------------------------------------------------------------------------------------


def answer_problems(answer: Mapping[str, Any], flags: Iterable[str] = ("1",)) -> list[str]:
    """What is wrong with an answer, in Chinese, one line per problem: an envelope error, or each record
    whose succFlag is not one of `flags`, with its message (which names every field)."""
    allowed = set(flags)
    code = answer.get("code")
    if code not in (0, -1):
        return [f"整批拒收：code {code}，{answer.get('message', '')}"]
    out = []
    for pos, entry in enumerate(answer.get("data") or [], 1):
        flag = str(entry.get("succFlag"))
        if flag not in allowed:
            index = entry.get("hiImgIndx") or entry.get("hiImgIdx") or "（无索引号）"
            out.append(f"第{pos}条 {index}：succFlag {flag}（期望 {'/'.join(sorted(allowed))}）— {entry.get('message', '')}")
    return out


def assert_accepted(answer: Mapping[str, Any], flags: Iterable[str] = ("1",)) -> None:
    """Fail unless the answer's envelope succeeded and every record's succFlag is in `flags` (default: 1);
    the failure text lists each record's Chinese errors."""
    problems = answer_problems(answer, flags)
    if problems:
        raise AnswerError("应答不符合预期：\n  " + "\n  ".join(problems))


def assert_rejected(answer: Mapping[str, Any], field: str | None = None) -> None:
    """Fail unless some record was answered -1 (and, when `field` is given, a -1 message names that field)."""
    entries = [e for e in answer.get("data") or [] if str(e.get("succFlag")) == "-1"]
    if answer.get("code") not in (0, -1) and field is None:
        return  # refused whole
    if not entries:
        raise AnswerError(f"没有记录被拒收（succFlag -1）：{answer}")
    if field is not None and not any(field in str(e.get("message", "")) for e in entries):
        raise AnswerError(f"拒收信息中没有提到字段 {field}：" + "；".join(str(e.get("message")) for e in entries))


def assert_valid(message: Any, hop: int | None = None, mode: str = "strict") -> None:
    """Fail unless `message` passes the document's rules (strict mode by default); the failure text lists
    every problem as `sandbox validate` prints it."""
    from sandbox.validate import validate_message

    report = validate_message(message, hop=hop, mode=mode)
    if not report.valid:
        raise AnswerError("报文不符合接口文档：\n  " + "\n  ".join(p.text() for p in report.errors))


# ---- synchronous use -------------------------------------------------------------------------------------


class SyncSandbox:
    """`Sandbox` for synchronous code: its own event loop in a background thread; every method blocks until
    the result is there. Use as a context manager, or call `start()` and `stop()`."""

    def __init__(self, roles: Iterable[str] | str = ROLES, settings: Settings | Mapping[str, Any] | None = None,
                 **kwargs: Any) -> None:
        self.aio = Sandbox(roles, settings, **kwargs)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.messages = _Sync(self, self.aio.messages)
        self.center = _Sync(self, self.aio.center)
        self.province = _Sync(self, self.aio.province)
        self.journal = _Sync(self, self.aio.journal)

    def __enter__(self) -> SyncSandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if self._thread is not None:
            return
        from sandbox.common.loop import new_loop

        loop = new_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="imgcloud-sandbox", daemon=True)
        self._loop = loop
        self._thread.start()
        ready.wait()
        try:
            self.call(self.aio.start())
        except BaseException:
            self._shutdown()
            raise

    def stop(self) -> None:
        if self._thread is None:
            return
        try:
            self.call(self.aio.stop())
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return

        async def drain() -> None:  # tasks left by the roles (none, normally) end before the loop closes
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await loop.shutdown_asyncgens()
            await loop.shutdown_default_executor()

        asyncio.run_coroutine_threadsafe(drain(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = 120) -> T:
        """Run a coroutine on the sandbox's loop and return its result."""
        if self._loop is None:
            coro.close()
            raise SandboxError("沙箱未启动：请在 with SyncSandbox(...) 块内使用")
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)

    # The async API, one blocking call each.
    @property
    def urls(self) -> Urls:
        return self.aio.urls

    @property
    def settings(self) -> Settings:
        return self.aio.settings

    @property
    def institutions(self) -> tuple[Institution, ...]:
        return self.aio.institutions

    def load_scenario(self, name_or_path: str | Path) -> str:
        return self.call(self.aio.load_scenario(name_or_path))

    def configure(self, **settings: Any) -> None:
        self.call(self.aio.configure(**settings))

    def fault(self, spec: Mapping[str, Any] | None = None, **fields: Any) -> str:
        return self.call(self.aio.fault(spec, **fields))

    def heal(self, name: str | None = None) -> list[str]:
        return self.call(self.aio.heal(name))

    def reset(self) -> None:
        self.call(self.aio.reset())

    def post_hop1(self, message: Any) -> dict[str, Any]:
        return self.call(self.aio.post_hop1(message))

    def post_hop2(self, message: Any) -> dict[str, Any]:
        return self.call(self.aio.post_hop2(message))

    def wait_until(self, condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
        """Poll `condition` in the caller's thread (it may call this sandbox's blocking methods)."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{timeout:g} 秒内条件未满足（最后的值：{value!r}）")
            time.sleep(interval)


class _Sync:
    """A view or builder of the async API whose coroutine methods block on the sandbox's loop."""

    def __init__(self, owner: SyncSandbox, target: Any) -> None:
        self._owner = owner
        self._target = target

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        def blocking(*args: Any, **kwargs: Any) -> Any:
            return self._owner.call(attr(*args, **kwargs))

        blocking.__doc__ = attr.__doc__
        return blocking


__all__ = ["AnswerError", "Sandbox", "SyncSandbox", "Urls", "answer_problems", "assert_accepted",
           "assert_rejected", "assert_valid", "TEST_IMAGES"]
