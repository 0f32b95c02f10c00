"""The province's rules: what it accepts from a sharing center on top of the shared receive flow, and the
调阅 queries a cross-province reader makes. No HTTP here.

On top of sandbox.common.receiver (envelope, key, msgid replay, table validation, duplicates in a batch):

- `stogInsUscc` (hop 2 field 69, "地方影像云数据共享中心的统一社会信用代码") must be the sending center's own
  USCC from the configuration — a center cannot file indexes in another center's name;
- an index already stored: the identical record (same normalised values) is answered `1` without a second
  row; a different record under that index is `-1` 索引号重复 (the index is unique nationally, field 1).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

import aiosqlite
import orjson

from sandbox.common.envelope import envelope_body
from sandbox.common.receiver import Batch, Receiver
from sandbox.config import Settings
from sandbox.province.errors import BadQuery, IndexNotFound
from sandbox.province.store import Filters, IndexStore
from sandbox.spec.fields import HOP2
from sandbox.spec.formats import china_iso, parse_date
from sandbox.spec.messages import RESULTS

# The three links a reader opens (fields 71-73): every hop-2 field checked as a URL.
LINK_FIELDS: tuple[str, ...] = tuple(f.code for f in HOP2.fields if f.rule == "url")
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# Query parameter → the hop-2 field it matches (its table length bounds the parameter).
FILTER_FIELDS = {"certno": "certno", "fixmedinsCode": "fixmedinsCode", "examAdmdvs": "examAdmdvs"}
QUERY_PARAMS = (*FILTER_FIELDS, "from", "to", "page", "size")


def parse_query(pairs: Iterable[tuple[str, str]]) -> tuple[Filters, int, int]:
    """(filters, page, size) from query parameters; raises BadQuery naming the first bad one."""
    params: dict[str, str] = {}
    for key, value in pairs:
        if key not in QUERY_PARAMS:
            raise BadQuery("unknown_param", param=key, known="、".join(QUERY_PARAMS))
        if key in params:
            raise BadQuery("repeated_param", param=key)
        params[key] = value.strip()
    fields = HOP2.by_code
    for param, code in FILTER_FIELDS.items():
        limit = fields[code].length
        value = params.get(param, "")
        if limit is not None and len(value) > limit:
            raise BadQuery("too_long", param=param, length=len(value), limit=limit)
    for param in ("from", "to"):
        if params.get(param) and parse_date(params[param]) is None:
            raise BadQuery("bad_date", param=param, value=params[param])
    start, end = params.get("from") or None, params.get("to") or None
    if start and end and start > end:
        raise BadQuery("range_reversed", start=start, end=end)
    page = _positive(params, "page", 1)
    size = _positive(params, "size", DEFAULT_PAGE_SIZE)
    if size > MAX_PAGE_SIZE:
        raise BadQuery("size_too_large", value=size, limit=MAX_PAGE_SIZE)
    certno = params.get("certno") or None
    filters = Filters(
        certno=certno.upper() if certno else None,
        fixmedins_code=params.get("fixmedinsCode") or None,
        exam_admdvs=params.get("examAdmdvs") or None,
        date_from=start,
        date_to=end,
    )
    return filters, page, size


def _positive(params: dict[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    if not raw:
        return default
    if not raw.isascii() or not raw.isdigit() or int(raw) < 1 or len(raw) > 9:
        raise BadQuery("bad_int", param=name, value=raw)
    return int(raw)


def index_view(row: aiosqlite.Row) -> dict[str, Any]:
    """A stored index as a reader sees it: who filed it, when, its links and the whole record."""
    record: dict[str, Any] = orjson.loads(row["record"])
    return {
        "hiImgIndx": row["hiImgIndx"],
        "infCode": row["infCode"],
        "msgid": row["msgid"],
        "receivedTime": china_iso(row["received"]),
        "succFlag": row["succFlag"],
        "links": {code: record.get(code) for code in LINK_FIELDS},
        "record": record,
    }


class Province:
    """State of the province role: its store and the hop-2 receiver built on it."""

    def __init__(self, settings: Settings, indexes: IndexStore) -> None:
        self.settings = settings
        self.indexes = indexes
        self.receiver = Receiver(hop=2, sender_role="center", settings=settings, db=indexes.db, handler=self)

    async def receive(self, message: Any) -> dict[str, Any]:
        """Answer one saveExamRpotImgIndx message (raises EnvelopeError when refused whole)."""
        return await self.receiver.receive(message)

    # ---- RecordHandler -------------------------------------------------------------------------

    async def prepare(self, batch: Batch) -> None:
        """Refuse records filed under another institution's USCC; serialise the others (outside the write lock)."""
        own = batch.sender.uscc
        for item in batch.accepted:
            uscc = item.values.get("stogInsUscc")
            if uscc != own:
                item.reject(RESULTS["uscc_not_sender"].format(value=uscc, infcode=batch.infcode))
            else:
                item.canonical_json()

    def store_many(self, conn: sqlite3.Connection, batches: list[Batch]) -> None:
        """In the database thread, inside the receiver's transaction: store the batches' records in order,
        each decided against the stored indexes and those of the batches before it — a new index is
        stored, the identical record under a known index is answered `1` without a second row, a
        different one is refused (索引号重复). The first record of each index in the group is inserted
        unless its index is stored already (then it is decided against the stored record), so the usual
        group — every index new — takes one statement per chunk and no look-up."""
        todo = [(batch, item, item.values["hiImgIndx"], item.canonical_json())
                for batch in batches for item in batch.accepted]
        rows: dict[str, tuple[str, ...]] = {}
        for batch, item, index, text in todo:
            if index not in rows:
                values = item.values
                rows[index] = (index, values["certno"].upper(), values["fixmedinsCode"], values["examAdmdvs"],
                               values["examDate"], batch.infcode, batch.msgid, item.flag.value, batch.received,
                               text)
        known = IndexStore.insert_new(conn, list(rows.values()))  # stored before this group
        for batch, item, index, text in todo:
            earlier = known.get(index)
            if earlier is None:
                known[index] = text
                batch.stored.append(item)
            elif earlier == text:
                item.idempotent()
            else:
                item.reject(RESULTS["duplicate_index"].format(value=index))

    # ---- 调阅 ----------------------------------------------------------------------------------

    async def get_index(self, index: str) -> dict[str, Any]:
        """The envelope answering a fetch by hiImgIndx; raises IndexNotFound."""
        row = await self.indexes.get(index)
        if row is None:
            raise IndexNotFound(index)
        body = envelope_body("ok")
        body["data"] = index_view(row)
        return body

    async def search(self, pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
        """The envelope answering a list query: one page, newest exam first, with the total."""
        filters, page, size = parse_query(pairs)
        total, rows = await self.indexes.search(filters, (page - 1) * size, size)
        body = envelope_body("ok")
        body["data"] = {
            "total": total,
            "page": page,
            "size": size,
            "pages": (total + size - 1) // size,
            "items": [index_view(r) for r in rows],
        }
        return body
