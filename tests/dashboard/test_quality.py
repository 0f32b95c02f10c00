"""The upload-quality report: its numbers against the journal's own record, its definitions on hand-made
journals (on time, reasons, radiology, exposure), and its CSV."""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from sandbox.app import Sandbox
from sandbox.config import Settings
from sandbox.dashboard.domain import Dashboard
from sandbox.dashboard.quality import PRICE_CUT_YUAN, Tracker
from sandbox.dashboard.records import fields_named, record_answers
from sandbox.journal.entry import Entry, classify, describe_request
from sandbox.journal.store import Journal
from sandbox.scenario.malform import CATALOGUE
from sandbox.spec.messages import DASHBOARD, QUALITY_COLUMNS
from sandbox.validate import Mode
from tests.dashboard.conftest import run_scenario_here
from tests.dashboard.helpers import RADIOLOGY, journal_facts


async def test_report_numbers_equal_the_journal_after_several_scenarios(chain: Sandbox) -> None:
    for name in ("province-partial-failure", "wrong-key", "malformed-catalogue"):
        run = await run_scenario_here(chain, name)  # one after another, nothing emptied in between
        assert not any("error" in step for step in run["steps"]), run
    dash = Dashboard(chain)
    report = await dash.quality()
    facts = await journal_facts(chain)
    total = report["total"]

    assert total["sent"] == len(facts["sent"])
    assert total["indexed"] == len(facts["indexed"]) == await chain.state("province").indexes.count()
    assert total["inProgress"] == 0  # every scenario waited for the center to be idle
    assert total["failed"] == total["sent"] - total["indexed"]
    radiology_missing = sum(1 for key, types in facts["sent"].items()
                            if types & RADIOLOGY and key not in facts["indexed"])
    assert total["radiologyNotIndexed"] == radiology_missing
    assert total["exposureYuan"] == PRICE_CUT_YUAN * radiology_missing > 0
    # rows add up to the totals, per institution and overall
    for key in ("sent", "indexed", "failed", "radiology", "exposureYuan"):
        assert sum(r[key] for r in report["rows"]) == total[key]
        assert sum(r[key] for r in report["institutions"]) == total[key]
    per_inst = Counter(facts["institution"][k] for k in facts["sent"] if k in facts["institution"])
    for row in report["institutions"]:
        if row["institution"] in per_inst:
            assert row["sent"] == per_inst[row["institution"]]
    # failures by reason: the province's refusals, the center's refusals, the envelopes refused whole
    reasons = {r["reason"]: r["count"] for r in total["failedByReason"]}
    assert reasons[DASHBOARD["reason_hop2_rejected"]] == 2  # province-partial-failure
    hop1_rejected = len(set(facts["sent"]) - facts["hop1_saved"])
    assert sum(n for r, n in reasons.items() if r != DASHBOARD["reason_hop2_rejected"]) == hop1_rejected
    assert any(r.startswith("第一跳报文被整批拒收（code 1021") for r in reasons)


async def test_each_malformed_record_fails_on_its_own_field(chain: Sandbox) -> None:
    run = await run_scenario_here(chain, "malformed-catalogue")
    assert run["state"] == "passed"
    dash = Dashboard(chain)
    listing = await dash.exams(0, 10_000)
    by_index = {e["hiImgIndx"]: e for e in listing["items"]}
    checked = 0
    for message in chain.control.driver.sent:
        for rec in message.records:
            rule = CATALOGUE.get(rec.malformation or "")
            if rule is None or rule.outcome(Mode.LENIENT) != "rejected" or rule.field is None:
                continue
            exam = by_index.get(rec.index or "")
            if exam is None:
                continue  # the malformation changed the index itself
            assert exam["status"] == "failed", (rule.name, exam)
            assert rule.field in exam["fields"], (rule.name, exam["fields"], exam["detail"])
            checked += 1
    assert checked >= 10
    fields = {f["field"] for f in (await dash.quality())["total"]["topFields"]}
    assert fields


