"""The hospital's SQLite store: exams it generated and their files, msgid sequences, every message it
sent with each attempt and each record's answer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sandbox.common.db import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS exams (
    exam_id     TEXT PRIMARY KEY,
    inst_code   TEXT NOT NULL,
    seed        TEXT NOT NULL,
    n           INTEGER NOT NULL,
    hi_img_indx TEXT NOT NULL,
    study_uid   TEXT NOT NULL UNIQUE,
    report_path TEXT,
    record      TEXT NOT NULL,
    created     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
CREATE TABLE IF NOT EXISTS instances (
    sop_uid     TEXT PRIMARY KEY,
    study_uid   TEXT NOT NULL,
    series_uid  TEXT NOT NULL,
    exam_id     TEXT NOT NULL REFERENCES exams(exam_id) ON DELETE CASCADE,
    series_no   INTEGER NOT NULL,
    instance_no INTEGER NOT NULL,
    sop_class   TEXT NOT NULL,
    path        TEXT NOT NULL,
    size        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS instances_by_study ON instances (study_uid, series_no, instance_no);
CREATE TABLE IF NOT EXISTS msgid_seq (
    inst_code TEXT NOT NULL,
    day       TEXT NOT NULL,
    last      INTEGER NOT NULL,
    PRIMARY KEY (inst_code, day)
);
CREATE TABLE IF NOT EXISTS sent_messages (
    msgid      TEXT PRIMARY KEY,
    inst_code  TEXT NOT NULL,
    url        TEXT NOT NULL,
    records    INTEGER NOT NULL,
    data_chars INTEGER NOT NULL,
    attempts   INTEGER NOT NULL,
    status     INTEGER,
    error      TEXT,
    code       INTEGER,
    message    TEXT,
    sent       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
CREATE TABLE IF NOT EXISTS attempts (
    msgid    TEXT NOT NULL,
    attempt  INTEGER NOT NULL,
    status   INTEGER,
    error    TEXT,
    detail   TEXT,
    duration REAL NOT NULL,
    PRIMARY KEY (msgid, attempt)
);
CREATE TABLE IF NOT EXISTS answers (
    msgid       TEXT NOT NULL,
    position    INTEGER NOT NULL,
    exam_id     TEXT,
    hi_img_indx TEXT NOT NULL,
    succ_flag   TEXT,
    message     TEXT NOT NULL,
    PRIMARY KEY (msgid, position)
);
"""
TABLES = ("answers", "attempts", "sent_messages", "msgid_seq", "instances", "exams")


