"""The validator's fast path changes speed, never answers.

Every record below is checked twice — `validate_record` (fast path first) and `validate_record_fully`
(field by field) — and the two must give the same values and the same problems, word for word. The
mutations are the ways real messages go wrong; the clean records must really take the fast path, or
these tests would compare the full check with itself.
"""

from __future__ import annotations

import base64
import copy
import re
from datetime import date, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.fastpath import DATE_PATTERN, DATETIME_PATTERN
from sandbox.spec.fields import TRANSACTIONS, Kind
from sandbox.spec.variants import FIELD_VARIANTS, FOREIGN_FIELDS
from sandbox.validate import Mode, validator
from tests.spec.helpers import valid_record

WHITESPACE = [chr(i) for i in range(0x110000) if chr(i).isspace()]
MODES = (Mode.LENIENT, Mode.STRICT)


def _answer(result: Any) -> tuple[Any, ...]:
    return (result.values, [p.as_dict() for p in result.errors], [p.as_dict() for p in result.warnings])


def assert_same(hop: int, rec: Any) -> None:
    for mode in MODES:
        v = validator(hop, mode)
        fast = v.validate_record(copy.deepcopy(rec), 3)
        full = v.validate_record_fully(copy.deepcopy(rec), 3)
        assert _answer(fast) == _answer(full), (mode, rec)


def _mutations(spec: Any, value: Any) -> list[Any]:
    limit = spec.length or 600
    text = value if isinstance(value, str) else str(value)
    out: list[Any] = [
        None, "", " ", 0, 7, -1, 1.5, 33.25, 1e30, True, [], {}, [text], "x" * limit, "x" * (limit + 1),
        text + "\x00", "\x00" + text, text[:1] + "\x00" + text[1:], text.lower(), text.upper(), text[:-1],
        text + text[-1:], text.replace("2", "２"), text.replace("-", "/"), text.replace(" ", "T"),
        text.replace(" ", "  "), text + " " + text, "2024-02-29", "2023-02-29", "2024-02-29 23:59:59",
        "2023-02-29 10:00:00", "2024-01-01 24:00:00", "2024-01-01 10:00:60", "0000-01-01", "0000-01-01 00:00:00",
        "http://example.org/x", "HTTP://EXAMPLE.ORG/X", "ftp://example.org/x", "dicom:1.2.3", "http:// x",
        "1 2", "1  2", "1 9 2", "A01010100 A01010101", "A01010100  A01010101", "a01010100", "510802", "51080",
        "H51080200001", "h51080200001",
    ]
    out += [w + text for w in (" ", "\t", "\n", "\u3000", "\xa0")] + [text + w for w in (" ", "\n", "\u3000")]
    return out


CASES = [(hop, spec.code) for hop in (1, 2) for spec in TRANSACTIONS[hop].fields]


@pytest.mark.parametrize("hop", [1, 2])
def test_clean_records_take_the_fast_path(hop: int) -> None:
    for mode in MODES:
        v = validator(hop, mode)
        for n in range(5):
            rec = valid_record(hop, n)
            assert v._shape.fits(rec) and v._rules_clean(rec), rec
            assert_same(hop, rec)


@pytest.mark.parametrize(("hop", "code"), CASES, ids=[f"hop{h}-{c}" for h, c in CASES])
def test_every_mutation_of_every_field_gets_the_full_answer(hop: int, code: str) -> None:
    spec = next(f for f in TRANSACTIONS[hop].fields if f.code == code)
    base = valid_record(hop)
    for mutated in _mutations(spec, base.get(code, "1")):
        rec = dict(base)
        rec[code] = mutated
        assert_same(hop, rec)
    rec = dict(base)
    rec.pop(code, None)
    assert_same(hop, rec)


@pytest.mark.parametrize("hop", [1, 2])
def test_every_whitespace_character_at_either_end_is_noticed(hop: int) -> None:
    base = valid_record(hop)
    for code in ("psnName", "imgDscr", "examDate", "hiImgIndx", "certno", "gend", "examPart"):
        for w in WHITESPACE:
            assert_same(hop, {**base, code: w + base[code]})
            assert_same(hop, {**base, code: base[code] + w})


@pytest.mark.parametrize("hop", [1, 2])
def test_key_spellings_unknown_keys_and_record_types(hop: int) -> None:
    base = valid_record(hop)
    for wrong, variant in FIELD_VARIANTS[hop].items():
        rec = dict(base)
        if variant.right in rec:
            rec[wrong] = rec.pop(variant.right)
        assert_same(hop, rec)
        assert_same(hop, {**base, wrong: base.get(variant.right, "x")})
    for foreign in FOREIGN_FIELDS[hop]:
        assert_same(hop, {**base, foreign: "http://127.0.0.1:8700/x"})
    assert_same(hop, {**base, "extra": "1"})
    assert_same(hop, {**base, " psnName": base["psnName"]})
    assert_same(hop, {**base, 5: "x"})
    for rec in ("text", 5, None, [base]):
        assert_same(hop, rec)


