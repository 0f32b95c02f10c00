"""Attribute matching of PS3.4 C.2.2.2, shared by QIDO-RS and C-FIND so that both answer alike.

The query keys the center supports are the table `KEYS` (keyword, VR, level). A query value becomes a
`Condition` by the rules of PS3.4 C.2.2.2:

- universal matching: an empty value, or `*` alone, matches everything (C.2.2.2.3);
- single value matching: the value itself (C.2.2.2.1); Person Names ignore case and trailing empty components;
- wildcard matching: `*` (any run of characters) and `?` (one character) in a value of a text VR (C.2.2.2.4);
- range matching: `a-b`, `-b`, `a-` for DA and TM values (C.2.2.2.5);
- list of UID matching: UIDs separated by a backslash (DIMSE) or a comma (QIDO-RS, PS3.18 8.3.4.1)
  (C.2.2.2.2); other VRs accept a value list the same way and match when any value matches (C.2.2.2.8).

A Person Name is matched per component group (Alphabetic=Ideographic=Phonetic, PS3.5 6.2.1): a query with
one group (no `=`) matches when any stored group matches it, so `黄*` and `HUANG*` both find
`HUANG^LIJUAN=黄^丽娟=huang^li juan`; a query with several groups (`=黄*`) matches each non-empty group against
the stored group in the same position. Fuzzy matching (`fuzzymatching=true`) also ignores component
separators and spaces and matches a name that starts with the query.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

from sandbox.spec.formats import DICOM_UID_RE

Level = Literal["PATIENT", "STUDY", "SERIES", "IMAGE"]
LEVELS: tuple[Level, ...] = ("PATIENT", "STUDY", "SERIES", "IMAGE")
TEXT_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})


@dataclass(frozen=True, slots=True)
class Key:
    """A query key the center supports: matched (unless `returned_only`) and returned."""

    keyword: str
    level: Level
    qido_default: bool = False  # returned by QIDO-RS at its level without includefield (PS3.18 10.6.3.3)
    returned_only: bool = False  # computed counts and constants: returned, never matched

    @property
    def tag(self) -> int:
        from pydicom.datadict import tag_for_keyword  # pydicom loads on first use, not with the center

        tag = tag_for_keyword(self.keyword)
        assert tag is not None, self.keyword
        return tag

    @property
    def vr(self) -> str:
        from pydicom.datadict import dictionary_VR

        return dictionary_VR(self.tag)


KEYS: tuple[Key, ...] = (
    Key("PatientName", "PATIENT", True),
    Key("PatientID", "PATIENT", True),
    Key("IssuerOfPatientID", "PATIENT"),
    Key("PatientBirthDate", "PATIENT", True),
    Key("PatientSex", "PATIENT", True),
    Key("NumberOfPatientRelatedStudies", "PATIENT", returned_only=True),
    Key("NumberOfPatientRelatedSeries", "PATIENT", returned_only=True),
    Key("NumberOfPatientRelatedInstances", "PATIENT", returned_only=True),
    Key("StudyInstanceUID", "STUDY", True),
    Key("StudyDate", "STUDY", True),
    Key("StudyTime", "STUDY", True),
    Key("AccessionNumber", "STUDY", True),
    Key("StudyID", "STUDY", True),
    Key("ReferringPhysicianName", "STUDY", True),
    Key("StudyDescription", "STUDY", True),
    Key("InstitutionName", "STUDY"),
    Key("ModalitiesInStudy", "STUDY", True),
    Key("SOPClassesInStudy", "STUDY"),
    Key("NumberOfStudyRelatedSeries", "STUDY", True, returned_only=True),
    Key("NumberOfStudyRelatedInstances", "STUDY", True, returned_only=True),
    Key("SeriesInstanceUID", "SERIES", True),
    Key("Modality", "SERIES", True),
    Key("SeriesNumber", "SERIES", True),
    Key("SeriesDescription", "SERIES", True),
    Key("SeriesDate", "SERIES"),
    Key("SeriesTime", "SERIES"),
    Key("BodyPartExamined", "SERIES"),
    Key("PerformedProcedureStepStartDate", "SERIES", True),
    Key("PerformedProcedureStepStartTime", "SERIES", True),
    Key("NumberOfSeriesRelatedInstances", "SERIES", True, returned_only=True),
    Key("SOPInstanceUID", "IMAGE", True),
    Key("SOPClassUID", "IMAGE", True),
    Key("InstanceNumber", "IMAGE", True),
    Key("Rows", "IMAGE", True),
    Key("Columns", "IMAGE", True),
    Key("BitsAllocated", "IMAGE", True),
    Key("NumberOfFrames", "IMAGE", True),
    Key("ContentDate", "IMAGE"),
    Key("ContentTime", "IMAGE"),
    Key("AvailableTransferSyntaxUID", "IMAGE", True, returned_only=True),
)
BY_KEYWORD = {k.keyword: k for k in KEYS}
# The unique key of each level (PS3.4 C.6.1.1 / C.6.2.1); PATIENT's is PatientID.
UNIQUE: dict[Level, str] = {"PATIENT": "PatientID", "STUDY": "StudyInstanceUID", "SERIES": "SeriesInstanceUID",
                            "IMAGE": "SOPInstanceUID"}
# Returned at every level at and under the study (PS3.18 10.6.3.3): every instance here is online.
INSTANCE_AVAILABILITY = "ONLINE"

_TAG_RE = re.compile(r"^([0-9A-Fa-f]{4}),?([0-9A-Fa-f]{4})$")
_DATE_RE = re.compile(r"^\d{8}$")
_TIME_RE = re.compile(r"^(\d{2})(\d{2})?(\d{2})?(\.\d{1,6})?$")
_INT_RE = re.compile(r"^[+-]?\d+$")


class QueryError(Exception):
    """A query value that cannot be used: names the key, says why in Chinese."""

    def __init__(self, keyword: str, reason: str) -> None:
        self.keyword = keyword
        self.reason = reason
        super().__init__(f"查询键 {keyword}：{reason}")


def levels_upto(level: Level) -> tuple[Level, ...]:
    """The levels a record of `level` carries attributes of (its own and those above it)."""
    return LEVELS[:LEVELS.index(level) + 1]


def resolve(name: str) -> str | None:
    """A DICOM keyword, or a tag written `00100010` or `0010,0010`, as a keyword; None when neither."""
    from pydicom.datadict import keyword_for_tag, tag_for_keyword

    m = _TAG_RE.match(name)
    if m:
        return keyword_for_tag(int(m.group(1) + m.group(2), 16)) or name.replace(",", "").upper()
    return name if tag_for_keyword(name) is not None else None


# ---- conditions ----------------------------------------------------------------------------------------


def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    text = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(text, re.S | (re.I if ignore_case else 0))


def _pn_groups(value: str) -> list[str]:
    """Component groups of a Person Name with trailing empty components and spaces dropped."""
    return [g.rstrip("^ ").strip() for g in value.split("=")]


def _squash(value: str) -> str:
    return value.replace("^", "").replace(" ", "").casefold()


def _time_bound(text: str, upper: bool) -> str:
    """A TM value as HHMMSS.ffffff for comparison; the missing part filled to the start or end of its span."""
    m = _TIME_RE.match(text)
    assert m is not None
    filled = (m.group(1) + (m.group(2) or "") + (m.group(3) or "")).ljust(6, "9" if upper else "0")
    fraction = (m.group(4) or ".")[1:].ljust(6, "9" if upper else "0")
    return f"{filled}.{fraction}"


@dataclass(slots=True)
class Condition:
    """One key's matching rule: any of `values` matches (a single value is a list of one)."""

    key: Key
    values: list[str]
    fuzzy: bool = False
    _tests: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._tests = [self._compile(v) for v in self.values]

    @property
    def keyword(self) -> str:
        return self.key.keyword

    def _compile(self, value: str) -> Any:
        vr = self.key.vr
        name = self.key.keyword
        if vr == "UI":
            if not DICOM_UID_RE.match(value):
                raise QueryError(name, f"「{value[:64]}」不是合法的 UID")
            return value
        if vr in ("DA", "TM"):
            return self._range(value)
        if vr in ("IS", "US", "SL", "UL", "SS"):
            if not _INT_RE.match(value):
                raise QueryError(name, f"「{value[:64]}」应为整数")
            return int(value)
        if vr == "PN":
            groups = _pn_groups(value)
            if self.fuzzy:
                return ("fuzzy", [_wildcard(_squash(g) + "*", True) if g else None for g in groups])
            return ("pn", [_wildcard(g, True) if g else None for g in groups])
        if "*" in value or "?" in value:
            return _wildcard(value, False)
        return value

    def _range(self, value: str) -> tuple[str, str]:
        """(low, high) inclusive, as comparable strings; a single value is a range of itself."""
        name, vr = self.key.keyword, self.key.vr
        if "-" in value:
            start, _, end = value.partition("-")
            if not start and not end:
                raise QueryError(name, "范围的两端不能都为空")
        else:
            start = end = value
        if vr == "DA":
            for part in (start, end):
                if part and not _valid_date(part):
                    raise QueryError(name, f"「{value[:64]}」不是日期或日期范围（YYYYMMDD、YYYYMMDD-YYYYMMDD、-YYYYMMDD、YYYYMMDD-）")
            low, high = start or "00000000", end or "99999999"
        else:
            start, end = start.replace(":", ""), end.replace(":", "")
            for part in (start, end):
                if part and not _TIME_RE.match(part):
                    raise QueryError(name, f"「{value[:64]}」不是时间或时间范围（HHMMSS.FFFFFF，可只写到时或分；范围 a-b）")
            low = _time_bound(start, False) if start else "000000.000000"
            high = _time_bound(end, True) if end else "999999.999999"
        if low > high:
            raise QueryError(name, f"范围「{value[:64]}」的起点晚于终点")
        return low, high

    def matches(self, stored: Any) -> bool:
        """Whether a stored value (a string, a number, or a list for a multi-valued attribute) matches."""
        if isinstance(stored, (list, tuple)):
            return any(self._one(str(v)) for v in stored)
        return self._one("" if stored is None else str(stored))

    def _one(self, stored: str) -> bool:
        stored = stored.strip()
        if not stored:
            return False  # an empty stored value matches only universal matching (never a Condition)
        vr = self.key.vr
        for test in self._tests:
            if vr in ("DA", "TM"):
                text = stored.replace(":", "")
                if vr == "TM":
                    if not _TIME_RE.match(text):
                        continue
                    if test[0] <= _time_bound(text, False) <= test[1]:
                        return True
                elif test[0] <= text <= test[1]:
                    return True
            elif isinstance(test, int):
                if _INT_RE.match(stored) and int(stored) == test:
                    return True
            elif isinstance(test, tuple):
                if _pn_match(test, stored):
                    return True
            elif isinstance(test, re.Pattern):
                if test.fullmatch(stored):
                    return True
            elif stored == test:
                return True
        return False


