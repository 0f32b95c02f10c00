"""The hospital role's aiohttp application: file server for its exams, and the sender's resources."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from sandbox.common import csrf
from sandbox.common.guard import guard_middleware
from sandbox.common.http import error_middleware
from sandbox.config import Settings
from sandbox.hospital import routes
from sandbox.hospital.domain import Hospital
from sandbox.hospital.store import HospitalStore
from sandbox.typedefs import HOSPITAL, HTTP_CLIENT, SETTINGS


def create_app(settings: Settings, **hospital_options: Any) -> web.Application:
    """The hospital app. `hospital_options` go to `Hospital` (institution, seed, base_url, image_spec …)."""
    app = web.Application(client_max_size=settings.max_body_bytes,
                          middlewares=[guard_middleware(settings.request_timeout_s), error_middleware,
                                       routes.hospital_errors])
    app[SETTINGS] = settings

    async def resources(app: web.Application) -> AsyncIterator[None]:
        store = HospitalStore(settings.data_dir / "hospital" / "hospital.db", settings.db_synchronous)
        await store.open()
        session = aiohttp.ClientSession()
        app[HTTP_CLIENT] = session
        app[HOSPITAL] = Hospital(settings, store, session, **hospital_options)
        try:
            yield
        finally:
            await session.close()
            await store.close()

    app.cleanup_ctx.append(resources)
    routes.setup(app)
    csrf.install(app, settings)
    return app
