"""The whole chain in one process: any subset of the three roles, each on its own port.

Each role's application comes from its own `create_app(settings)` and runs on its own `AppRunner` and
`TCPSite`, so each keeps the document's exact URL path on its own port. The sandbox adds, without any
change to role code: the shared journal and fault injector (AppKeys JOURNAL and FAULTS, two middlewares
in front of the role's own), the control API under `/_sandbox/`, and — once the role has started — the
journal's observer on the role's sender.

A role not started here is an external component: `center_url` / `province_url` point the senders at it.
"""

from __future__ import annotations

import asyncio
import importlib
import secrets
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from sandbox.common.csrf import is_loopback
from sandbox.common.guard import GuardedSite, runner_options
from sandbox.common.storage import check_writable, storage_problem
from sandbox.config import Settings
from sandbox.faults.injector import FaultInjector
from sandbox.faults.middleware import fault_middleware
from sandbox.journal.middleware import journal_middleware
from sandbox.journal.store import Journal
from sandbox.spec.messages import RECEIVER
from sandbox.typedefs import CENTER, FAULTS, HOSPITAL, JOURNAL, PROVINCE, SANDBOX

ROLES = ("hospital", "center", "province")
ROLE_TITLES = {"hospital": "医疗机构及检查检验机构", "center": "地方影像云数据共享中心",
               "province": "医保影像云索引共享模块"}
STATE_KEYS: dict[str, web.AppKey[Any]] = {"hospital": HOSPITAL, "center": CENTER, "province": PROVINCE}
JOURNAL_FILE = "journal.db"
# Stopping a role waits this long for requests in flight before closing their connections.
SHUTDOWN_TIMEOUT_S = 5.0
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0", "::"})


class SandboxError(Exception):
    """A configuration the sandbox cannot run; the text is Chinese and names the fix."""


def wire_settings(settings: Settings, roles: Iterable[str]) -> Settings:
    """Point each sender at the emulated peer when it runs here; require a URL when it does not."""
    roles = set(roles)
    updates: dict[str, str] = {}
    if settings.center_url is None:
        if "center" in roles:
            updates["center_url"] = settings.url(settings.center_port)
        elif "hospital" in roles:
            raise SandboxError("未在本进程启动共享中心（center），请用 --center-url 指定医疗机构发送的地址")
    if settings.province_url is None:
        if "province" in roles:
            updates["province_url"] = settings.url(settings.province_port)
        elif "center" in roles:
            raise SandboxError("未在本进程启动省级索引共享模块（province），请用 --province-url 指定共享中心转发的地址")
    return with_updates(settings, **updates) if updates else settings


def remote_settings(settings: Settings) -> Settings:
    """Refuse a non-loopback listening address without allow_remote; with it, make sure a control token is
    set (a new random one, not from the seed: it must not be guessable)."""
    if is_loopback(settings.host):
        return settings
    if not settings.allow_remote:
        raise SandboxError(f"监听地址 {settings.host} 不是本机回环地址：同一网络中的任何人都能访问沙箱的控制接口与数据。"
                           "确需如此请加 --allow-remote（将启用控制令牌）")
    if settings.control_token:
        return settings
    return with_updates(settings, control_token=secrets.token_urlsafe(24))


def with_updates(settings: Settings, **updates: Any) -> Settings:
    """A copy of the settings with some values changed, validated like the originals (model_copy is not)."""
    return Settings.model_validate({**settings.model_dump(), **updates})


def role_factory(role: str) -> Callable[..., web.Application]:
    """The role's `create_app`, imported when first needed (keeps `sandbox serve` quick to listen)."""
    module = importlib.import_module(f"sandbox.{role}.app")
    factory: Callable[..., web.Application] = module.create_app
    return factory


