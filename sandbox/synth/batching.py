"""Hop-1 messages: records batched so `data` stays within the document's 40000 characters, and envelopes.

`data` is measured as the validator measures it: compact JSON, in characters (not bytes).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sandbox.config import Institution
from sandbox.spec.fields import DATA_MAX_CHARS, HOP1
from sandbox.spec.formats import format_datetime, make_msgid
from sandbox.validate import data_length


def record_chars(record: Any) -> int:
    """Characters one record takes in compact JSON."""
    return data_length(record)


def batches(records: Iterable[Any], limit: int = DATA_MAX_CHARS, max_records: int | None = None) -> Iterator[list[Any]]:
    """Greedy batches whose `data` array is at most `limit` characters (and `max_records` long).

    A record that alone exceeds the limit goes out alone, for the receiver to refuse by name.
    """
    batch: list[Any] = []
    size = 2  # "[" and "]"
    for rec in records:
        n = record_chars(rec)
        extra = n + (1 if batch else 0)
        if batch and (size + extra > limit or (max_records is not None and len(batch) >= max_records)):
            yield batch
            batch, size, extra = [], 2, n
        batch.append(rec)
        size += extra
    if batch:
        yield batch


def envelope(records: list[Any], inst: Institution, when: datetime, seq: int, infno: str = HOP1.infno) -> dict[str, Any]:
    """The hop-1 envelope around a batch: infno, msgid (code + time + sequence), infTime, infCode, key, data."""
    return {
        "infno": infno,
        "msgid": make_msgid(inst.code, when, seq),
        "infTime": format_datetime(when),
        "infCode": inst.code,
        "key": inst.key,
        "data": records,
    }
