"""The one validator: every role and the CLI check messages here.

It is compiled from the tables in `sandbox.spec`: each field gets a checker chosen by its kind and
rule. A whole message yields *all* problems — envelope problems and, per record, its position, field
code, Chinese field name, a machine-readable code and a Chinese message — in two modes:

- lenient (default): every ERRATA variant is accepted, normalised and reported as a warning;
- strict: every variant is an error.

Rules the document states itself (lengths, required fields, its own dictionaries, date formats,
9-character exam-part codes, 6-digit 区划) are errors in both modes. Rules the document leaves to
other standards (checksums, the 12-character 机构代码, postcode, the index profile) are warnings in
lenient mode and errors in strict mode, so the document's own example passes lenient validation.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import lru_cache, partial
from typing import Any

import orjson

from sandbox.common.jsonkeys import RepeatedKeys
from sandbox.fastpath import Shape
from sandbox.spec import formats
from sandbox.spec.checksums import ID15_RE, ID18_RE, USCC_RE, id_check_char, uscc_check_char
from sandbox.spec.codes import SuccFlag
from sandbox.spec.dicts import DICT_TITLES, DICTIONARIES
from sandbox.spec.fields import (
    DATA_MAX_CHARS,
    ENVELOPE_FIELDS,
    TRANSACTIONS,
    FieldSpec,
    Kind,
    Transaction,
)
from sandbox.spec.index_profiles import DEFAULT_PROFILE, PROFILES, IndexProfile
from sandbox.spec.messages import OUTCOME_REASONS, PROBLEMS, RESULTS, json_type
from sandbox.spec.variants import (
    FIELD_VARIANTS,
    FILE_SUBSTITUTES,
    FOREIGN_FIELDS,
    INFNO_VARIANTS,
)

# 返回信息 (output table field 3) holds at most this many characters.
MESSAGE_LIMIT = 3000


class Mode(StrEnum):
    LENIENT = "lenient"
    STRICT = "strict"


class Level(StrEnum):
    ERROR = "error"
    WARNING = "warning"


_ENV_NAMES = {f.code: f.name for f in ENVELOPE_FIELDS}
# Which erratum a dictionary-like field's free text belongs to.
_DICT_ERRATA = {"exam_rslt_code": 8, "exam_way": 9}


@dataclass(slots=True)
class Problem:
    """One problem: where it is, what rule, and a Chinese message a developer can act on."""

    level: Level
    code: str
    message: str
    record: int | None = None  # 1-based position in data; None for the envelope
    field: str | None = None
    field_name: str | None = None
    erratum: int | None = None

    def text(self) -> str:
        where = f"第{self.record}条" if self.record is not None else "报文头"
        if self.field:
            where += f" {self.field}({self.field_name})" if self.field_name else f" {self.field}"
        return f"{where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "level": str(self.level),
            "code": self.code,
            "record": self.record,
            "field": self.field,
            "fieldName": self.field_name,
            "erratum": self.erratum,
            "message": self.message,
            "text": self.text(),
        }


@dataclass(slots=True)
class RecordResult:
    """One record after validation: normalised values and its problems."""

    position: int
    values: dict[str, Any]
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    as_sent: bool = False  # `values` is the record exactly as sent (the fast path's clean record)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def index(self) -> str | None:
        v = self.values.get("hiImgIndx")
        return v if isinstance(v, str) else None

    def summary(self, limit: int = MESSAGE_LIMIT) -> str:
        """Every error as one Chinese line (for a response's `message`), within `limit` characters."""
        return join_within([p.text().split(": ", 1)[-1] if p.field is None else
                            f"{p.field}({p.field_name}): {p.message}" for p in self.errors], limit, "项错误")


# How a record that passed validation is answered (one meaning of succFlag for the validator and both
# receivers). `0` only when something the sender sent was not saved: these warnings drop a value.
DROPPING_WARNINGS = frozenset({
    "duplicate_key",  # the variant spelling's value dropped (both spellings sent)
    "foreign_field",  # field of the other hop dropped
    "unknown_field",  # undefined field dropped
})
# Everything else a lenient receiver accepts is saved in full: a spelling renamed, a type coerced, a date-only
# datetime completed, a link taken for a missing file, an advisory check — `1`, each named as 提示.


def join_within(parts: list[str], limit: int, noun: str = "项") -> str:
    """Parts joined with "；", as many as fit in `limit` characters, then "另有 N 项" for the rest."""
    out: list[str] = []
    used = 0
    for k, part in enumerate(parts):
        tail = f"；另有 {len(parts) - k} {noun}"
        if used + len(part) + 1 + (len(tail) if k < len(parts) - 1 else 0) > limit:
            if not out:  # one part longer than the limit: its start, so the first cause is still named
                more = tail if k < len(parts) - 1 else ""
                return part[:max(0, limit - len(more) - 1)] + "…" + more
            return "；".join(out) + tail
        out.append(part)
        used += len(part) + 1
    return "；".join(out)


def describe(problems: list[Problem], limit: int = MESSAGE_LIMIT) -> str:
    """Problems as one Chinese line, each naming its field, within `limit` characters."""
    return join_within([f"{p.field}({p.field_name}): {p.message}" if p.field_name else
                        (f"{p.field}: {p.message}" if p.field else p.message) for p in problems], limit)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The succFlag and message a receiver answers for a record, from its validation alone."""

    flag: SuccFlag
    message: str
    reason: str  # one Chinese line: why this flag


def record_outcome(result: RecordResult, first: int | None = None) -> Outcome:
    """`-1` with every blocking problem; `0` when a value the sender sent is dropped (named); otherwise `1`,
    with each normalisation and advisory named as 提示. `first` is where a repeated index first appeared."""
    if result.errors:
        if first is not None and all(p.code == "duplicate_in_batch" for p in result.errors):
            return Outcome(SuccFlag.FAILED, RESULTS["duplicate_in_batch"].format(value=result.index, first=first),
                           OUTCOME_REASONS["duplicate"])
        return Outcome(SuccFlag.FAILED, RESULTS["invalid"].format(detail=result.summary(MESSAGE_LIMIT - 10)),
                       OUTCOME_REASONS["errors"].format(count=len(result.errors)))
    dropped = [p for p in result.warnings if p.code in DROPPING_WARNINGS]
    noted = [p for p in result.warnings if p.code not in DROPPING_WARNINGS]
    if dropped:
        message = RESULTS["saved_partial"].format(detail=describe(dropped))
        flag, reason = SuccFlag.PARTIAL, OUTCOME_REASONS["dropped"].format(
            fields="、".join(p.field or "" for p in dropped))
    else:
        message, flag = RESULTS["saved"], SuccFlag.OK
        reason = OUTCOME_REASONS["noted"].format(count=len(noted)) if noted else OUTCOME_REASONS["clean"]
    if noted:
        message += RESULTS["advisory"].format(detail=describe(noted, MESSAGE_LIMIT - len(message) - 6))
    return Outcome(flag, message[:MESSAGE_LIMIT], reason)


def record_outcomes(results: list[RecordResult]) -> list[Outcome]:
    """Each record's answer from the validation of its batch (a repeated index names where it first was)."""
    first: dict[str, int] = {}
    for r in results:
        if r.index is not None:
            first.setdefault(r.index, r.position)
    return [record_outcome(r, first[r.index] if r.index is not None and first[r.index] != r.position else None)
            for r in results]


@dataclass(slots=True)
class Report:
    """The validation of one whole message."""

    hop: int
    mode: Mode
    envelope: dict[str, Any]
    envelope_problems: list[Problem]
    records: list[RecordResult]
    data_chars: int = 0

    @property
    def envelope_ok(self) -> bool:
        return not any(p.level is Level.ERROR for p in self.envelope_problems)

    @property
    def problems(self) -> list[Problem]:
        out = list(self.envelope_problems)
        for r in self.records:
            out.extend(r.errors)
            out.extend(r.warnings)
        return out

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level is Level.ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.level is Level.WARNING]

    @property
    def valid(self) -> bool:
        return self.envelope_ok and all(r.ok for r in self.records)

    def answers(self) -> list[dict[str, Any]]:
        """What a receiver in this mode answers each record, from the message alone (`record_outcomes`); empty
        when the envelope is refused whole. The center may still answer 0 or -1 for files it cannot fetch."""
        if not self.envelope_ok:
            return []
        return [{"position": r.position, "hiImgIndx": r.index, "succFlag": o.flag.value, "message": o.message,
                 "reason": o.reason} for r, o in zip(self.records, record_outcomes(self.records), strict=True)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "hop": self.hop,
            "infno": TRANSACTIONS[self.hop].infno,
            "mode": str(self.mode),
            "valid": self.valid,
            "records": len(self.records),
            "dataChars": self.data_chars,
            "errors": [p.as_dict() for p in self.errors],
            "warnings": [p.as_dict() for p in self.warnings],
            "answers": self.answers(),
        }


