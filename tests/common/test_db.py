"""The shared SQLite helpers: multi-row inserts in chunks, run() beside transaction(), group commit."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sandbox.common.db import PARAMS_PER_STATEMENT, CommittedWhileCancelled, Database, insert_rows


def test_insert_rows_writes_every_row_in_as_many_statements_as_the_parameter_limit_needs() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT, c TEXT)")
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    rows = [(i, f"b{i}", "丙" * (i % 5)) for i in range(1000)]
    insert_rows(conn, "INSERT INTO t (a, b, c)", rows)
    insert_rows(conn, "INSERT INTO t (a, b, c)", [])
    inserts = [s for s in statements if s.startswith("INSERT")]
    assert conn.execute("SELECT a, b, c FROM t ORDER BY a").fetchall() == rows
    per = PARAMS_PER_STATEMENT // 3
    assert len(inserts) == -(-len(rows) // per) == 4  # 4 statements for 1000 rows of 3, not 1000


async def test_run_waits_for_a_transaction_between_its_statements(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.db", "CREATE TABLE t (n INTEGER);")
    await db.open()
    try:
        seen: list[list[int]] = []

        async def two_step() -> None:
            async with db.transaction() as conn:
                await conn.execute("INSERT INTO t VALUES (1)")
                await asyncio.sleep(0.05)  # another writer gets its chance here
                await conn.execute("INSERT INTO t VALUES (2)")

        def read_and_add(conn: sqlite3.Connection) -> None:
            seen.append([r[0] for r in conn.execute("SELECT n FROM t ORDER BY n")])
            conn.execute("INSERT INTO t VALUES (3)")

        task = asyncio.create_task(two_step())
        await asyncio.sleep(0.01)
        await db.run(read_and_add)
        await task
        assert seen == [[1, 2]]  # never between 1 and 2
        assert [r[0] for r in await db.fetchall("SELECT n FROM t ORDER BY n")] == [1, 2, 3]
    finally:
        await db.close()


async def _until(predicate: Callable[[], bool], what: str) -> None:
    for _ in range(2000):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def test_group_commit_runs_waiting_calls_in_one_transaction_in_arrival_order(
    tmp_path: Path, commit_groups: list[int]
) -> None:
    """Calls that arrive while a group is being written share the next transaction; each sees what the
    ones before it wrote (as if run one after the other); one that raises is rolled back alone and its
    caller gets its own error; every caller is answered after the COMMIT, when a second connection
    already sees its row."""
    path = tmp_path / "g.db"
    db = Database(path, "CREATE TABLE t (n INTEGER PRIMARY KEY, seen INTEGER NOT NULL);", group_commit=True)
    await db.open()
    try:
        def add(n: int) -> Callable[[sqlite3.Connection], int]:
            def fn(conn: sqlite3.Connection) -> int:
                seen = conn.execute("SELECT COUNT(*) FROM t").fetchone()[0]
                conn.execute("INSERT INTO t VALUES (?, ?)", (n, seen))
                if n == 3:
                    raise ValueError("three")  # after its insert: the savepoint must undo it
                return int(seen)
            return fn

        async def call(n: int) -> int:
            result = await db.run(add(n))
            # answered only once committed: another connection sees the row
            with sqlite3.connect(path) as other:
                assert other.execute("SELECT n FROM t WHERE n = ?", (n,)).fetchone() == (n,)
            return result

        async with db.lock:  # hold the writers back until all six wait
            tasks = [asyncio.create_task(call(n)) for n in range(6)]
            await _until(lambda: db.pending == 6, "six calls waiting")
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert commit_groups == [6]
        assert results[:3] == [0, 1, 2] and results[4:] == [3, 4]
        assert isinstance(results[3], ValueError) and str(results[3]) == "three"
        rows = await db.fetchall("SELECT n, seen FROM t ORDER BY n")
        assert [tuple(r) for r in rows] == [(0, 0), (1, 1), (2, 2), (4, 3), (5, 4)]
    finally:
        await db.close()


async def test_group_commit_failure_at_commit_fails_every_caller_and_keeps_nothing(tmp_path: Path) -> None:
    """A COMMIT that fails (here a deferred foreign key; on a real machine a full disk) rolls the whole group
    back: every caller of the group gets the error, none is told its data is saved, and the next call
    works."""
    schema = """
    CREATE TABLE parent (id INTEGER PRIMARY KEY);
    CREATE TABLE child (id INTEGER PRIMARY KEY,
                        parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);
    """
    db = Database(tmp_path / "f.db", schema, group_commit=True)
    await db.open()
    try:
        def good(conn: sqlite3.Connection) -> str:
            conn.execute("INSERT INTO parent VALUES (1)")
            return "ok"

        def orphan(conn: sqlite3.Connection) -> str:
            conn.execute("INSERT INTO child VALUES (1, 99)")  # fails only at COMMIT
            return "ok"

        results = await asyncio.gather(db.run(good), db.run(orphan), return_exceptions=True)
        assert len(results) == 2 and all(isinstance(r, sqlite3.IntegrityError) for r in results)
        assert results[0] is not results[1]  # one exception object per caller
        assert await db.fetchall("SELECT id FROM parent") == []
        assert await db.fetchall("SELECT id FROM child") == []

        assert await db.run(good) == "ok"
        assert [tuple(r) for r in await db.fetchall("SELECT id FROM parent")] == [(1,)]
    finally:
        await db.close()


async def test_group_commit_error_that_ends_the_transaction_fails_the_whole_group(tmp_path: Path) -> None:
    """Some SQLite errors (a full disk, an I/O error) end the whole transaction, not just the statement: then
    every caller of the group gets that error — with its SQLite error code, which decides the 507 answer —
    since the earlier calls' writes are gone too."""
    db = Database(tmp_path / "e.db", "CREATE TABLE t (n INTEGER);", group_commit=True)
    await db.open()
    try:
        def add(conn: sqlite3.Connection) -> str:
            conn.execute("INSERT INTO t VALUES (1)")
            return "ok"

        def disk_full(conn: sqlite3.Connection) -> str:
            conn.execute("INSERT INTO t VALUES (2)")
            conn.rollback()  # what SQLite itself does on SQLITE_FULL
            error = sqlite3.OperationalError("database or disk is full")
            error.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined]
            raise error

        results = await asyncio.gather(db.run(add), db.run(disk_full), db.run(add), return_exceptions=True)
        assert all(isinstance(r, sqlite3.OperationalError) and "disk is full" in str(r) for r in results), results
        assert all(getattr(r, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL for r in results)
        assert await db.fetchall("SELECT n FROM t") == []
        assert await db.run(add) == "ok"
    finally:
        await db.close()


class _Add:
    """A `run` function that can share its statements with others of its group (`run_many`)."""

    calls: list[int] = []  # how many functions each `run_many` was given

    def __init__(self, n: int, key: object, fail_together: bool = False) -> None:
        self.n, self.group_key, self.fail_together = n, key, fail_together

    def __call__(self, conn: sqlite3.Connection) -> str:
        conn.execute("INSERT INTO t VALUES (?)", (self.n,))
        if self.n == 3:
            raise ValueError("three")
        return f"alone {self.n}"

    @staticmethod
    def run_many(conn: sqlite3.Connection, fns: list[_Add]) -> list[tuple[bool, object]]:
        _Add.calls.append(len(fns))
        conn.execute(f"INSERT INTO t VALUES {', '.join('(?)' for _ in fns)}", [f.n for f in fns])
        if any(f.fail_together for f in fns):
            raise RuntimeError("unexpected")  # its writes must go, and each function then runs alone
        return [(True, f"together {f.n}") for f in fns]


async def test_group_commit_shares_statements_of_a_group_and_runs_each_alone_when_that_fails(
    tmp_path: Path, commit_groups: list[int]
) -> None:
    """Consecutive waiting functions with the same `group_key` run through one `run_many`; others run alone.
    When `run_many` raises, nothing of it stays and each of its functions runs alone in its own savepoint —
    so a caller gets exactly what it would have got on its own."""
    db = Database(tmp_path / "m.db", "CREATE TABLE t (n INTEGER PRIMARY KEY);", group_commit=True)
    await db.open()
    try:
        a, b = object(), object()

        async def wave(fns: list[Callable[[sqlite3.Connection], object]]) -> list[object]:
            async with db.lock:  # all of them wait together: one group
                tasks = [asyncio.create_task(db.run(f)) for f in fns]
                await _until(lambda: db.pending == len(fns), "the calls waiting")
            return await asyncio.gather(*tasks, return_exceptions=True)

        _Add.calls = []
        first = await wave([_Add(1, a), _Add(2, a), _Add(10, b), _Add(11, b), _Add(12, None)])
        assert first == ["together 1", "together 2", "together 10", "together 11", "alone 12"]
        assert _Add.calls == [2, 2]

        _Add.calls = []
        second = await wave([_Add(3, a), _Add(4, a, fail_together=True), _Add(5, a)])
        assert _Add.calls == [3]
        assert isinstance(second[0], ValueError) and second[1:] == ["alone 4", "alone 5"]
        assert commit_groups == [5, 3]
        rows = await db.fetchall("SELECT n FROM t ORDER BY n")
        assert [r[0] for r in rows] == [1, 2, 4, 5, 10, 11, 12]  # 3 failed alone; nothing doubled
    finally:
        await db.close()


async def test_checkpoint_pages_sets_how_much_wal_a_commit_lets_grow_before_copying_it_back(tmp_path: Path) -> None:
    db = Database(tmp_path / "c.db", "CREATE TABLE t (n INTEGER);", checkpoint_pages=5000)
    plain = Database(tmp_path / "d.db", "CREATE TABLE t (n INTEGER);")
    await db.open()
    await plain.open()
    try:
        assert [tuple(r) for r in await db.conn.execute_fetchall("PRAGMA wal_autocheckpoint")] == [(5000,)]
        assert [tuple(r) for r in await plain.conn.execute_fetchall("PRAGMA wal_autocheckpoint")] == [(1000,)]
    finally:
        await db.close()
        await plain.close()


@pytest.mark.parametrize("group_commit", [False, True])
async def test_a_caller_cancelled_during_its_transaction_waits_for_it_and_learns_whether_it_committed(
    tmp_path: Path, group_commit: bool
) -> None:
    """A transaction in the database thread runs to its end whatever happens to its caller. A caller cancelled
    meanwhile (a shutdown) is cancelled only once it has ended — with CommittedWhileCancelled, carrying the
    result, when it committed (so the caller keeps what it wrote), with a plain CancelledError when not."""
    db = Database(tmp_path / "k.db", "CREATE TABLE t (n INTEGER);", group_commit=group_commit)
    await db.open()
    try:
        started = threading.Event()

        def slow(n: int, fail: bool) -> Callable[[sqlite3.Connection], str]:
            def fn(conn: sqlite3.Connection) -> str:
                conn.execute("INSERT INTO t VALUES (?)", (n,))
                started.set()
                time.sleep(0.3)  # the caller is cancelled meanwhile
                if fail:
                    raise ValueError("no")
                return f"stored {n}"
            return fn

        for n, fail in ((1, False), (2, True)):
            started.clear()
            task = asyncio.create_task(db.run(slow(n, fail)))
            await asyncio.get_running_loop().run_in_executor(None, started.wait, 5)
            task.cancel()
            with pytest.raises(asyncio.CancelledError) as raised:
                await task
            rows = [r[0] for r in await db.fetchall("SELECT n FROM t ORDER BY n")]
            if fail:
                assert not isinstance(raised.value, CommittedWhileCancelled) and rows == [1]
            else:
                assert isinstance(raised.value, CommittedWhileCancelled) and raised.value.result == "stored 1"
                assert rows == [1]  # committed before the caller heard of its cancellation
    finally:
        await db.close()
