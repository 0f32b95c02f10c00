"""One recorded exchange of a hop, and how its outcome is classified. No I/O here.

An entry is what a dashboard draws as one arrow in one lane (hop 1: hospital → center, hop 2: center →
province) and what `sandbox replay` resends. Its outcome class is derived from what came back:

- `ok` every record `1`; `partial` some records not `1`; `failed` every record `-1`;
- `rejected` the whole message refused with a non-zero envelope `code` (wrong key, bad JSON, batch fault…);
- `transport` no usable answer: timeout, dropped or refused connection, HTTP 5xx, non-JSON or truncated body;
- `aborted` (receiver side) the client disconnected before its request was complete or answered.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import orjson

from sandbox.common.client import RETRY_LATER_STATUSES
from sandbox.spec.fields import HOP1, HOP2

HOP_PATHS: dict[str, int] = {HOP1.path: 1, HOP2.path: 2}
HOP_ROLES: dict[int, tuple[str, str]] = {1: ("hospital", "center"), 2: ("center", "province")}
OUTCOMES = ("ok", "partial", "failed", "rejected", "transport", "aborted")
# Names of transport failures, as the sender's client reports them (sandbox.common.client.Exchange.error)
# plus the faults that produce them.
TRANSPORT_ERRORS = ("timeout", "connection", "http_5xx", "http_4xx", "throttled", "non_json", "not_envelope", "truncated",
                    "dropped", "aborted")


@dataclass(slots=True)
class Entry:
    """One HTTP exchange of hop 1 or hop 2, as a receiver answered it or a sender saw it."""

    hop: int
    from_role: str
    to_role: str
    side: str  # server: recorded by the receiving role; client: by the sender (peer external or unreachable)
    url: str
    request: str  # the body as sent (text)
    started: float  # epoch seconds
    duration_ms: float = 0.0
    method: str = "POST"
    status: int | None = None
    response: str | None = None
    infno: str | None = None
    msgid: str | None = None
    infcode: str | None = None
    records: int = 0
    outcome: str = "transport"
    code: int | None = None
    n_ok: int = 0
    n_partial: int = 0
    n_failed: int = 0
    transport: str | None = None
    attempt: int | None = None
    fault: str | None = None
    step: str | None = None
    scenario: str | None = None
    seq: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    # The request's record indexes, in order, kept from parsing it once (not stored as a column).
    indexes: list[str | None] | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _FIELDS}

    def summary(self) -> dict[str, Any]:
        """The entry without its bodies (live updates, list pages)."""
        return {name: getattr(self, name) for name in _SUMMARY}


_FIELDS = tuple(f.name for f in fields(Entry) if f.name != "indexes")
_SUMMARY = tuple(name for name in _FIELDS if name not in ("request", "response"))


def parse_request(body: bytes | str) -> tuple[dict[str, Any] | None, str]:
    """(parsed message or None, body text) of a request body."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        msg = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None, text
    return (msg if isinstance(msg, dict) else None), text


def describe_request(entry: Entry, message: dict[str, Any] | None) -> None:
    """Fill infno, msgid, infCode and the record count from the message, tolerating any shape."""
    if message is None:
        return
    for attr, key in (("infno", "infno"), ("msgid", "msgid"), ("infcode", "infCode")):
        value = message.get(key)
        if value is None:  # the document's examples put a space inside every key (ERRATA)
            value = next((v for k, v in message.items() if isinstance(k, str) and k.strip() == key), None)
        if isinstance(value, str | int):
            setattr(entry, attr, str(value).strip())
    data = message.get("data")
    if isinstance(data, str):
        try:
            data = orjson.loads(data)
        except orjson.JSONDecodeError:
            data = None
    if isinstance(data, dict):
        data = [data]
    if isinstance(data, list):
        entry.records = len(data)
        entry.indexes = [record_index(r) for r in data]


def record_index(rec: Any) -> str | None:
    """A record's hiImgIndx under either spelling (the examples' hiImgIdx, keys with stray spaces)."""
    if not isinstance(rec, dict):
        return None
    value = rec.get("hiImgIndx")
    if value is None:
        value = next((v for k, v in rec.items() if isinstance(k, str) and k.strip() in ("hiImgIndx", "hiImgIdx")),
                     None)
    return value.strip() if isinstance(value, str) else None


def classify(entry: Entry, status: int | None, text: str | None, transport: str | None = None) -> None:
    """Set status, response, outcome, envelope code and succFlag counts from what came back."""
    entry.status = status
    entry.response = text
    if transport is not None:
        entry.outcome, entry.transport = "transport", transport
        return
    answer: Any = None
    if text is not None:
        try:
            answer = orjson.loads(text)
        except orjson.JSONDecodeError:
            answer = None
    if status in RETRY_LATER_STATUSES:
        entry.outcome, entry.transport = "transport", "throttled"
        return
    if status is not None and status >= 500:
        entry.outcome, entry.transport = "transport", "http_5xx"
        if isinstance(answer, dict) and isinstance(answer.get("code"), int):
            entry.code = answer["code"]  # e.g. 1090, storage full: a reason worth keeping
        return
    if not isinstance(answer, dict) or "code" not in answer:
        kind = "http_4xx" if status is not None and status >= 400 else "non_json" if answer is None else "not_envelope"
        entry.outcome, entry.transport = "transport", kind
        return
    code = answer.get("code")
    entry.code = code if isinstance(code, int) else None
    data = answer.get("data")
    flags = [str(d.get("succFlag")) for d in data if isinstance(d, dict)] if isinstance(data, list) else []
    if entry.code not in (0, -1) or not flags:
        entry.outcome = "rejected"
        return
    entry.n_ok = flags.count("1")
    entry.n_partial = flags.count("0")
    entry.n_failed = flags.count("-1")
    if entry.n_ok == len(flags):
        entry.outcome = "ok"
    elif entry.n_failed == len(flags):
        entry.outcome = "failed"
    else:
        entry.outcome = "partial"


def answers(entry_response: str | None) -> list[dict[str, Any]]:
    """The per-record answers (`data` entries) of a recorded response; empty when there are none."""
    if not entry_response:
        return []
    try:
        answer = orjson.loads(entry_response)
    except orjson.JSONDecodeError:
        return []
    data = answer.get("data") if isinstance(answer, dict) else None
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []
