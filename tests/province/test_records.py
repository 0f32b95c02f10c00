"""Per-record answers: `1` saved as sent, `0` saved with part of it dropped or rewritten, `-1` rejected."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.config import Settings
from sandbox.spec.checksums import uscc_check_char
from sandbox.typedefs import SETTINGS
from sandbox.validate import Mode
from tests.province.helpers import message, record, send, stored

# (case id, field overrides of a valid record, words the -1 message must contain)
INVALID: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("required_field_missing", {"psnName": None}, ("psnName", "人员姓名", "必填项缺失")),
    ("required_field_blank", {"imgExamItem": "   "}, ("imgExamItem", "必填项为空")),
    ("longer_than_the_table", {"psnName": "李" * 51}, ("psnName", "长度 51 超过上限 50")),
    ("object_for_a_string", {"tel": {"a": 1}}, ("tel", "应为字符串")),
    ("not_in_its_dictionary", {"gend": "5"}, ("gend", "性别", "5")),
    ("hospital_level_unknown", {"hospLv": "99"}, ("hospLv", "医院等级")),
    ("exam_type_badly_separated", {"imgExamType": "2,3"}, ("imgExamType",)),
    ("date_in_another_format", {"examDate": "2025/03/01"}, ("examDate", "yyyy-MM-dd")),
    ("datetime_nonsense", {"rpotDate": "昨天"}, ("rpotDate", "yyyy-MM-dd HH:mm:ss")),
    ("age_not_a_number", {"age": "三十五"}, ("age", "数值")),
    ("age_too_many_digits", {"age": 1000}, ("age",)),
    ("age_two_decimals", {"age": 35.25}, ("age", "小数位")),
    ("link_not_http", {"imgDldLink": "ftp://example.com/x"}, ("imgDldLink", "http")),
    ("admdvs_not_six_digits", {"examAdmdvs": "5108"}, ("examAdmdvs", "6 位")),
    ("exam_part_lowercase", {"examPart": "a01010000"}, ("examPart", "9 位")),
]


@pytest.mark.parametrize("overrides,words", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
async def test_invalid_record_is_rejected_with_its_field_named(
    client: Any, settings: Settings, overrides: dict[str, Any], words: tuple[str, ...]
) -> None:
    rec = record(settings, 3, **overrides)
    status, body = await send(client, message(settings, [rec]))
    assert body["code"] == -1 and body["type"] == "error"
    (answer,) = body["data"]
    assert answer["succFlag"] == "-1"
    assert answer["hiImgIndx"] == rec["hiImgIndx"]
    assert answer["message"].startswith("数据校验失败")
    for word in words:
        assert word in answer["message"]
    assert await stored(client) == (0, 1)  # the answer is remembered for its msgid, no index stored


async def test_record_that_is_not_an_object_is_rejected_without_an_index(client: Any, settings: Settings) -> None:
    status, body = await send(client, message(settings, ["not a record", record(settings, 1)]))
    assert [a["succFlag"] for a in body["data"]] == ["-1", "1"]
    assert body["data"][0]["hiImgIndx"] is None
    assert "JSON 对象" in body["data"][0]["message"]


async def test_storage_uscc_of_another_institution_is_rejected(client: Any, settings: Settings) -> None:
    other = "91310106575864243" + uscc_check_char("91310106575864243")
    status, body = await send(client, message(settings, [record(settings, 1, stogInsUscc=other)]))
    (answer,) = body["data"]
    assert answer["succFlag"] == "-1"
    assert other in answer["message"] and settings.center.code in answer["message"]
    assert "不属于发送机构" in answer["message"]
    assert (await stored(client))[0] == 0


async def test_clean_record_is_saved_with_flag_1(client: Any, settings: Settings) -> None:
    status, body = await send(client, message(settings, [record(settings, 1)]))
    assert status == 200
    assert body == {"code": 0, "type": "success", "message": "成功",
                    "data": [{"hiImgIndx": record(settings, 1)["hiImgIndx"], "succFlag": "1", "message": "保存数据成功"}]}
    assert await stored(client) == (1, 1)


async def test_batch_with_mixed_outcomes_answers_each_record_in_order(client: Any, settings: Settings) -> None:
    good = record(settings, 1)
    renamed = record(settings, 2)
    renamed["hiImgIdx"] = renamed.pop("hiImgIndx")  # ERRATA #2: renamed, saved in full, named as 提示
    dropped = record(settings, 4, patientColor="blue")  # not a field: dropped, so not saved in full
    bad = record(settings, 3, gend="7")
    status, body = await send(client, message(settings, [good, renamed, dropped, bad]))
    assert [a["succFlag"] for a in body["data"]] == ["1", "1", "0", "-1"]
    assert body["code"] == 0 and body["type"] == "success"
    assert "2 条成功" in body["message"] and "1 条部分失败" in body["message"] and "1 条失败" in body["message"]
    assert body["data"][1]["message"].startswith("保存数据成功（提示：hiImgIdx")
    assert "勘误 #2" in body["data"][1]["message"]
    assert body["data"][2]["message"].startswith("保存数据成功，部分数据失败：patientColor")
    assert (await stored(client))[0] == 3


async def test_all_records_failing_answers_code_minus_1(client: Any, settings: Settings) -> None:
    status, body = await send(client, message(settings, [record(settings, 1, gend="7"), record(settings, 2, gend="8")]))
    assert (body["code"], body["type"]) == (-1, "error")
    assert "全部失败" in body["message"] and "2 条" in body["message"]
    assert (await stored(client))[0] == 0


async def test_document_example_is_saved_in_full_with_flag_1_naming_every_variant(
    client: Any, settings: Settings, doc_example: Any
) -> None:
    msg = doc_example(2)
    msg.update(infCode=settings.center.code, key=settings.center.key,
               msgid=settings.center.code + "202503010102030001")
    msg["data"][0]["stogInsUsec"] = settings.center.uscc  # the example's USCC is no configured center's
    status, body = await send(client, msg)
    (answer,) = body["data"]
    assert answer["succFlag"] == "1"  # every variant renamed or coerced, nothing dropped
    assert answer["message"].startswith("保存数据成功（提示：")
    assert answer["hiImgIndx"] == "111-100200300040506000-20241122143055-000000000000-000000000-123502004266007980"
    for variant in ("hiImgIdx", "stogInsUsec", "勘误 #7", "勘误 #10"):
        assert variant in answer["message"]
    assert "提示" in answer["message"]  # its failing checksums are advisory in lenient mode
    assert "saveExamRpotImgIdx" in body["message"]  # the example's infno is named on the envelope
    assert (await stored(client))[0] == 1


async def test_unknown_field_is_dropped_and_reported_with_flag_0(client: Any, settings: Settings) -> None:
    status, body = await send(client, message(settings, [record(settings, 1, patientColor="blue")]))
    (answer,) = body["data"]
    assert answer["succFlag"] == "0" and "patientColor" in answer["message"] and "忽略" in answer["message"]
    view = await (await client.get(f"/mie/api/mie/index/{record(settings, 1)['hiImgIndx']}")).json()
    assert "patientColor" not in view["data"]["record"]


async def test_date_only_datetime_is_completed_and_named_with_flag_1(client: Any, settings: Settings) -> None:
    rec = record(settings, 1, diagTime="2025-02-28")
    status, body = await send(client, message(settings, [rec]))
    assert body["data"][0]["succFlag"] == "1" and "勘误 #10" in body["data"][0]["message"]
    assert body["data"][0]["message"].startswith("保存数据成功（提示：diagTime")
    view = await (await client.get(f"/mie/api/mie/index/{rec['hiImgIndx']}")).json()
    assert view["data"]["record"]["diagTime"] == "2025-02-28 00:00:00"
    assert view["data"]["succFlag"] == "1"


async def test_advisory_warning_keeps_flag_1_with_a_note(client: Any, settings: Settings) -> None:
    rec = record(settings, 1, examTecnIdcard="510802199001010000")  # wrong GB 11643 check digit
    status, body = await send(client, message(settings, [rec]))
    (answer,) = body["data"]
    assert answer["succFlag"] == "1"
    assert answer["message"].startswith("保存数据成功（提示：") and "examTecnIdcard" in answer["message"]


@pytest.mark.parametrize("overrides", [
    {"examTecnIdcard": "510802199001010000"},
    {"patientColor": "blue"},
    {"diagTime": "2025-02-28"},
    {"age": "35"},
], ids=["checksum", "unknown_field", "date_only", "age_as_text"])
async def test_strict_mode_rejects_what_lenient_mode_reports(province: Any, overrides: dict[str, Any]) -> None:
    client = await province(mode=Mode.STRICT)
    settings = client.server.app[SETTINGS]
    status, body = await send(client, message(settings, [record(settings, 1, **overrides)]))
    assert body["data"][0]["succFlag"] == "-1"
    assert (await stored(client))[0] == 0


async def test_variant_spelling_is_rejected_in_strict_mode(province: Any) -> None:
    client = await province(mode=Mode.STRICT)
    settings = client.server.app[SETTINGS]
    rec = record(settings, 1)
    rec["stogInsUsec"] = rec.pop("stogInsUscc")
    status, body = await send(client, message(settings, [rec]))
    (answer,) = body["data"]
    assert answer["succFlag"] == "-1" and "stogInsUsec" in answer["message"] and "勘误 #5" in answer["message"]
