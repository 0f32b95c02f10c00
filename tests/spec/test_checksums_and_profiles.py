"""Checksums (GB 11643, GB 32100), formats and the hiImgIndx profiles."""

from __future__ import annotations

from datetime import datetime

import pytest

from sandbox.spec import formats
from sandbox.spec.checksums import id_check_char, id_valid, uscc_check_char, uscc_valid
from sandbox.spec.index_profiles import DOC_EXAMPLE, NHSA_2025_DRAFT, PROFILES, parts_for


@pytest.mark.parametrize("value", ["11010519491231002X", "440524188001010014", "510802199001010022"])
def test_valid_resident_ids_pass_gb11643(value: str) -> None:
    assert id_valid(value)


def test_id_check_char_is_the_standards_weighted_sum() -> None:
    # GB 11643: weights 2^(17-i) mod 11 printed in the standard; the code reads the digits in base 13
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    for n in range(0, 10**17, 7_777_777_777_777):
        first17 = f"{n:017d}"
        total = sum(int(d) * w for d, w in zip(first17, weights, strict=True))
        assert id_check_char(first17) == "10X98765432"[total % 11], first17
    with pytest.raises(ValueError):
        id_check_char("1234567890123456a")


def test_document_example_certno_fails_its_check_digit() -> None:
    assert not id_valid("100200300040506000")
    assert id_check_char("10020030004050600") == "6"


@pytest.mark.parametrize("value", ["11010519491231002Y", "1101051949123100", "abc", "110105194912310021"])
def test_malformed_or_wrong_ids_fail(value: str) -> None:
    assert not id_valid(value)


@pytest.mark.parametrize("value", ["91350100M000100Y43", "91110000600037341L", "12510800MB0L310038"])
def test_valid_usccs_pass_gb32100(value: str) -> None:
    assert uscc_valid(value)


def test_document_example_usccs_fail_their_check_character() -> None:
    assert not uscc_valid("123502004266007980")
    assert not uscc_valid("91310106575864243X")
    assert uscc_check_char("91310106575864243") == "N"


def test_uscc_refuses_letters_outside_its_charset() -> None:
    assert not uscc_valid("91350100I000100Y43")  # I is not used by GB 32100


def test_msgid_is_12_plus_14_plus_4() -> None:
    msgid = formats.make_msgid("H11010202321", datetime(2025, 3, 1, 1, 2, 3), 1)
    assert msgid == "H11010202321202503010102030001" and len(msgid) == 30
    inst, when, seq = formats.parse_msgid(msgid) or ("", None, 0)
    assert (inst, when, seq) == ("H11010202321", datetime(2025, 3, 1, 1, 2, 3), 1)
    assert formats.parse_msgid("H1101020232120250301010203001") is None  # 29 chars
    assert formats.parse_msgid("H11010202321202513010102030001") is None  # month 13


def test_document_example_index_parses_with_the_six_segment_profile() -> None:
    parts = DOC_EXAMPLE.parse(DOC_EXAMPLE.example)
    assert parts == {
        "cert_type": "111", "certno": "100200300040506000", "exam_time": "20241122143055",
        "inst_code": "000000000000", "exam_part": "000000000", "stog_uscc": "123502004266007980",
    }
    assert NHSA_2025_DRAFT.parse(DOC_EXAMPLE.example) is None


def test_draft_example_index_parses_with_the_five_segment_profile() -> None:
    parts = NHSA_2025_DRAFT.parse(NHSA_2025_DRAFT.example)
    assert parts is not None and parts["exam_time"] == "202411221430" and len(parts["psn_code"]) == 26
    assert DOC_EXAMPLE.parse(NHSA_2025_DRAFT.example) is None


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_each_profile_round_trips_build_parse(name: str) -> None:
    profile = PROFILES[name]
    parts = parts_for(profile, cert_type="111", certno="510802199001010022", exam_time="20251201093015",
                      inst_code="H51080200001", exam_part="A01010100", stog_uscc="12510800MB0L310038")
    index = profile.build(parts)
    assert len(index) == profile.length <= 100
    assert profile.parse(index) == parts


def test_profile_build_names_the_bad_segment() -> None:
    parts = parts_for(DOC_EXAMPLE, cert_type="111", certno="510802199001010022", exam_time="2025120109",
                      inst_code="H51080200001", exam_part="A01010100", stog_uscc="12510800MB0L310038")
    with pytest.raises(ValueError, match="检查时间"):
        DOC_EXAMPLE.build(parts)


def test_short_certificate_numbers_are_padded_into_the_index() -> None:
    parts = parts_for(DOC_EXAMPLE, cert_type="414", certno="E12345678", exam_time="20251201093015",
                      inst_code="H51080200001", exam_part="A01010100", stog_uscc="12510800MB0L310038")
    assert parts["certno"] == "000000000E12345678"
