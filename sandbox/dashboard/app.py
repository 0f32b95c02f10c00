"""The trainer's dashboard application, on its own port (`dashboard_port`, 8703 by default).

It is not a role of the chain: it watches a running Sandbox (its journal, its roles' stores, its control
plane) and drives it (start a library scenario, reset). `DashboardServer` runs it beside the roles, on its
own AppRunner, so the roles keep the document's URL paths to themselves and a role restart (a scenario
step) never interrupts the page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, TextIO

from aiohttp import web

from sandbox.common import csrf
from sandbox.common.guard import GuardedSite, guard_middleware, runner_options
from sandbox.dashboard.domain import Dashboard
from sandbox.dashboard.routes import dashboard_errors, setup_routes, unmasked
from sandbox.spec.messages import DASHBOARD as WORDS
from sandbox.typedefs import DASHBOARD, SANDBOX

if TYPE_CHECKING:
    from sandbox.app import Sandbox

# Open event streams end at shutdown (on_shutdown); this bounds the wait for anything else in flight.
SHUTDOWN_TIMEOUT_S = 1.0


def create_app(sandbox: Sandbox) -> web.Application:
    """The dashboard of a Sandbox (started or about to be)."""
    app = web.Application(middlewares=[guard_middleware(sandbox.settings.request_timeout_s), dashboard_errors])
    app[SANDBOX] = sandbox

    async def dashboard(app: web.Application) -> AsyncIterator[None]:
        dash = Dashboard(sandbox)
        app[DASHBOARD] = dash
        await dash.start()
        yield
        await dash.close()

    async def end_streams(app: web.Application) -> None:
        await app[DASHBOARD].close()

    app.cleanup_ctx.append(dashboard)
    app.on_shutdown.append(end_streams)
    setup_routes(app)
    csrf.install(app, sandbox.settings, sensitive=unmasked)
    return app


class DashboardServer:
    """The dashboard listening on settings.host:dashboard_port (or the port given)."""

    def __init__(self, sandbox: Sandbox, port: int | None = None) -> None:
        self.sandbox = sandbox
        self.port = sandbox.settings.dashboard_port if port is None else port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return self.sandbox.settings.url(self.port) + "/"

    @property
    def app(self) -> web.Application:
        assert self._runner is not None
        return self._runner.app

    async def start(self) -> str:
        """Listen; returns the page's URL. Raises SandboxError (Chinese) when the port is taken."""
        from sandbox.app import SandboxError

        settings = self.sandbox.settings
        runner = web.AppRunner(create_app(self.sandbox), access_log=None, handle_signals=False,
                               shutdown_timeout=SHUTDOWN_TIMEOUT_S, **runner_options(settings.request_timeout_s))
        await runner.setup()
        try:
            await GuardedSite(runner, settings.host, self.port, limit=settings.max_connections_per_client,
                              reuse_address=True).start()
        except OSError as exc:
            await runner.cleanup()
            raise SandboxError(WORDS["port_taken"].format(host=self.sandbox.settings.host, port=self.port,
                                                          error=exc.strerror)) from exc
        self._runner = runner
        return self.url

    @classmethod
    async def beside(cls, sandbox: Sandbox, out: TextIO) -> DashboardServer | None:
        """Start the dashboard for `sandbox serve`; a port that is taken costs the dashboard, not the chain."""
        from sandbox.app import SandboxError

        server = cls(sandbox)
        try:
            await server.start()
        except SandboxError as exc:
            print(WORDS["not_started"].format(reason=exc), file=out, flush=True)
            return None
        return server

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
