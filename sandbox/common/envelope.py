"""The envelope rules every receiver applies, and the shapes of every answer. No HTTP here."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

import orjson

from sandbox.config import Institution, Settings
from sandbox.spec.codes import ENVELOPE_CODES, SuccFlag
from sandbox.spec.messages import RESULTS
from sandbox.validate import Level, Report

ROLE_TITLES = {"hospital": "医疗机构及检查检验机构", "center": "地方影像云数据共享中心"}


class EnvelopeError(Exception):
    """A whole message refused: nothing stored. `name` is a key of ENVELOPE_CODES."""

    def __init__(self, name: str, **kw: Any) -> None:
        self.name = name
        self.kw = kw
        self.spec = ENVELOPE_CODES[name]
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return self.spec.message.format(**self.kw)

    @property
    def http_status(self) -> int:
        return self.spec.http_status

    def body(self) -> dict[str, Any]:
        return envelope_body(self.name, **self.kw)


def envelope_body(name: str, data: list[dict[str, Any]] | None = None, **kw: Any) -> dict[str, Any]:
    """`{"code", "type", "message", "data"}` for an outcome named in ENVELOPE_CODES."""
    spec = ENVELOPE_CODES[name]
    return {
        "code": spec.code,
        "type": "success" if spec.code == 0 else "error",
        "message": spec.message.format(**kw),
        "data": data if data is not None else [],
    }


@dataclass(slots=True)
class Answer:
    """The receiver's answer for one record."""

    index: str | None
    flag: SuccFlag
    message: str

    def as_dict(self, index_key: str = "hiImgIndx") -> dict[str, Any]:
        return {index_key: self.index, "succFlag": self.flag.value, "message": self.message}


def batch_body(hop: int, answers: list[Answer], style: str = "per-record") -> dict[str, Any]:
    """The response to an accepted message.

    per-record (ERRATA's reading): one data entry per record, in order. summary: the document's example,
    one entry with a null index and the batch's flag (hop 1's example spells the key hiImgIdx).
    """
    ok = sum(a.flag is SuccFlag.OK for a in answers)
    partial = sum(a.flag is SuccFlag.PARTIAL for a in answers)
    failed = len(answers) - ok - partial
    if failed == len(answers) and answers:
        name, flag = "all_failed", SuccFlag.FAILED
    elif ok == len(answers):
        name, flag = "ok", SuccFlag.OK
    else:
        name, flag = "partial", SuccFlag.PARTIAL
    counts = {"ok": ok, "partial": partial, "failed": failed}
    if style == "summary":
        if flag is SuccFlag.OK:
            message = RESULTS["saved"]
        else:
            message = "；".join(f"{a.index or f'第{i}条'}: {a.message}" for i, a in enumerate(answers, 1)
                               if a.flag is not SuccFlag.OK)
        data = [Answer(None, flag, message).as_dict("hiImgIdx" if hop == 1 else "hiImgIndx")]
    else:
        data = [a.as_dict() for a in answers]
    return envelope_body(name, data, **counts)


def canonical_json(value: Any) -> bytes:
    """Compact JSON with sorted keys: equal for equal values, whatever the key order or white space."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # an integer beyond 64 bits, parsed by json rather than orjson
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def body_hash(message: Any) -> str:
    """Hash of a parsed message, independent of key order and white space (for msgid replay)."""
    return hashlib.sha256(canonical_json(message)).hexdigest()


_DATA_MARK = b'"data":0'


@dataclass(frozen=True, slots=True)
class Canonical:
    """A parsed message serialised canonically once (`canonical_json`), for everything that needs it: its
    hash (`body_hash`, msgid replay) and, when `data` is a list of objects, each record's own canonical text
    (what the province stores and compares) and `data`'s length in characters (`validate.data_length`).
    The message's text is put together from the records' texts, byte for byte what `canonical_json` of
    the whole message gives."""

    digest: str
    records: tuple[str, ...] | None = None  # each record's canonical JSON, when data is a list of objects
    data_length: int | None = None  # len(data as compact JSON), when `records` is set

    @classmethod
    def of(cls, message: Any) -> Canonical:
        data = message.get("data") if type(message) is dict else None
        if type(data) is list and data and all(type(r) is dict for r in data):
            try:
                parts = [orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in data]
                head = orjson.dumps({**message, "data": 0}, option=orjson.OPT_SORT_KEYS)
            except TypeError:  # an integer beyond 64 bits: the whole message the slow way below
                pass
            else:
                if head.count(_DATA_MARK) == 1:  # else another value holds the same bytes: not worth it
                    joined = b"[" + b",".join(parts) + b"]"
                    text = head.replace(_DATA_MARK, b'"data":' + joined)
                    records = tuple(p.decode() for p in parts)
                    length = sum(map(len, records)) + len(records) + 1  # the commas and brackets
                    return cls(hashlib.sha256(text).hexdigest(), records, length)
        return cls(body_hash(message))


def check_envelope(report: Report, settings: Settings, sender_role: str, message: Any = None) -> Institution:
    """Refuse a message whose envelope is wrong, whose sender is unknown or whose key is wrong. The key is
    compared as sent in `message` when given: a key with white space around it, or under a name with white
    space around it (`"key "`), is the wrong key — secrets are never trimmed."""
    errors = [p for p in report.envelope_problems if p.level is Level.ERROR]
    data_errors = [p for p in errors if p.field == "data"]
    head_errors = [p for p in errors if p.field != "data"]
    if head_errors:
        raise EnvelopeError("bad_envelope", detail="；".join(p.text() for p in head_errors))
    infcode = report.envelope["infCode"]
    inst = settings.institution(infcode)
    if inst is None:
        raise EnvelopeError("unknown_infcode", infcode=infcode)
    sent = report.envelope["key"] if message is None else message.get("key")
    if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), inst.key.encode()):
        raise EnvelopeError("wrong_key", infcode=infcode)
    if inst.role != sender_role:
        raise EnvelopeError("wrong_role", infcode=infcode, role=ROLE_TITLES[sender_role])
    if data_errors:
        raise EnvelopeError("bad_data", detail="；".join(p.message for p in data_errors))
    return inst