def _pn_match(test: tuple[str, list[re.Pattern[str] | None]], stored: str) -> bool:
    kind, patterns = test
    groups = _pn_groups(stored)
    if kind == "fuzzy":
        groups = [_squash(g) for g in groups]
    if len(patterns) == 1:
        p = patterns[0]
        return p is not None and any(g and p.fullmatch(g) for g in groups)
    for n, p in enumerate(patterns):
        if p is None:
            continue
        if n >= len(groups) or not groups[n] or not p.fullmatch(groups[n]):
            return False
    return True


def _valid_date(text: str) -> bool:
    if not _DATE_RE.match(text):
        return False
    try:
        datetime.strptime(text, "%Y%m%d")
    except ValueError:
        return False
    return True


def condition(key: Key, raw: str, separators: str, fuzzy: bool = False) -> Condition | None:
    """The Condition of a query value, or None for universal matching; QueryError when malformed."""
    if key.returned_only:
        return None
    text = raw.strip() if key.vr != "PN" else raw.strip(" ")
    if not text or (text == "*" and key.vr not in ("DA", "TM", "UI")):
        return None
    if key.vr == "PN" or key.vr in TEXT_VRS - {"CS", "AE"}:
        seps = "\\"  # a comma may be part of a name or a description
    else:
        seps = separators
    values = [v.strip() for v in re.split("|".join(re.escape(s) for s in seps), text)] if seps else [text]
    values = [v for v in values if v]
    if not values:
        raise QueryError(key.keyword, f"「{raw[:64]}」没有可匹配的值")
    if any(v == "*" for v in values) and key.vr not in ("DA", "TM", "UI"):
        return None
    return Condition(key, values, fuzzy)


