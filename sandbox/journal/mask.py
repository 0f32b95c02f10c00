"""Masking personal data in exported journal entries and journal views (个人信息脱敏).

Patient fields of both hops are masked by kind — a name keeps its first character (李丽 → 李*), an
identity number its first and last four (5108**********0022), a phone its first three and last four, a
birth date its year, an address its first six characters.

Masking goes by value, not only by field name: every personal value learnt from an exchange is replaced
wherever it occurs in it — request, response, nested answers, messages, links. Learnt are the values of
the personal fields; the person segments of each hiImgIndx (the identity number of `doc-example`, the
人员管理码 of `nhsa-2025-draft`), which need not equal the record's certno; and the values the center's
messages quote from the DICOM images (PatientName, PatientID) and from the record, read from the slots of
those messages' own templates (sandbox.spec.messages.CENTER).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from sandbox.spec.fields import HOP1, HOP2
from sandbox.spec.index_profiles import PROFILES
from sandbox.spec.messages import CENTER

STAR = "*"


def _name(v: str) -> str:
    return v[:1] + STAR * max(len(v) - 1, 1)


def _ends(keep_head: int, keep_tail: int) -> Callable[[str], str]:
    def mask(v: str) -> str:
        if len(v) <= keep_head + keep_tail:
            return v[:1] + STAR * (len(v) - 1) if v else v
        return v[:keep_head] + STAR * (len(v) - keep_head - keep_tail) + v[len(v) - keep_tail:]

    return mask


def _birth(v: str) -> str:
    return v[:4] + "-**-**" if len(v) >= 4 else STAR * len(v)


def _address(v: str) -> str:
    return v[:6] + STAR * 4 if len(v) > 6 else STAR * len(v)


_IDNUMBER = _ends(4, 4)
# Field → how it is masked. Resident identity numbers of staff (*Idcard) are masked like the patient's.
MASKS: dict[str, Callable[[str], str]] = {
    "psnName": _name,
    "certno": _IDNUMBER,
    "tel": _ends(3, 4),
    "fmAddr": _address,
    "brdy": _birth,
    "patnId": _ends(2, 2),
    "iptNo": _ends(2, 2),
    "elecHlCardNo": _ends(2, 2),
    "elecHiCardNo": _ends(2, 2),  # ERRATA #3 spelling
    **{f.code: _IDNUMBER for tx in (HOP1, HOP2) for f in tx.fields if f.code.endswith("Idcard")},
}
# Values at least this long are also replaced wherever they occur in the entry (a one-character name would
# mask every occurrence of a common character).
EMBEDDED_MIN = 2
INDEX_FIELDS = ("hiImgIndx", "hiImgIdx")  # ERRATA #2 spelling too
# Person segments of the index profiles, and how they are masked.
INDEX_SEGMENTS: dict[str, Callable[[str], str]] = {"certno": _IDNUMBER, "psn_code": _ends(4, 4)}


def _template(code: str, slots: dict[str, Callable[[str], str]]) -> tuple[re.Pattern[str], dict[str, Callable[[str], str]]]:
    """A regex reading the slots of one of the center's message templates."""
    pattern = re.escape(CENTER[code])
    for name in re.findall(r"\{(\w+)\}", CENTER[code]):
        group = f"(?P<{name}>[^「」（）]+?)" if name in slots else ".*?"
        pattern = pattern.replace(re.escape("{" + name + "}"), group, 1)
    return re.compile(pattern), slots


# The center's messages that quote personal values: DICOM PatientName / PatientID against the record's.
QUOTING = (
    _template("disagree_name", {"dicom": _name, "record": _name}),
    _template("disagree_id", {"dicom": _ends(2, 2), "record": _ends(2, 2)}),
)


def _learn(seen: dict[str, str], value: str, mask: Callable[[str], str]) -> str:
    masked = mask(value)
    if len(value) >= EMBEDDED_MIN:
        seen.setdefault(value, masked)
    return masked


def _learn_index(index: str, seen: dict[str, str]) -> None:
    for profile in PROFILES.values():
        parts = profile.parse(index)
        for key, mask in INDEX_SEGMENTS.items():
            if parts is not None and key in parts and parts[key].strip("0"):
                _learn(seen, parts[key], mask)
                _learn(seen, parts[key].lstrip("0"), mask)  # the number itself, without the padding


def learn_text(text: str, seen: dict[str, str]) -> None:
    """Learn the personal values a center message quotes (DICOM PatientName / PatientID and the record's)."""
    if "「" not in text:
        return
    for pattern, slots in QUOTING:
        for m in pattern.finditer(text):
            for name, mask in slots.items():
                for value in re.split("[、,]", m.group(name)):
                    if value.strip():
                        _learn(seen, value.strip(), mask)


