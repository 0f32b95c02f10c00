"""All SQL of the center: exams, their studies and instances, the answer given for every hop-1 record, the
durable outbox of hop-2 forwarding with its batches, the per-day msgid sequence and the msgid replay log."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite
import orjson

from sandbox.common.db import MESSAGES_SCHEMA, Database, chunks, insert_rows

SCHEMA = MESSAGES_SCHEMA + """
CREATE TABLE IF NOT EXISTS exams (
    exam_id     TEXT PRIMARY KEY,          -- the center's id: /report/{exam_id}, /viewer/{exam_id}
    hiImgIndx   TEXT NOT NULL UNIQUE,
    record_hash TEXT NOT NULL,             -- identical resends are answered without a second row
    infCode     TEXT NOT NULL,
    msgid       TEXT NOT NULL,
    received    TEXT NOT NULL,
    succFlag    TEXT NOT NULL,
    message     TEXT NOT NULL,
    record      TEXT NOT NULL,             -- normalised hop-1 values; inline files replaced by a note
    pdf_id      TEXT,                      -- the center's id of the stored report PDF; NULL when none was kept
    pdf_size    INTEGER,
    pdf_pack    TEXT,                      -- the message pack holding it (NULL: a file of its own)
    pdf_offset  INTEGER,
    study_uid   TEXT,                      -- the study imgDldLink names
    instances   INTEGER NOT NULL,
    failures    TEXT NOT NULL,             -- JSON: files and instances not kept, each with its reason
    notes       TEXT NOT NULL              -- JSON: disagreements between the images and the record
);
CREATE INDEX IF NOT EXISTS exams_received ON exams (received);

CREATE TABLE IF NOT EXISTS exam_studies (
    exam_id   TEXT NOT NULL REFERENCES exams (exam_id) ON DELETE CASCADE,
    study_uid TEXT NOT NULL,
    PRIMARY KEY (exam_id, study_uid)
);

-- One row per stored DICOM instance, from a hop-1 file or a C-STORE push: entry <instance_id>.dcm of a
-- message pack, or the file dicom/<id[-2:]>/<instance_id>.dcm when pack_id is NULL.
CREATE TABLE IF NOT EXISTS instances (
    sop_uid            TEXT PRIMARY KEY,
    instance_id        TEXT NOT NULL UNIQUE,
    pack_id            TEXT,
    offset             INTEGER,
    study_uid          TEXT NOT NULL,
    series_uid         TEXT NOT NULL,
    sop_class          TEXT NOT NULL,
    transfer_syntax    TEXT NOT NULL,
    modality           TEXT NOT NULL,
    patient_name       TEXT NOT NULL,
    patient_id         TEXT NOT NULL,
    study_date         TEXT NOT NULL,
    study_description  TEXT NOT NULL,
    series_description TEXT NOT NULL,
    accession          TEXT NOT NULL,
    series_number      INTEGER,
    instance_number    INTEGER,
    rows               INTEGER,
    cols               INTEGER,
    frames             INTEGER NOT NULL,
    has_pixels         INTEGER NOT NULL,
    size               INTEGER NOT NULL,
    digest             TEXT NOT NULL,
    source             TEXT NOT NULL,      -- url | inline | c-store:<calling AE>
    received           TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%S', 'now', 'localtime'))
);
CREATE INDEX IF NOT EXISTS instances_study ON instances (study_uid, series_uid);

