"""The province role's application: `create_app(settings)`."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from sandbox.common import csrf
from sandbox.common.guard import guard_middleware
from sandbox.common.http import error_middleware
from sandbox.config import Settings
from sandbox.province.domain import Province
from sandbox.province.routes import setup_routes
from sandbox.province.store import IndexStore
from sandbox.typedefs import PROVINCE, SETTINGS

DB_FILE = "province.db"


async def _province(app: web.Application) -> AsyncIterator[None]:
    """Open the index store for the application's lifetime."""
    settings = app[SETTINGS]
    store = IndexStore(settings.data_dir / DB_FILE, settings.db_synchronous)
    await store.open()
    app[PROVINCE] = Province(settings, store)
    yield
    await store.close()


def create_app(settings: Settings) -> web.Application:
    """The 医保影像云索引共享模块 emulator, served on settings.province_port."""
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[guard_middleware(settings.request_timeout_s), error_middleware])
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_province)
    setup_routes(app)
    csrf.install(app, settings)
    return app
