"""Group commit gives exactly the answers and rows of the plain path.

The province writes the messages that arrive while a transaction is being written all in the next one
(`Database(group_commit=True)`). The same messages — new records, duplicates across and within batches,
a different record under a stored index, bad records, msgid replays and a msgid conflict, a lenient
spelling, a dropped field — are sent concurrently to a grouped province, which is held back until all of
them wait together, and one after the other, in the same order, to a province on the plain path (one
transaction per message). Every answer and every stored row must be the same.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from typing import Any

import pytest

from sandbox.common.receiver import _Write
from sandbox.config import Settings
from sandbox.province import create_app
from sandbox.typedefs import PROVINCE
from tests.province.helpers import message, record, send


def _messages(settings: Settings) -> list[Any]:
    """The inputs, in the order they reach the province (dicts, or raw bytes sent as they are)."""
    rec = lambda n, **kw: record(settings, n, **kw)  # noqa: E731
    variant = rec(10, age="35")
    variant["hiImgIdx"] = variant.pop("hiImgIndx")
    first = message(settings, [rec(1), rec(2)], seq=1)
    third = message(settings, [rec(1, diagRslt="双肺多发结节。"), rec(4)], seq=3)
    return [
        first,
        message(settings, [rec(2), rec(3)], seq=2),                       # 2 again, identical: idempotent
        third,                                                            # 1 changed: 索引号重复
        first,                                                            # replay of the first
        message(settings, [rec(5)], seq=2),                               # msgid 2 with another body: 1040
        message(settings, [rec(6, certno="1" * 60), rec(7)], seq=6),      # one bad record
        message(settings, [rec(8), rec(8)], seq=7),                       # repeated within the batch
        message(settings, [rec(9, stogInsUscc="12510800MB0L399999")], seq=8),  # not the sender's USCC
        message(settings, [rec(4), rec(11)], seq=9),                      # 4 identical, stored in this group
        message(settings, [variant], seq=10),                             # lenient spelling: 1 with 提示
        message(settings, [rec(3, psnName="王五"), rec(12)], seq=11),     # 3 changed, stored in this group
        message(settings, [rec(13, extraField="x")], seq=12),             # a field dropped: 0
        json.dumps(dict(reversed(list(third.items()))), ensure_ascii=False, indent=2).encode(),  # replay
        # 20 and 21 were stored before the group (`_before`)
        message(settings, [rec(20, psnName="王五"), rec(21), rec(22)], seq=13),  # 20 changed, 21 identical
        message(settings, [rec(21, psnName="王五"), rec(20), rec(22)], seq=14),  # 21 changed, 20 and 22 identical
    ]


def _before(settings: Settings) -> Any:
    """Stored, one at a time, before the group: the group then meets indexes stored by an earlier commit."""
    return message(settings, [record(settings, 20), record(settings, 21)], seq=20)


def _rows(db_file: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every stored index (all but the receiving time) and every answered msgid, in the order written."""
    with sqlite3.connect(db_file) as conn:
        indexes = conn.execute("SELECT hiImgIndx, certno, fixmedinsCode, examAdmdvs, examDate, infCode, msgid, "
                               "succFlag, record FROM img_index ORDER BY rowid").fetchall()
        messages = conn.execute("SELECT infcode, msgid, body_hash, response FROM messages ORDER BY rowid").fetchall()
    return indexes, messages


async def test_grouped_answers_and_rows_equal_the_plain_path_in_the_same_order(
    aiohttp_client: Any, make_settings: Callable[..., Settings], tmp_path: Any, commit_groups: list[int],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    groups = commit_groups
    shared: list[tuple[int, bool]] = []  # (messages, whether it did not raise) per `_Write.run_many`
    real_run_many = _Write.run_many

    def run_many(conn: sqlite3.Connection, writes: list[_Write]) -> list[tuple[bool, Any]]:
        shared.append((len(writes), False))
        outcomes = real_run_many(conn, writes)
        shared[-1] = (len(writes), True)
        return outcomes

    monkeypatch.setattr(_Write, "run_many", staticmethod(run_many))
    grouped_settings = make_settings(data_dir=tmp_path / "grouped")
    plain_settings = grouped_settings.model_copy(update={"data_dir": tmp_path / "plain"})
    msgs = _messages(grouped_settings)

    grouped = await aiohttp_client(create_app(grouped_settings))
    db = grouped.server.app[PROVINCE].indexes.db
    assert db.group_commit
    await send(grouped, _before(grouped_settings))
    groups.clear()
    shared.clear()
    tasks = []
    async with db.lock:  # nothing is written until every message waits for its commit
        for n, msg in enumerate(msgs, 1):
            tasks.append(asyncio.create_task(send(grouped, msg)))
            for _ in range(3000):  # one at a time, so they reach the database in this order
                if db.pending == n:
                    break
                await asyncio.sleep(0.01)
            else:
                raise AssertionError(f"message {n} never reached the database")
    concurrent = await asyncio.gather(*tasks)
    assert sum(groups) == len(msgs) and max(groups) > 1  # they did share transactions
    # and the statements of one transaction (`_Write.run_many`), not one savepoint each after a failure
    assert sum(n for n, _ in shared) == len(msgs) and max(n for n, _ in shared) > 1 and all(ok for _, ok in shared)

    plain = await aiohttp_client(create_app(plain_settings))
    plain.server.app[PROVINCE].indexes.db.group_commit = False
    groups.clear()
    serial = [await send(plain, msg) for msg in [_before(plain_settings), *msgs]][1:]
    assert groups == []  # the plain path never groups

    assert concurrent == serial
    flags = [[a["succFlag"] for a in body["data"]] or [body["code"]] for _, body in serial]
    assert flags == [["1", "1"], ["1", "1"], ["-1", "1"], ["1", "1"], [1040], ["-1", "1"], ["1", "-1"], ["-1"],
                     ["1", "1"], ["1"], ["-1", "1"], ["0"], ["-1", "1"], ["-1", "1", "1"], ["-1", "1", "1"]]
    assert _rows(grouped_settings.data_dir / "province.db") == _rows(plain_settings.data_dir / "province.db")