-- The answer given for every hop-1 record, stored or not (status API, summary by reason).
CREATE TABLE IF NOT EXISTS receipts (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    hiImgIndx TEXT,
    infCode   TEXT NOT NULL,
    msgid     TEXT NOT NULL,
    position  INTEGER NOT NULL,
    succFlag  TEXT NOT NULL,
    reason    TEXT NOT NULL,              -- saved | saved_partial | idempotent | invalid | duplicate_index | …
    message   TEXT NOT NULL,
    exam_id   TEXT,
    received  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS receipts_index ON receipts (hiImgIndx);

-- Hop-2 forwarding. An exam enters the outbox in the transaction that stores it.
CREATE TABLE IF NOT EXISTS outbox (
    exam_id  TEXT PRIMARY KEY REFERENCES exams (exam_id) ON DELETE CASCADE,
    state    TEXT NOT NULL,                -- pending | sending | held | done | failed
    batch_id INTEGER,
    succFlag TEXT,                         -- the province's answer for this record
    message  TEXT,
    reason   TEXT,                         -- why it failed or is held: province_rejected | batch_rejected | expired | http_rejected | …
    queued   TEXT NOT NULL,
    updated  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_state ON outbox (state);
CREATE INDEX IF NOT EXISTS outbox_batch ON outbox (batch_id);  -- a batch's exams, as its answer is applied

-- A batch keeps the exact message it sends: a retry, even after a restart, resends the same msgid and body.
CREATE TABLE IF NOT EXISTS batches (
    batch_id   INTEGER PRIMARY KEY AUTOINCREMENT,
    msgid      TEXT NOT NULL UNIQUE,
    body       TEXT NOT NULL,
    records    INTEGER NOT NULL,
    state      TEXT NOT NULL,              -- sending | held | done | failed
    attempts   INTEGER NOT NULL DEFAULT 0,
    next_at    REAL NOT NULL,              -- unix time of the next attempt
    since      REAL,                       -- unix time it was (re)queued: its retry horizon starts here
    first_at   REAL,                       -- unix time of the first attempt since the batch was (re)queued
    last_at    REAL,                       -- unix time of the last attempt
    status     INTEGER,                    -- HTTP status of the last answer, if any
    last_error TEXT,
    response   TEXT,
    created    TEXT NOT NULL,
    finished   TEXT
);
CREATE INDEX IF NOT EXISTS batches_due ON batches (state, next_at);

CREATE TABLE IF NOT EXISTS msgid_seq (
    day TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);

-- Small facts of the center's own (the province URL the outbox was last sent to).
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

# Columns added to tables of older center.db files (ALTER TABLE … ADD COLUMN at open).
MIGRATIONS = (("batches", "since", "REAL"), ("batches", "first_at", "REAL"), ("batches", "last_at", "REAL"),
              ("batches", "status", "INTEGER"))

# Why a record was not delivered, by whether POST /api/forward/retry may send its batch again (same msgid and
# body). A per-record -1 is the province's final word (resending the same msgid replays it), and a record too
# large for one message can never be sent.
REQUEUE_REASONS = ("http_rejected", "expired", "unreachable", "batch_rejected", "no_answer", "bad_answer")

INSTANCE_COLUMNS = ("sop_uid", "instance_id", "pack_id", "offset", "study_uid", "series_uid", "sop_class", "transfer_syntax",
                    "modality", "patient_name", "patient_id", "study_date", "study_description",
                    "series_description", "accession", "series_number", "instance_number", "rows", "cols",
                    "frames", "has_pixels", "size", "digest", "source")
EXAM_COLUMNS = ("exam_id", "hiImgIndx", "record_hash", "infCode", "msgid", "received", "succFlag", "message",
                "record", "pdf_id", "pdf_size", "pdf_pack", "pdf_offset", "study_uid", "instances", "failures",
                "notes")
RECEIPT_COLUMNS = ("hiImgIndx", "infCode", "msgid", "position", "succFlag", "reason", "message", "exam_id",
                   "received")
_DIGEST = INSTANCE_COLUMNS.index("digest")
TABLES = ("receipts", "outbox", "batches", "exam_studies", "exams", "instances", "msgid_seq", "messages")


Outcome = tuple[str, str, str | None, str, str | None]  # exam_id, state, succFlag, message, reason


@dataclass(slots=True)
class BatchUpdate:
    """What became of one attempt at a batch: retried at `next_at` (state None), or ended done/failed."""

    batch_id: int
    attempts: int
    at: float  # when this attempt was made (unix time)
    state: str | None = None  # None: to be retried at next_at; else held | done | failed
    error: str | None = None
    next_at: float | None = None
    response: str | None = None
    status: int | None = None  # the answer's HTTP status
    outcomes: list[Outcome] = field(default_factory=list)
    outage: bool = False  # retried because the province as a whole did not answer


def _head(table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)})"


_INSERT_EXAM = _head("exams", EXAM_COLUMNS)
_INSERT_INSTANCE = _head("instances", INSTANCE_COLUMNS)
_INSERT_RECEIPT = _head("receipts", RECEIPT_COLUMNS)


