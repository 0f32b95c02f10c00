"""The validator's fast path: recognise a *clean* record in a few C-level passes.

A clean record is one the full validator (`sandbox.validate`) passes with no error and no warning and
whose values it keeps exactly as sent. Nearly every record a working HIS sends is clean, so the full
check — one Python call per field — is kept for the rest. The fast path never judges a record wrong:
whatever it does not recognise goes to the full validator, which finds and words every problem. So
the two can only differ in speed, and `tests/spec/test_fastpath.py` holds them to that.

`Shape.fits` runs three checks, all derived from the tables in `sandbox.spec`:

1. msgspec converts the record to a Struct built from the table: no unknown or misspelt key, every
   required key, each value of its JSON type, every string 1..limit characters long, one-code
   dictionaries as literals, BigDecimal within its range (no null, no empty string: the full
   validator drops those from the values, so they are not "kept as sent").
2. No text has leading or trailing whitespace (the full validator strips values), nor a control character
   (`formats.CONTROL_CHARS_RE`: a warning in lenient mode, an error in strict mode).
3. The fields with a format — dates and times (real calendar dates), 机构代码, 区划, 部位, postcode,
   URLs, several-value dictionaries — joined with NUL and matched by one regex of the same formats.

The rules that need Python (check characters, the hiImgIndx profile) stay with the validator, which
runs them through its own functions after `fits` (`Validator._rules_clean`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec
from msgspec import convert
from msgspec.structs import astuple

from sandbox.spec import formats
from sandbox.spec.dicts import DICTIONARIES
from sandbox.spec.fields import FieldSpec, Kind, Transaction

# Real calendar dates in ASCII digits, exactly what date.fromisoformat accepts in this shape (year 0001
# to 9999, leap years by the Gregorian rule); times 00:00:00 to 23:59:59.
_LEAP_YEAR = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)"
_MONTH_DAY = (r"(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
              r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
              r"|02-(?:0[1-9]|1[0-9]|2[0-8]))")
DATE_PATTERN = rf"(?!0000)(?:[0-9]{{4}}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)"
DATETIME_PATTERN = rf"{DATE_PATTERN} (?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"

# Rules whose whole format is one regex of sandbox.spec.formats.
_RULE_FORMATS: dict[str, re.Pattern[str]] = {
    "fixmedins_code": formats.MEDINS_CODE_RE,
    "admdvs": formats.ADMDVS_RE,
    "exam_part": formats.EXAM_PART_RE,
    "postcode": formats.POSTCODE_RE,
    "url": formats.URL_RE,
    "file_pdf": formats.URL_RE,
    "file_dicom": formats.URL_RE,
}
_DICT_RULES = ("dict", "dict_external", "dict_erratum")
_control = formats.CONTROL_CHARS_RE.search  # a control character is a warning or an error: not clean


def _body(pattern: re.Pattern[str]) -> str:
    """A format regex without its anchors, keeping its case rule; its negated classes never take the NUL
    that separates slots (a value with a NUL goes the full way anyway)."""
    body = pattern.pattern.removeprefix("^").removesuffix("$").replace("[^", "[^\\0")
    return f"(?i:{body})" if pattern.flags & re.IGNORECASE else f"(?:{body})"


def _slot(spec: FieldSpec) -> str | None:
    """The regex of a field's whole value, or None when the field has no format of its own."""
    if spec.kind is Kind.DATE:
        return DATE_PATTERN
    if spec.kind is Kind.DATETIME:
        return DATETIME_PATTERN
    if spec.rule in _DICT_RULES and spec.multi:
        assert spec.dictionary is not None
        one = "(?:" + "|".join(re.escape(c) for c in sorted(DICTIONARIES[spec.dictionary], key=len, reverse=True)) + ")"
    elif spec.rule in _RULE_FORMATS:
        one = _body(_RULE_FORMATS[spec.rule])
    else:
        return None
    return f"{one}(?: {one})*" if spec.multi else one


def _value_type(spec: FieldSpec) -> Any:
    if spec.kind is Kind.DECIMAL:
        assert spec.precision is not None and spec.scale is not None
        bound = 10 ** (spec.precision - spec.scale)
        return Annotated[int, msgspec.Meta(ge=0, lt=bound)] | Annotated[float, msgspec.Meta(ge=0, lt=bound)]
    if spec.rule in _DICT_RULES and not spec.multi:
        assert spec.dictionary is not None
        return Literal[tuple(DICTIONARIES[spec.dictionary])]
    return Annotated[str, msgspec.Meta(min_length=1, max_length=spec.length)]


class Shape:
    """The C-level part of the fast path for one transaction (see the module's text)."""

    def __init__(self, tx: Transaction) -> None:
        slots = {spec.code: _slot(spec) for spec in tx.fields}
        formatted = [spec for spec in tx.fields if slots[spec.code] is not None]
        texts = [spec for spec in tx.fields if slots[spec.code] is None and spec.kind is not Kind.DECIMAL
                 and not (spec.rule in _DICT_RULES and not spec.multi)]
        rest = [spec for spec in tx.fields if spec not in formatted and spec not in texts]
        # The Struct's fields in that order, so that its tuple of values slices into the formatted
        # strings and all strings. An absent optional string reads as "" (a sent "" fails the length
        # and a sent null the type, and both go the full way).
        fields: list[tuple[Any, ...]] = []
        for spec in [*formatted, *texts, *rest]:
            t = _value_type(spec)
            if spec.required:
                fields.append((spec.code, t))
            else:
                fields.append((spec.code, t, "" if spec in formatted or spec in texts else None))
        self._struct = msgspec.defstruct(f"Clean{tx.infno}", fields, kw_only=True, forbid_unknown_fields=True)
        self._formatted = len(formatted)
        self._strings = len(formatted) + len(texts)
        self.text_codes = frozenset(spec.code for spec in texts)  # free text: checked for control characters
        self._match = re.compile("\0".join(f"(?:{slots[s.code]})?" for s in formatted) + r"\Z").match

    def fits(self, rec: dict[str, Any]) -> bool:
        """True when steps 1–3 hold; False says nothing but "take the full way"."""
        try:
            values = astuple(convert(rec, self._struct))
        except msgspec.ValidationError:
            return False
        texts = values[self._formatted:self._strings]  # the formatted ones cannot match with whitespace
        if tuple(map(str.strip, texts)) != texts or _control("".join(texts)) is not None:
            return False
        joined = "\0".join(values[:self._formatted])
        # A NUL inside a value would shift the slots: the count must be the separators' alone.
        return joined.count("\0") == self._formatted - 1 and self._match(joined) is not None
