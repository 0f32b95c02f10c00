"""The shared SQLite helpers: multi-row inserts in chunks, and run() beside transaction()."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from sandbox.common.db import PARAMS_PER_STATEMENT, Database, insert_rows


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
