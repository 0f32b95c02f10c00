"""Whole messages: envelope checks, batches, every ERRATA variant in both modes, the document's examples."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from sandbox.validate import detect_hop, validate_message

from .helpers import message, valid_record


def errors(report: Any) -> list[tuple[int | None, str | None, str]]:
    return [(p.record, p.field, p.code) for p in report.errors]


def warnings(report: Any) -> list[tuple[int | None, str | None, str]]:
    return [(p.record, p.field, p.code) for p in report.warnings]


@pytest.mark.parametrize("hop", [1, 2])
def test_a_valid_batch_is_valid_in_both_modes(hop: int) -> None:
    msg = message(hop, [valid_record(hop, i) for i in range(5)])
    for mode in ("strict", "lenient"):
        report = validate_message(msg, hop, mode)
        assert report.valid and not report.problems, [p.text() for p in report.problems]
        assert len(report.records) == 5


def test_all_problems_are_returned_not_the_first() -> None:
    recs = [valid_record(1, i) for i in range(3)]
    recs[0]["gend"] = "7"
    recs[2]["certno"] = "x" * 60
    recs[2]["examDate"] = "yesterday"
    report = validate_message(message(1, recs, msgid="short"), 1, "strict")
    assert errors(report) == [
        (None, "msgid", "env_msgid"),
        (1, "gend", "not_dict_code"),
        (3, "certno", "too_long"),
        (3, "examDate", "date_format"),
    ]
    assert report.records[1].ok


def test_problem_text_names_position_field_and_chinese_name() -> None:
    rec = valid_record(1)
    rec["certno"] = "1" * 60
    report = validate_message(message(1, [valid_record(1, 5), rec]), 1, "strict")
    assert [p.text() for p in report.errors] == ["第2条 certno(证件号码): 长度 60 超过上限 50"]


def test_duplicate_index_within_a_batch_is_an_error_on_the_later_record() -> None:
    recs = [valid_record(1, 0), valid_record(1, 1), valid_record(1, 0)]
    report = validate_message(message(1, recs), 1, "lenient")
    assert errors(report) == [(3, "hiImgIndx", "duplicate_in_batch")]
    assert "第 1 条已出现" in report.errors[0].message


@pytest.mark.parametrize(("env", "field", "code"), [
    ({"infno": "saveSomething"}, "infno", "env_infno"),
    ({"msgid": "H51080200001-2023"}, "msgid", "env_msgid"),
    ({"infTime": "2023/04/02 15:30"}, "infTime", "env_inftime"),
    ({"key": ""}, "key", "env_empty"),
    ({"key": None}, "key", "env_missing"),
    ({"infCode": "X" * 31}, "infCode", "too_long"),
    ({"msgid": 123}, "msgid", "type_string"),
    ({"data": 5}, "data", "env_data_type"),
    ({"data": []}, "data", "env_data_empty"),
    ({"data": "not json"}, "data", "env_data_bad_string"),
])
def test_envelope_errors_are_named(env: dict[str, Any], field: str, code: str) -> None:
    report = validate_message(message(1, [valid_record(1)], **env), 1, "lenient")
    assert (None, field, code) in errors(report)
    assert not report.valid


def test_msgid_must_start_with_the_sending_institution() -> None:
    msg = message(1, [valid_record(1)], msgid="H51080200002202304021530000001")
    assert (None, "msgid", "env_msgid_inst") in errors(validate_message(msg, 1, "strict"))
    assert (None, "msgid", "env_msgid_inst") in warnings(validate_message(msg, 1, "lenient"))


def test_data_over_40000_characters_is_refused() -> None:
    recs = [valid_record(1, i) for i in range(40)]
    report = validate_message(message(1, recs), 1, "lenient")
    assert report.data_chars > 40000
    assert (None, "data", "env_data_too_long") in errors(report)
    fits = validate_message(message(1, recs[:19]), 1, "lenient")
    assert fits.data_chars <= 40000 and fits.valid


def test_records_that_are_not_objects_are_reported() -> None:
    report = validate_message(message(1, ["a string", 5, valid_record(1)]), 1, "lenient")
    assert errors(report) == [(1, None, "record_type"), (2, None, "record_type")]
    assert report.errors[0].message == "记录应为 JSON 对象，实际为字符串"


def test_non_object_message_is_reported() -> None:
    report = validate_message([1, 2], 1, "lenient")
    assert errors(report) == [(None, None, "env_not_object")]


def test_unknown_fields_are_reported_never_kept() -> None:
    rec = valid_record(1)
    rec["extraThing"] = "x"
    lenient = validate_message(message(1, [rec]), 1, "lenient")
    assert lenient.valid and warnings(lenient) == [(1, "extraThing", "unknown_field")]
    assert "extraThing" not in lenient.records[0].values
    assert errors(validate_message(message(1, [rec]), 1, "strict")) == [(1, "extraThing", "unknown_field_strict")]


# One row per ERRATA variant: (erratum, hop, mutate message, where the problem is, lenient code, strict code)
def _rename(old: str, new: str) -> Callable[[dict[str, Any]], None]:
    def mutate(msg: dict[str, Any]) -> None:
        rec = msg["data"][0]
        rec[new] = rec.pop(old)
    return mutate


def _set(**values: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(msg: dict[str, Any]) -> None:
        msg["data"][0].update(values)
    return mutate


def _env(**values: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(msg: dict[str, Any]) -> None:
        msg.update(values)
    return mutate


def _files_as_links(msg: dict[str, Any]) -> None:
    rec = msg["data"][0]
    rec["examRpotLinkUrl"] = rec.pop("examRpotPdfI")
    rec["imgDldLink"] = rec.pop("imgInfoDcm")


ERRATA = [
    (1, 1, _env(infno="saveExamRpotImgIdx"), "infno", "env_infno_variant", "env_infno_variant_strict"),
    (1, 2, _env(infno="saveExamRpotImgIdx"), "infno", "env_infno_variant", "env_infno_variant_strict"),
    (2, 1, _rename("hiImgIndx", "hiImgIdx"), "hiImgIdx", "variant_spelling", "variant_spelling_strict"),
    (2, 2, _rename("hiImgIndx", "hiImgIdx"), "hiImgIdx", "variant_spelling", "variant_spelling_strict"),
    (3, 1, _rename("elecHlCardNo", "elecHiCardNo"), "elecHiCardNo", "variant_spelling", "variant_spelling_strict"),
    (4, 1, _rename("postcode", "poscode"), "poscode", "variant_spelling", "variant_spelling_strict"),
    (4, 2, _rename("poscode", "postcode"), "postcode", "variant_spelling", "variant_spelling_strict"),
    (5, 2, _rename("stogInsUscc", "stogInsUsec"), "stogInsUsec", "variant_spelling", "variant_spelling_strict"),
    (5, 2, _rename("stogInsUscc", "stogInsUsc"), "stogInsUsc", "variant_spelling", "variant_spelling_strict"),
    (5, 1, _set(stogInsUsc="12510800MB0L310038"), "stogInsUsc", "foreign_field", "foreign_field_strict"),
    (6, 1, _files_as_links, "examRpotPdfI", "file_substitute", "missing"),
    (7, 2, _set(age="35"), "age", "decimal_string", "decimal_string"),
    (8, 1, _set(examRsltCode="Normal"), "examRsltCode", "erratum_dict_code", "erratum_dict_code"),
    (9, 1, _set(examWay="Inpatient"), "examWay", "erratum_dict_code", "erratum_dict_code"),
    (10, 1, _set(diagTime="2023-04-01"), "diagTime", "date_only", "date_only_strict"),
    (11, 1, _env(infCode=" "), "infCode", "env_infcode_from_msgid", "env_empty"),
    (13, 1, lambda m: m.update(data=json.dumps(m["data"], ensure_ascii=False)), "data", "env_data_string",
     "env_data_string_strict"),
]


@pytest.mark.parametrize(("erratum", "hop", "mutate", "field", "lenient_code", "strict_code"), ERRATA,
                         ids=[f"#{e[0]}-hop{e[1]}-{e[3]}" for e in ERRATA])
def test_each_errata_variant_is_accepted_in_lenient_and_refused_in_strict(
    erratum: int, hop: int, mutate: Callable[[dict[str, Any]], None], field: str, lenient_code: str,
    strict_code: str,
) -> None:
    msg = message(hop, [valid_record(hop)])
    mutate(msg)
    lenient = validate_message(msg, hop, "lenient")
    assert lenient.valid, [p.text() for p in lenient.errors]
    named = [p for p in lenient.warnings if p.field == field and p.code == lenient_code]
    assert named, [p.text() for p in lenient.warnings]
    strict = validate_message(msg, hop, "strict")
    assert not strict.valid
    assert any(p.field == field and p.code == strict_code for p in strict.errors), [p.text() for p in strict.errors]


def test_lenient_mode_normalises_variants_to_the_table_names() -> None:
    msg = message(2, [valid_record(2)])
    _rename("stogInsUscc", "stogInsUsec")(msg)
    _rename("hiImgIndx", "hiImgIdx")(msg)
    values = validate_message(msg, 2, "lenient").records[0].values
    assert "stogInsUscc" in values and "hiImgIndx" in values and "stogInsUsec" not in values


def test_msgid_time_format_typo_is_read_as_yyyyMMddHHmmss() -> None:  # ERRATA #12
    ok = message(1, [valid_record(1)], msgid="H51080200001202304021530590001")
    assert validate_message(ok, 1, "strict").valid
    bad = message(1, [valid_record(1)], msgid="H5108020000120230402153059001")
    assert (None, "msgid", "env_msgid") in errors(validate_message(bad, 1, "lenient"))
    (problem,) = [p for p in validate_message(bad, 1, "lenient").errors if p.field == "msgid"]
    assert problem.message.endswith("共 30 位（实际 29 位）")


def test_msgid_of_30_characters_with_an_impossible_time_names_the_time_not_the_length() -> None:
    bad = message(1, [valid_record(1)], msgid="H51080200001202513450000000001")  # month 13
    (problem,) = [p for p in validate_message(bad, 1, "lenient").errors if p.field == "msgid"]
    assert problem.code == "env_msgid_time"
    assert "「20251345000000」不是有效的 yyyyMMddHHmmss 时间" in problem.message and "长度 30 位正确" in problem.message
    assert "共 30 位（" not in problem.message


def test_both_spellings_present_keeps_the_table_spelling_and_warns() -> None:
    rec = valid_record(1)
    rec["hiImgIdx"] = "something else"
    report = validate_message(message(1, [rec]), 1, "lenient")
    assert report.valid and (1, "hiImgIdx", "duplicate_key") in warnings(report)
    assert report.records[0].values["hiImgIndx"] == rec["hiImgIndx"]


def test_hop_is_detected_from_infno_or_fields() -> None:
    assert detect_hop(message(1, [valid_record(1)])) == 1
    assert detect_hop(message(2, [valid_record(2)])) == 2
    assert detect_hop({"infno": "saveExamRpotImgIdx", "data": [{"stogInsUsec": "x"}]}) == 2
    assert detect_hop({"infno": "saveExamRpotImgIdx", "data": [{"stogInsUsc": "x"}]}) == 1
    assert detect_hop({"infno": "x", "data": [{}]}) is None


HOP1_EXAMPLE_WARNINGS = {
    ("infCode", "env_infcode_from_msgid"), ("infno", "env_infno_variant"), ("hiImgIdx", "variant_spelling"),
    ("elecHiCardNo", "variant_spelling"), ("poscode", "variant_spelling"), ("stogInsUsc", "foreign_field"),
    ("examRpotPdfI", "file_substitute"), ("imgInfoDcm", "file_substitute"), ("imgInfoLinkUrl", "foreign_field"),
    ("diagTime", "date_only"), ("appyDate", "date_only"), ("sympBegndate", "date_only"),
    ("sympEnddate", "date_only"), ("rpotDate", "date_only"), ("chkDate", "date_only"), ("sdryChkDate", "date_only"),
    ("rpotPubDate", "date_only"), ("examWay", "erratum_dict_code"), ("examRsltCode", "erratum_dict_code"),
    ("postcode", "postcode_format"), ("certno", "idcard_checksum"), ("examTecnIdcard", "idcard_format"),
    ("rpotDrIdcard", "idcard_format"), ("chkDrIdcard", "idcard_format"), ("sdryChkDrIdcard", "idcard_format"),
    ("hiImgIndx", "index_mismatch"),
}


def test_document_hop1_example_is_valid_in_lenient_mode_with_the_expected_warnings(doc_example: Any) -> None:
    report = validate_message(doc_example(1), mode="lenient")
    assert report.hop == 1 and report.valid
    assert {(p.field, p.code) for p in report.warnings} == HOP1_EXAMPLE_WARNINGS


def test_document_hop1_example_fails_strict_mode_with_the_expected_errors(doc_example: Any) -> None:
    report = validate_message(doc_example(1), mode="strict")
    got = {(p.field, p.code) for p in report.errors}
    assert {("infno", "env_infno_variant_strict"), ("infCode", "env_empty"),
            ("hiImgIdx", "variant_spelling_strict"), ("elecHiCardNo", "variant_spelling_strict"),
            ("poscode", "variant_spelling_strict"), ("stogInsUsc", "foreign_field_strict"),
            ("examRpotLinkUrl", "foreign_field_strict"), ("imgDldLink", "foreign_field_strict"),
            ("examRpotPdfI", "missing"), ("imgInfoDcm", "missing"), ("certno", "idcard_checksum"),
            ("examWay", "erratum_dict_code"), ("examRsltCode", "erratum_dict_code"),
            ("diagTime", "date_only_strict")} <= got
    assert len(report.errors) == 27


def test_document_hop2_example_is_valid_in_lenient_mode_with_the_expected_warnings(doc_example: Any) -> None:
    report = validate_message(doc_example(2), mode="lenient")
    assert report.hop == 2 and report.valid
    got = {(p.field, p.code) for p in report.warnings}
    assert {("infno", "env_infno_variant"), ("hiImgIdx", "variant_spelling"), ("stogInsUsec", "variant_spelling"),
            ("age", "decimal_string"), ("stogInsUscc", "uscc_checksum"), ("certno", "idcard_checksum"),
            ("examRsltCode", "erratum_dict_code"), ("examWay", "erratum_dict_code")} <= got
    assert len(report.warnings) == 24


def test_document_hop2_example_fails_strict_mode_with_the_expected_errors(doc_example: Any) -> None:
    report = validate_message(doc_example(2), mode="strict")
    got = {(p.field, p.code) for p in report.errors}
    assert {("infno", "env_infno_variant_strict"), ("stogInsUsec", "variant_spelling_strict"),
            ("age", "decimal_string"), ("stogInsUscc", "uscc_checksum")} <= got
    assert len(report.errors) == 22


@pytest.mark.parametrize("mode", ["lenient", "strict"])
def test_a_repeated_key_inside_data_sent_as_a_string_is_an_error_naming_the_key(mode: str) -> None:
    """ERRATA #13 lets `data` be a JSON string; a key repeated inside it would silently keep its last value."""
    msg = message(1, [valid_record(1)])
    text = json.dumps(msg["data"], ensure_ascii=False)
    msg["data"] = text.replace('"psnName":', '"psnName": "WRONG", "psnName":', 1)
    result = validate_message(msg, 1, mode)
    assert not result.valid
    (problem,) = [p for p in result.errors if p.code == "env_data_duplicate_key"]
    assert problem.field == "data" and "psnName" in problem.message and "2 次" in problem.message
