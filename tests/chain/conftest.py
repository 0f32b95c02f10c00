"""A sandbox of chosen roles on free loopback ports and a temporary data folder."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from sandbox.app import Sandbox
from sandbox.config import Settings
from sandbox.scenario.runner import hospital_options

StartSandbox = Callable[..., Awaitable[Sandbox]]


@pytest.fixture
async def start_sandbox(make_settings: Callable[..., Settings]) -> AsyncIterator[StartSandbox]:
    """Start a Sandbox: `await start_sandbox(roles, **settings overrides)`; stopped after the test."""
    started: list[Sandbox] = []

    async def start(roles: tuple[str, ...] = ("hospital", "center", "province"), settings: Settings | None = None,
                    **overrides: Any) -> Sandbox:
        values: dict[str, Any] = {"retry_base_s": 0.01, "retry_cap_s": 0.05, "send_timeout_s": 2.0}
        values.update(overrides)
        sandbox = Sandbox(settings or make_settings(**values), roles, hospital_options=hospital_options(),
                          shutdown_timeout=1.0)
        await sandbox.start()
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in reversed(started):
        await sandbox.stop()
