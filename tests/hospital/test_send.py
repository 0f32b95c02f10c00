"""The hospital sends hop 1: batches, envelopes, retries with the same msgid, per-record answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime

import aiohttp
import pytest

from sandbox.common.client import Exchange
from sandbox.config import Settings
from sandbox.hospital.domain import NO_ANSWER, Hospital, center_endpoint, read_answers
from sandbox.hospital.store import HospitalStore
from sandbox.spec.fields import DATA_MAX_CHARS, HOP1
from sandbox.spec.formats import parse_msgid
from sandbox.validate import data_length, validate_message
from tests.conftest import free_port

from .conftest import TINY, FakeCenter

FIXED_NOW = datetime(2026, 1, 5, 9, 30, 0)  # msgid days must not change in the middle of a test


@pytest.fixture
async def hospital(hospital_settings: Settings) -> AsyncIterator[Hospital]:
    store = HospitalStore(hospital_settings.data_dir / "hospital" / "hospital.db")
    await store.open()
    async with aiohttp.ClientSession() as session:
        yield Hospital(hospital_settings, store, session, seed=9, image_spec=TINY, now=lambda: FIXED_NOW)
    await store.close()


async def test_batches_under_the_limit_reach_the_center_and_every_record_is_answered(
    hospital: Hospital, fake_center: FakeCenter
) -> None:
    exams = hospital.make_exams(40)
    report = await hospital.send(exams, fake_center.url)
    assert len(fake_center.requests) == len(report.batches) >= 2
    for msg in fake_center.requests:
        assert msg["infno"] == HOP1.infno and msg["infCode"] == hospital.institution.code
        assert msg["key"] == hospital.institution.key
        assert data_length(msg["data"]) <= DATA_MAX_CHARS
        assert validate_message(msg, 1, "strict").valid
    assert [r["hiImgIndx"] for m in fake_center.requests for r in m["data"]] == [e.index for e in exams]
    assert report.flag_counts() == {"1": 40} and report.all_ok and report.retries == 0
    stored = await hospital.store.answers()
    assert len(stored) == 40 and {a["succ_flag"] for a in stored} == {"1"}
    assert {a["exam_id"] for a in stored} == {e.exam_id for e in exams}


async def test_msgid_sequence_counts_per_institution_per_day(hospital: Hospital, fake_center: FakeCenter) -> None:
    await hospital.send(hospital.make_exams(2), fake_center.url)
    await hospital.send(hospital.make_exams(2, 2), fake_center.url)
    parsed = [parse_msgid(m["msgid"]) for m in fake_center.requests]
    assert all(p is not None and p[0] == hospital.institution.code for p in parsed)
    assert [p[2] for p in parsed if p] == [1, 2]
    assert len({m["msgid"] for m in fake_center.requests}) == 2


@pytest.mark.parametrize("failure", ["503", "500-html"])
async def test_transient_failures_are_retried_with_the_same_msgid(
    hospital: Hospital, fake_center: FakeCenter, failure: str
) -> None:
    fake_center.script = [failure, failure]
    seen: list[Exchange] = []

    async def observer(ex: Exchange) -> None:
        seen.append(ex)

    report = await hospital.send(hospital.make_exams(3), fake_center.url, observer=observer)
    assert len(fake_center.requests) == 3
    assert len({m["msgid"] for m in fake_center.requests}) == 1
    assert fake_center.requests[0] == fake_center.requests[2]  # byte-for-byte the same message
    assert [ex.attempt for ex in seen] == [1, 2, 3] and seen[0].error == "http_5xx"
    assert report.retries == 2 and report.all_ok
    sent = await hospital.store.sent_messages()
    assert sent[0]["attempts"] == 3 and sent[0]["status"] == 200


async def test_timeouts_are_retried(make_settings, fake_center: FakeCenter) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(retry_base_s=0.001, retry_cap_s=0.002, retry_max_attempts=3, send_timeout_s=0.3)
    store = HospitalStore(settings.data_dir / "h.db")
    await store.open()
    try:
        async with aiohttp.ClientSession() as session:
            hospital = Hospital(settings, store, session, seed=1)
            fake_center.script = ["sleep"]
            report = await hospital.send(hospital.make_exams(1), fake_center.url)
    finally:
        await store.close()
    assert [ex.error for ex in report.batches[0].exchanges] == ["timeout", None]
    assert report.all_ok


async def test_giving_up_after_max_attempts_leaves_records_without_answer(
    hospital: Hospital, fake_center: FakeCenter
) -> None:
    fake_center.script = ["503"] * 10
    report = await hospital.send(hospital.make_exams(2), fake_center.url)
    assert len(fake_center.requests) == hospital.settings.retry_max_attempts
    assert report.flag_counts() == {NO_ANSWER: 2} and not report.all_ok and not report.unreachable
    assert "HTTP 503" in report.answers[0].message


async def test_per_record_failures_and_the_summary_style_are_read(hospital: Hospital, fake_center: FakeCenter) -> None:
    fake_center.script = ["drop-second", "summary"]
    report = await hospital.send(hospital.make_exams(3), fake_center.url, max_records=3)
    assert [a.flag for a in report.answers] == ["1", "-1", "1"]
    assert "校验位错误" in report.answers[1].message
    report = await hospital.send(hospital.make_exams(2, 3), fake_center.url)
    assert [a.flag for a in report.answers] == ["1", "1"]
    assert report.answers[0].message == "保存数据成功"


async def test_a_refused_envelope_is_recorded_for_every_record(hospital: Hospital, fake_center: FakeCenter) -> None:
    fake_center.script = ["refuse"]
    report = await hospital.send(hospital.make_exams(2), fake_center.url)
    assert len(fake_center.requests) == 1  # a refusal is an answer, not a transient failure
    assert report.batches[0].code == 1021
    assert all(a.flag is None and "1021" in a.message and "密钥值" in a.message for a in report.answers)


async def test_unreachable_center_stops_after_the_first_batch(hospital: Hospital) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    report = await hospital.send(hospital.make_exams(30), url)
    assert report.unreachable
    assert report.batches[0].attempts == hospital.settings.retry_max_attempts
    assert all(b.attempts == 0 and not b.sent for b in report.batches[1:])
    assert len(report.answers) == 30 and report.flag_counts() == {NO_ANSWER: 30}


def test_center_url_gets_the_document_path_when_only_a_base_is_given() -> None:
    assert center_endpoint("http://c:8701") == "http://c:8701" + HOP1.path
    assert center_endpoint("http://c:8701/") == "http://c:8701" + HOP1.path
    assert center_endpoint("https://c/api/x") == "https://c/api/x"


def test_answers_are_matched_by_index_even_out_of_order() -> None:
    records = [{"hiImgIndx": "A"}, {"hiImgIndx": "B"}]
    ex = Exchange(url="u", request={}, status=200, response={"code": 0, "message": "成功", "data": [
        {"hiImgIdx": "B", "succFlag": "0", "message": "部分"}, {"hiImgIndx": "A", "succFlag": "1", "message": "好"}]})
    code, _, answers = read_answers(ex, records, {"A": "e1"})
    assert code == 0 and [(a.index, a.flag, a.exam_id) for a in answers] == [("A", "1", "e1"), ("B", "0", None)]


async def test_sends_do_not_interleave(hospital: Hospital, fake_center: FakeCenter) -> None:
    a, b = hospital.make_exams(2), hospital.make_exams(2, 2)
    await asyncio.gather(hospital.send(a, fake_center.url), hospital.send(b, fake_center.url))
    seqs = [parse_msgid(m["msgid"]) for m in fake_center.requests]
    assert sorted(p[2] for p in seqs if p) == [1, 2]


async def test_msgid_sequence_survives_a_restart(hospital_settings: Settings, fake_center: FakeCenter) -> None:
    path = hospital_settings.data_dir / "restart.db"
    for _ in range(2):
        store = HospitalStore(path)
        await store.open()
        try:
            async with aiohttp.ClientSession() as session:
                h = Hospital(hospital_settings, store, session, seed=2, now=lambda: FIXED_NOW)
                await h.send(h.make_exams(1), fake_center.url)
        finally:
            await store.close()
    assert [m["msgid"][-4:] for m in fake_center.requests] == ["0001", "0002"]


def test_a_repeated_index_gets_each_its_own_answer_and_no_record_takes_anothers() -> None:
    records = [{"hiImgIndx": "A"}, {"hiImgIndx": "A"}, {"hiImgIndx": "B"}]
    ok, dup = {"hiImgIdx": "A", "succFlag": "1", "message": "好"}, {"hiImgIdx": "A", "succFlag": "-1", "message": "重复"}
    ex = Exchange(url="u", request={}, status=200, response={"code": 0, "message": "", "data": [
        ok, dup, {"hiImgIdx": "B", "succFlag": "0", "message": "部分"}]})
    assert [a.flag for a in read_answers(ex, records, {})[2]] == ["1", "-1", "0"]
    ex.response["data"] = [{"hiImgIdx": "B", "succFlag": "0", "message": "部分"}, dup, ok]  # out of order
    assert [a.flag for a in read_answers(ex, records, {})[2]] == ["-1", "1", "0"]
    # B's answer is missing: the entry at B's position is A's, so B is told there was no answer.
    ex.response["data"] = [ok, dup]
    answers = read_answers(ex, records[:1] + records[2:], {})[2]
    assert [a.flag for a in answers] == ["1", None]
