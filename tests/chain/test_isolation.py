"""A scenario's settings and faults end with it, and the demo never meets them (ControlPlane)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from sandbox.app import Sandbox
from sandbox.control.domain import ControlPlane
from tests.chain.conftest import StartSandbox
from tests.chain.test_control import call

RUN_TIMEOUT_S = 120.0


async def finished(sb: Sandbox) -> dict[str, Any]:
    """The background run's result once it is over (polling, generous deadline)."""
    deadline = asyncio.get_running_loop().time() + RUN_TIMEOUT_S
    while True:
        try:
            _, body = await call(sb, "GET", "/")
        except aiohttp.ClientConnectionError:  # a role restarting with the restored settings
            await asyncio.sleep(0.1)
            continue
        run = body["data"]["run"]
        if run is not None and run["state"] != "running" and not body["data"]["scenarioActive"]:
            return body["data"]
        assert asyncio.get_running_loop().time() < deadline, run
        await asyncio.sleep(0.1)


async def test_strict_mode_of_a_scenario_ends_with_it_and_every_reset_restores_the_base(
        start_sandbox: StartSandbox) -> None:
    sb = await start_sandbox()
    _, body = await call(sb, "GET", "/")
    assert body["data"]["base"]["mode"] == "lenient" and body["data"]["overrides"] == {}

    # errata-lenient-strict switches to strict mode half-way; when its run ends the sandbox is lenient again
    status, body = await call(sb, "POST", "/scenario", body={"name": "errata-lenient-strict", "run": True})
    assert status == 200
    state = await finished(sb)
    assert state["run"]["state"] == "passed", state["run"]
    assert state["settings"]["mode"] == "lenient" and state["overrides"] == {}
    assert state["settings"]["seed"] == state["base"]["seed"] == sb.control.base["seed"]
    assert state["faults"] == []

    # loaded (not run): its settings and faults stay in force, shown apart from the base, until a reset
    await call(sb, "POST", "/scenario", body={"name": "slow-province"})
    await sb.control.settled()
    _, body = await call(sb, "GET", "/")
    assert body["data"]["overrides"] == {"send_timeout_s": 1.0, "seed": 1212}
    assert body["data"]["base"]["send_timeout_s"] == 2.0 and body["data"]["demoPaused"] is True
    assert [f["name"] for f in body["data"]["faults"]] == ["省级慢应答"]
    # loading another scenario starts from the base, not from the previous scenario's settings
    await sb.reconfigure(mode="strict")  # as a scenario's `configure` step does
    await call(sb, "POST", "/scenario", body={"name": "province-outage"})
    await sb.control.settled()
    _, body = await call(sb, "GET", "/")
    assert body["data"]["settings"]["mode"] == "lenient"
    assert body["data"]["overrides"] == {"retry_max_attempts": 30, "retry_cap_s": 0.2, "seed": 1111}

    await sb.reconfigure(mode="strict")
    status, body = await call(sb, "POST", "/reset", "center", body={})
    assert status == 200
    await sb.control.settled()
    _, body = await call(sb, "GET", "/")
    assert body["data"]["overrides"] == {} and body["data"]["faults"] == []
    assert body["data"]["settings"]["mode"] == "lenient" and body["data"]["scenarioActive"] is False
    assert sb.state("center").settings.mode == "lenient"  # the roles run with the base settings again


async def test_the_demo_pauses_during_a_scenario_and_never_shares_its_patients(start_sandbox: StartSandbox) -> None:
    sb = await start_sandbox()
    control = sb.control = ControlPlane(sb)
    assert await control.demo(3) is not None
    demo_first = {i for (_, _), i in control.demo_driver.indexes.items()}

    await control.load_scenario("happy-path", run=True)
    assert await control.demo(3) is None  # paused while the scenario is active
    state = await finished(sb)
    assert state["run"]["state"] == "passed", state["run"]
    scenario_indexes = set(control.driver.indexes.values())
    assert len(scenario_indexes) == 20

    # resumed: new exams of the demo's own stream, never a scenario's patient or index
    assert await control.demo(3) is not None
    demo = set(control.demo_driver.indexes.values())
    assert len(demo) == 6 and demo_first < demo
    certnos = {i.split("-")[1] for i in scenario_indexes}
    assert not demo & scenario_indexes and not {i.split("-")[1] for i in demo} & certnos
    # the same seed again after a reset: the demo still sends new exams, not exam 0 again
    await control.reset()
    assert await control.demo(3) is not None
    assert len(set(control.demo_driver.indexes.values())) == 9
