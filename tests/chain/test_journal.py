"""The journal: every exchange of both hops recorded with its outcome, live updates, paged queries, masked
export as JSON Lines and HAR."""

from __future__ import annotations

import asyncio
import io
import json

import orjson

from sandbox.journal.export import read_entries, write_har, write_jsonl
from sandbox.journal.mask import mask_entry
from sandbox.scenario.driver import Driver
from sandbox.scenario.model import SendStep
from tests.chain.conftest import StartSandbox


async def test_every_hop_is_recorded_with_its_outcome_and_live_subscribers_see_it(
        start_sandbox: StartSandbox) -> None:
    sb = await start_sandbox()
    journal = sb.journal
    assert journal is not None
    queue = journal.subscribe()
    journal.context.update(scenario="演示", step="1. 发送")
    driver = Driver(sb)
    await driver.send(SendStep(count=3, duplicates=({"position": 3, "index_of": 1},)))
    deadline = asyncio.get_running_loop().time() + 30  # generous: other tests share the two cores
    while await journal.count(hop=2) < 1:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.02)
    updates = [queue.get_nowait() for _ in range(queue.qsize())]
    journal.unsubscribe(queue)
    assert [(u["hop"], u["from_role"], u["to_role"]) for u in updates] == [
        (1, "hospital", "center"), (2, "center", "province")]
    assert "request" not in updates[0]

    first, second = await journal.page(bodies=True)
    assert first["outcome"] == "partial" and (first["n_ok"], first["n_failed"]) == (2, 1)
    assert first["infno"] == "saveExamRpotImgInfo" and first["records"] == 3
    assert first["msgid"] == driver.sent[0].msgid and first["infcode"] == "H51080200001"
    assert first["scenario"] == "演示" and first["step"] == "1. 发送"
    assert second["outcome"] == "ok" and second["records"] == 2 and second["infcode"] == "C51080000001"
    assert json.loads(second["request"])["infno"] == "saveExamRpotImgIndx"

    assert await journal.count(outcome="partial") == 1
    assert [e["seq"] for e in await journal.page(after=first["seq"])] == [second["seq"]]
    entry = await journal.get(first["seq"])
    assert entry is not None
    assert [a["succFlag"] for a in entry["answers"]] == ["1", "1", "-1"]
    index = driver.sent[0].records[0].index
    assert index is not None
    told = await journal.answers_for(index)
    assert [(a["hop"], a["succFlag"]) for a in told] == [(1, "1"), (1, "-1"), (2, "1")]
    stats = await journal.stats()
    assert stats["exchanges"] == {"1": {"partial": 1}, "2": {"ok": 1}}
    assert stats["records"]["1"] == {"1": 2, "-1": 1}


async def test_export_masks_personal_data_everywhere_it_appears(start_sandbox: StartSandbox) -> None:
    sb = await start_sandbox(("hospital", "center", "province"))
    driver = Driver(sb)
    await driver.send(SendStep(count=2))
    journal = sb.journal
    assert journal is not None
    raw = (await journal.page(bodies=True, hop=1))[0]
    record = orjson.loads(raw["request"])["data"][0]
    masked = mask_entry(raw)
    text = masked["request"] + masked["response"]
    certno, name = record["certno"], record["psnName"]
    assert certno not in text and name not in text  # also inside hiImgIndx and the response
    assert f"{certno[:4]}{'*' * 10}{certno[-4:]}" in text
    assert f'"psnName":"{name[0]}{"*" * (len(name) - 1)}"' in masked["request"]
    assert '"key":"GYSY*************"' in masked["request"]
    assert orjson.loads(masked["request"])["data"][0]["brdy"].endswith("-**-**")

    out = io.StringIO()
    assert await write_jsonl(journal.entries(), out) == 2
    lines = out.getvalue().splitlines()
    assert certno not in out.getvalue()
    assert [json.loads(line)["hop"] for line in lines] == [1, 2]
    clear = io.StringIO()
    await write_jsonl(journal.entries(), clear, mask=False)
    assert certno in clear.getvalue()


async def test_har_export_opens_as_har_and_reads_back(start_sandbox: StartSandbox) -> None:
    sb = await start_sandbox()
    await Driver(sb).send(SendStep(count=2))
    journal = sb.journal
    assert journal is not None
    while await journal.count(hop=2) < 1:
        await asyncio.sleep(0.02)
    out = io.StringIO()
    assert await write_har(journal.entries(), out, mask=False) == 2
    har = json.loads(out.getvalue())
    assert har["log"]["version"] == "1.2"
    e = har["log"]["entries"][0]
    assert e["request"]["method"] == "POST" and e["request"]["url"].endswith("/mie/api/mie/saveExamRpotImgInfo")
    assert e["request"]["postData"]["mimeType"].startswith("application/json")
    assert e["response"]["status"] == 200 and json.loads(e["response"]["content"]["text"])["code"] == 0
    assert e["_sandbox"]["hop"] == 1 and e["_sandbox"]["outcome"] == "ok"
    back = list(read_entries(out.getvalue()))
    assert [(b["hop"], b["status"], b["msgid"]) for b in back] == [
        (x["_sandbox"]["hop"], x["response"]["status"], x["_sandbox"]["msgid"]) for x in har["log"]["entries"]]
    assert back[0]["request"] == e["request"]["postData"]["text"]


async def test_a_refused_connection_is_recorded_by_the_sender(start_sandbox: StartSandbox) -> None:
    sb = await start_sandbox()
    await sb.stop_role("province")
    await Driver(sb).send(SendStep(count=1))
    journal = sb.journal
    assert journal is not None
    deadline = asyncio.get_running_loop().time() + 10
    while await journal.count(hop=2, side="client") < 2:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.02)
    rows = await journal.page(hop=2)  # the outbox keeps probing the stopped province: the first two attempts
    assert [(r["side"], r["transport"], r["attempt"]) for r in rows[:2]] == [
        ("client", "connection", 1), ("client", "connection", 2)]