def _exams_by_index_sql(count: int) -> str:
    """hiImgIndx, exam_id, record_hash of the exams under `count` indexes (the one query of the read
    before the transaction and of the check inside it)."""
    return f"SELECT hiImgIndx, exam_id, record_hash FROM exams WHERE hiImgIndx IN ({','.join('?' * count)})"


class CenterStore:
    """The center's SQLite file (`center.db` in the data folder): one connection writes, one reads."""

    def __init__(self, path: Path, synchronous: str = "NORMAL") -> None:
        # One transaction per message, not group commit (Database(group_commit=True)): measured alternately
        # under the center benchmark it saved no CPU here — a message's rows touch ~100 pages of random-key
        # indexes that the next message does not share, and the savepoints cost their own.
        self.db = Database(path, SCHEMA, synchronous)
        # Reads go through a second, read-only connection: aiosqlite would otherwise let another task's
        # write run on the shared connection between a SELECT's execute and its fetch.
        self.reader = Database(path, read_only=True)

    async def open(self) -> None:
        await self.db.open()
        try:
            await self.db.run(_migrate)
            await self.reader.open()
        except BaseException:
            await self.db.close()
            raise

    async def close(self) -> None:
        await self.reader.close()
        await self.db.close()

    async def reset(self) -> None:
        await self.db.reset(TABLES)

    # ---- receiving (inside the receiver's transaction) -----------------------------------------------

    @staticmethod
    async def exams_by_index(conn: Database, indexes: Sequence[str]) -> dict[str, tuple[str, str]]:
        """hiImgIndx → (exam_id, record_hash) of the exams already stored (a read outside any transaction)."""
        out: dict[str, tuple[str, str]] = {}
        for chunk in chunks(indexes):
            for row in await conn.fetchall(_exams_by_index_sql(len(chunk)), tuple(chunk)):
                out[row[0]] = (row[1], row[2])
        return out

    # The receiving transaction runs in the database thread (Database.run): plain sqlite3 calls.

    @staticmethod
    def stored_exams(conn: sqlite3.Connection, indexes: Sequence[str]) -> dict[str, tuple[str, str]]:
        """hiImgIndx → (exam_id, record_hash), inside the transaction."""
        out: dict[str, tuple[str, str]] = {}
        for chunk in chunks(indexes):
            for row in conn.execute(_exams_by_index_sql(len(chunk)), tuple(chunk)):
                out[row[0]] = (row[1], row[2])
        return out

    @staticmethod
    def digests(conn: sqlite3.Connection, sop_uids: Sequence[str]) -> dict[str, str]:
        """SOPInstanceUID → digest of the instances already stored, inside the transaction."""
        out: dict[str, str] = {}
        for chunk in chunks(sop_uids):
            sql = f"SELECT sop_uid, digest FROM instances WHERE sop_uid IN ({','.join('?' * len(chunk))})"
            out.update({row[0]: row[1] for row in conn.execute(sql, tuple(chunk))})
        return out

    @staticmethod
    def save(conn: sqlite3.Connection, *, exams: list[tuple[Any, ...]], instances: list[tuple[Any, ...]],
             studies: list[tuple[str, str]], receipts: list[tuple[Any, ...]], queued: str) -> None:
        """Insert a batch's exams with their instances and studies, put the exams in the outbox, and record
        the answer of every record — all in the caller's transaction."""
        insert_rows(conn, _INSERT_INSTANCE, instances)
        insert_rows(conn, _INSERT_EXAM, exams)
        insert_rows(conn, "INSERT INTO outbox (exam_id, state, queued, updated)",
                    [(row[0], "pending", queued, queued) for row in exams])
        insert_rows(conn, "INSERT OR IGNORE INTO exam_studies (exam_id, study_uid)", studies)
        insert_rows(conn, _INSERT_RECEIPT, receipts)

    @staticmethod
    def replace_instances(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> list[tuple[str, str | None]]:
        """Put `rows` in place of the instances stored under their SOP UIDs, inside the caller's transaction;
        (instance_id, pack_id) of each row replaced, whose object the caller removes after commit."""
        old: list[tuple[str, str | None]] = []
        for row in rows:
            found = conn.execute("SELECT instance_id, pack_id FROM instances WHERE sop_uid=?", (row[0],)).fetchone()
            if found is not None:
                old.append((str(found[0]), found[1]))
                conn.execute("DELETE FROM instances WHERE sop_uid=?", (row[0],))
        insert_rows(conn, _INSERT_INSTANCE, rows)
        return old

    async def add_pushed(self, row: tuple[Any, ...], replace: bool = False) -> tuple[str | None, list[tuple[str, str | None]]]:
        """Store an instance pushed by C-STORE or STOW-RS: (the digest already stored under its SOP UID, if
        any; (instance_id, pack_id) of the row it replaced, when `replace` and the bytes differ)."""

        def add(conn: sqlite3.Connection) -> tuple[str | None, list[tuple[str, str | None]]]:
            found = conn.execute("SELECT digest FROM instances WHERE sop_uid=?", (row[0],)).fetchone()
            if found is None:
                insert_rows(conn, _INSERT_INSTANCE, [row])
                return None, []
            if not replace or found[0] == row[_DIGEST]:
                return str(found[0]), []
            return str(found[0]), CenterStore.replace_instances(conn, [row])

        return await self.db.run(add)

    async def delete_study(self, study_uid: str) -> list[tuple[str, str | None]]:
        """Forget a study's instances; (instance_id, pack_id) of each, whose objects the caller removes."""

        def delete(conn: sqlite3.Connection) -> list[tuple[str, str | None]]:
            rows = conn.execute("SELECT instance_id, pack_id FROM instances WHERE study_uid=?", (study_uid,)).fetchall()
            conn.execute("DELETE FROM instances WHERE study_uid=?", (study_uid,))
            return [(str(r[0]), r[1]) for r in rows]

        return await self.db.run(delete)

    # ---- reading ------------------------------------------------------------------------------------

    async def exam(self, key: str) -> aiosqlite.Row | None:
        """An exam by hiImgIndx or by exam_id."""
        row = await self.reader.fetchone("SELECT * FROM exams WHERE hiImgIndx=?", (key,))
        if row is None:
            row = await self.reader.fetchone("SELECT * FROM exams WHERE exam_id=?", (key,))
        return row

    async def forward_state(self, exam_id: str) -> aiosqlite.Row | None:
        return await self.reader.fetchone(
            "SELECT o.state, o.succFlag, o.message, o.reason, o.queued, o.updated, o.batch_id, b.msgid, b.attempts,"
            " b.next_at, b.first_at, b.last_at, b.status, b.last_error, b.finished FROM outbox o LEFT JOIN batches b ON b.batch_id = o.batch_id"
            " WHERE o.exam_id=?", (exam_id,))

    async def receipts(self, index: str, limit: int = 20) -> list[aiosqlite.Row]:
        return await self.reader.fetchall(
            "SELECT * FROM receipts WHERE hiImgIndx=? ORDER BY seq DESC LIMIT ?", (index, limit))

    async def list_exams(self, offset: int, limit: int) -> tuple[int, list[aiosqlite.Row]]:
        total = await self.reader.fetchone("SELECT count(*) FROM exams")
        rows = await self.reader.fetchall(
            "SELECT e.exam_id, e.hiImgIndx, e.infCode, e.received, e.succFlag, e.message, e.study_uid, e.instances,"
            " e.pdf_id, e.record, o.state, o.succFlag AS forward_flag, o.message AS forward_message"
            " FROM exams e LEFT JOIN outbox o ON o.exam_id = e.exam_id ORDER BY e.received DESC, e.rowid DESC"
            " LIMIT ? OFFSET ?", (limit, offset))
        return int(total[0]) if total else 0, rows

    async def exam_studies(self, exam_id: str) -> list[str]:
        rows = await self.reader.fetchall("SELECT study_uid FROM exam_studies WHERE exam_id=? ORDER BY study_uid",
                                      (exam_id,))
        return [r[0] for r in rows]

    async def study_instances(self, study_uids: Sequence[str], series_uid: str | None = None,
                              sop_uid: str | None = None) -> list[aiosqlite.Row]:
        """Instances of some studies (optionally one series or one instance), in viewing order."""
        if not study_uids:
            return []
        sql = f"SELECT * FROM instances WHERE study_uid IN ({','.join('?' * len(study_uids))})"
        params: list[Any] = list(study_uids)
        if series_uid is not None:
            sql += " AND series_uid=?"
            params.append(series_uid)
        if sop_uid is not None:
            sql += " AND sop_uid=?"
            params.append(sop_uid)
        sql += (" ORDER BY study_uid, coalesce(series_number, 2147483647), series_uid,"
                " coalesce(instance_number, 2147483647), sop_uid")
        return await self.reader.fetchall(sql, tuple(params))

    async def instance(self, sop_uid: str) -> aiosqlite.Row | None:
        return await self.reader.fetchone("SELECT * FROM instances WHERE sop_uid=?", (sop_uid,))

    async def summary(self) -> dict[str, Any]:
        """Counts for the status summary."""
        db = self.reader
        out: dict[str, Any] = {}
        row = await db.fetchone("SELECT count(*), count(DISTINCT msgid || infCode) FROM receipts")
        out["received"], out["messages"] = (int(row[0]), int(row[1])) if row else (0, 0)
        out["answers"] = {r[0]: int(r[1]) for r in await db.fetchall(
            "SELECT succFlag, count(*) FROM receipts GROUP BY succFlag")}
        out["rejected_by_reason"] = {r[0]: int(r[1]) for r in await db.fetchall(
            "SELECT reason, count(*) FROM receipts WHERE succFlag='-1' GROUP BY reason ORDER BY 2 DESC")}
        row = await db.fetchone("SELECT count(*), sum(succFlag='0'), sum(pdf_id IS NOT NULL), sum(instances)"
                                " FROM exams")
        out["stored"], out["stored_partial"], out["pdfs"], out["exam_instances"] = (
            int(v or 0) for v in (row if row else (0, 0, 0, 0)))
        row = await db.fetchone("SELECT count(*), coalesce(sum(size), 0) FROM instances")
        out["instances"], out["instance_bytes"] = (int(row[0]), int(row[1])) if row else (0, 0)
        out["forward"] = {r[0]: int(r[1]) for r in await db.fetchall(
            "SELECT state, count(*) FROM outbox GROUP BY state")}
        out["forwarded_with_warning"] = int((await db.fetchone(
            "SELECT count(*) FROM outbox WHERE state='done' AND succFlag='0'") or (0,))[0])
        for state in ("failed", "held"):
            out[f"forward_{state}_by_reason"] = {r[0]: int(r[1]) for r in await db.fetchall(
                "SELECT reason, count(*) FROM outbox WHERE state=? GROUP BY reason ORDER BY 2 DESC", (state,))}
        out["batches"] = {r[0]: int(r[1]) for r in await db.fetchall(
            "SELECT state, count(*) FROM batches GROUP BY state")}
        return out

    # ---- the outbox ---------------------------------------------------------------------------------

    async def pending(self, limit: int) -> list[aiosqlite.Row]:
        """Exams waiting for a batch, oldest first, with what their hop-2 record is built from."""
        return await self.reader.fetchall(
            "SELECT e.exam_id, e.hiImgIndx, e.record, e.study_uid FROM outbox o JOIN exams e ON e.exam_id = o.exam_id"
            " WHERE o.state='pending' ORDER BY o.rowid LIMIT ?", (limit,))

    @staticmethod
    def next_seq(conn: sqlite3.Connection, day: str, count: int) -> int:
        """Reserve `count` msgid sequence numbers of a day; returns the first."""
        row = conn.execute(
            "INSERT INTO msgid_seq (day, seq) VALUES (?, ?) ON CONFLICT(day) DO UPDATE SET seq = seq + ?"
            " RETURNING seq", (day, count, count)).fetchone()
        assert row is not None
        return int(row[0]) - count + 1

    async def create_batches(self, day: str, groups: list[list[str]], render: Callable[[int, int], tuple[str, str]],
                             failed: list[tuple[str, str, str]], now: str, at: float) -> int:
        """In one transaction: mark exams that cannot be sent as failed, reserve one msgid sequence number
        per group, and insert each group's batch — `render(i, seq)` gives its (msgid, body) — moving its
        exams from `pending` to `sending`."""

        def create(conn: sqlite3.Connection) -> int:
            if failed:
                conn.executemany(
                    "UPDATE outbox SET state='failed', reason=?, message=?, updated=? WHERE exam_id=? AND state='pending'",
                    [(reason, message, now, exam_id) for exam_id, reason, message in failed])
            if not groups:
                return 0
            first = self.next_seq(conn, day, len(groups))
            for i, exam_ids in enumerate(groups):
                msgid, body = render(i, first + i)
                cur = conn.execute(
                    "INSERT INTO batches (msgid, body, records, state, next_at, since, created)"
                    " VALUES (?, ?, ?, 'sending', 0, ?, ?)", (msgid, body, len(exam_ids), at, now))
                for part in chunks(exam_ids):
                    conn.execute(f"UPDATE outbox SET state='sending', batch_id=?, updated=? WHERE state='pending'"
                                 f" AND exam_id IN ({', '.join('?' * len(part))})", (cur.lastrowid, now, *part))
            return len(groups)

        return await self.db.run(create)

    async def due_batches(self, now: float, limit: int) -> list[aiosqlite.Row]:
        """Batches whose next attempt is due, oldest first (after an outage the outbox drains in order)."""
        return await self.reader.fetchall(
            "SELECT batch_id, msgid, body, attempts, since FROM batches WHERE state='sending' AND next_at <= ?"
            " ORDER BY batch_id LIMIT ?", (now, limit))

    async def expired_batches(self, queued_before: float) -> list[aiosqlite.Row]:
        """Batches still being sent that were (re)queued before `queued_before` (unix time)."""
        return await self.reader.fetchall(
            "SELECT batch_id, attempts, last_error FROM batches WHERE state='sending' AND since < ?"
            " ORDER BY batch_id", (queued_before,))

    async def next_due(self) -> float | None:
        row = await self.reader.fetchone("SELECT min(next_at) FROM batches WHERE state='sending'")
        return float(row[0]) if row and row[0] is not None else None

    async def batches_exams(self, batch_ids: list[int]) -> dict[int, dict[str, str]]:
        """batch_id → {hiImgIndx → exam_id} of those batches' records, in the order they were batched."""
        out: dict[int, dict[str, str]] = {b: {} for b in batch_ids}
        for part in chunks(batch_ids):
            for row in await self.reader.fetchall(
                    "SELECT o.batch_id, e.hiImgIndx, o.exam_id FROM outbox o JOIN exams e ON e.exam_id = o.exam_id"
                    f" WHERE o.batch_id IN ({', '.join('?' * len(part))}) ORDER BY o.rowid", tuple(part)):
                out[row[0]][row[1]] = row[2]
        return out

    async def update_batches(self, updates: Sequence[BatchUpdate], now: str, *, attempted: bool = True) -> None:
        """Store what became of sent batches, in one transaction: a retry's time, or the batch's end and each
        exam's (state, succFlag, message, reason). `attempted` False: ended without an attempt (expired)."""

        def update(conn: sqlite3.Connection) -> None:
            for u in updates:
                if not attempted:
                    conn.execute("UPDATE batches SET state=?, last_error=?, finished=? WHERE batch_id=?",
                                 (u.state, u.error, now, u.batch_id))
                    _set_outcomes(conn, u, now)
                    continue
                if u.state is None:
                    conn.execute("UPDATE batches SET attempts=?, next_at=?, last_error=?, status=?, last_at=?,"
                                 " first_at=coalesce(first_at, ?) WHERE batch_id=?",
                                 (u.attempts, u.next_at, u.error, u.status, u.at, u.at, u.batch_id))
                    continue
                conn.execute(
                    "UPDATE batches SET state=?, attempts=?, last_error=?, response=?, status=?, last_at=?,"
                    " first_at=coalesce(first_at, ?), finished=? WHERE batch_id=?",
                    (u.state, u.attempts, u.error, u.response, u.status, u.at, u.at, now, u.batch_id))
                _set_outcomes(conn, u, now)

        if updates:
            await self.db.run(update)

    async def requeue(self, reasons: Sequence[str], now: str, at: float) -> int:
        """Send again (same msgid and body) every batch that is held, or that has a record failed for one of
        `reasons` (a subset of REQUEUE_REASONS): its failed and held records go back to `sending`, and its
        attempts and horizon start anew (at `at`, unix time). Returns how many batches."""

        def requeue(conn: sqlite3.Connection) -> int:
            marks = ", ".join("?" * len(reasons))
            ids = [r[0] for r in conn.execute(
                f"SELECT DISTINCT batch_id FROM outbox WHERE batch_id IS NOT NULL AND state IN ('failed', 'held')"
                f" AND reason IN ({marks})", tuple(reasons))]
            for batch_id in ids:
                conn.execute("UPDATE batches SET state='sending', attempts=0, next_at=0, since=?, first_at=NULL,"
                             " finished=NULL WHERE batch_id=?", (at, batch_id))
                conn.execute(f"UPDATE outbox SET state='sending', reason=NULL, message=NULL, updated=?"
                             f" WHERE batch_id=? AND state IN ('failed', 'held') AND reason IN ({marks})",
                             (now, batch_id, *reasons))
            return len(ids)

        return await self.db.run(requeue)

    async def get_meta(self, key: str) -> str | None:
        row = await self.reader.fetchone("SELECT value FROM meta WHERE key=?", (key,))
        return str(row[0]) if row else None

    async def set_meta(self, key: str, value: str) -> None:
        await self.db.run(lambda conn: conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value)))

    async def oldest_undelivered(self) -> aiosqlite.Row | None:
        """The exam waiting longest for the province's answer: pending, sending, held, or failed for a reason
        other than the province's own -1."""
        return await self.reader.fetchone(
            "SELECT exam_id, queued, state, reason FROM outbox WHERE state IN ('pending', 'sending', 'held')"
            " OR (state='failed' AND reason IS NOT 'province_rejected') ORDER BY queued, rowid LIMIT 1")

    async def usage_by_institution(self) -> dict[str, int]:
        """Bytes of report PDFs and DICOM instances kept per sending institution (infCode)."""
        used: dict[str, int] = {}
        for code, size in await self.reader.fetchall(
                "SELECT infCode, coalesce(sum(pdf_size), 0) FROM exams GROUP BY infCode"):
            used[code] = int(size)
        for code, size in await self.reader.fetchall(
                "SELECT e.infCode, coalesce(sum(i.size), 0) FROM exams e JOIN exam_studies s ON s.exam_id = e.exam_id"
                " JOIN instances i ON i.study_uid = s.study_uid GROUP BY e.infCode"):
            used[code] = used.get(code, 0) + int(size)
        return used

    async def all_file_ids(self) -> tuple[list[str], list[str], list[str]]:
        """(PDF files, DICOM files, packs) that the rows refer to."""
        pdfs = [r[0] for r in await self.reader.fetchall(
            "SELECT pdf_id FROM exams WHERE pdf_id IS NOT NULL AND pdf_pack IS NULL")]
        dcms = [r[0] for r in await self.reader.fetchall("SELECT instance_id FROM instances WHERE pack_id IS NULL")]
        packs = [r[0] for r in await self.reader.fetchall(
            "SELECT pack_id FROM instances WHERE pack_id IS NOT NULL UNION SELECT pdf_pack FROM exams"
            " WHERE pdf_pack IS NOT NULL")]
        return pdfs, dcms, packs


