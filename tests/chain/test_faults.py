"""Faults at a role: what a caller meets on the wire, for which calls, and what the journal says."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sandbox.app import Sandbox
from sandbox.common.client import post_message
from sandbox.faults.model import Fault
from sandbox.province.samples import message, record
from sandbox.spec.fields import HOP2
from tests.chain.conftest import StartSandbox


def hop2(sandbox: Sandbox, first: int, count: int, seq: int) -> dict[str, Any]:
    s = sandbox.settings
    return message(s, [record(s, n) for n in range(first, first + count)], seq)


async def post(sandbox: Sandbox, msg: dict[str, Any], timeout: float = 5.0) -> Any:
    async with aiohttp.ClientSession() as session:
        return await post_message(session, sandbox.url("province") + HOP2.path, msg, timeout=timeout)


@pytest.fixture
async def province(start_sandbox: StartSandbox) -> Sandbox:
    return await start_sandbox(("province",))


async def indexes(sandbox: Sandbox) -> int:
    count: int = await sandbox.state("province").indexes.count()
    return count


async def test_http_5xx_for_the_first_calls_then_normal_answers(province: Sandbox) -> None:
    province.faults.load([Fault(name="维护", at="province", kind="http_error", status=503, calls=2)])
    msg = hop2(province, 0, 2, 1)
    got = [await post(province, msg) for _ in range(3)]
    assert [e.status for e in got] == [503, 503, 200]
    assert [e.error for e in got] == ["http_5xx", "http_5xx", None]
    assert "模拟故障「维护」" in (got[0].raw or "")
    assert await indexes(province) == 2
    journal = province.journal
    assert journal is not None
    rows = await journal.page()
    assert [(r["outcome"], r["transport"], r["fault"]) for r in rows] == [
        ("transport", "http_5xx", "维护"), ("transport", "http_5xx", "维护"), ("ok", None, None)]


async def test_dropped_connection_before_and_after_processing(province: Sandbox) -> None:
    province.faults.load([Fault(name="断", at="province", kind="drop", calls=1),
                          Fault(name="存后断", at="province", kind="drop", when="after", skip=1, calls=1)])
    first = await post(province, hop2(province, 0, 2, 1))
    assert first.error == "connection" and first.status is None
    assert await indexes(province) == 0  # dropped before the province saw the records
    msg = hop2(province, 10, 3, 2)
    second = await post(province, msg)
    assert second.error == "connection"
    assert await indexes(province) == 3  # stored, but the caller never heard
    again = await post(province, msg)  # the same msgid again: the stored answer, nothing stored twice
    assert again.ok and [a["succFlag"] for a in again.response["data"]] == ["1", "1", "1"]
    assert await indexes(province) == 3
    rows = await province.journal.page()  # type: ignore[union-attr]
    assert [r["transport"] for r in rows] == ["dropped", "dropped", None]


async def test_non_json_and_truncated_answers(province: Sandbox) -> None:
    province.faults.load([Fault(name="网页", at="province", kind="non_json", calls=1),
                          Fault(name="截断", at="province", kind="truncated", when="after", skip=1, calls=1)])
    page = await post(province, hop2(province, 0, 1, 1))
    assert page.status == 200 and page.error == "non_json" and "系统维护中" in (page.raw or "")
    cut = await post(province, hop2(province, 5, 2, 2))
    assert cut.error == "non_json" and "应答不完整" in cut.detail
    assert await indexes(province) == 2
    rows = await province.journal.page(bodies=True)  # type: ignore[union-attr]
    assert [r["transport"] for r in rows] == ["non_json", "truncated"]
    assert rows[1]["response"].startswith('{"code":0')  # what was sent before the cut


async def test_a_delay_past_the_callers_timeout(province: Sandbox) -> None:
    province.faults.load([Fault(name="慢", at="province", kind="delay", seconds=0.5, when="after", calls=1)])
    late = await post(province, hop2(province, 0, 1, 1), timeout=0.2)
    assert late.error == "timeout"
    await asyncio.sleep(0.45)
    assert await indexes(province) == 1
    rows = await province.journal.page()  # type: ignore[union-attr]
    assert rows[0]["fault"] == "慢" and rows[0]["duration_ms"] >= 500


async def test_a_whole_batch_refused(province: Sandbox) -> None:
    province.faults.load([Fault(at="province", kind="reject_batch", message="省平台维护：暂停接收")])
    ex = await post(province, hop2(province, 0, 2, 1))
    assert ex.response == {"code": 1050, "type": "error", "message": "省平台维护：暂停接收", "data": []}
    assert await indexes(province) == 0


async def test_records_rejected_by_position_field_and_seeded_probability(province: Sandbox) -> None:
    s = province.settings
    records = [record(s, n, gend="1") for n in range(20)]
    records[6]["gend"] = "2"
    province.faults.load([
        Fault(name="位置", at="province", kind="reject_records", flag="-1", message="第二条不要",
              select={"positions": [2]}),
        Fault(name="女性", at="province", kind="reject_records", flag="0", select={"where": {"gend": "2"}}),
        Fault(name="随机", at="province", kind="reject_records", flag="-1", select={"probability": 0.3}),
    ])
    ex = await post(province, message(s, records, 1))
    flags = [a["succFlag"] for a in ex.response["data"]]
    assert flags[1] == "-1" and ex.response["data"][1]["message"] == "第二条不要"
    assert flags[6] in ("0", "-1")
    randomly = [i for i, f in enumerate(flags) if f == "-1" and i != 1]
    assert 1 <= len(randomly) <= 12
    assert await indexes(province) == flags.count("1") + flags.count("0")
    state = province.faults.state()
    assert [f["applied"] for f in state] == [1, 1 if flags[6] == "0" else 0, len(randomly) + (flags[6] == "-1")]


async def test_probability_draws_depend_on_the_seed_not_on_the_order(start_sandbox: StartSandbox,
                                                                     tmp_path: Path) -> None:
    picks = []
    for k, seed in enumerate((1, 1, 2)):
        sb = await start_sandbox(("province",), seed=seed, data_dir=tmp_path / f"run{k}")
        sb.faults.load([Fault(name="随机", at="province", kind="reject_records", select={"probability": 0.5})])
        s = sb.settings
        ex = await post(sb, message(s, [record(s, n) for n in range(16)], 1))
        picks.append([a["succFlag"] for a in ex.response["data"]])
    assert picks[0] == picks[1]
    assert picks[0] != picks[2]


async def test_a_window_fault_is_active_only_in_its_window_and_heal_ends_any_fault(province: Sandbox) -> None:
    province.faults.load([Fault(name="窗口", at="province", kind="http_error", window=(0, 0.3)),
                          Fault(name="一直", at="province", kind="non_json", skip=2)])
    assert (await post(province, hop2(province, 0, 1, 1))).status == 503
    await asyncio.sleep(0.35)
    assert (await post(province, hop2(province, 1, 1, 2))).ok
    assert (await post(province, hop2(province, 2, 1, 3))).error == "non_json"
    assert province.faults.heal("一直") == ["一直"]
    assert (await post(province, hop2(province, 3, 1, 4))).ok
    assert [f["name"] for f in province.faults.state()] == ["窗口"]
    assert province.faults.state()[0]["exhausted"] is True
