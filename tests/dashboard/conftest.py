"""The dashboard beside a whole chain in this process (tiny images, quick retries, the scenario clock)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from sandbox.app import Sandbox
from sandbox.common.ports import free_port
from sandbox.config import Settings
from sandbox.control.domain import ControlPlane
from sandbox.dashboard.app import create_app
from sandbox.scenario.runner import RUNNER_DEFAULTS, hospital_options
from sandbox.synth.dicom import ImageSpec

# Debian's chromium; Playwright drives it (no browser download). `make test` installs it (scripts/sysdeps.sh).
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SKIPPED: list[str] = []


def chromium_missing() -> str | None:
    """Why browser tests cannot run here, or None."""
    if not Path(CHROMIUM).exists():
        return f"没有 Chromium（{CHROMIUM}）：浏览器测试跳过；在 Debian 上 `make test` 会用 apt-get 安装 chromium"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "没有安装 Playwright（pip install -e '.[dev]'）：浏览器测试跳过"
    return None


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for reason in SKIPPED:
        terminalreporter.write_line(f"dashboard: {reason}")


def chain_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir, "hospital_port": free_port(), "center_port": free_port(), "province_port": free_port(),
        "dicom_port": free_port(), "dashboard_port": free_port(), **RUNNER_DEFAULTS,
    }
    values.update(overrides)
    return Settings(**values)


async def start_chain(data_dir: Path, *, images: ImageSpec | None = None, **overrides: Any) -> Sandbox:
    options = hospital_options()
    if images is not None:
        options["image_spec"] = images
    sandbox = Sandbox(chain_settings(data_dir, **overrides), hospital_options=options, shutdown_timeout=1.0)
    await sandbox.start()
    sandbox.control = ControlPlane(sandbox)
    return sandbox


async def run_scenario_here(sandbox: Sandbox, name: str, *, reset: bool = False) -> dict[str, Any]:
    """Run a library scenario through the control plane (as the dashboard does) and wait for its end."""
    control: ControlPlane = sandbox.control
    await control.load_scenario(name, run=True, reset=reset)
    assert control.task is not None
    await asyncio.wait_for(control.task, 60)
    assert control.run is not None
    return control.run


@pytest.fixture
async def chain(tmp_path: Path) -> AsyncIterator[Sandbox]:
    sandbox = await start_chain(tmp_path / "data")
    try:
        yield sandbox
    finally:
        await sandbox.stop()


@pytest.fixture
async def dash(chain: Sandbox, aiohttp_client: Any) -> TestClient[Any, Any]:
    """The dashboard's application under aiohttp's test client, watching `chain`."""
    client: TestClient[Any, Any] = await aiohttp_client(create_app(chain))
    return client
