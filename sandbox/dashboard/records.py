"""Reading recorded exchanges record by record: the records a request carried, the answer each record got,
and the fields an answer's Chinese message names. No I/O here.

The journal stores bodies as sent, so everything here tolerates the document's damage (keys with a leading
space, `data` as a JSON string, the example's variant spellings, a summary-style answer with one entry).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from functools import cache
from typing import Any

from sandbox.common.jsondepth import loads_bounded
from sandbox.journal.entry import answers
from sandbox.spec.fields import ENVELOPE_FIELDS, HOP1, HOP2
from sandbox.spec.formats import DATE_FORMAT, DATETIME_FORMAT
from sandbox.spec.messages import RESULTS
from sandbox.spec.variants import FIELD_VARIANTS

INDEX_KEYS = ("hiImgIndx", "hiImgIdx")  # ERRATA #2
# The names a record's fields go by: the tables' codes and the example's variant spellings.
FIELD_NAMES: dict[str, str] = {f.code: f.name for tx in (HOP1, HOP2) for f in tx.fields}
VARIANT_RIGHT: dict[str, str] = {v.wrong: v.right for hop in FIELD_VARIANTS.values() for v in hop.values()}
ENVELOPE_NAMES: dict[str, str] = {f.code: f.name for f in ENVELOPE_FIELDS}
DUPLICATE_PREFIXES = tuple(RESULTS[k].split("{", 1)[0] for k in ("duplicate_index", "duplicate_in_batch"))
# Chinese names shorter than this are not looked for in free text (too likely to occur by chance).
MIN_NAME_CHARS = 4


def field_name(code: str) -> str:
    """The Chinese name of a record or envelope field ('' when unknown)."""
    if code in FIELD_NAMES:
        return FIELD_NAMES[code]
    if code in VARIANT_RIGHT:
        return FIELD_NAMES.get(VARIANT_RIGHT[code], "")
    return ENVELOPE_NAMES.get(code, "")


def stripped(obj: dict[Any, Any]) -> dict[str, Any]:
    """A dict with its keys stripped of the spaces the document's examples put in them."""
    if all(isinstance(k, str) and k == k.strip() for k in obj):
        return obj
    return {(k.strip() if isinstance(k, str) else str(k)): v for k, v in obj.items()}


def parse_json(text: str | None) -> Any:
    """A stored body's JSON value; None when it is not JSON or nests too deep to be walked (kept as text)."""
    return loads_bounded(text)


def message_records(message: Any) -> list[Any]:
    """The records of a parsed message's `data` (an array, a JSON string of one, or a single object)."""
    if not isinstance(message, dict):
        return []
    data = stripped(message).get("data")
    if isinstance(data, str):
        data = parse_json(data)
    if isinstance(data, dict):
        return [data]
    return data if isinstance(data, list) else []


def record_index(record: Any) -> str | None:
    if not isinstance(record, dict):
        return None
    rec = stripped(record)
    for key in INDEX_KEYS:
        value = rec.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


@dataclass(slots=True)
class Answer:
    flag: str | None
    message: str


def record_answers(records: list[Any], response: str | None) -> list[Answer | None]:
    """The answer each record got, by position (None where the response has none).

    A summary-style answer (one entry with no index for several records) applies to every record.
    """
    got = answers(response)
    out: list[Answer | None] = [None] * len(records)
    if not got:
        return out

    def make(a: dict[str, Any]) -> Answer:
        flag = a.get("succFlag")
        msg = a.get("message")
        return Answer(None if flag is None else str(flag), msg if isinstance(msg, str) else "")

    first_index = got[0].get("hiImgIndx", got[0].get("hiImgIdx"))
    if len(got) == 1 and len(records) > 1 and first_index is None:
        return [make(got[0])] * len(records)
    if len(got) == len(records):
        return [make(a) for a in got]
    by_index = {str(a.get("hiImgIndx", a.get("hiImgIdx"))): a for a in got
                if a.get("hiImgIndx", a.get("hiImgIdx")) is not None}
    for pos, rec in enumerate(records):
        idx = record_index(rec)
        if idx is not None and idx in by_index:
            out[pos] = make(by_index[idx])
        elif pos < len(got) and got[pos].get("hiImgIndx", got[pos].get("hiImgIdx")) is None:
            out[pos] = make(got[pos])
    return out


def response_message(response: str | None) -> str:
    """The envelope `message` of a recorded response ('' when there is none)."""
    body = parse_json(response)
    if isinstance(body, dict):
        msg = stripped(body).get("message")
        if isinstance(msg, str):
            return msg
    return ""


# ---- which fields a Chinese message names -----------------------------------------------------------------

@cache
def _code_pattern(envelope: bool) -> re.Pattern[str]:
    codes = set(FIELD_NAMES) | set(VARIANT_RIGHT)
    if envelope:
        codes |= set(ENVELOPE_NAMES)
    alternation = "|".join(re.escape(c) for c in sorted(codes, key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z])({alternation})(?![A-Za-z])")


@cache
def _names() -> tuple[re.Pattern[str], dict[str, tuple[str, ...]]]:
    """Chinese field names (and their stems without 代码/名称) → the codes they name, longest first."""
    by_name: dict[str, list[str]] = {}
    for code, name in FIELD_NAMES.items():
        forms = {name}
        for suffix in ("代码", "名称"):
            if name.endswith(suffix) and len(name) - len(suffix) >= MIN_NAME_CHARS:
                forms.add(name[: -len(suffix)])
        for form in forms:
            if len(form) >= MIN_NAME_CHARS and code not in by_name.setdefault(form, []):
                by_name[form].append(code)
    alternation = "|".join(re.escape(n) for n in sorted(by_name, key=len, reverse=True))
    return re.compile(alternation), {k: tuple(v) for k, v in by_name.items()}


def fields_named(message: str, *, envelope: bool = False) -> list[str]:
    """Field codes a Chinese answer message names, in order: by code (`certno(证件号码): …`, `影像（imgInfoDcm）`)
    or, when it names none by code, by Chinese name (`检查项目与影像检查类型不符`). A duplicate index names
    hiImgIndx."""
    if not message:
        return []
    out: list[str] = []
    for m in _code_pattern(envelope).finditer(message):
        code = m.group(1)  # a variant spelling stays as sent: it is the key to highlight
        if code not in out:
            out.append(code)
    if out:
        return out
    if message.startswith(DUPLICATE_PREFIXES):
        return ["hiImgIndx"]
    pattern, by_name = _names()
    for m in pattern.finditer(message):
        for code in by_name[m.group(0)]:
            if code not in out:
                out.append(code)
    return out


# ---- times ------------------------------------------------------------------------------------------------

def parse_datetime(value: Any) -> datetime | None:
    """A datetime field or a date field (taken at the end of its day), or None."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        return datetime.strptime(text, DATETIME_FORMAT)
    except ValueError:
        pass
    try:
        return datetime.combine(datetime.strptime(text, DATE_FORMAT).date(), time(23, 59, 59))
    except ValueError:
        return None
