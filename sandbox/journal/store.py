"""The journal's SQLite file (`journal.db` in the data folder): every exchange, its per-record answers,
live subscriptions and the paged queries a dashboard or an expectation makes.

Recording never waits for the disk: `record` numbers the entry, hands it to subscribers and to a writer
task that inserts what has accumulated in one transaction. `flush()` waits until everything recorded so far
is on disk; queries flush first, so what a query returns includes every exchange recorded before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from sandbox.common.client import Observer
from sandbox.common.db import Database, insert_rows
from sandbox.common.storage import storage_problem
from sandbox.journal.entry import Entry, answers, describe_request, parse_request
from sandbox.journal.observe import client_observer
from sandbox.spec.messages import RECEIVER

COLUMNS = ("seq", "started", "duration_ms", "hop", "from_role", "to_role", "side", "method", "url", "status",
           "infno", "msgid", "infcode", "records", "outcome", "code", "n_ok", "n_partial", "n_failed",
           "transport", "attempt", "fault", "step", "scenario", "request", "response", "extra")
SUMMARY_COLUMNS = tuple(c for c in COLUMNS if c not in ("request", "response"))

SCHEMA = """
CREATE TABLE IF NOT EXISTS exchanges (
    seq         INTEGER PRIMARY KEY,
    started     REAL NOT NULL,
    duration_ms REAL NOT NULL,
    hop         INTEGER NOT NULL,
    from_role   TEXT NOT NULL,
    to_role     TEXT NOT NULL,
    side        TEXT NOT NULL,
    method      TEXT NOT NULL,
    url         TEXT NOT NULL,
    status      INTEGER,
    infno       TEXT,
    msgid       TEXT,
    infcode     TEXT,
    records     INTEGER NOT NULL,
    outcome     TEXT NOT NULL,
    code        INTEGER,
    n_ok        INTEGER NOT NULL,
    n_partial   INTEGER NOT NULL,
    n_failed    INTEGER NOT NULL,
    transport   TEXT,
    attempt     INTEGER,
    fault       TEXT,
    step        TEXT,
    scenario    TEXT,
    request     TEXT NOT NULL,
    response    TEXT,
    extra       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS exchanges_msgid ON exchanges (msgid);
CREATE INDEX IF NOT EXISTS exchanges_lane ON exchanges (hop, outcome);
-- One row per record answer: what each hiImgIndx was told, on which hop, in which exchange.
CREATE TABLE IF NOT EXISTS answers (
    seq       INTEGER NOT NULL,
    hop       INTEGER NOT NULL,
    position  INTEGER NOT NULL,
    hiImgIndx TEXT,
    succFlag  TEXT,
    message   TEXT,
    PRIMARY KEY (seq, position)
);
CREATE INDEX IF NOT EXISTS answers_index ON answers (hiImgIndx);
"""

_INSERT = f"INSERT OR REPLACE INTO exchanges ({', '.join(COLUMNS)})"
_INSERT_ANSWER = "INSERT OR REPLACE INTO answers (seq, hop, position, hiImgIndx, succFlag, message)"
FILTERS = ("hop", "from_role", "to_role", "side", "outcome", "msgid", "infcode", "fault", "step", "scenario",
           "transport", "code")
SUBSCRIBER_QUEUE = 1000
RETRY_S = 1.0  # while writing fails: how often it is tried again
PENDING_MAX = 20_000  # entries kept in memory while writing fails; older ones are dropped and counted
CLOSE_WAIT_S = 2.0  # at stop, while writing fails: how long a last try may take

log = logging.getLogger("sandbox.journal")


def record_answers(entry: Entry) -> list[tuple[Any, ...]]:
    """(seq, hop, position, index, succFlag, message) per answered record. In the summary response style the
    single entry carries no index: it is attributed to every record of the request."""
    got = answers(entry.response)
    if not got:
        return []
    indexes = entry.indexes
    if indexes is None:
        message, _ = parse_request(entry.request)
        probe = Entry(hop=entry.hop, from_role="", to_role="", side="", url="", request="", started=0.0)
        describe_request(probe, message)
        indexes = probe.indexes or []
    if len(got) == 1 and len(indexes) > 1 and got[0].get("hiImgIndx", got[0].get("hiImgIdx")) is None:
        a = got[0]
        return [(entry.seq, entry.hop, pos, idx, str(a.get("succFlag")), a.get("message"))
                for pos, idx in enumerate(indexes, 1)]
    rows = []
    for pos, a in enumerate(got, 1):
        idx = a.get("hiImgIndx", a.get("hiImgIdx"))
        if idx is None and pos <= len(indexes):
            idx = indexes[pos - 1]
        rows.append((entry.seq, entry.hop, pos, idx, str(a.get("succFlag")), a.get("message")))
    return rows


def _write(batch: list[Entry], conn: sqlite3.Connection) -> None:
    insert_rows(conn, _INSERT, [_row(e) for e in batch])
    insert_rows(conn, _INSERT_ANSWER, [r for e in batch for r in record_answers(e)])


def _row(entry: Entry) -> tuple[Any, ...]:
    return tuple(orjson.dumps(entry.extra).decode() if c == "extra" else getattr(entry, c) for c in COLUMNS)


def _entry(row: Any) -> dict[str, Any]:
    d = {k: row[k] for k in row.keys()}
    if "extra" in d:
        d["extra"] = orjson.loads(d["extra"])
    return d


class Journal:
    """Every exchange of every hop, in order of recording."""

    def __init__(self, path: Path, synchronous: str = "NORMAL") -> None:
        self.db = Database(path, SCHEMA, synchronous)
        self.context: dict[str, str | None] = {"scenario": None, "step": None}
        self._pending: list[Entry] = []
        self._seq = 0
        self._written = 0
        self._wake = asyncio.Event()
        self._written_cond = asyncio.Condition()
        self._writer: asyncio.Task[None] | None = None
        self.failing: str | None = None  # why the last write failed, until one succeeds again
        self.dropped = 0  # entries given up while writing kept failing (beyond PENDING_MAX)
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        # Incremented by every reset: a reader holding seq numbers knows they no longer mean the same entries.
        self.generation = 0
        # Whether a URL is served by a role of this process (its server records the exchange itself).
        self.is_local: Callable[[str], bool] = lambda url: False

    @property
    def path(self) -> Path:
        return self.db.path

    @property
    def last_seq(self) -> int:
        """The number of the latest entry recorded (written or not); 0 when empty."""
        return self._seq

    async def open(self) -> None:
        await self.db.open()
        row = await self.db.fetchone("SELECT COALESCE(MAX(seq), 0) FROM exchanges")
        self._seq = self._written = int(row[0]) if row else 0
        self._writer = asyncio.create_task(self._write_loop(), name="journal-writer")

    async def close(self) -> None:
        """Write what is pending (waiting at most CLOSE_WAIT_S while writing fails), then close the file."""
        if self._writer is not None:
            if self.failing is not None:
                self._wake.set()  # one more try now
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(CLOSE_WAIT_S):
                        while self._pending and self._written < self._seq:
                            await asyncio.sleep(0.05)
                if self._pending:
                    log.warning(RECEIVER["journal_unwritten"].format(count=len(self._pending)))
            else:
                await self.flush()
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        await self.db.close()

    # ---- recording -------------------------------------------------------------------------------------

    def record(self, entry: Entry) -> Entry:
        """Number the entry, stamp it with the scenario and step, publish it and queue it for writing."""
        self._seq += 1
        entry.seq = self._seq
        if entry.scenario is None:
            entry.scenario = self.context["scenario"]
        if entry.step is None:
            entry.step = self.context["step"]
        self._pending.append(entry)
        summary = entry.summary() if self._subscribers else {}
        for q in self._subscribers:
            if q.full():
                q.get_nowait()  # a slow subscriber loses the oldest update, never blocks recording
            q.put_nowait(summary)
        self._wake.set()
        return entry

    async def _write_loop(self) -> None:
        """Write what accumulates, in order. A write that fails (disk full, folder read-only) is kept and tried
        again, every RETRY_S, until it succeeds: the journal recovers by itself once space is back."""
        try:
            while True:
                if self.failing is None:
                    await self._wake.wait()
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), RETRY_S)
                self._wake.clear()
                if not self._pending:
                    continue
                batch = self._pending[:]
                try:
                    # Rows are built and written in the database thread, in one hop: the event loop only queues.
                    await self.db.run(partial(_write, batch))
                except Exception as exc:
                    self._write_failed(exc)
                    async with self._written_cond:  # a flush waiting for this write stops waiting
                        self._written_cond.notify_all()
                    continue
                del self._pending[:len(batch)]
                if self.failing is not None:
                    log.info(RECEIVER["journal_recovered"].format(count=len(batch)))
                    self.failing = None
                async with self._written_cond:
                    self._written = max(self._written, batch[-1].seq)
                    self._written_cond.notify_all()
        finally:
            async with self._written_cond:
                self._written_cond.notify_all()

    def _write_failed(self, exc: Exception) -> None:
        """Keep the entries for the next try (the oldest beyond PENDING_MAX are dropped and counted)."""
        detail = storage_problem(exc) or f"{type(exc).__name__}: {exc}"
        if self.failing is None:
            log.warning(RECEIVER["journal_failing"].format(detail=detail, pending=len(self._pending)))
        self.failing = detail
        excess = len(self._pending) - PENDING_MAX
        if excess > 0:
            del self._pending[:excess]
            self.dropped += excess
            log.warning(RECEIVER["journal_dropped"].format(count=excess, limit=PENDING_MAX))

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until every entry recorded so far is written. While writing fails (disk full) it does not
        wait: queries then answer from what is on disk, and `failing` says why the rest is missing."""
        target = self._seq
        writer = self._writer
        if writer is None:
            return
        async with self._written_cond, asyncio.timeout(timeout):
            await self._written_cond.wait_for(
                lambda: self._written >= target or writer.done() or self.failing is not None)
        if writer.done() and not writer.cancelled() and writer.exception() is not None:
            raise RuntimeError("日志写入失败") from writer.exception()

    def observer(self, from_role: str) -> Observer:
        """The observer a sending role (hospital, center) passes to post_with_retry."""
        return client_observer(self, from_role, lambda url: self.is_local(url))

    # ---- live updates ----------------------------------------------------------------------------------

    def subscribe(self, maxsize: int = SUBSCRIBER_QUEUE) -> asyncio.Queue[dict[str, Any]]:
        """A queue receiving the summary (no bodies) of every entry recorded from now on."""
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize)
        self._subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers.discard(q)

    # ---- queries ---------------------------------------------------------------------------------------

    @staticmethod
    def _where(filters: dict[str, Any]) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for key in FILTERS:
            value = filters.get(key)
            if value is None:
                continue
            if isinstance(value, list | tuple | set | frozenset):
                clauses.append(f"{key} IN ({', '.join('?' * len(value))})")
                params.extend(value)
            else:
                clauses.append(f"{key} = ?")
                params.append(value)
        unknown = set(filters) - set(FILTERS)
        if unknown:
            raise ValueError(f"未知的日志筛选条件：{', '.join(sorted(unknown))}；可用：{', '.join(FILTERS)}")
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    async def page(self, *, after: int = 0, limit: int = 100, bodies: bool = False, offset: int = 0,
                   **filters: Any) -> list[dict[str, Any]]:
        """Entries with seq > after, oldest first, at most `limit`, matching the filters; `offset` skips that
        many matching entries first (a dashboard's scrolled list)."""
        await self.flush()
        where, params = self._where(filters)
        where = (where + " AND" if where else " WHERE") + " seq > ?"
        cols = COLUMNS if bodies else SUMMARY_COLUMNS
        rows = await self.db.fetchall(
            f"SELECT {', '.join(cols)} FROM exchanges{where} ORDER BY seq LIMIT ? OFFSET ?",
            (*params, after, limit, max(offset, 0)))
        return [_entry(r) for r in rows]

    async def get(self, seq: int) -> dict[str, Any] | None:
        await self.flush()
        row = await self.db.fetchone(f"SELECT {', '.join(COLUMNS)} FROM exchanges WHERE seq = ?", (seq,))
        if row is None:
            return None
        out = _entry(row)
        out["answers"] = [dict(zip(("position", "hiImgIndx", "succFlag", "message"), r, strict=True))
                          for r in await self.db.fetchall(
                "SELECT position, hiImgIndx, succFlag, message FROM answers WHERE seq = ? ORDER BY position",
                (seq,))]
        return out

    async def count(self, **filters: Any) -> int:
        await self.flush()
        where, params = self._where(filters)
        row = await self.db.fetchone(f"SELECT COUNT(*) FROM exchanges{where}", tuple(params))
        return int(row[0]) if row else 0

    async def stats(self) -> dict[str, Any]:
        """Counts per lane (hop) and outcome, and the records answered per succFlag per hop."""
        await self.flush()
        lanes: dict[str, dict[str, int]] = {}
        for hop, outcome, n in await self.db.fetchall(
                "SELECT hop, outcome, COUNT(*) FROM exchanges GROUP BY hop, outcome"):
            lanes.setdefault(str(hop), {})[outcome] = n
        flags: dict[str, dict[str, int]] = {}
        for hop, flag, n in await self.db.fetchall(
                "SELECT hop, succFlag, COUNT(*) FROM answers GROUP BY hop, succFlag"):
            flags.setdefault(str(hop), {})[flag] = n
        return {"exchanges": lanes, "records": flags}

    async def answers_for(self, index: str, hop: int | None = None) -> list[dict[str, Any]]:
        """What one record (by hiImgIndx) was told, on every hop, oldest first."""
        await self.flush()
        sql = ("SELECT a.seq, a.hop, a.position, a.succFlag, a.message, e.msgid, e.step FROM answers a "
               "JOIN exchanges e ON e.seq = a.seq WHERE a.hiImgIndx = ?")
        params: tuple[Any, ...] = (index,)
        if hop is not None:
            sql += " AND a.hop = ?"
            params += (hop,)
        rows = await self.db.fetchall(sql + " ORDER BY a.seq, a.position", params)
        return [dict(zip(("seq", "hop", "position", "succFlag", "message", "msgid", "step"), r, strict=True))
                for r in rows]

    async def answer_rows(self, hop: int | None = None) -> list[dict[str, Any]]:
        """Every per-record answer, oldest first (expectations over all records)."""
        await self.flush()
        sql = ("SELECT a.seq, a.hop, a.position, a.hiImgIndx, a.succFlag, a.message, e.msgid, e.side, e.to_role "
               "FROM answers a JOIN exchanges e ON e.seq = a.seq")
        params: tuple[Any, ...] = ()
        if hop is not None:
            sql += " WHERE a.hop = ?"
            params = (hop,)
        rows = await self.db.fetchall(sql + " ORDER BY a.seq, a.position", params)
        keys = ("seq", "hop", "position", "hiImgIndx", "succFlag", "message", "msgid", "side", "to_role")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    async def entries(self, *, batch: int = 500, **filters: Any) -> AsyncIterator[dict[str, Any]]:
        """Every entry with its bodies, oldest first, read in pages (export never holds the whole journal)."""
        after = 0
        while True:
            page = await self.page(after=after, limit=batch, bodies=True, **filters)
            for e in page:
                yield e
            if len(page) < batch:
                return
            after = page[-1]["seq"]

    async def reset(self) -> None:
        """Forget every entry (scenario control plane); numbering starts again at 1."""
        await self.flush()
        self._pending.clear()  # entries a failing disk kept back belong to what is forgotten
        await self.db.reset(("exchanges", "answers"))
        self._seq = self._written = 0
        self.generation += 1

