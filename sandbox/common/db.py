"""aiosqlite helper: one connection per store, WAL, explicit commits, a lock around writes."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

T = TypeVar("T")

# The msgid replay log every receiver keeps (交易 msgid is unique per sending institution).
MESSAGES_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    infcode   TEXT NOT NULL,
    msgid     TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    response  TEXT NOT NULL,
    received  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    PRIMARY KEY (infcode, msgid)
);
"""


# Host parameters per statement of insert_rows / the IN (...) lists, well under SQLite's limit (999 before 3.32).
PARAMS_PER_STATEMENT = 900
# Groups one turn of the database thread commits back to back before other calls on the connection get theirs.
DRAIN_GROUPS = 8


def insert_rows(conn: sqlite3.Connection, head: str, rows: Sequence[Sequence[Any]], tail: str = "") -> None:
    """`head` ("INSERT INTO t (a, b)") with all `rows` in as few multi-row statements as the parameter limit
    allows, rather than executemany. A statement steps once, and the sqlite3 module lets go of the GIL for
    each step: a database thread then takes the GIL back once per chunk instead of once per row — each time
    waiting, up to the switch interval, for the event loop's thread, which is busy with other messages."""
    if not rows:
        return
    width = len(rows[0])
    one = "(" + ", ".join("?" * width) + ")"
    per = max(1, PARAMS_PER_STATEMENT // width)
    for start in range(0, len(rows), per):
        chunk = rows[start:start + per]
        conn.execute(f"{head} VALUES {', '.join([one] * len(chunk))}{tail}", [v for row in chunk for v in row])


def chunks(items: Sequence[T], size: int = PARAMS_PER_STATEMENT) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class CommittedWhileCancelled(asyncio.CancelledError):
    """The caller of `Database.run` was cancelled while its transaction was in the database thread, and that
    transaction has committed: the caller is cancelled all the same, but must keep what it wrote. `result`
    is what the function returned."""

    def __init__(self, result: Any) -> None:
        super().__init__()
        self.result = result


class Database:
    """One SQLite file with one shared connection. Writes go through `transaction()`."""

    def __init__(self, path: Path, schema: str = "", synchronous: str = "NORMAL", page_size: int | None = None,
                 *, read_only: bool = False, group_commit: bool = False, checkpoint_pages: int | None = None) -> None:
        self.path = path
        # read_only: a second connection to a file another Database writes; it sees the last committed
        # state (WAL) and never interleaves with that connection's writes.
        self.read_only = read_only
        self.schema = schema
        self.synchronous = synchronous
        self.page_size = page_size  # takes effect only when the file is created
        # WAL pages after which a commit copies them back into the file (SQLite's wal_autocheckpoint, 1000 by
        # default). More means fewer, larger checkpoints: a page written by many commits is copied once.
        self.checkpoint_pages = checkpoint_pages
        self.lock = asyncio.Lock()
        self._conn: aiosqlite.Connection | None = None
        # group_commit: `run` calls waiting together share one transaction (see `run`).
        self.group_commit = group_commit
        self._waiting: collections.deque[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]] = (
            collections.deque())
        self._flusher: asyncio.Task[None] | None = None
        self._pending = 0
        # With group commit, reads (`fetchall`, `fetchone`) go to a second connection with its own thread:
        # they see what is committed and never queue behind the writer's groups.
        self._reader: aiosqlite.Connection | None = None
        self._here: sqlite3.Connection | None = None  # `read_here`'s connection, on the event loop's thread

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("database is not open")
        return self._conn

    async def open(self) -> None:
        """Open (creating the file and schema); on failure nothing stays open (the connection's thread would
        otherwise keep the process from exiting)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = await aiosqlite.connect(self.path)
        try:
            await self._setup(self._conn)
            if self.group_commit:
                self._reader = await aiosqlite.connect(self.path)
                self._reader.row_factory = aiosqlite.Row
                await self._reader.execute("PRAGMA query_only=ON")
        except BaseException:
            await self.close()
            raise

    async def _setup(self, conn: aiosqlite.Connection) -> None:
        conn.row_factory = aiosqlite.Row
        if self.read_only:
            await conn.execute("PRAGMA query_only=ON")
            return
        if self.page_size is not None:
            await conn.execute(f"PRAGMA page_size={int(self.page_size)}")
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute(f"PRAGMA synchronous={self.synchronous}")
        if self.checkpoint_pages is not None:
            await conn.execute(f"PRAGMA wal_autocheckpoint={int(self.checkpoint_pages)}")
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.executescript(self.schema)
        await conn.commit()

    def read_here(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """A point read on the event loop's own thread, through a query-only connection of its own: for a
        primary-key look-up, which takes microseconds — less than the trip to a database thread and back,
        which waits for that thread and then for the event loop. It sees what is committed."""
        if self._here is None:
            self._here = sqlite3.connect(self.path)
            self._here.execute("PRAGMA query_only=ON")
        return self._here.execute(sql, params).fetchall()

    async def close(self) -> None:
        if self._here is not None:
            self._here.close()
            self._here = None
        if self._reader is not None:
            await self._reader.close()
            self._reader = None
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Run statements atomically: commit at the end, roll back on any error."""
        async with self.lock:
            conn = self.conn
            try:
                yield conn
                await conn.commit()
            except BaseException:
                # A failed COMMIT (disk full) leaves the transaction open: end it, or every later BEGIN fails.
                with contextlib.suppress(sqlite3.Error):
                    await conn.rollback()
                raise

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(connection)` as one transaction in the database thread, in a single hop: committed when
        it returns, rolled back when it raises. Unlike `transaction()`, its statements never wait for the
        event loop between them, and it does not hold the write lock at all: the connection's thread runs
        queued calls one at a time, in order, so a queued `fn` is atomic by itself. It only waits while a
        `transaction()` is between two of its statements. (Holding the lock until the result had travelled
        back through a busy event loop made every writer of a file wait one loop turn per write.)

        Once handed to the database thread, the transaction runs to its end whatever happens to the caller.
        A caller cancelled meanwhile (a shutdown) waits for that end and is then cancelled all the same —
        with `CommittedWhileCancelled` when the transaction committed, so that it does not act as if
        nothing was written (the center would remove the files its committed rows name)."""
        if self.group_commit:
            outcome: asyncio.Future[T] = self._queue(fn)
        else:
            if self.lock.locked():
                async with self.lock:
                    pass
            # aiosqlite runs every call on its connection's own thread; _execute is how it queues one. Its
            # body runs up to the queueing before the task can be suspended, so nothing comes in between.
            outcome = asyncio.ensure_future(self.conn._execute(_in_transaction, self.conn._conn, fn))
        try:
            return await asyncio.shield(outcome)
        except asyncio.CancelledError:
            while not outcome.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait((outcome,))
            if not outcome.cancelled() and outcome.exception() is None:
                raise CommittedWhileCancelled(outcome.result()) from None
            raise

    @property
    def pending(self) -> int:
        """How many `run` calls wait for their COMMIT (group commit only)."""
        return self._pending

    def _queue(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """`run` with group commit: the calls waiting together run, in arrival order, in one transaction,
        each in its own savepoint. Each sees what the ones before it wrote, exactly as if they had run one
        after the other; one that raises is rolled back alone and its caller gets the error; every caller
        is answered only after the COMMIT (a failed COMMIT fails them all, and nothing of the group stays).
        One commit per group instead of one per call: the pages every call touches (the indexes, the msgid
        log) are written once per group.

        The database thread drains the queue itself (`_drain`): when a group is committed it starts on the
        calls that arrived meanwhile at once, without waiting for the event loop — which, busy validating
        the next messages, would otherwise leave the database idle between groups."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiting.append((fn, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        self._pending += 1
        future.add_done_callback(self._answered)
        return future

    def _answered(self, _: asyncio.Future[Any]) -> None:
        self._pending -= 1

    async def _flush(self) -> None:
        """Hand the queue to the database thread until it is empty (the queue is only ever appended to on the
        event loop, so "empty" seen here is final until the next `_queue`, which starts a new flush)."""
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                if self.lock.locked():  # a `transaction()` is between two of its statements
                    async with self.lock:
                        pass
                await self.conn._execute(self._drain, self.conn._conn, loop)
        except BaseException as exc:  # the connection is gone (closed): nobody waits for ever
            while self._waiting:
                _, future = self._waiting.popleft()
                if not future.done():
                    future.set_exception(_copy_error(exc))
            if not isinstance(exc, Exception):
                raise
        finally:
            self._flusher = None

    def _drain(self, conn: sqlite3.Connection, loop: asyncio.AbstractEventLoop) -> None:
        """In the database thread: commit group after group of what waits, answering each group's callers
        as soon as it is committed. Stops when nothing waits, when a `transaction()` wants the connection,
        or after DRAIN_GROUPS groups (so that other calls queued on the connection get their turn)."""
        waiting = self._waiting
        for _ in range(DRAIN_GROUPS):
            if not waiting or self.lock.locked():
                return
            group = [waiting.popleft() for _ in range(len(waiting))]  # popleft is atomic: appends may go on
            try:
                outcomes: list[tuple[bool, Any]] | BaseException = _in_group(conn, [fn for fn, _ in group])
            except Exception as exc:  # noqa: BLE001 — the COMMIT failed: each caller gets the error
                outcomes = exc
            loop.call_soon_threadsafe(_answer_group, group, outcomes)

    async def fetchone(self, sql: str, params: tuple[Any, ...] = ()) -> aiosqlite.Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> list[aiosqlite.Row]:
        """Run a query and read all its rows in one call on the connection's thread. Executing and
        fetching in two calls would let another task write on this connection in between, and SQLite
        gives undefined results to a statement whose table changes under it. With group commit it reads on
        the second connection: what is committed, without waiting for the group being written."""
        conn = self._reader if self._reader is not None else self.conn
        return list(await conn.execute_fetchall(sql, params))

    async def reset(self, tables: tuple[str, ...]) -> None:
        """Empty the given tables (scenario control plane)."""
        async with self.transaction() as conn:
            for t in tables:
                await conn.execute(f"DELETE FROM {t}")  # table names are ours, never input


@contextlib.contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction: committed when the block ends, rolled back when it (or the COMMIT) raises."""
    # IMMEDIATE: the reads made before writing (msgid, stored records) belong to the same transaction.
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.commit()
    except BaseException:
        # A failed COMMIT (disk full) leaves the transaction open: end it, or every later BEGIN fails.
        with contextlib.suppress(sqlite3.Error):
            conn.rollback()
        raise


def _in_transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    with _immediate(conn):
        result = fn(conn)
    return result


def _in_group(conn: sqlite3.Connection, fns: list[Callable[[sqlite3.Connection], Any]]) -> list[tuple[bool, Any]]:
    """Run `fns` in one transaction: (True, result) or (False, its exception) each. Consecutive functions
    with the same `group_key` run together through their type's `run_many(conn, fns)` (which returns those
    pairs itself) in one savepoint; each other function, and each of a `run_many` that raised, runs alone in
    its own savepoint. A group that is one such run (the usual case) needs no savepoint: when `run_many`
    raises, its transaction is rolled back and the group is run again that way."""
    key = getattr(fns[0], "group_key", None)
    whole = key is not None and all(getattr(fn, "group_key", None) is key for fn in fns)
    if whole:
        conn.execute("BEGIN IMMEDIATE")
        try:
            outcomes = type(fns[0]).run_many(conn, fns)  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 — each function is run again alone, below
            with contextlib.suppress(sqlite3.Error):
                conn.rollback()
        else:
            try:
                conn.commit()
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.rollback()
                raise
            return list(outcomes)
    outcomes = []
    with _immediate(conn):
        start = 0
        while start < len(fns):
            end = start + 1
            key = getattr(fns[start], "group_key", None)
            if key is not None:
                while end < len(fns) and getattr(fns[end], "group_key", None) is key:
                    end += 1
            if end - start > 1 and not whole and _together(conn, fns[start:end], outcomes):
                start = end
                continue
            for fn in fns[start:end]:
                conn.execute("SAVEPOINT one")
                try:
                    outcomes.append((True, fn(conn)))
                except Exception as exc:  # noqa: BLE001 — handed to its own caller
                    if not conn.in_transaction:  # SQLite ended the whole transaction (disk full, I/O error)
                        raise  # so the group fails: the earlier calls' writes are gone too
                    conn.execute("ROLLBACK TO one")
                    outcomes.append((False, exc))
                conn.execute("RELEASE one")
            start = end
    return outcomes


def _together(conn: sqlite3.Connection, fns: list[Any], outcomes: list[tuple[bool, Any]]) -> bool:
    """`run_many` of `fns` in one savepoint; False (and nothing of it kept) when it raised."""
    conn.execute("SAVEPOINT many")
    try:
        outcomes.extend(type(fns[0]).run_many(conn, fns))
    except Exception:
        if not conn.in_transaction:
            raise
        conn.execute("ROLLBACK TO many")
        conn.execute("RELEASE many")
        return False
    conn.execute("RELEASE many")
    return True


def _answer_group(group: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]],
                  outcomes: list[tuple[bool, Any]] | BaseException) -> None:
    """On the event loop: hand each caller of a committed group its result or its error (a copy of the
    group's error each, when the COMMIT failed)."""
    for k, (_, future) in enumerate(group):
        if future.done():  # failed already (the connection went away)
            continue
        if isinstance(outcomes, BaseException):
            future.set_exception(_copy_error(outcomes))
            continue
        ok, value = outcomes[k]
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


def _copy_error(exc: BaseException) -> BaseException:
    """An SQLite error for each caller of a failed group (each raise writes its own traceback into it), with
    the error code the storage checks read (`sandbox.common.storage`); other errors are passed on as they are."""
    if not isinstance(exc, sqlite3.Error):
        return exc
    copy = type(exc)(*exc.args)
    for attr in ("sqlite_errorcode", "sqlite_errorname"):
        if hasattr(exc, attr):
            setattr(copy, attr, getattr(exc, attr))
    return copy


LOOKUP_MESSAGE_SQL = "SELECT body_hash, response FROM messages WHERE infcode=? AND msgid=?"
_REMEMBER_MESSAGES = "INSERT OR REPLACE INTO messages (infcode, msgid, body_hash, response)"


def lookup_messages_sync(conn: sqlite3.Connection, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str],
                                                                                          tuple[str, str]]:
    """`lookup_message` of several (infcode, msgid) at once, inside a `Database.run` function:
    {(infcode, msgid): (body_hash, response JSON)} of those already answered."""
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for chunk in chunks(keys, PARAMS_PER_STATEMENT // 2):
        # A join from the keys (CROSS JOIN: in that order), so each one is a search of the primary key; a
        # row-value `IN (VALUES ...)` would scan the whole table.
        sql = ("SELECT m.infcode, m.msgid, m.body_hash, m.response FROM (VALUES "
               + ", ".join(["(?, ?)"] * len(chunk))
               + ") AS k CROSS JOIN messages AS m ON m.infcode = k.column1 AND m.msgid = k.column2")
        for infcode, msgid, digest, response in conn.execute(sql, [v for key in chunk for v in key]):
            found[(infcode, msgid)] = (digest, response)
    return found


def remember_messages_sync(conn: sqlite3.Connection, rows: Sequence[tuple[str, str, str, str]]) -> None:
    """`remember_message` of several (infcode, msgid, body_hash, response) rows, inside a `Database.run`
    function."""
    insert_rows(conn, _REMEMBER_MESSAGES, rows)


def lookup_message(db: Database, infcode: str, msgid: str) -> tuple[str, str] | None:
    """(body_hash, response JSON) of a msgid already answered (and committed), or None."""
    rows = db.read_here(LOOKUP_MESSAGE_SQL, (infcode, msgid))
    return (rows[0][0], rows[0][1]) if rows else None


async def remember_message(
    conn: aiosqlite.Connection, infcode: str, msgid: str, body_hash: str, response: str
) -> None:
    """Store a msgid's answer inside the caller's transaction, with the records it saved."""
    await conn.execute(f"{_REMEMBER_MESSAGES} VALUES (?, ?, ?, ?)", (infcode, msgid, body_hash, response))
