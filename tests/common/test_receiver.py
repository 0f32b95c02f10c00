"""The shared receive flow with a coroutine `store` (the aiosqlite path), independent of any role."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiosqlite
import pytest

from sandbox.common.db import MESSAGES_SCHEMA, Database
from sandbox.common.envelope import EnvelopeError
from sandbox.common.receiver import Batch, Receiver
from sandbox.config import Settings
from sandbox.province.samples import message, record

SCHEMA = MESSAGES_SCHEMA + "CREATE TABLE IF NOT EXISTS seen (idx TEXT PRIMARY KEY);"


class AsyncHandler:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.prepared = 0

    async def prepare(self, batch: Batch) -> None:
        self.prepared += 1

    async def store(self, conn: aiosqlite.Connection, batch: Batch) -> None:
        await conn.executemany("INSERT INTO seen (idx) VALUES (?)", [(i.index,) for i in batch.accepted])
        if self.fail:
            raise RuntimeError("disk full")


@pytest.fixture
async def db(make_settings: Callable[..., Settings]) -> Any:
    database = Database(make_settings().data_dir / "r.db", SCHEMA)
    await database.open()
    yield database
    await database.close()


async def _count(db: Database) -> tuple[int, int]:
    row = await db.fetchone("SELECT (SELECT COUNT(*) FROM seen), (SELECT COUNT(*) FROM messages)")
    assert row is not None
    return int(row[0]), int(row[1])


async def test_coroutine_store_commits_records_with_the_msgid_answer(db: Database) -> None:
    settings = Settings(data_dir=db.path.parent)
    receiver = Receiver(hop=2, sender_role="center", settings=settings, db=db, handler=AsyncHandler())
    msg = message(settings, [record(settings, 1), record(settings, 2, gend="7")])
    body = await receiver.receive(msg)
    assert [a["succFlag"] for a in body["data"]] == ["1", "-1"]
    assert await _count(db) == (1, 1)
    assert await receiver.receive(msg) == body
    assert await _count(db) == (1, 1)
    with pytest.raises(EnvelopeError) as refused:
        await receiver.receive(message(settings, [record(settings, 3)]))
    assert refused.value.name == "msgid_conflict"


async def test_failing_store_rolls_back_everything(db: Database) -> None:
    settings = Settings(data_dir=db.path.parent)
    receiver = Receiver(hop=2, sender_role="center", settings=settings, db=db, handler=AsyncHandler(fail=True))
    with pytest.raises(RuntimeError):
        await receiver.receive(message(settings, [record(settings, 1)]))
    assert await _count(db) == (0, 0)