class HospitalStore:
    """SQL for the hospital role; the only place it writes."""

    def __init__(self, path: Path, synchronous: str = "NORMAL") -> None:
        self.db = Database(path, SCHEMA, synchronous)

    async def open(self) -> None:
        await self.db.open()

    async def close(self) -> None:
        await self.db.close()

    async def reset(self) -> None:
        await self.db.reset(TABLES)

    async def save_exam(self, *, exam_id: str, inst_code: str, seed: str, n: int, index: str, study_uid: str,
                        report_path: str | None, record: dict[str, Any], instances: list[dict[str, Any]]) -> None:
        """Register a generated exam and its files (replacing an earlier generation of the same exam)."""
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM instances WHERE exam_id=?", (exam_id,))
            await conn.execute("DELETE FROM exams WHERE exam_id=? OR study_uid=?", (exam_id, study_uid))
            await conn.execute(
                "INSERT INTO exams (exam_id, inst_code, seed, n, hi_img_indx, study_uid, report_path, record)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (exam_id, inst_code, seed, n, index, study_uid, report_path, json.dumps(record, ensure_ascii=False)),
            )
            await conn.executemany(
                "INSERT INTO instances (sop_uid, study_uid, series_uid, exam_id, series_no, instance_no, sop_class,"
                " path, size) VALUES (:sop_uid, :study_uid, :series_uid, :exam_id, :series_no, :instance_no,"
                " :sop_class, :path, :size)",
                instances,
            )

    async def report_path(self, exam_id: str) -> str | None:
        row = await self.db.fetchone("SELECT report_path FROM exams WHERE exam_id=?", (exam_id,))
        return row[0] if row else None

    async def exam_by_study(self, study_uid: str) -> str | None:
        row = await self.db.fetchone("SELECT exam_id FROM exams WHERE study_uid=?", (study_uid,))
        return row[0] if row else None

    async def instances(self, study_uid: str, series_uid: str | None = None,
                        sop_uid: str | None = None) -> list[dict[str, Any]]:
        """Instances of a study (optionally one series or one instance), in series and instance order."""
        sql = "SELECT * FROM instances WHERE study_uid=?"
        params: list[Any] = [study_uid]
        if series_uid is not None:
            sql += " AND series_uid=?"
            params.append(series_uid)
        if sop_uid is not None:
            sql += " AND sop_uid=?"
            params.append(sop_uid)
        rows = await self.db.fetchall(sql + " ORDER BY series_no, instance_no", tuple(params))
        return [dict(r) for r in rows]

    async def instances_of_exam(self, exam_id: str) -> list[dict[str, Any]]:
        rows = await self.db.fetchall("SELECT * FROM instances WHERE exam_id=? ORDER BY series_no, instance_no",
                                      (exam_id,))
        return [dict(r) for r in rows]

    async def next_seq(self, inst_code: str, day: str) -> int:
        """The next msgid sequence number of an institution on a day (1, 2, …), durable across restarts."""
        async with self.db.transaction() as conn:
            async with conn.execute(
                "INSERT INTO msgid_seq (inst_code, day, last) VALUES (?, ?, 1)"
                " ON CONFLICT (inst_code, day) DO UPDATE SET last = last + 1 RETURNING last",
                (inst_code, day),
            ) as cur:
                row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    async def save_sent(self, *, msgid: str, inst_code: str, url: str, records: int, data_chars: int,
                        attempts: list[dict[str, Any]], status: int | None, error: str | None, code: int | None,
                        message: str, answers: list[dict[str, Any]]) -> None:
        """Record one sent message: its attempts and the answer for each record."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT OR REPLACE INTO sent_messages (msgid, inst_code, url, records, data_chars, attempts, status,"
                " error, code, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (msgid, inst_code, url, records, data_chars, len(attempts), status, error, code, message),
            )
            await conn.executemany(
                "INSERT OR REPLACE INTO attempts (msgid, attempt, status, error, detail, duration)"
                " VALUES (:msgid, :attempt, :status, :error, :detail, :duration)",
                attempts,
            )
            await conn.executemany(
                "INSERT OR REPLACE INTO answers (msgid, position, exam_id, hi_img_indx, succ_flag, message)"
                " VALUES (:msgid, :position, :exam_id, :hi_img_indx, :succ_flag, :message)",
                answers,
            )

    async def answers(self, msgid: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM answers" + (" WHERE msgid=?" if msgid else "") + " ORDER BY msgid, position"
        return [dict(r) for r in await self.db.fetchall(sql, (msgid,) if msgid else ())]

    async def sent_messages(self) -> list[dict[str, Any]]:
        return [dict(r) for r in await self.db.fetchall("SELECT * FROM sent_messages ORDER BY sent, msgid")]

    async def exams_besides(self, exam_id: str, study_uid: str) -> int:
        """How many exams are registered other than this one (by id or study): with it, the count `save_exam`
        leaves."""
        row = await self.db.fetchone("SELECT count(*) FROM exams WHERE exam_id<>? AND study_uid<>?",
                                     (exam_id, study_uid))
        return int(row[0]) if row else 0

    async def counts(self) -> dict[str, int]:
        out = {}
        for table in ("exams", "instances", "sent_messages", "answers"):
            row = await self.db.fetchone(f"SELECT count(*) FROM {table}")  # table names are ours
            out[table] = int(row[0]) if row else 0
        return out
