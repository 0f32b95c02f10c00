"""Hop 2: the outbox delivered to a scripted province — every exam forwarded exactly once or failed with a
reason, through 5xx, non-JSON answers, dropped connections, timeouts, outages and restarts."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
from aiohttp.test_utils import TestClient, TestServer

from sandbox.center import create_app
from sandbox.center.store import SCHEMA
from sandbox.config import Settings
from sandbox.typedefs import CENTER
from tests.center.fake_province import FakeProvince
from tests.center.helpers import HOP1_PATH, b64, instance, message, pdf, record

PDF = b64(pdf(), "application/pdf")


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[TestClient]:
    client = TestClient(TestServer(create_app(settings), host="127.0.0.1", port=settings.center_port))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def ingest(client: TestClient, settings: Settings, ns: range, per_message: int = 4) -> list[str]:
    """Send exams `ns` with inline files; their hiImgIndx."""
    indexes = []
    items = list(ns)
    for k in range(0, len(items), per_message):
        recs = [record(settings, n, PDF, b64(instance(n=n))) for n in items[k:k + per_message]]
        resp = await client.post(HOP1_PATH, json=message(settings, recs, seq=items[k] + 1))
        body = await resp.json()
        assert body["code"] == 0 and all(a["succFlag"] == "1" for a in body["data"]), body
        indexes += [r["hiImgIndx"] for r in recs]
    return indexes


async def summary(client: TestClient) -> dict[str, Any]:
    result: dict[str, Any] = await (await client.get("/api/summary")).json()
    return result


async def settled(client: TestClient, timeout: float = 15.0) -> dict[str, Any]:
    """The summary once nothing is pending or being sent any more."""
    deadline = time.monotonic() + timeout
    while True:
        s = await summary(client)
        if s["stored"] and s["forwardPending"] == 0 and s["forwardSending"] == 0:
            return s
        assert time.monotonic() < deadline, s
        await asyncio.sleep(0.05)


async def forward(client: TestClient, index: str) -> dict[str, Any]:
    result: dict[str, Any] = (await (await client.get(f"/api/exams/{index}")).json())["forward"]
    return result


def quick(make_settings: Callable[..., Settings], **kw: Any) -> Settings:
    values: dict[str, Any] = {"retry_base_s": 0.01, "retry_cap_s": 0.05, "send_timeout_s": 2.0,
                              "retry_max_attempts": 20}
    values.update(kw)
    return make_settings(**values)


async def test_all_ok_every_exam_forwarded_once_with_working_links(make_settings: Any) -> None:
    settings = quick(make_settings)
    province = await FakeProvince(settings).start(settings.province_port)
    try:
        async with running(settings) as client:
            indexes = await ingest(client, settings, range(30))
            s = await settled(client)
            assert s["forwarded"] == 30 and s["forwardFailed"]["total"] == 0
            assert province.problems == []
            assert set(province.stored) == set(indexes) and set(province.stored.values()) == {1}
            rec = province.records[indexes[0]]
            assert rec["stogInsUscc"] == settings.center.uscc and rec["poscode"] == "628000"
            for link in ("examRpotLinkUrl", "imgInfoLinkUrl", "imgDldLink"):
                resp = await client.get("/" + rec[link].split("/", 3)[3])
                assert resp.status == 200, link
            state = await forward(client, indexes[0])
            assert state["state"] == "done" and state["stateText"] == "已转发" and len(state["msgid"]) == 30
            assert len(set(province.requests)) == s["batches"]["done"]
    finally:
        await province.stop()


async def test_batches_stay_under_the_data_limit(make_settings: Any) -> None:
    settings = quick(make_settings)
    province = await FakeProvince(settings).start(settings.province_port)
    try:
        async with running(settings) as client:
            await ingest(client, settings, range(100, 160), per_message=5)
            s = await settled(client)
            assert s["forwarded"] == 60 and s["batches"]["done"] >= 3  # ~2 KB per hop-2 record
            assert province.problems == []
    finally:
        await province.stop()


async def test_partial_minus_1_fails_those_records_without_resending_them(make_settings: Any) -> None:
    settings = quick(make_settings)
    province = FakeProvince(settings)
    try:
        async with running(settings) as client:
            indexes = await ingest(client, settings, range(200, 208))
            province.reject = {indexes[1], indexes[5]}
            province.warn = {indexes[2]}
            await province.start(settings.province_port)
            s = await settled(client)
            assert s["forwarded"] == 6 and s["forwardedWithWarning"] == 1
            assert s["forwardFailed"] == {"total": 2, "byReason": {"province_rejected": 2}}
            failed = await forward(client, indexes[1])
            assert failed["state"] == "failed" and failed["provinceSuccFlag"] == "-1"
            assert failed["message"] == "省平台拒收：检查部位代码不在目录中"
            warned = await forward(client, indexes[2])
            assert warned["stateText"] == "已转发（省平台有提示）"
            requests = len(province.requests)
            await asyncio.sleep(0.3)
            assert len(province.requests) == requests  # no blind retry of a rejected record
    finally:
        await province.stop()


async def test_5xx_non_json_and_dropped_connections_are_retried_with_the_same_message(make_settings: Any) -> None:
    settings = quick(make_settings)
    province = FakeProvince(settings, script=["500", "nonjson", "drop", "500"])
    await province.start(settings.province_port)
    try:
        async with running(settings) as client:
            indexes = await ingest(client, settings, range(300, 304))
            s = await settled(client)
            assert s["forwarded"] == 4 and province.script == []
            assert list(province.stored.values()) == [1, 1, 1, 1] and sorted(province.stored) == sorted(indexes)
            assert (await forward(client, indexes[0]))["attempts"] >= 2
    finally:
        await province.stop()


async def test_timeout_after_the_province_stored_is_answered_by_msgid_replay(make_settings: Any) -> None:
    settings = quick(make_settings, send_timeout_s=0.3)
    province = FakeProvince(settings, script=["sleep:0.8"])
    await province.start(settings.province_port)
    try:
        async with running(settings) as client:
            indexes = await ingest(client, settings, range(400, 404))
            s = await settled(client)
            assert s["forwarded"] == 4
            assert len(province.requests) >= 2 and len(set(province.requests)) == 1  # the same msgid again
            assert all(province.stored[i] == 1 for i in indexes)
    finally:
        await province.stop()


async def test_province_down_for_a_while_then_up(make_settings: Any) -> None:
    settings = quick(make_settings, retry_cap_s=0.2, retry_max_attempts=60)
    province = FakeProvince(settings)
    try:
        async with running(settings) as client:
            indexes = await ingest(client, settings, range(500, 520))
            await asyncio.sleep(0.6)
            s = await summary(client)
            assert s["forwarded"] == 0 and s["forwardSending"] == 20
            await province.start(settings.province_port)
            s = await settled(client)
            assert s["forwarded"] == 20 and all(province.stored[i] == 1 for i in indexes)
    finally:
        await province.stop()


async def test_exhausted_attempts_fail_with_a_reason_and_can_be_requeued(make_settings: Any) -> None:
    settings = quick(make_settings, retry_max_attempts=3)
    province = FakeProvince(settings)
    try:
        async with running(settings) as client:
            indexes = await ingest(client, settings, range(600, 603))
            s = await settled(client)
            assert s["forwardFailed"] == {"total": 3, "byReason": {"unreachable": 3}}
            state = await forward(client, indexes[0])
            assert state["state"] == "failed" and "转发 3 次均未成功" in state["message"]
            await province.start(settings.province_port)
            resp = await client.post("/api/forward/retry")
            assert (await resp.json())["requeued"] == 1
            s = await settled(client)
            assert s["forwarded"] == 3 and all(province.stored[i] == 1 for i in indexes)
    finally:
        await province.stop()


async def test_envelope_refusal_fails_the_batch_without_retry(make_settings: Any) -> None:
    settings = quick(make_settings)
    province = FakeProvince(settings, script=["envelope:1021"])
    await province.start(settings.province_port)
    try:
        async with running(settings) as client:
            indexes = await ingest(client, settings, range(700, 702))
            s = await settled(client)
            assert s["forwardFailed"] == {"total": 2, "byReason": {"batch_rejected": 2}}
            assert "省平台拒收整批报文（code 1021）" in (await forward(client, indexes[0]))["message"]
            assert province.requests == [] and province.script == []
    finally:
        await province.stop()


async def test_summary_style_answer_applies_to_the_whole_batch(make_settings: Any) -> None:
    settings = quick(make_settings)
    province = FakeProvince(settings, summary_style=True)
    await province.start(settings.province_port)
    try:
        async with running(settings) as client:
            await ingest(client, settings, range(800, 804))
            s = await settled(client)
            assert s["forwarded"] == 4
    finally:
        await province.stop()


async def test_restart_with_exams_in_the_outbox_delivers_each_once(make_settings: Any) -> None:
    settings = quick(make_settings, retry_cap_s=0.1, retry_max_attempts=1000)
    province = FakeProvince(settings, script=["sleep:0.6"])
    try:
        async with running(settings) as client:
            first = await ingest(client, settings, range(900, 912))
            await asyncio.sleep(0.3)  # province down: batches wait in the outbox
            assert (await summary(client))["forwardSending"] == 12
        async with running(settings) as client:
            await province.start(settings.province_port)
            second = await ingest(client, settings, range(912, 916))
            await asyncio.sleep(0.2)  # a batch is in flight (the province sleeps) when the center stops
        async with running(settings) as client:
            s = await settled(client)
            assert s["forwarded"] == 16 and s["forwardFailed"]["total"] == 0
        assert sorted(province.stored) == sorted(first + second)
        assert set(province.stored.values()) == {1}  # never stored twice as a new record
        assert province.problems == []
    finally:
        await province.stop()


async def test_a_send_that_breaks_loses_nothing_of_its_wave(make_settings: Any) -> None:
    settings = quick(make_settings)
    province = FakeProvince(settings)
    try:
        async with running(settings) as client:
            broke: list[str] = []

            async def breaks_once(ex: Any) -> None:
                if not broke and ex.ok:
                    broke.append(orjson.loads(ex.request)["msgid"])  # the batch text as stored and sent
                    raise RuntimeError("an observer broke")

            client.server.app[CENTER].observers.append(breaks_once)
            # Batched while the province is down, so that they go out together in one wave once it is up.
            indexes = await ingest(client, settings, range(300, 360), per_message=5)
            await asyncio.sleep(0.2)
            await province.start(settings.province_port)
            s = await settled(client, timeout=30)
            assert s["forwarded"] == 60 and s["batches"]["done"] >= 3
            assert all(province.stored[i] == 1 for i in indexes)  # each stored once
            assert province.requests.count(broke[0]) == 2  # the broken attempt's batch was sent again …
            assert len(province.requests) == len(set(province.requests)) + 1  # … and no other batch
    finally:
        await province.stop()


def test_the_outbox_is_indexed_by_batch() -> None:
    # Applying a province's answer reads a batch's exams: without this index it read the whole outbox,
    # which grows with every exam ever received.
    conn = sqlite3.connect(":memory:")
    conn.executescript(SCHEMA)
    indexed = {conn.execute(f"PRAGMA index_info({name})").fetchone()[2]
               for _, name, *_ in conn.execute("PRAGMA index_list(outbox)")}
    assert "batch_id" in indexed


def test_answers_without_their_index_are_matched_by_position_in_the_sent_batch() -> None:
    from sandbox.center.forwarder import apply_answer
    from sandbox.common.client import Exchange

    body = orjson.dumps({"msgid": "m", "data": [{"hiImgIndx": "B"}, {"hiImgIndx": "A"}, {"hiImgIndx": "C"}]}).decode()
    exams = {"A": "exam-a", "B": "exam-b", "C": "exam-c"}  # not the batch's order
    answers = [{"succFlag": "1", "message": "b"}, {"succFlag": "-1", "message": "a"},
               {"hiImgIndx": "C", "succFlag": "0", "message": "c"}]
    ex = Exchange(url="u", request=body, status=200, response={"code": 0, "data": answers})
    got = {o[0]: (o[1], o[2], o[3]) for o in apply_answer(ex, body, exams)}
    assert got == {"exam-b": ("done", "1", "b"), "exam-a": ("failed", "-1", "a"), "exam-c": ("done", "0", "c")}
    # One answer short: positions mean nothing, the unanswered records fail as unanswered.
    ex.response = {"code": 0, "data": answers[:1] + answers[2:]}
    got = {o[0]: (o[1], o[4]) for o in apply_answer(ex, body, exams)}
    assert got == {"exam-a": ("failed", "no_answer"), "exam-b": ("failed", "no_answer"), "exam-c": ("done", None)}