def data_length(data: Any) -> int:
    """Length of `data` in characters, as compact JSON (how the 40000 limit of 交易输入 is measured)."""
    if isinstance(data, str):
        return len(data)
    try:
        # orjson writes the same compact JSON as json.dumps(ensure_ascii=False), several times faster
        return len(orjson.dumps(data).decode())
    except TypeError:  # an integer beyond 64 bits
        return len(json.dumps(data, ensure_ascii=False, separators=(",", ":")))


def detect_hop(message: Any) -> int | None:
    """Which transaction a message is, from its infno or, for the examples' ambiguous infno, its fields."""
    if not isinstance(message, dict):
        return None
    infno = message.get("infno")
    infno = infno.strip() if isinstance(infno, str) else infno
    for hop, tx in TRANSACTIONS.items():
        if infno == tx.infno:
            return hop
    data = message.get("data")
    if isinstance(data, dict):
        data = [data]
    keys: set[str] = set()
    if isinstance(data, list):
        for rec in data:
            if isinstance(rec, dict):
                keys.update(k.strip() for k in rec if isinstance(k, str))
    if keys & {"examRpotPdfI", "imgInfoDcm", "stogInsUsc", "postcode", "elecHiCardNo"}:
        return 1
    if keys & {"stogInsUscc", "stogInsUsec", "poscode"}:
        return 2
    return None


