"""Formats the document states (dates, msgid) or relies on (区划, 机构代码, 部位编码)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # yyyy-MM-dd HH:mm:ss
CHINA_TIME = timezone(timedelta(hours=8))  # the document's times (infTime, msgid) are China Standard Time
DATE_FORMAT = "%Y-%m-%d"  # yyyy-MM-dd
MSGID_TIME_FORMAT = "%Y%m%d%H%M%S"  # yyyyMMddHHmmss

DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MSGID_RE = re.compile(r"^(?P<inst>[0-9A-Za-z]{12})(?P<time>\d{14})(?P<seq>\d{4})$")
ADMDVS_RE = re.compile(r"^\d{6}$")
MEDINS_CODE_RE = re.compile(r"^[A-Z]\d{11}$")
EXAM_PART_RE = re.compile(r"^[A-Z0-9]{9}$")
POSTCODE_RE = re.compile(r"^\d{6}$")
URL_RE = re.compile(r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s/$.?#][^\s]*$")  # scheme in any case


def parse_datetime(value: str) -> datetime | None:
    """`yyyy-MM-dd HH:mm:ss` → datetime, or None when the text is not that format or not a real time."""
    if not DATETIME_RE.match(value):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def parse_date(value: str) -> date | None:
    """`yyyy-MM-dd` → date, or None."""
    if not DATE_RE.match(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def format_datetime(value: datetime) -> str:
    return value.strftime(DATETIME_FORMAT)


def format_date(value: date) -> str:
    return value.strftime(DATE_FORMAT)


def make_msgid(inst_code: str, when: datetime, seq: int) -> str:
    """Institution code (12) + yyyyMMddHHmmss (14) + sequence (4) = 30 characters."""
    return f"{inst_code[:12]:0<12}{when.strftime(MSGID_TIME_FORMAT)}{seq % 10000:04d}"


def parse_msgid(value: str) -> tuple[str, datetime, int] | None:
    """Split a msgid into (institution, time, sequence), or None when it is not 12+14+4."""
    m = MSGID_RE.match(value)
    if not m:
        return None
    when = _msgid_time(m["time"])
    if when is None:
        return None
    return m["inst"], when, int(m["seq"])


@lru_cache(maxsize=4096)
def _msgid_time(text: str) -> datetime | None:
    """A msgid's 14-digit time (strptime is slow, and one sender's msgids share their second)."""
    try:
        return datetime.strptime(text, MSGID_TIME_FORMAT)
    except ValueError:
        return None

DICOM_UID_RE = re.compile(r"^(?=.{1,64}$)[0-9]+(\.[0-9]+)*$")


def china_now() -> datetime:
    """The wall clock in China Standard Time, without tzinfo (infTime, msgid, receive times)."""
    return datetime.now(CHINA_TIME).replace(tzinfo=None, microsecond=0)


def china_text(when: float | None = None) -> str:
    """A time stored as text (`yyyy-MM-dd HH:mm:ss`): China wall time, whatever the host's zone. `when` is a
    unix time; None is now."""
    moment = datetime.now(CHINA_TIME) if when is None else datetime.fromtimestamp(when, CHINA_TIME)
    return moment.strftime(DATETIME_FORMAT)


def china_iso(value: float | datetime | str | None) -> str | None:
    """A time as APIs, pages, exports and logs show it: ISO 8601 in China time with its offset,
    `2025-10-08T08:00:00+08:00`. A unix time, an aware datetime, or a naive datetime or stored text
    (`yyyy-MM-dd HH:mm:ss[.ffffff]`), both read as China wall time. None (or unreadable text) stays None."""
    if value is None:
        return None
    if isinstance(value, int | float):
        moment = datetime.fromtimestamp(value, CHINA_TIME)
    elif isinstance(value, datetime):
        moment = value.astimezone(CHINA_TIME) if value.tzinfo else value.replace(tzinfo=CHINA_TIME)
    else:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
        moment = moment.astimezone(CHINA_TIME) if moment.tzinfo else moment.replace(tzinfo=CHINA_TIME)
    return moment.isoformat(timespec="milliseconds" if moment.microsecond else "seconds")


# Characters no value may carry (a field error in strict mode, a warning in lenient): C0 controls other than
# tab, line feed and carriage return; DEL and the C1 controls; and the bidirectional formatting characters
# (LRM/RLM/ALM, embeddings and overrides U+202A–U+202E, isolates U+2066–U+2069), which make a name display
# differently from what it is ("Trojan Source").
CONTROL_CHARS_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def control_chars(value: str) -> str:
    """The control characters in a value, each named by its code point, e.g. U+0000 (empty when there are none)."""
    found = sorted({m.group() for m in CONTROL_CHARS_RE.finditer(value)})
    return "、".join(f"U+{ord(c):04X}" for c in found[:5])
