"""Group commit keeps "acknowledged means stored" with a real process (`sandbox serve --roles province`):

- killed with SIGKILL while 16 concurrent senders keep it busy (so its transactions hold several messages
  each), then started again on the same data folder, it holds every record it had answered `1`, and every
  message is stored whole or not at all;
- on a full disk (a small tmpfs) concurrent messages are each answered 507 (code 1090) and nothing is kept;
  once space is freed the same messages are stored.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp

from sandbox.config import Settings
from sandbox.province.samples import message, record
from sandbox.spec.codes import ENVELOPE_CODES
from sandbox.spec.fields import HOP2
from tests.chain.killed import assert_nothing_acknowledged_lost, send_until_killed
from tests.chain.test_serve import kill, start_serve, stop_serve
from tests.chain.test_storage_and_startup import fill, tmpfs
from tests.conftest import free_port

SENDERS = 16
RECORDS = 3
KILL_AFTER = 60  # acknowledged messages


async def test_province_killed_mid_load_keeps_every_acknowledged_record(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "province"
    args = ("--roles", "province", "--no-dashboard")
    settings = Settings(data_dir=data)  # the default institutions, as the served province has them

    def make(seq: int) -> tuple[dict[str, Any], list[str]]:
        records = [record(settings, seq * RECORDS + i) for i in range(RECORDS)]
        return message(settings, records, seq=seq), [r["hiImgIndx"] for r in records]

    province = start_serve(data, {"province": port}, *args)
    try:
        acked, sent = await send_until_killed(province, f"http://127.0.0.1:{port}{HOP2.path}", make,
                                              senders=SENDERS, kill_after=KILL_AFTER)
        province = start_serve(data, {"province": port}, *args)
        stop_serve(province)  # started, recovered, stopped cleanly: now read its file
        with sqlite3.connect(data / "province.db") as db:
            stored = {row[0]: row[1] for row in db.execute("SELECT hiImgIndx, msgid FROM img_index")}
            answered = {row[0] for row in db.execute("SELECT msgid FROM messages")}
        assert_nothing_acknowledged_lost(acked, sent, stored, answered)
        assert all(stored[i] == msgid for msgid, indexes in sent.items() for i in indexes if i in stored)
    finally:
        kill(province)


async def test_province_on_a_full_disk_answers_507_to_every_message_then_stores_them_once_freed(
        tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "size=32m") as disk:
        port = free_port()
        province = start_serve(disk / "data", {"province": port}, "--roles", "province", "--no-dashboard")
        settings = Settings(data_dir=disk / "data")
        url = f"http://127.0.0.1:{port}{HOP2.path}"
        msgs = [message(settings, [record(settings, seq * RECORDS + i) for i in range(RECORDS)], seq=seq)
                for seq in range(1, 9)]
        try:
            async with aiohttp.ClientSession() as session:
                async def post(msg: dict[str, object]) -> tuple[int, dict[str, object]]:
                    async with session.post(url, json=msg) as resp:
                        return resp.status, await resp.json()

                filler = fill(disk)
                full = await asyncio.gather(*(post(m) for m in msgs))
                assert {(status, body["code"]) for status, body in full} == {
                    (507, ENVELOPE_CODES["storage_full"].code)}, full
                filler.unlink()
                again = await asyncio.gather(*(post(m) for m in msgs))
                assert all(status == 200 and body["code"] == 0 for status, body in again), again
            stop_serve(province)
            with sqlite3.connect(disk / "data" / "province.db") as db:
                assert db.execute("SELECT COUNT(*) FROM img_index").fetchone()[0] == len(msgs) * RECORDS
                assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == len(msgs)
        finally:
            kill(province)