def _mask_record(rec: dict[str, Any], seen: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in rec.items():
        name = key.strip() if isinstance(key, str) else key
        mask = MASKS.get(name) if isinstance(name, str) else None
        if mask is not None and isinstance(value, str) and value.strip():
            out[key] = _learn(seen, value.strip(), mask)
            continue
        if name in INDEX_FIELDS and isinstance(value, str):
            _learn_index(value.strip(), seen)
        out[key] = value
    return out


def mask_message(message: Any, seen: dict[str, str]) -> Any:
    """A copy of a message with each record's personal fields masked; `seen` collects the replacements
    (the fields' values and the person segments of each index) for `scrub`. The envelope's key (the
    institution's shared secret) is masked too: a masked export is for sharing."""
    if not isinstance(message, dict):
        return message
    out = dict(message)
    for key, value in message.items():
        if isinstance(key, str) and key.strip() == "key" and isinstance(value, str) and value.strip():
            out[key] = _ends(4, 0)(value.strip())
            continue
        if not (isinstance(key, str) and key.strip() == "data"):
            continue
        data = value
        if isinstance(data, str):
            try:
                data = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue
        if isinstance(data, list):
            out[key] = [_mask_record(r, seen) if isinstance(r, dict) else r for r in data]
        elif isinstance(data, dict):
            out[key] = _mask_record(data, seen)
    return out


def learn_all(value: Any, seen: dict[str, str]) -> None:
    """Learn from every string of a value (answers, messages) what the center's messages quote."""
    if isinstance(value, str):
        learn_text(value, seen)
    elif isinstance(value, dict):
        for v in value.values():
            learn_all(v, seen)
    elif isinstance(value, list):
        for v in value:
            learn_all(v, seen)


def scrub(value: Any, seen: dict[str, str]) -> Any:
    """A copy of any JSON-like value with every learnt personal value replaced, in keys and strings alike."""
    if not seen:
        return value
    originals = sorted(seen, key=len, reverse=True)

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            for original in originals:
                if original in v:
                    v = v.replace(original, seen[original])
            return v
        if isinstance(v, dict):
            return {walk(k): walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return walk(value)


# `"field": "value"` in a text that cannot be parsed or written again, for every masked field and the key.
_FIELD_IN_TEXT = re.compile(r'("\s*(' + "|".join(map(re.escape, [*MASKS, "key"])) + r')\s*"\s*:\s*")((?:[^"\\]|\\.)*)"')


def _mask_match(match: re.Match[str], seen: dict[str, str]) -> str:
    value = match.group(3).strip()
    if not value:
        return match.group(0)
    if match.group(2) == "key":
        return f'{match.group(1)}{_ends(4, 0)(value)}"'
    return f'{match.group(1)}{_learn(seen, value, MASKS[match.group(2)])}"'


def mask_text(text: str, seen: dict[str, str]) -> str:
    """A body that is not JSON, or nested deeper than orjson parses (1024) or writes (254): each personal
    field's value is masked where it stands in the text, and every learnt value replaced."""
    learn_text(text, seen)
    return str(scrub(_FIELD_IN_TEXT.sub(lambda m: _mask_match(m, seen), text), seen))


def _json_text(text: str, seen: dict[str, str], message: bool) -> str:
    """A JSON text masked: parsed and written again (escaped characters are found too); masked as text when
    it is not JSON or too deep to parse, walk or write again."""
    try:
        parsed = orjson.loads(text)
        if message:
            parsed = mask_message(parsed, seen)
        learn_all(parsed, seen)
        return orjson.dumps(scrub(parsed, seen)).decode()
    except (orjson.JSONDecodeError, orjson.JSONEncodeError, RecursionError):
        return mask_text(text, seen)


def mask_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """A copy of a journal entry (as exported) with personal data masked wherever it occurs."""
    seen: dict[str, str] = {}
    out = dict(entry)
    if isinstance(entry.get("request"), str):
        out["request"] = _json_text(entry["request"], seen, message=True)
    if isinstance(entry.get("response"), str):
        out["response"] = _json_text(entry["response"], seen, message=False)
    learn_all(entry.get("answers"), seen)
    # The request again: values learnt from the response (DICOM names) may occur in it too.
    for key, value in entry.items():
        if key in ("request", "response"):
            out[key] = scrub(out[key], seen)
        elif isinstance(value, str | list | dict):
            out[key] = scrub(value, seen)
    return out


def masked_key(request: Any) -> bool:
    """Whether a recorded request's key was masked on export (it can no longer authenticate)."""
    if not isinstance(request, str):
        return False
    try:
        message = orjson.loads(request)
    except orjson.JSONDecodeError:
        return False
    key = message.get("key") if isinstance(message, dict) else None
    return isinstance(key, str) and key.strip().endswith(STAR * 2)