@pytest.mark.parametrize("hop", [1, 2])
def test_cross_field_rules(hop: int) -> None:
    base = valid_record(hop)
    assert_same(hop, {**base, "certno": base["certno"][:-1] + "0"})  # wrong check digit
    assert_same(hop, {**base, "certno": base["certno"][:-1] + "0", "psnCertType": "414"})
    assert_same(hop, {**base, "certno": "510802900101002"})  # 15-digit ID
    assert_same(hop, {**base, "examDate": "2023-04-03"})  # disagrees with the index
    assert_same(hop, {**base, "examTecnIdcard": base["examTecnIdcard"][:-1] + "0"})
    if hop == 2:
        assert_same(hop, {**base, "stogInsUscc": base["stogInsUscc"][:-1] + "0"})
        assert_same(hop, {**base, "stogInsUscc": "12510800MB0L310030"})


_PDF64 = "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.4\n" + b"x" * 600).decode()
_DCM64 = "data:application/dicom;base64," + base64.b64encode(b"\0" * 128 + b"DICM" + b"y" * 600).decode()
_INLINE_VALUES = [
    _PDF64, _DCM64, _PDF64 + " ", _PDF64 + "\n", _PDF64 + "\u3000", _PDF64[:-1], _PDF64[:-2] + "!=",
    "data:application/pdf," + "x" * 700, "data:", "data:;base64,", "data:application/pdf;base64,QUJD",
    "data:application/pdf;base64," + "QUJD" * 30 + "\x00", "DATA:application/pdf;base64,QUJD",
]


def test_records_with_inline_files_take_the_fast_path_for_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    for mode in MODES:
        v = validator(1, mode)
        rec = {**valid_record(1), "examRpotPdfI": _PDF64, "imgInfoDcm": _DCM64}
        monkeypatch.setattr(v, "validate_record_fully", None)  # must not be reached
        result = v.validate_record(rec, 3)
        codes = [p.code for p in (result.errors if mode is Mode.STRICT else result.warnings)]
        assert codes == (["file_inline_strict"] * 2 if mode is Mode.STRICT else ["file_inline"] * 2)
        assert result.values == rec


@pytest.mark.parametrize("code", ["examRpotPdfI", "imgInfoDcm"])
def test_inline_files_get_the_full_answer(code: str) -> None:
    base = valid_record(1)
    other = "imgInfoDcm" if code == "examRpotPdfI" else "examRpotPdfI"
    for value in _INLINE_VALUES:
        assert_same(1, {**base, code: value})
        assert_same(1, {**base, code: value, other: _PDF64})
        reordered = {code: value, **{k: v for k, v in base.items() if k != code}}
        assert_same(1, reordered)
    for field in ("psnName", "examDate", "certno", "hiImgIndx", "gend", "extra", "patnHosName"):
        for mutated in (None, "", " x", "2023-02-29", base.get(field, "1") + " "):
            assert_same(1, {**base, code: _PDF64, field: mutated})


def test_the_date_formats_are_exactly_the_calendar() -> None:
    years = ["0000", "0001", "0004", "1900", "1996", "2000", "2023", "2024", "2100", "2400", "9999"]
    for y in years:
        for m in range(0, 14):
            for d in range(0, 33):
                text = f"{y}-{m:02d}-{d:02d}"
                try:
                    date.fromisoformat(text)
                    ok = True
                except ValueError:
                    ok = False
                assert bool(re.fullmatch(DATE_PATTERN, text)) is ok, text
    for h in (0, 9, 23, 24):
        for mi in (0, 59, 60):
            for s in (0, 59, 60):
                text = f"2024-02-29 {h:02d}:{mi:02d}:{s:02d}"
                ok = h < 24 and mi < 60 and s < 60
                assert bool(re.fullmatch(DATETIME_PATTERN, text)) is ok, text
                if ok:
                    datetime.fromisoformat(text)


_FIELDS = {hop: [f.code for f in TRANSACTIONS[hop].fields] for hop in (1, 2)}
_TEXT = st.text(st.sampled_from("0123456789-: AaZz.\x00\t\u3000２H/"), max_size=24)
_VALUE = st.one_of(_TEXT, st.none(), st.integers(-5, 10**6), st.floats(allow_nan=False), st.booleans())


@settings(max_examples=300, deadline=None)
@given(hop=st.sampled_from([1, 2]), data=st.data())
def test_random_values_in_random_fields(hop: int, data: st.DataObject) -> None:
    rec = valid_record(hop)
    for code in data.draw(st.lists(st.sampled_from(_FIELDS[hop]), min_size=1, max_size=4)):
        spec = next(f for f in TRANSACTIONS[hop].fields if f.code == code)
        if spec.kind in (Kind.DATE, Kind.DATETIME) and data.draw(st.booleans()):
            rec[code] = data.draw(st.from_regex(DATETIME_PATTERN if spec.kind is Kind.DATETIME else DATE_PATTERN,
                                                fullmatch=True))
        else:
            rec[code] = data.draw(_VALUE)
    assert_same(hop, rec)
