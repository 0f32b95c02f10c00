"""The hop-1 table's rules as test cases, derived from `sandbox.spec` (never a hand-written list of fields).

One rule class per requirement: a required field left out, a value one character (or digit) over its length, a
code outside its dictionary, a value in the wrong format, an identity number with a wrong check character. Each
case breaks one field of an otherwise valid record; the sandbox's validator confirms that the case breaks the
rule (strict mode) and says whether the document states the rule itself (an error in lenient mode too) or leaves
it to other standards or to an ERRATA reading (a warning in lenient mode), which is how the kit grades it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sandbox.spec.checksums import USCC_CHARSET, id_check_char, uscc_check_char
from sandbox.spec.fields import HOP1, FieldSpec, Kind
from sandbox.validate import Mode, Problem, validator

RuleClass = Literal["required", "length", "dictionary", "format", "checksum"]

# A value in the wrong format, by the field's kind or rule (the field's own valid value is not needed).
_BAD_FORMAT_BY_KIND: dict[Kind, Any] = {
    Kind.DATE: "2025/10/08",
    Kind.DATETIME: "2025/10/08 08:00",
    Kind.DECIMAL: 12.34,  # more decimal places than the table's scale
    Kind.FILE: "report-file-name",  # neither a link nor DICOM
}
_BAD_FORMAT_BY_RULE: dict[str, str] = {
    "hi_img_indx": "NOT-AN-INDEX",
    "admdvs": "51A802",
    "exam_part": "abc",
    "fixmedins_code": "X51",
    "postcode": "62800A",
    "url": "www-example",
}
_CHECKSUM_RULES = ("idcard", "certno", "uscc")


@dataclass(frozen=True)
class Case:
    """One field broken one way."""

    rule: RuleClass
    field: str
    name: str
    value: Any  # what was sent (None: the field left out)
    record: dict[str, Any]
    document_rule: bool  # the document states it (an error in lenient mode too)
    erratum: int | None  # the ERRATA row that admits another reading, when the validator names one

    @property
    def label(self) -> str:
        return f"{self.field}（{self.name}）"

    def sent(self) -> str:
        if self.value is None:
            return "缺少该字段"
        text = str(self.value)
        return f"「{text[:40]}…」（{len(text)} 个字符）" if len(text) > 40 else f"「{text}」"


def _over_length(spec: FieldSpec, record: dict[str, Any]) -> Any:
    if spec.kind is Kind.DECIMAL and spec.precision is not None and spec.scale is not None:
        return 10 ** (spec.precision - spec.scale)  # one digit more than the integer part allows
    if spec.length is None:
        return None
    if spec.kind is Kind.FILE:
        base = str(record.get(spec.code) or "http://127.0.0.1/file")
        return base + "?pad=" + "9" * max(spec.length + 1 - len(base) - 5, 1)
    return "9" * (spec.length + 1)


def _bad_format(spec: FieldSpec, record: dict[str, Any]) -> Any:
    if spec.rule in _BAD_FORMAT_BY_RULE:
        return _BAD_FORMAT_BY_RULE[spec.rule]
    return _BAD_FORMAT_BY_KIND.get(spec.kind)


def _bad_check_char(spec: FieldSpec, record: dict[str, Any]) -> Any:
    if spec.rule not in _CHECKSUM_RULES:
        return None
    if spec.rule == "uscc":
        good = str(record.get(spec.code) or "")
        first = good[:17] if len(good) == 18 else "91510800MA6200000"
        right = uscc_check_char(first)
        return first + next(c for c in USCC_CHARSET if c != right)
    good = str(record.get(spec.code) or record.get("certno") or "")
    first = good[:17] if len(good) == 18 and good[:17].isdigit() else "51080219800101001"
    right = id_check_char(first)
    return first + next(c for c in "0123456789X" if c != right)


def _bad_dictionary(spec: FieldSpec, record: dict[str, Any]) -> Any:
    return "ZZ" if spec.dictionary is not None else None


_MAKERS: dict[RuleClass, Callable[[FieldSpec, dict[str, Any]], Any]] = {
    "length": _over_length,
    "dictionary": _bad_dictionary,
    "format": _bad_format,
    "checksum": _bad_check_char,
}

RULE_TITLES: dict[RuleClass, str] = {
    "required": "缺少必填字段", "length": "超长（长度 + 1）", "dictionary": "不在字典中的代码",
    "format": "格式错误", "checksum": "校验位错误",
}


def _on_field(problems: list[Problem], code: str) -> list[Problem]:
    return [p for p in problems if p.field == code]


def cases(rule: RuleClass, record: dict[str, Any], profile: str) -> tuple[list[Case], list[str]]:
    """Every case of `rule` for hop 1's fields, built on the valid `record`; and the fields the validator did not
    confirm as broken (a derivation that does not apply to that field), as notes."""
    strict = validator(1, Mode.STRICT, profile)
    lenient = validator(1, Mode.LENIENT, profile)
    out: list[Case] = []
    notes: list[str] = []
    for spec in HOP1.fields:
        if rule == "required":
            if not spec.required:
                continue
            broken = {k: v for k, v in record.items() if k != spec.code}
            value: Any = None
        else:
            value = _MAKERS[rule](spec, record)
            if value is None:
                continue
            broken = {**record, spec.code: value}
        errors = _on_field(strict.validate_record(broken, 1).errors, spec.code)
        if not errors:
            notes.append(f"{spec.code}：本工具构造的值未被判为错误，未检查")
            continue
        lenient_result = lenient.validate_record(broken, 1)
        document_rule = bool(_on_field(lenient_result.errors, spec.code))
        erratum = next((p.erratum for p in _on_field(lenient_result.warnings, spec.code) + errors if p.erratum), None)
        out.append(Case(rule, spec.code, spec.name, value, broken, document_rule, erratum))
    return out, notes