def element_text(elem: Any) -> str:
    """A data element's value as query text: several values joined by a backslash, as DIMSE sends them."""
    from pydicom.multival import MultiValue

    value = elem.value
    if value is None:
        return ""
    if isinstance(value, (list, tuple, MultiValue)):
        return "\\".join(str(v) for v in value)
    return str(value)


def matches(record: dict[str, Any], conditions: Iterable[Condition]) -> bool:
    return all(c.matches(record.get(c.keyword)) for c in conditions)


# ---- answers -------------------------------------------------------------------------------------------


def dataset(record: dict[str, Any], keywords: Sequence[str]) -> Dataset:
    """The named attributes of a record as a Dataset (UTF-8): a C-FIND answer, or a QIDO-RS one via
    `to_json_dict` (which splits a multi-group Person Name into Alphabetic/Ideographic/Phonetic)."""
    from pydicom.datadict import dictionary_VR, tag_for_keyword
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    for kw in keywords:
        key = BY_KEYWORD.get(kw)
        tag = key.tag if key else tag_for_keyword(kw)
        if tag is None:
            continue
        vr = key.vr if key else dictionary_VR(tag)
        value = record.get(kw)
        if value is None or value == "" or value == []:
            ds.add_new(tag, vr, None)
        elif vr in ("IS", "US", "SL", "UL", "SS"):
            try:
                ds.add_new(tag, vr, int(value))
            except (TypeError, ValueError):
                ds.add_new(tag, vr, None)
        elif isinstance(value, (list, tuple)):
            ds.add_new(tag, vr, [str(v) for v in value])
        else:
            ds.add_new(tag, vr, str(value))
    return ds
