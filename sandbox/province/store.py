"""All SQL of the province: the stored indexes (one row per hiImgIndx) and the msgid replay log."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from sandbox.common.db import MESSAGES_SCHEMA, Database, chunks, insert_rows

# The record is kept whole as canonical JSON (normalised values, table spellings, sorted keys), which is also
# what tells an identical resend from a different record; the columns a reader searches by are copied out.
SCHEMA = MESSAGES_SCHEMA + """
CREATE TABLE IF NOT EXISTS img_index (
    hiImgIndx     TEXT PRIMARY KEY,
    certno        TEXT NOT NULL,
    fixmedinsCode TEXT NOT NULL,
    examAdmdvs    TEXT NOT NULL,
    examDate      TEXT NOT NULL,
    infCode       TEXT NOT NULL,
    msgid         TEXT NOT NULL,
    succFlag      TEXT NOT NULL,
    received      TEXT NOT NULL,
    record        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS img_index_certno ON img_index (certno, examDate);
CREATE INDEX IF NOT EXISTS img_index_fixmedins ON img_index (fixmedinsCode, examDate);
CREATE INDEX IF NOT EXISTS img_index_admdvs ON img_index (examAdmdvs, examDate);
CREATE INDEX IF NOT EXISTS img_index_date ON img_index (examDate);
"""

COLUMNS = ("hiImgIndx", "certno", "fixmedinsCode", "examAdmdvs", "examDate", "infCode",
           "msgid", "succFlag", "received", "record")
_INSERT = f"INSERT INTO img_index ({', '.join(COLUMNS)})"
_COLUMNS_READ = "hiImgIndx, infCode, msgid, succFlag, received, record"
GET_SQL = f"SELECT {_COLUMNS_READ} FROM img_index WHERE hiImgIndx = ?"


@dataclass(frozen=True, slots=True)
class Filters:
    """What a list query selects by; None means "any"."""

    certno: str | None = None
    fixmedins_code: str | None = None
    exam_admdvs: str | None = None
    date_from: str | None = None  # yyyy-MM-dd, inclusive
    date_to: str | None = None  # yyyy-MM-dd, inclusive

    def index(self) -> str:
        """The index a query by these filters reads: the most selective equality it has (an ID number is
        one patient, an institution one hospital, a 区划 a whole region), else the exam date. Named in the
        query (INDEXED BY), so SQLite never guesses without statistics — it took 区划 over 证件号码."""
        if self.certno is not None:
            return "img_index_certno"
        if self.fixmedins_code is not None:
            return "img_index_fixmedins"
        if self.exam_admdvs is not None:
            return "img_index_admdvs"
        return "img_index_date"

    def where(self) -> tuple[str, tuple[str, ...]]:
        clauses: list[str] = []
        params: list[str] = []
        for column, value in (("certno", self.certno), ("fixmedinsCode", self.fixmedins_code),
                              ("examAdmdvs", self.exam_admdvs)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.date_from is not None:
            clauses.append("examDate >= ?")
            params.append(self.date_from)
        if self.date_to is not None:
            clauses.append("examDate <= ?")
            params.append(self.date_to)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)


class IndexStore:
    """The province's SQLite file: `province.db` in the data folder."""

    def __init__(self, path: Path, synchronous: str = "NORMAL") -> None:
        # 8 KiB pages: a record is about 2 KB of UTF-8 (Chinese text), so three or four share a page instead
        # of one per 4 KiB page — a third fewer pages written per batch. Every commit rewrites the pages of
        # the five indexes it touched in the WAL; a checkpoint every 10000 pages (80 MB of WAL) instead of
        # 1000 copies each such page back once instead of ten times, and stalls a commit a tenth as often.
        self.db = Database(path, SCHEMA, synchronous, page_size=8192, group_commit=True, checkpoint_pages=10_000)

    async def open(self) -> None:
        await self.db.open()

    async def close(self) -> None:
        await self.db.close()

    @staticmethod
    def insert_new(conn: sqlite3.Connection, rows: list[tuple[str, ...]]) -> dict[str, str]:
        """Insert rows in COLUMNS order (inside the caller's transaction), leaving out those whose index is
        stored already; {hiImgIndx: canonical record JSON} of those left out, as stored. One statement per
        chunk in the usual case, when none was stored: the look-up follows only when some row was left out."""
        before = conn.total_changes
        insert_rows(conn, _INSERT, rows, " ON CONFLICT (hiImgIndx) DO NOTHING")
        if conn.total_changes - before == len(rows):
            return {}
        mine = {row[0]: (row[5], row[6]) for row in rows}  # index -> the (infCode, msgid) that tried it
        found: dict[str, str] = {}
        for chunk in chunks(list(mine)):
            sql = ("SELECT hiImgIndx, infCode, msgid, record FROM img_index "
                   f"WHERE hiImgIndx IN ({', '.join('?' * len(chunk))})")
            for index, infcode, msgid, record in conn.execute(sql, chunk):
                if (infcode, msgid) != mine[index]:  # stored by an earlier message, not just now
                    found[index] = record
        return found

    async def get(self, index: str) -> aiosqlite.Row | None:
        return await self.db.fetchone(GET_SQL, (index,))

    async def search(self, filters: Filters, offset: int, limit: int) -> tuple[int, list[aiosqlite.Row]]:
        """(total matching, one page of rows), newest exam first."""
        count_sql, page_sql, params = search_sql(filters)
        total_row = await self.db.fetchone(count_sql, params)
        total = int(total_row[0]) if total_row else 0
        rows = await self.db.fetchall(page_sql, (*params, limit, offset))
        return total, rows

    async def count(self) -> int:
        row = await self.db.fetchone("SELECT COUNT(*) FROM img_index")
        return int(row[0]) if row else 0

    async def reset(self) -> None:
        """Forget every index and every answered msgid (scenario control plane)."""
        await self.db.reset(("img_index", "messages"))


def search_sql(filters: Filters) -> tuple[str, str, tuple[str, ...]]:
    """(count query, page query with LIMIT ? OFFSET ? last, parameters) of a list query."""
    where, params = filters.where()
    source = f"img_index INDEXED BY {filters.index()}"
    return (f"SELECT COUNT(*) FROM {source}{where}",
            f"SELECT {_COLUMNS_READ} FROM {source}{where} ORDER BY examDate DESC, hiImgIndx LIMIT ? OFFSET ?",
            params)


def row_dict(row: aiosqlite.Row) -> dict[str, Any]:
    return {k: row[k] for k in row.keys()}