async def test_on_time_radiology_and_exposure_on_a_hand_made_journal(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.db")
    await journal.open()
    try:
        records = [
            _record("A", "2", "2025-12-01 08:00:00"),  # indexed 1 h after the report: on time
            _record("B", "3", "2025-11-28 08:00:00"),  # indexed 73 h after: late
            _record("C", "1", "2025-12-01 08:30:00"),  # refused by the province: not indexed, radiology
            _record("D", "4", "2025-12-01 08:30:00"),  # refused by the center: not indexed, ultrasound
        ]
        hop1 = _entry(1, records, [("1", "保存数据成功")] * 3 + [("-1", "数据校验失败：psnName(人员姓名): 必填项缺失")],
                      started=1000.0)
        journal.record(hop1)
        hop2 = _entry(2, records[:3], [("1", "保存数据成功"), ("0", "保存数据成功，部分数据失败：age"),
                                       ("-1", "省平台校验不通过：影像检查类型代码不符")], started=1010.0)
        journal.record(hop2)
        tracker = Tracker(journal, lambda: Settings(quality_on_time_hours=24))
        await tracker.refresh()
        report = tracker.report({})
    finally:
        await journal.close()
    total = report["total"]
    assert (total["sent"], total["indexed"], total["failed"], total["inProgress"]) == (4, 2, 2, 0)
    assert total["onTime"] == 1 and total["onTimeShare"] == 0.25
    assert total["medianDelayHours"] == pytest.approx((1 + 73) / 2, abs=0.1)
    assert (total["radiology"], total["radiologyNotIndexed"], total["exposureYuan"]) == (3, 1, 5)
    reasons = {r["reason"]: r["count"] for r in total["failedByReason"]}
    assert reasons == {DASHBOARD["reason_hop2_rejected"]: 1, DASHBOARD["reason_hop1_rejected"]: 1}
    fields = {f["field"]: f["count"] for f in total["topFields"]}
    assert fields == {"psnName": 1, "imgExamType": 1}
    # one row per institution and day
    assert [(r["institution"], r["day"], r["sent"]) for r in report["rows"]] == [("H51080200001", "2025-11-28", 1),
                                                                                  ("H51080200001", "2025-12-01", 3)]


async def test_a_later_success_wins_and_transport_faults_and_envelope_refusals_are_reasons(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.db")
    await journal.open()
    try:
        a, b = _record("A", "2", "2025-12-01 08:00:00"), _record("B", "2", "2025-12-01 08:00:00")
        lost = _entry(1, [a], None, started=1000.0)  # no answer: a timeout
        journal.record(lost)
        refused = _entry(1, [b], None, started=1001.0, envelope=(1021, "密钥值 key 与交易机构「H51080200001」不匹配"))
        journal.record(refused)
        tracker = Tracker(journal, Settings)
        await tracker.refresh()
        first = {r["reason"] for r in tracker.report({})["total"]["failedByReason"]}
        assert first == {DASHBOARD["reason_hop1_transport"].format(transport="超时"),
                         DASHBOARD["reason_hop1_envelope"].format(code=1021)}
        assert {f["field"] for f in tracker.report({})["total"]["topFields"]} == {"key", ""}
        # resent: both saved by the center, one indexed, one still waiting in the center's outbox
        journal.record(_entry(1, [a, b], [("1", "保存数据成功")] * 2, started=1002.0))
        journal.record(_entry(2, [a], [("1", "保存数据成功")], started=1003.0))
        await tracker.refresh()
        total = tracker.report({"B": ("pending", None, None)})["total"]
        assert (total["indexed"], total["inProgress"], total["failed"]) == (1, 1, 0)
        # the journal reset: the tracker starts again
        await journal.reset()
        await tracker.refresh()
        assert tracker.report({})["total"]["sent"] == 0
    finally:
        await journal.close()


async def test_a_summary_style_answer_applies_to_every_record(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.db")
    await journal.open()
    try:
        records = [_record(x, "2", "2025-12-01 08:00:00") for x in "ABC"]
        journal.record(_entry(1, records, [("1", "保存数据成功")] * 3, started=1.0))
        journal.record(_entry(2, records, None, started=2.0, summary=("1", "保存数据成功")))
        tracker = Tracker(journal, Settings)
        await tracker.refresh()
        assert tracker.report({})["total"]["indexed"] == 3
    finally:
        await journal.close()


def test_fields_named_by_code_by_chinese_name_and_for_duplicates() -> None:
    assert fields_named("数据校验失败：psnName(人员姓名): 必填项缺失；certno(证件号码): 长度 60 超过上限 50") == \
        ["psnName", "certno"]
    assert fields_named("影像（imgInfoDcm）未能保存任何 DICOM 实例") == ["imgInfoDcm"]
    assert "imgExamType" in fields_named("省平台校验不通过：检查项目与影像检查类型不符")
    assert fields_named("索引号重复：X 已由其他记录使用") == ["hiImgIndx"]
    assert fields_named("密钥值 key 与交易机构「H」不匹配", envelope=True) == ["key"]
    assert fields_named("保存数据成功") == []
    assert fields_named("字段名 hiImgIdx 是文档示例中的拼写（勘误 #2）") == ["hiImgIdx"]


def test_answers_are_read_by_position_by_index_and_as_a_summary() -> None:
    recs = [{" hiImgIndx": "A"}, {"hiImgIdx": "B"}]
    by_pos = record_answers(recs, orjson.dumps({"code": 0, "data": [{"succFlag": "1"}, {"succFlag": "-1"}]}).decode())
    assert [a.flag if a else None for a in by_pos] == ["1", "-1"]
    by_index = record_answers(recs, orjson.dumps({"code": 0, "data": [{"hiImgIndx": "B", "succFlag": "0"}]}).decode())
    assert [a.flag if a else None for a in by_index] == [None, "0"]
    summary = record_answers(recs, orjson.dumps({"code": 0, "data": [{"hiImgIdx": None, "succFlag": "1"}]}).decode())
    assert [a.flag if a else None for a in summary] == ["1", "1"]


async def test_csv_is_utf8_with_bom_chinese_columns_and_the_report_numbers(chain: Sandbox) -> None:
    run = await run_scenario_here(chain, "province-partial-failure")
    assert run["state"] == "passed"
    dash = Dashboard(chain)
    report = await dash.quality()
    body = await dash.quality_csv()
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0] == [zh for _, zh, _ in QUALITY_COLUMNS]
    assert rows[0][:4] == ["机构编码", "机构名称", "检查日期", "已发送检查"]
    keys = [k for k, _, _ in QUALITY_COLUMNS]
    last = dict(zip(keys, rows[-1], strict=True))
    assert last["institution"] == DASHBOARD["all_institutions"]
    for key in ("sent", "indexed", "failed", "radiologyNotIndexed", "exposureYuan"):
        assert int(last[key]) == report["total"][key]
    assert "省级模块拒收" in last["failedByReason"]
    english = (await dash.quality_csv("en")).decode("utf-8-sig").splitlines()[0]
    assert english.startswith("Institution code,Institution,Exam date,Exams sent")


# ---- hand-made journal entries --------------------------------------------------------------------------------

def _record(tag: str, exam_type: str, published: str) -> dict[str, Any]:
    return {"hiImgIndx": tag, "fixmedinsCode": "H51080200001", "psnName": "李丽", "certno": "510802199001010022",
            "imgExamType": exam_type, "examDate": published[:10], "rpotPubDate": published,
            "examRpotLinkUrl": f"http://x/report/{tag}", "imgInfoLinkUrl": f"http://x/viewer/{tag}",
            "imgDldLink": f"http://x/dicomweb/studies/{tag}"}


def _entry(hop: int, records: list[dict[str, Any]], flags: list[tuple[str, str]] | None, *, started: float,
           envelope: tuple[int, str] | None = None, summary: tuple[str, str] | None = None) -> Entry:
    roles = {1: ("hospital", "center"), 2: ("center", "province")}[hop]
    message = {"infno": "x", "msgid": f"M{hop}{started}", "infTime": "2025-12-01 09:00:00",
               "infCode": "H51080200001", "key": "k", "data": records}
    entry = Entry(hop=hop, from_role=roles[0], to_role=roles[1], side="server", url="http://x",
                  request=orjson.dumps(message).decode(), started=started)
    describe_request(entry, message)
    if envelope is not None:
        classify(entry, 200, orjson.dumps({"code": envelope[0], "type": "error", "message": envelope[1],
                                           "data": None}).decode())
    elif summary is not None:
        classify(entry, 200, orjson.dumps({"code": 0, "message": "成功",
                                           "data": [{"hiImgIndx": None, "succFlag": summary[0],
                                                     "message": summary[1]}]}).decode())
    elif flags is None:
        classify(entry, None, None, transport="timeout")
    else:
        data = [{"hiImgIndx": r["hiImgIndx"], "succFlag": f, "message": m} for r, (f, m) in zip(records, flags, strict=True)]
        classify(entry, 200, orjson.dumps({"code": 0, "message": "x", "data": data}).decode())
    return entry


def _has_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


async def test_english_mode_shows_steps_expectations_and_csv_reasons_in_english(chain: Sandbox) -> None:
    run = await run_scenario_here(chain, "province-partial-failure", reset=True)
    assert run["state"] == "passed", run
    dash = Dashboard(chain)
    view = dash.run_view()
    assert view is not None
    for step in view["steps"]:
        assert step["labelEn"] and not _has_chinese(step["labelEn"]), step
    for expectation in view["expectations"]:  # the words; an expected value may be the province's Chinese text
        head = expectation["textEn"].split(" contains ")[0].split(" = ")[0]
        assert head and not _has_chinese(head), expectation
    assert view["steps"][0]["labelEn"] == "1. send 10 exams"
    report = await dash.quality()
    reasons = {r["reasonEn"] for r in report["total"]["failedByReason"]}
    assert reasons == {"refused by the provincial module (succFlag -1)"}
    rows = list(csv.reader(io.StringIO((await dash.quality_csv("en")).decode("utf-8-sig"))))
    column = [en for _, _, en in QUALITY_COLUMNS].index("Failures by reason")
    assert rows[-1][column] == "refused by the provincial module (succFlag -1) ×2"
    fields = rows[-1][column + 1]
    assert fields and not _has_chinese(fields)