# (field code, Chinese name) a problem is reported under.
_Where = tuple[str | None, str | None]
Checker = Callable[[Any, "_Ctx"], Any]


def _where(spec: FieldSpec) -> _Where:
    return (spec.code, spec.name)


class _Ctx:
    """Collects the problems of one record while its fields are checked."""

    __slots__ = ("pos", "errors", "warnings", "strict")

    def __init__(self, pos: int | None, strict: bool) -> None:
        self.pos = pos
        self.errors: list[Problem] = []
        self.warnings: list[Problem] = []
        self.strict = strict

    def _add(self, level: Level, code: str, where: _Where, kw: dict[str, Any]) -> None:
        p = Problem(level, code, PROBLEMS[code].format(**kw), self.pos, where[0], where[1], kw.get("erratum"))
        (self.errors if level is Level.ERROR else self.warnings).append(p)

    def error(self, where: _Where, code: str, **kw: Any) -> None:
        self._add(Level.ERROR, code, where, kw)

    def soft(self, where: _Where, code: str, **kw: Any) -> None:
        """An error in strict mode, a warning in lenient mode (code_strict names the strict wording)."""
        if self.strict:
            self._add(Level.ERROR, code + "_strict" if code + "_strict" in PROBLEMS else code, where, kw)
        else:
            self._add(Level.WARNING, code, where, kw)

    def warn(self, where: _Where, code: str, **kw: Any) -> None:
        self._add(Level.WARNING, code, where, kw)


_MISSING = object()



@lru_cache(maxsize=65536)
def _idcard_problem(value: str) -> tuple[str, str] | None:
    """(problem code, expected check char) for a resident ID, or None when valid. Cached: the same
    doctors' and technicians' numbers recur in every batch."""
    up = value.upper()
    if ID18_RE.match(up):
        expected = id_check_char(up[:17])
        return None if expected == up[17] else ("idcard_checksum", expected)
    if ID15_RE.match(up):
        return ("idcard_15", "")
    return ("idcard_format", "")


def _check_idcard(where: _Where, value: str, ctx: _Ctx) -> None:
    problem = _idcard_problem(value)
    if problem is None:
        return
    code, expected = problem
    if code == "idcard_15":
        ctx.warn(where, code, value=value)
    else:
        ctx.soft(where, code, value=value, expected=expected)


@lru_cache(maxsize=4096)
def _uscc_problem(value: str) -> tuple[str, str] | None:
    if not USCC_RE.match(value):
        return ("uscc_format", "")
    expected = uscc_check_char(value[:17])
    return None if expected == value[17] else ("uscc_checksum", expected)


def _is_datetime(value: str) -> bool:
    """`yyyy-MM-dd HH:mm:ss` and a real calendar time (positions checked before the C parser runs)."""
    if len(value) != 19 or value[10] != " " or value[4] != "-" or value[7] != "-" or value[13] != ":" \
            or value[16] != ":" or not value[:4].isdigit():
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_date(value: str) -> bool:
    if len(value) != 10 or value[4] != "-" or value[7] != "-" or not value[:4].isdigit():
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_base64_file(value: str) -> bytes | None:
    payload = value
    if value.startswith("data:"):
        head, _, payload = value.partition(",")
        if ";base64" not in head:
            return None
    elif len(value) < 64 or "://" in value:
        return None
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None


# What the fast path puts in place of an inline file while it checks the rest of the record.
_STAND_IN_URL = "http://127.0.0.1/inline"


def _is_data_url(value: Any) -> bool:
    """A file sent as a data: URL with nothing to strip (the full check would strip it first)."""
    return type(value) is str and value.startswith("data:") and not value[-1:].isspace()


