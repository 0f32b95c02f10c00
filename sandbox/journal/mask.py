"""Masking personal data in exported journal entries (个人信息脱敏).

Patient fields of both hops are masked by kind — a name keeps its first character (李丽 → 李*), an
identity number its first and last four (5108**********0022), a phone its first three and last four, a
birth date its year, an address its first six characters. Identity numbers also appear inside other values
(the certificate segment of hiImgIndx, links carrying the index); every occurrence in the entry is
replaced, in the request and in the response alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from sandbox.spec.fields import HOP1, HOP2

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
# Values at least this long are also replaced wherever they occur in the entry.
EMBEDDED_MIN = 8


def _mask_record(rec: dict[str, Any], seen: dict[str, str], values: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in rec.items():
        mask = MASKS.get(key.strip()) if isinstance(key, str) else None
        if mask is not None and isinstance(value, str) and value.strip():
            masked = mask(value.strip())
            if len(value.strip()) >= EMBEDDED_MIN:
                seen[value.strip()] = masked
            values[value] = masked
            out[key] = masked
        else:
            out[key] = value
    return out


def mask_message(message: Any, seen: dict[str, str], values: dict[str, str] | None = None) -> Any:
    """A copy of a message with each record's personal fields masked; `seen` collects replacements to make
    wherever the value occurs, `values` every value masked (as sent) with its mask.
    The envelope's key (the institution's shared secret) is masked too: a masked export is for sharing."""
    values = {} if values is None else values
    if not isinstance(message, dict):
        return message
    out = dict(message)
    for key, value in message.items():
        if isinstance(key, str) and key.strip() == "key" and isinstance(value, str) and value.strip():
            out[key] = values[value] = _ends(4, 0)(value.strip())
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
            out[key] = [_mask_record(r, seen, values) if isinstance(r, dict) else r for r in data]
        elif isinstance(data, dict):
            out[key] = _mask_record(data, seen, values)
    return out


def _replace_all(text: str, seen: dict[str, str]) -> str:
    for original in sorted(seen, key=len, reverse=True):
        if original in text:
            text = text.replace(original, seen[original])
    return text


# `"field": "value"` in a text that cannot be parsed, for every masked field and the envelope's key.
_FIELD_IN_TEXT = re.compile(r'("\s*(' + "|".join(map(re.escape, [*MASKS, "key"])) + r')\s*"\s*:\s*")((?:[^"\\]|\\.)*)"')


def _mask_match(match: re.Match[str], seen: dict[str, str]) -> str:
    value = match.group(3).strip()
    if not value:
        return match.group(0)
    masked = _ends(4, 0)(value) if match.group(2) == "key" else MASKS[match.group(2)](value)
    if len(value) >= EMBEDDED_MIN and match.group(2) != "key":
        seen[value] = masked
    return f'{match.group(1)}{masked}"'


def mask_text(text: str, seen: dict[str, str]) -> str:
    """A request body's text with personal data masked; `seen` collects the replacements made.

    A body nested deeper than orjson serialises (254 levels) is never re-serialised: each masked value is
    replaced in the text as it stands, quotes included."""
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:  # not JSON, or nested past what orjson parses (1024 levels)
        return _replace_all(_FIELD_IN_TEXT.sub(lambda m: _mask_match(m, seen), text), seen)
    values: dict[str, str] = {}
    masked = mask_message(message, seen, values)
    try:
        text = orjson.dumps(masked).decode()
    except orjson.JSONEncodeError:
        for original, replacement in values.items():
            text = text.replace(orjson.dumps(original).decode(), orjson.dumps(replacement).decode())
    return _replace_all(text, seen)


def mask_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """A copy of a journal entry (as exported) with personal data masked in its request and response."""
    out = dict(entry)
    seen: dict[str, str] = {}
    request = entry.get("request")
    if isinstance(request, str):
        out["request"] = mask_text(request, seen)
    for key in ("response",):
        if isinstance(out.get(key), str):
            out[key] = _replace_all(out[key], seen)
    if "answers" in out and isinstance(out["answers"], list):
        out["answers"] = [{k: _replace_all(v, seen) if isinstance(v, str) else v for k, v in a.items()}
                          for a in out["answers"]]
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
