"""The province kit's records: valid hop-2 records as a center would send them, and faulty ones derived from the
hop-2 table (`sandbox.spec.fields.HOP2`), one fault per record, one rule class at a time.

A rule class (missing required, length + 1, dictionary code, format, checksum) picks its fields from the table by
kind and rule, never by name; the bad value comes from the class and the field's kind or rule. Each faulty record
is run through the sandbox's own validator in strict mode, which must find an error on that field (else the probe
is not made: the kit never grades a province on a value the document allows). Whether the document itself states
the rule or leaves it to another standard or to an ERRATA row is read from the same validator in lenient mode: an
error there is the document's own rule (a province must refuse it whatever its reading); a strict-only error is a
rule the document leaves open (graded by the kit's `--mode`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from sandbox.config import Institution
from sandbox.spec.checksums import USCC_CHARSET, id_check_char, uscc_check_char
from sandbox.spec.fields import HOP2, FieldSpec, Kind
from sandbox.synth.exams import BASE_DATE, ExamFactory
from sandbox.validate import Mode, validator

RuleClass = Literal["required", "length", "dictionary", "format", "checksum"]
CLASS_ZH: dict[RuleClass, str] = {"required": "必填项缺失", "length": "超长（上限 + 1）", "dictionary": "非字典代码",
                                  "format": "格式错误", "checksum": "校验位错误"}

# The bad value of each format rule (by rule name, or by kind for dates, times and numbers).
_FORMAT_VALUES: dict[str, Any] = {
    Kind.DATE.value: "2025/10/08",
    Kind.DATETIME.value: "2025/10/08 08:30:00",
    Kind.DECIMAL.value: 35.25,            # more decimals than the table's scale
    "admdvs": "51080A",
    "exam_part": "ABC",
    "url": "ftp://example.invalid/x",
    "fixmedins_code": "H5108",
    "postcode": "62800A",
    "hi_img_indx": "{index}",  # the record's own index with its separators changed: unique, not by the rule
}
_CHECKSUM_RULES = ("idcard", "uscc", "certno")
NOT_A_CODE = "ZZ"


@dataclass(frozen=True, slots=True)
class Probe:
    """One faulty record: the field it breaks, how, and whether the document itself states the rule."""

    spec: FieldSpec
    rule_class: RuleClass
    record: dict[str, Any]
    value: Any  # the bad value sent (None: the field left out)
    own_rule: bool  # an error in lenient mode too: the document's own rule

    @property
    def field(self) -> str:
        return self.spec.code

    def names(self) -> tuple[str, ...]:
        """How an answer may name the field: its code or its Chinese name."""
        return (self.spec.code, self.spec.name)

    def describe(self) -> str:
        sent = "不传" if self.value is None else f"「{_short(self.value)}」"
        return f"{self.spec.code}({self.spec.name}) {sent}"


def _short(value: Any, limit: int = 40) -> str:
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}…（{len(text)} 个字符）"


def _wrong_id(value: str) -> str | None:
    """An 18-character resident ID with its check character changed, or None when `value` is not one."""
    if len(value) != 18 or not value[:17].isdecimal():
        return None
    right = id_check_char(value[:17])
    return value[:17] + ("0" if right != "0" else "1")


def _wrong_uscc(value: str) -> str | None:
    if len(value) != 18 or any(c not in USCC_CHARSET for c in value[:17]):
        return None
    right = uscc_check_char(value[:17])
    return value[:17] + ("0" if right != "0" else "1")


def _bad_value(cls: RuleClass, spec: FieldSpec, record: dict[str, Any]) -> Any:
    """The value breaking `spec` by `cls`, or None when the class does not apply to the field (or record)."""
    if cls == "length":
        if spec.kind is Kind.DECIMAL and spec.precision is not None and spec.scale is not None:
            return 10 ** (spec.precision - spec.scale)  # one digit too many before the point
        return "1" * (spec.length + 1) if spec.length is not None and spec.kind is not Kind.FILE else None
    if cls == "dictionary":
        return NOT_A_CODE if spec.dictionary is not None else None
    if cls == "format":
        if spec.dictionary is not None or spec.rule in _CHECKSUM_RULES:
            return None
        value = _FORMAT_VALUES.get(spec.rule or "", _FORMAT_VALUES.get(spec.kind.value))
        if value == "{index}":
            return str(record.get(spec.code, "")).replace("-", "_") or value
        return value
    if cls == "checksum":
        if spec.rule not in _CHECKSUM_RULES:
            return None
        current = record.get(spec.code)
        if not isinstance(current, str):
            return None
        return _wrong_uscc(current) if spec.rule == "uscc" else _wrong_id(current)
    return None


def applies(cls: RuleClass, spec: FieldSpec) -> bool:
    """Whether the class concerns the field at all (from the table: required flag, length, dictionary, rule)."""
    if cls == "required":
        return spec.required
    if cls == "checksum":
        return spec.rule in _CHECKSUM_RULES
    return _bad_value(cls, spec, {}) is not None


def _field_errors(record: dict[str, Any], code: str, mode: Mode, profile: str) -> bool:
    result = validator(2, mode, profile).validate_record(record, 1)
    return any(p.field == code for p in result.errors)


class RecordSource:
    """Valid hop-2 records of one run: exams of the configured hospital, filed by the kit's center.

    `seed` is the run's seed (the option's seed and the run's start), so that a second run against the same
    province does not meet its own earlier indexes."""

    def __init__(self, hospital: Institution, center_uscc: str, seed: str, profile: str, link_base: str) -> None:
        from sandbox.center.domain import hop2_record

        self._hop2_record = hop2_record
        self.factory = ExamFactory(hospital, center_uscc, seed, index_profile=profile, base_date=BASE_DATE)
        self.center_uscc = center_uscc
        self.profile = profile
        self.link_base = link_base.rstrip("/")
        self._next = 0

    def records(self, count: int) -> list[dict[str, Any]]:
        """`count` new valid records (each with an index never sent before in this run)."""
        out = []
        for exam in self.factory.exams(count, self._next):
            links = {"examRpotLinkUrl": f"{self.link_base}/report/{exam.exam_id}",
                     "imgInfoLinkUrl": f"{self.link_base}/viewer/{exam.exam_id}",
                     "imgDldLink": f"{self.link_base}/dicomweb/studies/{exam.study_uid}"}
            out.append(self._hop2_record(exam.record(self.link_base), links, self.center_uscc))
        self._next += count
        return out

    def record(self) -> dict[str, Any]:
        return self.records(1)[0]

    def record_with(self, code: str, attempts: int = 20) -> dict[str, Any] | None:
        """A new valid record in which the (optional) field `code` is filled, or None when none comes."""
        for _ in range(attempts):
            record = self.record()
            if record.get(code) not in (None, ""):
                return record
        return None

    def probes(self, cls: RuleClass) -> list[Probe]:
        """One faulty record per field of the hop-2 table the class concerns."""
        return list(self._probes(cls))

    def _probes(self, cls: RuleClass) -> Iterator[Probe]:
        for spec in HOP2.fields:
            if not applies(cls, spec):
                continue
            probe = self._probe(cls, spec)
            if probe is not None:
                yield probe

    def _probe(self, cls: RuleClass, spec: FieldSpec, attempts: int = 8) -> Probe | None:
        # A checksum applies only to values of the right shape (certno only for a resident ID), so a few
        # records may be tried before one carries such a value.
        for _ in range(attempts):
            record = self.record()
            if cls == "required":
                value = None
                record.pop(spec.code, None)
            else:
                value = _bad_value(cls, spec, record)
                if value is None:
                    continue
                record[spec.code] = value
            if _field_errors(record, spec.code, Mode.STRICT, self.profile):
                own = _field_errors(record, spec.code, Mode.LENIENT, self.profile)
                return Probe(spec, cls, record, value, own)
        return None
