"""The journal with what legitimately differs between two runs of the same scenario and seed taken out.

Removed or replaced: wall-clock times (`started`, `duration_ms`, `infTime`, the time segment of a msgid,
times inside bodies), the free ports a run got (replaced by the role's name), and the identifiers the
center makes up for its files and exams (32 hex digits, numbered in order of first appearance).

Entries are ordered by lane and msgid, keeping the order of attempts at one message: hop-2 traffic comes
from the center's background forwarder, so how it interleaves with the next hop-1 message, and during which
scenario step it happened, depend on the clock (hop-2 entries drop their step). What remains — every request
and response body, status, outcome, fault and attempt — must be equal.
"""

from __future__ import annotations

import re
from typing import Any

_TIMES = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
_MSGID = re.compile(r"\b([A-Z][0-9A-Za-z]{11})(\d{14})(\d{4})\b")
_UUID_HEX = re.compile(r"\b[0-9a-f]{32}\b")
DROPPED = ("seq", "started", "duration_ms")


def canonical(entries: list[dict[str, Any]], ports: dict[int, str]) -> list[dict[str, Any]]:
    """Comparable form of a journal (entries oldest first, as `Journal.entries` yields them)."""
    ids: dict[str, str] = {}

    def fix(text: str) -> str:
        for port, role in ports.items():
            text = text.replace(f":{port}", f":<{role}>")
        text = _TIMES.sub("<时间>", text)
        return _MSGID.sub(lambda m: f"{m[1]}<时间>{m[3]}", text)

    def number(value: Any) -> Any:
        if isinstance(value, str):
            return _UUID_HEX.sub(lambda m: ids.setdefault(m[0], f"<id{len(ids) + 1}>"), value)
        if isinstance(value, dict):
            return {k: number(v) for k, v in value.items()}
        return value

    out = []
    for e in entries:
        c: dict[str, Any] = {}
        for key, value in e.items():
            if key in DROPPED or (key == "step" and e.get("hop") == 2):
                continue
            c[key] = fix(value) if isinstance(value, str) else value
        extra = dict(c.get("extra") or {})
        if "detail" in extra:
            extra["detail"] = fix(str(extra["detail"]))
        c["extra"] = extra
        out.append(c)
    # Ids are numbered after sorting, so their numbers do not depend on the interleaving either.
    return [number(c) for c in sorted(out, key=lambda c: (c["hop"], c.get("msgid") or ""))]
