"""The pytest plugin `imgcloud`: the sandbox as fixtures in an integrator's own test suite.

Installed with the package (entry point `pytest11`), nothing to configure:

    def test_my_his_uploads(imgcloud):
        message = imgcloud.messages.hop1(count=3)
        answer = my_his.upload(imgcloud.urls.hop1, message)
        assert_accepted(answer)

Fixtures (each a `sandbox.api.SyncSandbox`: blocking methods, its own event loop in a background thread, so
they work in plain, pytest-asyncio auto-mode and strict-mode tests alike):

- `imgcloud` — hospital, center and province, new for each test;
- `imgcloud_session` — the same, started once per session (per xdist worker) and reset before each test;
- `imgcloud_center` — the center alone (your HIS's counterpart; its forwarding waits in the outbox);
- `imgcloud_province` — the province alone (your sharing center's counterpart).

`@pytest.mark.imgcloud_scenario("province-partial-failure")` loads a library scenario's settings and faults
(not its steps) into the fixture for that test. The ini option `imgcloud_config` names a TOML settings file
(institutions, keys, mode …) for every fixture; ports and data folders are chosen per sandbox.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from sandbox.api import SyncSandbox

MARKER = "imgcloud_scenario"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("imgcloud_config", "医保影像云沙箱 fixtures 的 TOML 配置文件（机构、密钥、模式等） / "
                                     "TOML settings file for the imgcloud fixtures", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(name): 为本测试加载场景库中场景的配置与故障 / load a library scenario's settings and "
                   "faults into the imgcloud fixture for this test")


def _settings(config: pytest.Config) -> Any:
    path = config.getini("imgcloud_config")
    if not path:
        return None
    from sandbox.config import load_settings

    return load_settings(Path(config.rootpath) / path)


def _scenario(request: pytest.FixtureRequest) -> str | None:
    marker = request.node.get_closest_marker(MARKER)
    if marker is None:
        return None
    name = marker.args[0] if marker.args else marker.kwargs.get("name")
    if not isinstance(name, str) or not name:
        raise pytest.UsageError(f"@pytest.mark.{MARKER} 需要场景名称，如 @pytest.mark.{MARKER}(\"happy-path\")")
    return name


def _sandbox(request: pytest.FixtureRequest, roles: tuple[str, ...]) -> Iterator[SyncSandbox]:
    from sandbox.api import SyncSandbox

    with SyncSandbox(roles, _settings(request.config)) as sb:
        _load_marked(request, sb)
        yield sb


def _load_marked(request: pytest.FixtureRequest, sb: SyncSandbox) -> None:
    """Load the scenario the test's imgcloud_scenario marker names, if any."""
    name = _scenario(request)
    if name is not None:
        sb.load_scenario(name)


@pytest.fixture
def imgcloud(request: pytest.FixtureRequest) -> Iterator[SyncSandbox]:
    """The whole chain (hospital, center, province), for this test only."""
    yield from _sandbox(request, ("hospital", "center", "province"))


@pytest.fixture(scope="session")
def _imgcloud_session_chain(request: pytest.FixtureRequest) -> Iterator[SyncSandbox]:
    yield from _sandbox(request, ("hospital", "center", "province"))


@pytest.fixture
def imgcloud_session(request: pytest.FixtureRequest, _imgcloud_session_chain: SyncSandbox) -> Iterator[SyncSandbox]:
    """The whole chain, started once per session and reset (stores, journal, faults, settings) before each
    test."""
    sb = _imgcloud_session_chain
    sb.reset()
    _load_marked(request, sb)
    yield sb


@pytest.fixture
def imgcloud_center(request: pytest.FixtureRequest) -> Iterator[SyncSandbox]:
    """The regional sharing center alone: the counterpart of a HIS or PACS under test."""
    yield from _sandbox(request, ("center",))


@pytest.fixture
def imgcloud_province(request: pytest.FixtureRequest) -> Iterator[SyncSandbox]:
    """The provincial index module alone: the counterpart of a sharing center under test."""
    yield from _sandbox(request, ("province",))
