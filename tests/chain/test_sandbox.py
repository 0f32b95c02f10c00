"""Composing roles: any subset, the others external; restarts keep the data; wrong wiring is explained."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from sandbox.app import Sandbox, SandboxError
from sandbox.config import Settings
from sandbox.scenario.driver import Driver
from sandbox.scenario.model import SendStep
from tests.chain.conftest import StartSandbox


async def wait_for(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():  # type: ignore[misc]
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.02)


async def test_hospital_and_center_here_forward_to_an_external_province(
        start_sandbox: StartSandbox, make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    province = await start_sandbox(("province",), data_dir=tmp_path / "province")
    settings = make_settings(data_dir=tmp_path / "chain", province_url=province.url("province"))
    chain = await start_sandbox(("hospital", "center"), settings=settings)
    assert chain.roles == ("hospital", "center")
    assert chain.url("province") == province.url("province")

    await Driver(chain).send(SendStep(count=3))

    async def indexed() -> bool:
        return bool(await province.state("province").indexes.count() == 3)

    await wait_for(indexed)
    here, there = chain.journal, province.journal
    assert here is not None and there is not None

    async def recorded() -> bool:
        return bool(await here.count(hop=2) == 1)

    await wait_for(recorded)
    (sent,) = await here.page(hop=2)
    assert sent["side"] == "client" and sent["extra"] == {"external": True} and sent["outcome"] == "ok"
    (received,) = await there.page(hop=2)
    assert received["side"] == "server" and received["msgid"] == sent["msgid"]


async def test_restarting_a_role_keeps_what_it_stored(start_sandbox: StartSandbox) -> None:
    sb = await start_sandbox()
    await Driver(sb).send(SendStep(count=2))
    before = (await sb.state("center").summary())["stored"]
    await sb.restart("center")
    assert sb.running("center")
    assert (await sb.state("center").summary())["stored"] == before == 2


def test_a_sender_without_its_peer_needs_a_url(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(SandboxError, match="--center-url"):
        Sandbox(make_settings(), ("hospital",))
    with pytest.raises(SandboxError, match="--province-url"):
        Sandbox(make_settings(), ("center",))
    with pytest.raises(SandboxError, match="未知的角色"):
        Sandbox(make_settings(), ("pharmacy",))


async def test_a_port_in_use_is_named(make_settings: Callable[..., Settings]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        sb = Sandbox(make_settings(province_port=port), ("province",))
        with pytest.raises(SandboxError, match=f"医保影像云索引共享模块无法监听 127.0.0.1:{port}"):
            await sb.start()
