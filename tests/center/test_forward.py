"""Hop 2: the outbox delivered to a scripted province — every exam forwarded exactly once or failed with a
reason, through 5xx, non-JSON answers, dropped connections, timeouts, outages and restarts."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
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


async def settled(client: TestClient, timeout: float = 15.0,
                  until: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
    """The summary once nothing is pending or being sent any more (and `until` holds of it)."""
    deadline = time.monotonic() + timeout
    while True:
        s = await summary(client)
        if s["stored"] and s["forwardPending"] == 0 and s["forwardSending"] == 0 and (until is None or until(s)):
            return s
        assert time.monotonic() < deadline, s
        await asyncio.sleep(0.05)


async def forward(client: TestClient, index: str) -> dict[str, Any]:
    result: dict[str, Any] = (await (await client.get(f"/api/exams/{index}")).json())["forward"]
    return result


def quick(make_settings: Callable[..., Settings], **kw: Any) -> Settings:
    values: dict[str, Any] = {"retry_base_s": 0.01, "retry_cap_s": 0.05, "send_timeout_s": 2.0}
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
    settings = quick(make_settings, retry_cap_s=0.2)
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


async def test_past_the_horizon_batches_expire_with_a_reason_and_can_be_requeued(make_settings: Any) -> None:
    settings = quick(make_settings, forward_horizon_s=0.6)
    province = FakeProvince(settings)
    try:
        async with running(settings) as client:
            indexes = await ingest(client, settings, range(600, 603))
            s = await settled(client)
            assert s["forwardFailed"] == {"total": 3, "byReason": {"expired": 3}}
            assert s["oldestUndelivered"]["reason"] == "expired"
            state = await forward(client, indexes[0])
            assert state["state"] == "failed" and state["stateText"] == "转发失败（超过重试期限）"
            assert "forward_horizon_s" in state["message"]
            assert state["attempts"] >= 1 and state["lastError"] == state["message"]
            assert state["firstAttempt"].endswith("+08:00") and state["lastAttempt"].endswith("+08:00")
            await province.start(settings.province_port)
            resp = await client.post("/api/forward/retry?reason=expired", json={})
            assert (await resp.json())["requeued"] == 1
            s = await settled(client)
            assert s["forwarded"] == 3 and all(province.stored[i] == 1 for i in indexes)
            assert s["oldestUndelivered"] is None
    finally:
        await province.stop()


async def test_429_with_retry_after_is_honoured_then_delivered(make_settings: Any) -> None:
    settings = quick(make_settings)
    province = FakeProvince(settings, script=["status:429:1", "status:503"])
    await province.start(settings.province_port)
    try:
        async with running(settings) as client:
            indexes = await ingest(client, settings, range(620, 624))
            s = await settled(client)
            assert s["forwarded"] == 4 and all(province.stored[i] == 1 for i in indexes)
            assert province.hits[1] - province.hits[0] >= 0.95  # not before the Retry-After (1 s) asked for
            state = await forward(client, indexes[0])
            assert state["attempts"] == 3 and state["httpStatus"] == 200
    finally:
        await province.stop()


async def test_404_holds_the_batch_until_an_operator_requeues_it(make_settings: Any) -> None:
    settings = quick(make_settings)
    province = FakeProvince(settings, script=["status:404"])
    await province.start(settings.province_port)
    try:
        async with running(settings) as client:
            indexes = await ingest(client, settings, range(640, 643))
            s = await settled(client)
            assert s["forwardHeld"] == {"total": 3, "byReason": {"http_rejected": 3}} and s["forwarded"] == 0
            held = await forward(client, indexes[0])
            assert held["state"] == "held" and held["httpStatus"] == 404 and "gateway says 404" in held["message"]
            assert held["reason"] == "http_rejected" and "POST /api/forward/retry" in held["message"]
            # Every time in China time with its offset, whatever the host's zone (the suite also runs under TZ=UTC).
            times = [datetime.fromisoformat(held[k]) for k in ("queuedTime", "updatedTime", "firstAttempt")]
            assert all(t.utcoffset() == timedelta(hours=8) for t in times)
            assert max(times) - min(times) < timedelta(minutes=5)
            await asyncio.sleep(0.3)
            assert len(province.hits) == 1  # held: never resent on its own
            resp = await client.post("/api/forward/retry?reason=province_rejected", json={})
            assert resp.status == 400 and "province_rejected" in (await resp.json())["message"]
            resp = await client.post("/api/forward/retry?reason=held", json={})
            assert (await resp.json())["requeued"] == 1
            s = await settled(client)
            assert s["forwarded"] == 3 and s["forwardHeld"]["total"] == 0
            assert all(province.stored[i] == 1 for i in indexes)
    finally:
        await province.stop()


async def test_a_restart_with_another_province_url_resends_held_batches(make_settings: Any) -> None:
    settings = quick(make_settings)
    province = FakeProvince(settings, script=["status:404"])
    await province.start(settings.province_port)
    try:
        async with running(settings) as client:
            indexes = await ingest(client, settings, range(660, 662))
            assert (await settled(client))["forwardHeld"]["total"] == 2
        async with running(settings) as client:  # same URL: still held
            await asyncio.sleep(0.3)
            assert (await summary(client))["forwardHeld"]["total"] == 2
        moved = settings.model_copy(update={"province_url": f"http://localhost:{settings.province_port}"
                                                            "/mie/api/mie/saveExamRpotImgIndx"})
        async with running(moved) as client:
            s = await settled(client, until=lambda s: s["forwardHeld"]["total"] == 0)
            assert s["forwarded"] == 2 and all(province.stored[i] == 1 for i in indexes)
    finally:
        await province.stop()


async def test_answers_that_are_not_the_envelope_are_retried_not_final(make_settings: Any) -> None:
    settings = quick(make_settings)
    province = FakeProvince(settings, script=["status:200", "nonjson"])
    await province.start(settings.province_port)
    try:
        async with running(settings) as client:
            indexes = await ingest(client, settings, range(680, 682))
            s = await settled(client)
            assert s["forwarded"] == 2 and all(province.stored[i] == 1 for i in indexes)
            assert (await forward(client, indexes[0]))["attempts"] == 3
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
    settings = quick(make_settings, retry_cap_s=0.1)
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