class Validator:
    """Validates messages of one transaction in one mode."""

    def __init__(self, hop: int, mode: Mode | str = Mode.LENIENT, index_profile: str = DEFAULT_PROFILE) -> None:
        self.tx: Transaction = TRANSACTIONS[hop]
        self.hop = hop
        self.mode = Mode(mode)
        self.strict = self.mode is Mode.STRICT
        self.profile: IndexProfile = PROFILES[index_profile]
        self.fields: dict[str, FieldSpec] = {f.code: f for f in self.tx.fields}
        self._known = frozenset(self.fields)
        self._required = tuple(f.code for f in self.tx.fields if f.required)
        self._required_set = frozenset(self._required)
        self._where_certno = _where(self.fields["certno"])
        self._where_index = _where(self.fields["hiImgIndx"])
        # The last index parsed by the hiImgIndx rule, for the cross checks of the same record.
        self._parsed: tuple[str | None, dict[str, str] | None] = (None, None)
        self._variants = FIELD_VARIANTS[hop]
        self._foreign = FOREIGN_FIELDS[hop]
        # Plain strings (no rule, or certno's, which waits for the cross checks) are checked inline in the
        # record loop: only type and length.
        self._plain: dict[str, int | None] = {
            c: f.length for c, f in self.fields.items()
            if f.kind in (Kind.STRING, Kind.TEXT) and f.rule in (None, "certno")
        }
        # The same, with no limit as an unreachable one: one lookup decides "plain" and gives the limit.
        self._plain_limit: dict[str, int] = {c: sys.maxsize if n is None else n for c, n in self._plain.items()}
        self._checks: dict[str, Checker] = {
            code: self._compile(spec) for code, spec in self.fields.items() if code not in self._plain
        }
        # The fast path (sandbox.fastpath): the C-level shape, then the rules that need Python.
        self._shape = Shape(self.tx)
        self._texts = self._shape.text_codes
        self._index_match = self.profile.regex.match
        self._idcard_codes = tuple(f.code for f in self.tx.fields if f.rule == "idcard")
        self._uscc_codes = tuple(f.code for f in self.tx.fields if f.rule == "uscc")
        self._decimal_scales = tuple((f.code, 10 ** (f.scale or 0)) for f in self.tx.fields if f.kind is Kind.DECIMAL)
        self._file_codes = tuple(f.code for f in self.tx.fields if f.kind is Kind.FILE)

    # ---- compilation ---------------------------------------------------------------------------

    def _compile(self, spec: FieldSpec) -> Checker:
        where = _where(spec)
        kind = spec.kind
        # Each checker passes the common valid value itself and leaves everything else to the full rule.
        if kind is Kind.DATE:
            full_date = partial(self._date, where)

            def check_date(value: Any, ctx: _Ctx) -> Any:
                return value if type(value) is str and _is_date(value) else full_date(value, ctx)

            return check_date
        if kind is Kind.DATETIME:
            full_datetime = partial(self._datetime, where)
            parse = datetime.fromisoformat

            def check_datetime(value: Any, ctx: _Ctx) -> Any:
                # _is_datetime inlined: the most frequent check of a record
                if type(value) is str and len(value) == 19 and value[10] == " " and value[4] == "-" \
                        and value[7] == "-" and value[13] == ":" and value[16] == ":" and value[:4].isdigit():
                    try:
                        parse(value)
                    except ValueError:
                        pass
                    else:
                        return value
                return full_datetime(value, ctx)

            return check_datetime
        if kind is Kind.DECIMAL:
            assert spec.precision is not None and spec.scale is not None
            bound = 10 ** (spec.precision - spec.scale)
            full_decimal = partial(self._decimal, spec)

            def check_decimal(value: Any, ctx: _Ctx) -> Any:
                return value if type(value) is int and 0 <= value < bound else full_decimal(value, ctx)

            return check_decimal
        if kind is Kind.FILE:
            url_match = formats.URL_RE.match
            file_limit = spec.length
            full_file = partial(self._file, spec)

            def check_file(value: Any, ctx: _Ctx) -> Any:
                if type(value) is str and (file_limit is None or len(value) <= file_limit) \
                        and not value.startswith("dicom:") and url_match(value):
                    return value
                return full_file(value, ctx)

            return check_file
        rule = self._rule(spec)
        passes = self._passes(spec)
        limit = spec.length
        strict = self.strict

        def check_string(value: Any, ctx: _Ctx) -> Any:
            if type(value) is not str:
                value = _coerce(where, value, ctx, strict)
                if value is _MISSING:
                    return value
            if limit is not None and len(value) > limit:
                ctx.error(where, "too_long", length=len(value), limit=limit)
                return value
            if rule is not None and (passes is None or not passes(value)):
                rule(where, value, ctx)
            return value

        return check_string

    @staticmethod
    def _passes(spec: FieldSpec) -> Callable[[str], object] | None:
        """A C-level test that is truthy only for values the field's rule accepts silently (the common
        case, which then skips the rule's Python call), or None when the rule has no such test."""
        if spec.rule in ("dict", "dict_external", "dict_erratum"):
            assert spec.dictionary is not None
            return frozenset(DICTIONARIES[spec.dictionary]).__contains__
        patterns = {"fixmedins_code": formats.MEDINS_CODE_RE, "admdvs": formats.ADMDVS_RE,
                    "exam_part": formats.EXAM_PART_RE, "postcode": formats.POSTCODE_RE, "url": formats.URL_RE}
        pattern = patterns.get(spec.rule or "")
        return pattern.match if pattern is not None else None

    def _rule(self, spec: FieldSpec) -> Callable[[_Where, str, _Ctx], None] | None:
        name = spec.rule
        if name is None:
            return None
        if name in ("dict", "dict_external", "dict_erratum"):
            assert spec.dictionary is not None
            codes = DICTIONARIES[spec.dictionary]
            title = DICT_TITLES[spec.dictionary]
            choices = "、".join(f"{k}-{v}" for k, v in codes.items())
            erratum = _DICT_ERRATA.get(spec.dictionary)
            multi = spec.multi

            def check_dict(where: _Where, value: str, ctx: _Ctx) -> None:
                if value in codes:
                    return
                tokens = value.split(" ") if multi else [value]
                if multi and "" in tokens:
                    ctx.error(where, "multi_separator", value=value)
                    return
                for t in tokens:
                    if t in codes:
                        continue
                    if name == "dict":
                        ctx.error(where, "not_dict_code", value=t, dict=title, choices=choices)
                    elif name == "dict_external":
                        ctx.soft(where, "external_code", value=t, dict=title)
                    else:
                        ctx.soft(where, "erratum_dict_code", value=t, dict=title, choices=choices, erratum=erratum)

            return check_dict
        rules: dict[str, Callable[[_Where, str, _Ctx], None] | None] = {
            "hi_img_indx": self._index,
            "idcard": _check_idcard,
            "uscc": self._uscc,
            "fixmedins_code": self._fixmedins,
            "admdvs": self._admdvs,
            "exam_part": self._exam_part,
            "postcode": self._postcode,
            "url": self._url,
        }
        return rules[name]

    # ---- field rules ---------------------------------------------------------------------------

    def _index(self, where: _Where, value: str, ctx: _Ctx) -> None:
        parts = self.profile.parse(value)
        self._parsed = (value, parts)
        if parts is None:
            ctx.soft(where, "index_format", value=value, profile=self.profile.name, rule=self.profile.describe())

    @staticmethod
    def _uscc(where: _Where, value: str, ctx: _Ctx) -> None:
        problem = _uscc_problem(value)
        if problem is not None:
            ctx.soft(where, problem[0], value=value, expected=problem[1])

    @staticmethod
    def _fixmedins(where: _Where, value: str, ctx: _Ctx) -> None:
        if not formats.MEDINS_CODE_RE.match(value):
            ctx.soft(where, "fixmedins_format", value=value)

    @staticmethod
    def _admdvs(where: _Where, value: str, ctx: _Ctx) -> None:
        if not formats.ADMDVS_RE.match(value):
            ctx.error(where, "admdvs_format", value=value)

    @staticmethod
    def _exam_part(where: _Where, value: str, ctx: _Ctx) -> None:
        if formats.EXAM_PART_RE.match(value):
            return
        tokens = value.split(" ")
        if "" in tokens:
            ctx.error(where, "multi_separator", value=value)
            return
        for t in tokens:
            if not formats.EXAM_PART_RE.match(t):
                ctx.error(where, "exam_part_format", value=t)

    @staticmethod
    def _postcode(where: _Where, value: str, ctx: _Ctx) -> None:
        if not formats.POSTCODE_RE.match(value):
            ctx.soft(where, "postcode_format", value=value)

    @staticmethod
    def _url(where: _Where, value: str, ctx: _Ctx) -> None:
        if not formats.URL_RE.match(value):
            ctx.error(where, "url_format", value=value)

    # ---- kinds ---------------------------------------------------------------------------------

    @staticmethod
    def _date(where: _Where, value: Any, ctx: _Ctx) -> Any:
        if type(value) is not str:
            ctx.error(where, "type_string", got=json_type(value))
            return _MISSING
        if not _is_date(value):
            ctx.error(where, "date_format", value=value)
        return value

    @staticmethod
    def _datetime(where: _Where, value: Any, ctx: _Ctx) -> Any:
        if type(value) is not str:
            ctx.error(where, "type_string", got=json_type(value))
            return _MISSING
        if not _is_datetime(value):
            if _is_date(value):
                ctx.soft(where, "date_only", value=value, erratum=10)
                return value + " 00:00:00"
            ctx.error(where, "datetime_format", value=value)
        return value

    @staticmethod
    def _decimal(spec: FieldSpec, value: Any, ctx: _Ctx) -> Any:
        where = _where(spec)
        assert spec.precision is not None and spec.scale is not None
        bound = 10 ** (spec.precision - spec.scale)
        if type(value) is int and 0 <= value < bound:
            return value
        if type(value) is float and 0 <= value < bound and (value * 10**spec.scale).is_integer():
            return value  # the common case; anything doubtful takes the exact Decimal path below
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            ctx.error(where, "decimal_type", got=json_type(value))
            return _MISSING
        if isinstance(value, str):
            ctx.soft(where, "decimal_string", value=value, erratum=7)
        try:
            d = Decimal(str(value))
        except InvalidOperation:
            ctx.error(where, "decimal_format", value=value)
            return _MISSING
        if not d.is_finite():
            ctx.error(where, "decimal_format", value=value)
            return _MISSING
        if d < 0:
            ctx.error(where, "decimal_negative", value=value)
        exp = d.normalize().as_tuple().exponent
        assert isinstance(exp, int)
        if -exp > spec.scale:
            ctx.error(where, "decimal_scale", value=value, scale=spec.scale)
        elif abs(d) >= bound:
            ctx.error(where, "decimal_precision", value=value, precision=spec.precision, scale=spec.scale)
        if isinstance(value, str):
            return int(d) if d == d.to_integral_value() else float(d)
        return value

    def _file(self, spec: FieldSpec, value: Any, ctx: _Ctx) -> Any:
        where = _where(spec)
        dicom_hint = " 或 dicom:<StudyInstanceUID>" if spec.rule == "file_dicom" else ""
        if type(value) is not str:
            ctx.error(where, "type_string", got=json_type(value))
            return _MISSING
        if formats.URL_RE.match(value) or (dicom_hint and value.startswith("dicom:")):
            if spec.length is not None and len(value) > spec.length:
                ctx.error(where, "too_long", length=len(value), limit=spec.length)
            elif value.startswith("dicom:") and not formats.DICOM_UID_RE.match(value[6:]):
                ctx.error(where, "file_format", value=value[:80], dicom=dicom_hint)
            return value
        blob = _is_base64_file(value)
        if blob is not None:
            if self.strict:
                ctx.error(where, "file_inline_strict")
            else:
                ctx.warn(where, "file_inline", size=len(blob))
            return value
        if len(value) >= 64 and not value.startswith(("http", "dicom:")):
            ctx.error(where, "file_inline_bad")
            return value
        ctx.error(where, "file_format", value=value[:80], dicom=dicom_hint)
        return value

    # ---- records -------------------------------------------------------------------------------

    def _normalize_keys(self, rec: Mapping[Any, Any], ctx: _Ctx) -> dict[str, Any]:
        """Map variant spellings to table names and drop what the table lacks, reporting each by name."""
        out: dict[str, Any] = {}
        later: list[tuple[str, Any]] = []
        for raw_key, value in rec.items():
            key = raw_key.strip() if isinstance(raw_key, str) else str(raw_key)
            if key in self._known:
                out[key] = value
            else:
                later.append((key, value))
        for key, value in later:
            variant = self._variants.get(key)
            if variant is not None:
                kw = {"wrong": key, "right": variant.right, "erratum": variant.erratum}
                where = (key, self.fields[variant.right].name)
                if variant.right in out:
                    ctx.warn(where, "duplicate_key", **kw)
                    continue
                ctx.soft(where, "variant_spelling", **kw)
                out[variant.right] = value
            elif key in self._foreign:
                erratum = self._foreign[key]
                substitute_for = next((f for f, link in FILE_SUBSTITUTES.items() if link == key), None)
                if (
                    not self.strict
                    and substitute_for is not None
                    and substitute_for in self._known
                    and out.get(substitute_for) in (None, "")
                ):
                    ctx.warn(_where(self.fields[substitute_for]), "file_substitute",
                             wrong=key, right=substitute_for, erratum=erratum)
                    out[substitute_for] = value
                else:
                    ctx.soft((key, None), "foreign_field", wrong=key, erratum=erratum)
            else:
                ctx.soft((key, None), "unknown_field", wrong=key)
        return out

    def validate_record(self, rec: Any, position: int) -> RecordResult:
        """Check one record of `data` (position is 1-based)."""
        if type(rec) is dict:
            if self._shape.fits(rec):
                if self._rules_clean(rec):
                    return RecordResult(position, dict(rec), as_sent=True)
            elif inline := [code for code in self._file_codes if _is_data_url(rec.get(code))]:
                # Files sent inline (data: URLs, lenient mode's warning or strict mode's error): the rest of
                # the record takes the fast path with a stand-in link, the files their own check.
                probe = dict(rec)
                for code in inline:
                    probe[code] = _STAND_IN_URL
                if self._shape.fits(probe) and self._rules_clean(probe):
                    ctx = _Ctx(position, self.strict)
                    checks = self._checks
                    for code in rec:
                        if code in inline:
                            checks[code](rec[code], ctx)
                    return RecordResult(position, dict(rec), ctx.errors, ctx.warnings)
        return self.validate_record_fully(rec, position)

    def _rules_clean(self, rec: dict[str, Any]) -> bool:
        """The fast path's Python part: the rules `Shape` cannot express find nothing to say."""
        for code in self._idcard_codes:
            value = rec.get(code)
            if value is not None and _idcard_problem(value) is not None:
                return False
        for code in self._uscc_codes:
            value = rec.get(code)
            if value is not None and _uscc_problem(value) is not None:
                return False
        for code, scale in self._decimal_scales:
            value = rec.get(code)
            if type(value) is float and not (value * scale).is_integer():
                return False
        if rec.get("psnCertType") in ("111", "112"):
            # The patient's number is new in nearly every record: checked without the cache it would only fill.
            if _idcard_problem.__wrapped__(rec["certno"]) is not None:
                return False
        index = rec.get("hiImgIndx")
        if index is None:
            return True
        m = self._index_match(index)
        return m is not None and not self._index_disagrees(m.groupdict(), rec)

    def validate_record_fully(self, rec: Any, position: int) -> RecordResult:
        """Check one record field by field, finding every problem (`validate_record` without the fast path)."""
        ctx = _Ctx(position, self.strict)
        if type(rec) is not dict:
            ctx.error((None, None), "record_type", got=json_type(rec))
            return RecordResult(position, {}, ctx.errors, ctx.warnings)
        if not rec.keys() <= self._known:
            rec = self._normalize_keys(rec, ctx)
        values: dict[str, Any] = {}
        plain = self._plain
        checks = self._checks
        strict = self.strict
        plain_limit = self._plain_limit.get
        control = formats.CONTROL_CHARS_RE.search
        texts = self._texts
        for code, value in rec.items():
            if type(value) is str:
                value = value.strip()
                if not value:
                    continue
                if code in texts and control(value) is not None:
                    ctx.soft(_where(self.fields[code]), "control_char", chars=formats.control_chars(value))
                limit = plain_limit(code)
                if limit is not None:
                    if len(value) > limit:
                        ctx.error(_where(self.fields[code]), "too_long", length=len(value), limit=limit)
                    values[code] = value
                    continue
            elif value is None:
                continue
            elif code in plain:
                value = _coerce(_where(self.fields[code]), value, ctx, strict)
                if value is _MISSING:
                    continue
                limit = plain[code]
                if limit is not None and len(value) > limit:
                    ctx.error(_where(self.fields[code]), "too_long", length=len(value), limit=limit)
                values[code] = value
                continue
            checked = checks[code](value, ctx)
            if checked is not _MISSING:
                values[code] = checked
        for code in () if self._required_set <= values.keys() else self._required:
            if code not in values:
                raw = rec.get(code)
                if raw is None:
                    ctx.error(_where(self.fields[code]), "missing")
                elif type(raw) is str and not raw.strip():
                    ctx.error(_where(self.fields[code]), "empty")
                # otherwise the value was present and its own error has been reported
        self._cross_checks(values, ctx)
        return RecordResult(position, values, ctx.errors, ctx.warnings)

    def _cross_checks(self, values: dict[str, Any], ctx: _Ctx) -> None:
        certno = values.get("certno")
        if type(certno) is str and values.get("psnCertType") in ("111", "112") \
                and not (ctx.errors and any(p.field == "certno" for p in ctx.errors)):
            _check_idcard(self._where_certno, certno, ctx)
        index = values.get("hiImgIndx")
        if type(index) is str:
            parsed, parts = self._parsed  # one read: another thread may replace it
            if parsed is not index:
                parts = self.profile.parse(index)
            if parts:
                for words in self._index_disagrees(parts, values):
                    ctx.warn(self._where_index, "index_mismatch", **words)

    @staticmethod
    def _index_disagrees(parts: dict[str, str], values: dict[str, Any]) -> list[dict[str, str]]:
        """Where the index's segments disagree with the record's own fields (each a warning's words)."""
        out = []
        exam_date = values.get("examDate")
        if type(exam_date) is str and len(exam_date) == 10:
            got = parts["exam_time"][:8]
            if got != exam_date.replace("-", ""):
                out.append({"segment": "检查时间", "got": got, "field": "examDate", "expected": exam_date})
        certno = values.get("certno")
        if "certno" in parts and type(certno) is str:
            if parts["certno"].lstrip("0") != certno.upper().lstrip("0"):
                out.append({"segment": "证件号码", "got": parts["certno"], "field": "certno", "expected": certno})
        uscc = values.get("stogInsUscc")
        if type(uscc) is str and parts["stog_uscc"] != uscc:
            out.append({"segment": "存储机构信用代码", "got": parts["stog_uscc"], "field": "stogInsUscc",
                        "expected": uscc})
        return out

    def validate_records(self, data: list[Any]) -> list[RecordResult]:
        """Check every record, then indexes repeated within the batch."""
        results = [self.validate_record(rec, i) for i, rec in enumerate(data, 1)]
        first: dict[str, int] = {}
        where = _where(self.fields["hiImgIndx"])
        for r in results:
            idx = r.index
            if idx is None:
                continue
            if idx in first:
                ctx = _Ctx(r.position, self.strict)
                ctx.error(where, "duplicate_in_batch", value=idx, first=first[idx])
                r.errors.extend(ctx.errors)
            else:
                first[idx] = r.position
        return results

    # ---- envelope ------------------------------------------------------------------------------

    def validate_envelope(self, message: Any, length: int | None = None
                          ) -> tuple[dict[str, Any], list[Problem], list[Any] | None, int]:
        """Check the envelope; returns (normalised envelope, problems, records or None, data length).
        `length`: `data`'s length when the caller has measured it already (`envelope.Canonical`)."""
        ctx = _Ctx(None, self.strict)
        if not isinstance(message, dict):
            ctx.error((None, None), "env_not_object", got=json_type(message))
            return {}, ctx.errors, None, 0
        msg = {k.strip() if isinstance(k, str) else k: v for k, v in message.items()}
        env: dict[str, Any] = {}
        for f in ENVELOPE_FIELDS:
            if f.code == "data":
                continue
            value = msg.get(f.code)
            where = (f.code, f.name)
            if isinstance(value, str):
                value = value.strip()
            if value is None or value == "":
                if f.code == "infCode" and not self.strict and isinstance(msg.get("msgid"), str):
                    parsed = formats.parse_msgid(msg["msgid"].strip())
                    if parsed:
                        ctx.warn(where, "env_infcode_from_msgid", value=parsed[0], erratum=11)
                        env["infCode"] = parsed[0]
                        continue
                ctx.error(where, "env_missing" if value is None else "env_empty")
                continue
            if not isinstance(value, str):
                ctx.error(where, "type_string", got=json_type(value))
                continue
            if f.length is not None and len(value) > f.length:
                ctx.error(where, "too_long", length=len(value), limit=f.length)
                continue
            env[f.code] = value
        self._check_envelope_values(env, ctx)
        for key in msg:
            if key not in _ENV_NAMES:
                ctx.warn((str(key), None), "unknown_field", wrong=key)
        records, length = self._check_data(msg, ctx, length)
        return env, ctx.errors + ctx.warnings, records, length

    def _check_envelope_values(self, env: dict[str, Any], ctx: _Ctx) -> None:
        infno = env.get("infno")
        if infno is not None and infno != self.tx.infno:
            where = ("infno", _ENV_NAMES["infno"])
            if infno in INFNO_VARIANTS:
                ctx.soft(where, "env_infno_variant", value=infno, expected=self.tx.infno, erratum=1)
                env["infno"] = self.tx.infno
            else:
                ctx.error(where, "env_infno", value=infno, expected=self.tx.infno)
        msgid = env.get("msgid")
        if msgid is not None:
            where = ("msgid", _ENV_NAMES["msgid"])
            parsed = formats.parse_msgid(msgid)
            shape = formats.MSGID_RE.match(msgid) if isinstance(msgid, str) else None
            if shape is not None and parsed is None:  # 30 characters of the right kinds, not a real time
                ctx.error(where, "env_msgid_time", value=msgid, time=shape["time"], erratum=12)
            elif parsed is None:
                ctx.error(where, "env_msgid", value=msgid, length=len(msgid) if isinstance(msgid, str) else 0,
                          erratum=12)
            elif env.get("infCode") and len(env["infCode"]) == 12 and parsed[0] != env["infCode"]:
                ctx.soft(where, "env_msgid_inst", got=parsed[0], expected=env["infCode"])
        inf_time = env.get("infTime")
        if inf_time is not None and not _is_datetime(inf_time):
            ctx.error(("infTime", _ENV_NAMES["infTime"]), "env_inftime", value=inf_time)

    def _check_data(self, msg: dict[Any, Any], ctx: _Ctx, length: int | None) -> tuple[list[Any] | None, int]:
        where = ("data", _ENV_NAMES["data"])
        if "data" not in msg or msg["data"] is None:
            ctx.error(where, "env_missing")
            return None, 0
        data = msg["data"]
        if length is None:
            length = data_length(data)
        if isinstance(data, str):
            repeated = RepeatedKeys()
            try:
                parsed = json.loads(data, object_pairs_hook=repeated)
            except ValueError:
                parsed = None
            if repeated.found is not None:  # refused as a repeat in the body itself is (duplicate_key, 1008)
                key, count, _ = repeated.found
                ctx.error(where, "env_data_duplicate_key", key=key[:50], count=count)
                return None, length
            if isinstance(parsed, dict):
                parsed = [parsed]
            if not isinstance(parsed, list):
                ctx.error(where, "env_data_bad_string")
                return None, length
            ctx.soft(where, "env_data_string", erratum=13)
            data = parsed
        elif isinstance(data, dict):
            ctx.soft(where, "env_data_object")
            data = [data]
        elif not isinstance(data, list):
            ctx.error(where, "env_data_type", got=json_type(data))
            return None, length
        if length > DATA_MAX_CHARS:
            ctx.error(where, "env_data_too_long", length=length, limit=DATA_MAX_CHARS)
        if not data:
            ctx.error(where, "env_data_empty")
        return data, length

    # ---- whole message -------------------------------------------------------------------------

    def validate(self, message: Any) -> Report:
        """Check a whole message: the envelope and every record."""
        env, env_problems, data, length = self.validate_envelope(message)
        records = self.validate_records(data) if data is not None else []
        return Report(self.hop, self.mode, env, env_problems, records, length)


def _coerce(where: _Where, value: Any, ctx: _Ctx, strict: bool) -> Any:
    """A JSON number where the table says String: lenient mode takes its text, strict mode refuses."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not strict:
        text = str(value)
        ctx.warn(where, "type_coerced", got=json_type(value), value=text)
        return text
    ctx.error(where, "type_string", got=json_type(value))
    return _MISSING


_CACHE: dict[tuple[int, Mode, str], Validator] = {}


def validator(hop: int, mode: Mode | str = Mode.LENIENT, index_profile: str = DEFAULT_PROFILE) -> Validator:
    """A shared, compiled validator for (hop, mode, profile)."""
    key = (hop, Mode(mode), index_profile)
    if key not in _CACHE:
        _CACHE[key] = Validator(hop, key[1], index_profile)
    return _CACHE[key]


def validate_message(
    message: Any, hop: int | None = None, mode: Mode | str = Mode.LENIENT, index_profile: str = DEFAULT_PROFILE
) -> Report:
    """Validate a message of either hop; the hop is detected when not given (hop 1 when undecidable)."""
    return validator(hop or detect_hop(message) or 1, mode, index_profile).validate(message)
