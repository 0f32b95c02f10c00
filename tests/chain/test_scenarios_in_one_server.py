"""Every library scenario, run twice in a row through the control plane of ONE sandbox, gives the same
verdict and the same observed values: nothing a scenario changed (settings, faults, data) outlives it."""

from __future__ import annotations

from typing import Any

from sandbox.control.domain import ControlPlane
from sandbox.scenario import library
from sandbox.scenario.runner import RUNNER_DEFAULTS
from tests.chain.conftest import StartSandbox

RUN_TIMEOUT_S = 120.0


async def run_once(control: ControlPlane, name: str) -> dict[str, Any]:
    await control.load_scenario(name, run=True)
    assert control.task is not None
    await control.task  # the background run, its verdict published once the base settings are back
    assert control.run is not None and control.active is None
    return control.run


async def test_each_library_scenario_twice_in_one_server_gives_the_same_verdict_and_counts(
        start_sandbox: StartSandbox) -> None:
    sb = await start_sandbox(**RUNNER_DEFAULTS)
    control = sb.control = ControlPlane(sb)
    base = dict(control.base)
    for scenario in library.load_all():
        first = await run_once(control, scenario.name)
        second = await run_once(control, scenario.name)
        assert first["state"] == "passed", first
        assert second["state"] == "passed", second
        # the counts an expectation pins (equals / contains) are equal; a bound (at least / at most, e.g. the
        # attempts made during an outage, which depend on the clock) holds both times
        pinned = [c.at_least is None and c.at_most is None for c in scenario.expect]
        assert [(e["expectation"], e["observed"] if p else None) for e, p in zip(second["expectations"], pinned,
                                                                                   strict=True)] == [
            (e["expectation"], e["observed"] if p else None) for e, p in zip(first["expectations"], pinned,
                                                                               strict=True)], scenario.name
        assert [s.get("error") for s in second["steps"]] == [s.get("error") for s in first["steps"]]
        assert {k: getattr(sb.settings, k) for k in base} == base, scenario.name  # restored
        assert sb.faults.state() == []
