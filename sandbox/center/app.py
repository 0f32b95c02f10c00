"""The center role's application: `create_app(settings)`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import suppress
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from sandbox.center.dicomindex import QueryIndex
from sandbox.center.dicomport import DicomPort
from sandbox.center.domain import DB_FILE, FILES_DIR, Center
from sandbox.center.forwarder import Forwarder
from sandbox.center.routes import setup_routes
from sandbox.center.store import CenterStore
from sandbox.common import csrf
from sandbox.common.guard import guard_middleware
from sandbox.common.http import error_middleware
from sandbox.config import Settings
from sandbox.spec.fields import HOP2
from sandbox.typedefs import CENTER, DICOM_INDEX, HTTP_CLIENT, SETTINGS


async def _center(app: web.Application) -> AsyncIterator[None]:
    """The store, the file folders and the file workers, for the application's lifetime."""
    settings = app[SETTINGS]
    root = settings.data_dir / FILES_DIR
    store = CenterStore(settings.data_dir / DB_FILE, settings.db_synchronous)
    await store.open()
    try:
        center = Center(settings, store, root)
        try:
            await asyncio.to_thread(center.open)  # fails on a read-only or full disk: close what is open
            await center.remove_orphans()
            app[CENTER] = center
            yield
        finally:
            await center.files.close()
    finally:
        await store.close()


async def _query_index(app: web.Application) -> AsyncIterator[None]:
    """The query records of QIDO-RS and C-FIND (a side table of the center's database)."""
    index = QueryIndex(app[CENTER])
    await index.open()
    app[DICOM_INDEX] = index
    yield


async def _http_client(app: web.Application) -> AsyncIterator[None]:
    """The session hop-2 messages are POSTed with."""
    session = aiohttp.ClientSession()
    app[HTTP_CLIENT] = session
    yield
    await session.close()


async def _storage_scp(app: web.Application) -> AsyncIterator[None]:
    """The DICOM SCP on settings.dicom_port: listening now, serving once its thread has built it."""
    port = DicomPort(app[CENTER], asyncio.get_running_loop(), app[DICOM_INDEX])
    port.open()
    yield
    # Shut down in a thread: a C-STORE handler may be waiting for this loop to commit its row.
    await asyncio.to_thread(port.close)


async def _forwarder(app: web.Application) -> AsyncIterator[None]:
    """The background task delivering the outbox to the province."""
    settings = app[SETTINGS]
    url = province_endpoint(settings)
    center = app[CENTER]
    forwarder = Forwarder(center, app[HTTP_CLIENT], url=url, observers=center.observers)
    task = asyncio.create_task(forwarder.run(), name="center-forwarder")
    yield
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task


def province_endpoint(settings: Settings) -> str:
    """Where hop 2 is POSTed: settings.province_url as given when it has a path, else the document's path on it
    (or on the emulated province)."""
    url = settings.province_url or settings.url(settings.province_port)
    if urlsplit(url).path in ("", "/"):
        url = url.rstrip("/") + HOP2.path
    return url


def create_app(settings: Settings) -> web.Application:
    """The 地方影像云数据共享中心 emulator, served on settings.center_port."""
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[guard_middleware(settings.request_timeout_s), error_middleware])
    app[SETTINGS] = settings
    app.cleanup_ctx.extend([_center, _query_index, _http_client, _storage_scp, _forwarder])
    setup_routes(app)
    csrf.install(app, settings)
    return app