class Sandbox:
    """Any subset of the roles, the journal and the fault injector they share."""

    def __init__(self, settings: Settings, roles: Iterable[str] = ROLES, *, journal: bool = True,
                 hospital_options: dict[str, Any] | None = None,
                 shutdown_timeout: float = SHUTDOWN_TIMEOUT_S) -> None:
        wanted = set(roles)
        unknown = wanted - set(ROLES)
        if unknown:
            raise SandboxError(f"未知的角色：{'、'.join(sorted(unknown))}；可选：{'、'.join(ROLES)}")
        self.roles = tuple(r for r in ROLES if r in wanted)
        self.settings = wire_settings(remote_settings(settings), self.roles)
        self.journal: Journal | None = (Journal(self.settings.data_dir / JOURNAL_FILE, self.settings.db_synchronous)
                                        if journal else None)
        self.faults = FaultInjector(self.settings.seed)
        self.hospital_options = dict(hospital_options or {})
        self.shutdown_timeout = shutdown_timeout
        self.scenario: Any = None  # the scenario loaded through the control API (sandbox.scenario.model)
        self.control: Any = None  # the control plane (sandbox.control.domain), made by its first request
        self._runners: dict[str, web.AppRunner] = {}
        self._lock = asyncio.Lock()
        # The control plane and the dashboard answer 503 until every role has started (and serve's own
        # start-up work is done), and again once stopping has begun.
        self.ready = False
        self.stopping = False
        if self.journal is not None:
            self.journal.is_local = self.is_local

    # ---- where things are ------------------------------------------------------------------------

    def port(self, role: str) -> int:
        port: int = getattr(self.settings, f"{role}_port")
        return port

    def url(self, role: str) -> str:
        """The base URL of a role: its port here, or the external URL configured for it."""
        if role in self.roles:
            return self.settings.url(self.port(role))
        external = {"center": self.settings.center_url, "province": self.settings.province_url}.get(role)
        return external or self.settings.url(self.port(role))

    @property
    def urls(self) -> dict[str, str]:
        return {role: self.url(role) for role in self.roles}

    def is_local(self, url: str) -> bool:
        """Whether a URL is served by a role of this sandbox (running or stopped for a restart)."""
        parts = urlsplit(url)
        if parts.port is None or (parts.hostname or "") not in LOOPBACK | {self.settings.host}:
            return False
        return any(parts.port == self.port(r) for r in self.roles)

    def running(self, role: str) -> bool:
        return role in self._runners

    def app(self, role: str) -> web.Application:
        runner = self._runners.get(role)
        if runner is None:
            raise SandboxError(f"角色 {role} 未运行")
        return runner.app

    def state(self, role: str) -> Any:
        """The role's state object (Hospital, Center, Province)."""
        return self.app(role)[STATE_KEYS[role]]

    # ---- life cycle ------------------------------------------------------------------------------

    async def start(self, *, ready: bool = True) -> None:
        """Open the journal and start every role, all at once (a sender retries until its peer listens).

        An unwritable data folder (read-only, full, no permission) is a SandboxError naming it. `ready=False`
        leaves the control plane answering 503 until the caller sets `ready` (serve's own start-up work)."""
        data = self.settings.data_dir
        try:
            await asyncio.to_thread(check_writable, data)
            if self.journal is not None:
                await self.journal.open()
        except Exception as exc:
            if self.journal is not None:
                await self.journal.close()
            raise self._unwritable(exc) from exc
        results = await asyncio.gather(*(self.start_role(r) for r in self.roles), return_exceptions=True)
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if failure is not None:
            await self.stop()
            raise self._unwritable(failure) from failure
        self.ready = ready

    def _unwritable(self, exc: BaseException) -> BaseException:
        """A storage failure as one Chinese line naming the data folder; any other error as it is."""
        problem = storage_problem(exc)
        if problem is None:
            return exc
        return SandboxError(RECEIVER["unwritable"].format(path=self.settings.data_dir, error=problem))

    async def stop(self) -> None:
        """Stop the senders first (hospital, then center), then the province; then close the journal.

        Each role's cleanup persists its in-flight work: the center's outbox lives in its database, a batch
        being sent keeps its msgid and attempt count and is resent unchanged after a restart.
        """
        self.ready = False
        self.stopping = True
        if self.control is not None:
            await self.control.close()
        for role in self.roles:
            if role in self._runners:
                await self.stop_role(role)
        if self.journal is not None:
            await self.journal.close()

    async def start_role(self, role: str) -> None:
        if role in self._runners:
            return
        app = self._build(role)
        s = self.settings
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=self.shutdown_timeout,
                               **runner_options(s.request_timeout_s))
        await runner.setup()
        try:
            site = GuardedSite(runner, s.host, self.port(role), limit=s.max_connections_per_client,
                               reuse_address=True)
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise SandboxError(f"{ROLE_TITLES[role]}无法监听 {self.settings.host}:{self.port(role)}：{exc.strerror}"
                               "（端口被占用？可用 --{role}-port 换一个）".replace("{role}", role)) from exc
        self._runners[role] = runner

    async def stop_role(self, role: str) -> None:
        runner = self._runners.pop(role, None)
        if runner is not None:
            await runner.cleanup()

    async def restart(self, role: str) -> None:
        """Stop a role (persisting its in-flight work) and start it again on the same port and data."""
        async with self._lock:
            await self.stop_role(role)
            await self.start_role(role)

    async def reconfigure(self, *, keep: str | None = None, **updates: Any) -> bool:
        """New settings (seed, mode, response style …) for every role: each is restarted with them.

        `keep` is a role not to restart now (the control API restarts the role that answered it after the
        answer is sent). Returns False when nothing changed (no restart).
        """
        async with self._lock:
            changed = {k: v for k, v in updates.items() if getattr(self.settings, k) != v}
            if not changed:
                return False
            self.settings = wire_settings(with_updates(self.settings, **changed), self.roles)
            if "seed" in changed:
                self.faults.seed = self.settings.seed
            running = [r for r in self.roles if r in self._runners and r != keep]
            for role in running:
                await self.stop_role(role)
            for role in reversed(running):
                await self.start_role(role)
            return True

    async def reset(self) -> None:
        """Empty every store and the journal, and heal every fault (the control plane's reset)."""
        self.faults.reset()
        for role in self.roles:
            if role not in self._runners:
                continue
            state = self.state(role)
            if role == "hospital":
                await state.store.reset()
            elif role == "center":
                await state.reset()
            else:
                await state.indexes.reset()
        if self.journal is not None:
            await self.journal.reset()

    # ---- wiring one role -------------------------------------------------------------------------

    def _build(self, role: str) -> web.Application:
        factory = role_factory(role)
        app = factory(self.settings, **self.hospital_options) if role == "hospital" else factory(self.settings)
        app[FAULTS] = self.faults
        app[SANDBOX] = self
        app.middlewares.insert(0, fault_middleware(self.faults, role))
        if self.journal is not None:
            app[JOURNAL] = self.journal
            app.middlewares.insert(0, journal_middleware(self.journal, role))
        app.cleanup_ctx.append(self._attach(role))
        # Imported here: the control plane drives scenarios, and the scenario runner builds Sandboxes.
        from sandbox.control.routes import setup_routes

        setup_routes(app)
        return app

    def _attach(self, role: str) -> Callable[[web.Application], AsyncIterator[None]]:
        """After the role's own start-up: hand the journal's observer to its sender."""

        async def attach(app: web.Application) -> AsyncIterator[None]:
            if self.journal is not None and role == "center":
                observers: list[Any] = app[CENTER].observers
                observers.append(self.journal.observer("center"))
            yield

        return attach

    def sender_observer(self, role: str) -> Any:
        """The journal's observer for a sending role (the hospital passes it to `Hospital.send`)."""
        return self.journal.observer(role) if self.journal is not None else None
