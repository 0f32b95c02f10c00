"""The same scenario and seed give the same journal, timestamps aside (and ports and the center's own ids)."""

from __future__ import annotations

from sandbox.journal.canonical import canonical
from sandbox.scenario import library
from sandbox.scenario.runner import run_scenario


async def test_same_scenario_and_seed_give_the_same_journal() -> None:
    # Faults with seeded record selection, retries after a dropped connection and a truncated answer.
    scenario = library.find("province-flaky-transport")
    first = await run_scenario(scenario, keep_journal=True)
    second = await run_scenario(scenario, keep_journal=True)
    assert first.ok and second.ok
    assert first.ports != second.ports  # different free ports, the same journal
    a, b = canonical(first.journal, first.ports), canonical(second.journal, second.ports)
    assert len(a) == len(first.journal) >= 9
    assert a == b
    assert {e["fault"] for e in a} >= {"保存后断开", "HTML维护页", "截断应答"}


async def test_seeded_record_faults_hit_the_same_records_and_a_new_seed_changes_the_journal() -> None:
    scenario = library.find("province-partial-failure")
    first = await run_scenario(scenario, keep_journal=True)
    again = await run_scenario(scenario, keep_journal=True)
    other = await run_scenario(scenario.model_copy(update={"seed": scenario.seed + 1}), keep_journal=True)
    a = canonical(first.journal, first.ports)
    assert a == canonical(again.journal, again.ports)
    assert a != canonical(other.journal, other.ports)
