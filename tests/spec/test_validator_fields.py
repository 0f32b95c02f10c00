"""Field rules of the validator: lengths at the boundary, dictionaries, dates, decimals, checksums."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.spec import HOP1_FIELDS, HOP2_FIELDS, Kind
from sandbox.spec.dicts import DICTIONARIES
from sandbox.validate import Mode, RecordResult, validator

from .helpers import valid_record


def check(hop: int, mode: str = "strict", **changes: Any) -> RecordResult:
    rec = valid_record(hop)
    for k, v in changes.items():
        if v is _DROP:
            rec.pop(k, None)
        else:
            rec[k] = v
    return validator(hop, mode).validate_record(rec, 1)


_DROP = object()


def codes(result: RecordResult, level: str = "errors") -> list[tuple[str | None, str]]:
    return [(p.field, p.code) for p in getattr(result, level)]


@pytest.mark.parametrize("hop", [1, 2])
def test_a_complete_valid_record_has_no_problems_in_strict_mode(hop: int) -> None:
    r = check(hop)
    assert r.ok and not r.warnings, [p.text() for p in r.errors + r.warnings]


LENGTH_FIELDS = [(hop, f.code, f.length) for hop, fields in ((1, HOP1_FIELDS), (2, HOP2_FIELDS))
                 for f in fields if f.length is not None and f.kind is not Kind.FILE]


@pytest.mark.parametrize(("hop", "code", "limit"), LENGTH_FIELDS, ids=[f"hop{h}-{c}" for h, c, _ in LENGTH_FIELDS])
def test_every_length_limit_is_enforced_at_the_boundary(hop: int, code: str, limit: int) -> None:
    at_limit = check(hop, **{code: "1" * limit})
    assert (code, "too_long") not in codes(at_limit)
    over = check(hop, **{code: "1" * (limit + 1)})
    problem = next(p for p in over.errors if p.field == code)
    assert problem.code == "too_long"
    assert problem.text() == f"第1条 {code}({problem.field_name}): 长度 {limit + 1} 超过上限 {limit}"


@pytest.mark.parametrize("hop", [1, 2])
def test_file_and_link_fields_are_limited_to_500_characters(hop: int) -> None:
    code = "imgInfoDcm" if hop == 1 else "imgDldLink"
    base = "http://127.0.0.1:8700/"
    assert check(hop, **{code: base + "a" * (500 - len(base))}).ok
    assert (code, "too_long") in codes(check(hop, **{code: base + "a" * (501 - len(base))}))


@pytest.mark.parametrize("hop", [1, 2])
def test_missing_required_fields_are_each_named(hop: int) -> None:
    v = validator(hop, "strict")
    r = v.validate_record({}, 3)
    assert {p.field for p in r.errors} == set(v.tx.required)
    assert all(p.code == "missing" and p.record == 3 for p in r.errors)


def test_blank_required_field_is_reported_as_empty_and_blank_optional_as_absent() -> None:
    r = check(1, psnName="   ", tel=" ")
    assert codes(r) == [("psnName", "empty")]
    assert "tel" not in r.values


@pytest.mark.parametrize(("code", "dictionary"), [("gend", "gend"), ("hospLv", "hosp_lv"),
                                                  ("imgExamType", "img_exam_type"), ("psnCertType", "psn_cert_type"),
                                                  ("examWay", "exam_way"), ("examRsltCode", "exam_rslt_code")])
def test_every_dictionary_code_is_accepted_and_others_refused(code: str, dictionary: str) -> None:
    for value in DICTIONARIES[dictionary]:
        changes: dict[str, Any] = {code: value}
        if code == "psnCertType" and value not in ("111", "112"):
            changes["certno"] = "E12345678"
        assert check(1, **changes).ok, (code, value)
    bad = check(1, **{code: "77"})
    assert [p.field for p in bad.errors] == [code]


def test_multi_value_fields_take_single_spaces() -> None:
    assert check(1, imgExamType="2 3", examWay="1 2", examPart="A01010100 B02020200").ok
    assert codes(check(1, imgExamType="2,3")) == [("imgExamType", "not_dict_code")]
    assert codes(check(1, imgExamType="2  3")) == [("imgExamType", "multi_separator")]


def test_dictionary_error_lists_the_allowed_codes_in_chinese() -> None:
    r = check(1, gend="3")
    assert r.errors[0].message == "代码「3」不在字典【性别 gend】中，可选值：0-未知、1-男、2-女、9-未说明性别"


@pytest.mark.parametrize("value", ["2023-02-30", "2023/04/02", "20230402", "2023-4-2", "2023-04-02 10:00:00"])
def test_bad_dates_are_refused(value: str) -> None:
    assert codes(check(1, examDate=value)) == [("examDate", "date_format")]


@pytest.mark.parametrize("value", ["2023-04-02T10:00:00", "2023-04-02 25:00:00", "2023-04-02 10:00", "明天"])
def test_bad_datetimes_are_refused(value: str) -> None:
    assert codes(check(1, rpotDate=value)) == [("rpotDate", "datetime_format")]


def test_date_only_datetime_is_a_warning_in_lenient_and_an_error_in_strict() -> None:
    lenient = check(1, "lenient", rpotDate="2023-04-02")
    assert lenient.ok and codes(lenient, "warnings") == [("rpotDate", "date_only")]
    assert lenient.values["rpotDate"] == "2023-04-02 00:00:00"
    assert codes(check(1, rpotDate="2023-04-02")) == [("rpotDate", "date_only_strict")]


@pytest.mark.parametrize(("hop", "value", "code"), [
    (1, 35, None), (1, 35.5, None), (1, 9999.9, None), (1, 0, None),
    (1, 35.55, "decimal_scale"), (1, 10000, "decimal_precision"), (1, -1, "decimal_negative"),
    (2, 999.9, None), (2, 1000, "decimal_precision"), (1, True, "decimal_type"), (1, [35], "decimal_type"),
    (1, "abc", "decimal_string"),
])
def test_age_follows_its_bigdecimal_precision_and_scale(hop: int, value: Any, code: str | None) -> None:
    r = check(hop, age=value)
    assert [c for f, c in codes(r) if f == "age"][:1] == ([code] if code else [])


def test_age_as_string_is_accepted_with_a_warning_in_lenient_mode() -> None:
    r = check(2, "lenient", age="35")
    assert r.ok and r.values["age"] == 35
    assert codes(r, "warnings") == [("age", "decimal_string")]
    assert codes(check(2, "lenient", age="abc")) == [("age", "decimal_format")]


def test_number_where_a_string_is_due_is_coerced_only_in_lenient_mode() -> None:
    lenient = check(1, "lenient", gend=1)
    assert lenient.ok and lenient.values["gend"] == "1"
    assert codes(lenient, "warnings") == [("gend", "type_coerced")]
    assert codes(check(1, gend=1)) == [("gend", "type_string")]
    assert codes(check(1, "lenient", psnName={"a": 1})) == [("psnName", "type_string")]


def test_resident_id_checksum_is_checked_for_id_card_types_only() -> None:
    assert codes(check(1, certno="510802199001010021")) == [("certno", "idcard_checksum")]
    lenient = check(1, "lenient", certno="510802199001010021")
    # the index still carries the old number, so its disagreement is warned too
    assert lenient.ok and codes(lenient, "warnings") == [("certno", "idcard_checksum"), ("hiImgIndx", "index_mismatch")]
    assert check(1, psnCertType="414", certno="E12345678").ok


def test_fifteen_digit_old_id_is_only_a_warning() -> None:
    r = check(1, certno="510802900101002")
    assert r.ok and codes(r, "warnings") == [("certno", "idcard_15"), ("hiImgIndx", "index_mismatch")]


def test_uscc_checksum_is_checked() -> None:
    assert codes(check(2, stogInsUscc="12510800MB0L31003X")) == [("stogInsUscc", "uscc_checksum")]
    assert codes(check(2, stogInsUscc="12345")) == [("stogInsUscc", "uscc_format")]


@pytest.mark.parametrize(("code", "value", "problem"), [
    ("examAdmdvs", "51080", "admdvs_format"), ("examPart", "a01010100", "exam_part_format"),
    ("fixmedinsCode", "51080200001", "fixmedins_format"), ("postcode", "62800", "postcode_format"),
])
def test_code_formats(code: str, value: str, problem: str) -> None:
    assert codes(check(1, **{code: value})) == [(code, problem)]


def test_hop2_links_must_be_http_urls() -> None:
    assert codes(check(2, examRpotLinkUrl="ftp://x/y")) == [("examRpotLinkUrl", "url_format")]


def test_hop1_files_take_urls_dicom_uids_and_inline_base64_in_lenient_mode() -> None:
    assert check(1, imgInfoDcm="dicom:1.2.840.113619.2.55.3").ok
    assert codes(check(1, imgInfoDcm="dicom:1.2.x")) == [("imgInfoDcm", "file_format")]
    assert codes(check(1, examRpotPdfI="dicom:1.2.3")) == [("examRpotPdfI", "file_format")]
    inline = "data:application/pdf;base64," + "JVBERi0xLjQK" * 10
    lenient = check(1, "lenient", examRpotPdfI=inline)
    assert lenient.ok and codes(lenient, "warnings") == [("examRpotPdfI", "file_inline")]
    assert codes(check(1, examRpotPdfI=inline)) == [("examRpotPdfI", "file_inline_strict")]
    assert codes(check(1, "lenient", examRpotPdfI="@" * 80)) == [("examRpotPdfI", "file_inline_bad")]


def test_index_must_follow_the_configured_profile() -> None:
    r = check(1, hiImgIndx="ABC")
    assert codes(r) == [("hiImgIndx", "index_format")]
    assert "证件类型(3)-证件号码(18)" in r.errors[0].message
    lenient = check(1, "lenient", hiImgIndx="ABC")
    assert lenient.ok and codes(lenient, "warnings") == [("hiImgIndx", "index_format")]


def test_index_disagreeing_with_the_exam_date_is_warned() -> None:
    r = check(1, examDate="2023-05-01")
    assert r.ok and codes(r, "warnings") == [("hiImgIndx", "index_mismatch")]


def test_draft_profile_is_selectable() -> None:
    v = validator(1, Mode.STRICT, "nhsa-2025-draft")
    r = v.validate_record(valid_record(1), 1)
    assert [p.code for p in r.errors] == ["index_format"]
    assert "人员管理码(26)" in r.errors[0].message


def test_hostile_values_are_reported_not_crashing() -> None:
    for value in ["'; DROP TABLE exams; --", "\x00\x01", "𠀀" * 60, "<script>alert(1)</script>" * 3]:
        r = check(1, psnName=value)
        expected = [("psnName", "control_char")] if value == "\x00\x01" else [("psnName", "too_long")]
        assert r.ok or codes(r) == expected
