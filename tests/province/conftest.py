"""The province under aiohttp's test client."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from sandbox.config import Settings
from sandbox.province import create_app

ProvinceClient = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def province(aiohttp_client: Any, make_settings: Callable[..., Settings]) -> ProvinceClient:
    """Start a province; keyword arguments override settings (the same settings twice = same data folder)."""

    async def start(settings: Settings | None = None, **overrides: Any) -> TestClient[Any, Any]:
        return await aiohttp_client(create_app(settings or make_settings(**overrides)))

    return start


@pytest.fixture
async def client(province: ProvinceClient, settings: Settings) -> TestClient[Any, Any]:
    return await province(settings)
