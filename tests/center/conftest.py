"""Fixtures of the center's tests: settings with fast retries, a file server, the center app on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from sandbox.center import create_app
from sandbox.config import Settings
from tests.center.helpers import FileServer


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(retry_base_s=0.01, retry_cap_s=0.05, send_timeout_s=2.0, fetch_timeout_s=2.0)


@pytest.fixture
async def files() -> AsyncIterator[FileServer]:
    server = await FileServer().start()
    yield server
    await server.close()


@pytest.fixture
async def center(aiohttp_client: Any, settings: Settings) -> TestClient:
    """The center on a real loopback socket, on settings.center_port so that its links point at itself."""
    return await aiohttp_client(create_app(settings), server_kwargs={"port": settings.center_port})