def _set_outcomes(conn: sqlite3.Connection, u: BatchUpdate, now: str) -> None:
    """Each exam's (state, succFlag, message, reason) of an ended batch. Usually every record got the same
    answer: one UPDATE per distinct outcome, not one per exam."""
    alike: dict[tuple[str, str | None, str, str | None], list[str]] = {}
    for exam_id, st, flag, msg, reason in u.outcomes:
        alike.setdefault((st, flag, msg, reason), []).append(exam_id)
    for (st, flag, msg, reason), exam_ids in alike.items():
        for part in chunks(exam_ids):
            conn.execute(f"UPDATE outbox SET state=?, succFlag=?, message=?, reason=?, updated=?"
                         f" WHERE batch_id=? AND exam_id IN ({', '.join('?' * len(part))})",
                         (st, flag, msg, reason, now, u.batch_id, *part))


def _migrate(conn: sqlite3.Connection) -> None:
    # No query looks exam_studies up by study_uid (a study's instances are found in `instances`): the index
    # older files have only cost a random-key insert per exam.
    conn.execute("DROP INDEX IF EXISTS exam_studies_uid")
    for table, column, kind in MIGRATIONS:
        if column not in {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")  # names are ours, never input
    # Batches of an older file start their horizon now.
    conn.execute("UPDATE batches SET since=CAST(strftime('%s', 'now') AS REAL) WHERE since IS NULL AND state='sending'")


def dumps(value: Any) -> str:
    """Compact JSON text (as the 40000-character limit of data is measured)."""
    return orjson.dumps(value).decode()
