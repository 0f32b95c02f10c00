"""Storage: committed before the answer, kept across restarts; and the role behind a real loopback socket."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from sandbox.config import Settings
from sandbox.province import create_app
from sandbox.province.app import DB_FILE
from tests.province.helpers import PATH, message, record, send, stored


def _rows_seen_by_another_connection(settings: Settings) -> list[tuple[str, str]]:
    with sqlite3.connect(settings.data_dir / DB_FILE) as db:
        return list(db.execute("SELECT hiImgIndx, succFlag FROM img_index ORDER BY hiImgIndx"))


async def test_record_is_committed_before_its_success_is_answered(client: Any, settings: Settings) -> None:
    rec = record(settings, 1)
    status, body = await send(client, message(settings, [rec, record(settings, 2, gend="7")]))
    assert [a["succFlag"] for a in body["data"]] == ["1", "-1"]
    # a separate connection sees only committed data
    assert _rows_seen_by_another_connection(settings) == [(rec["hiImgIndx"], "1")]


async def test_restart_keeps_indexes_and_answered_msgids(province: Any, settings: Settings) -> None:
    msg = message(settings, [record(settings, n) for n in range(3)])
    client = await province(settings)
    first = await send(client, msg)
    await client.close()

    client = await province(settings)
    assert await send(client, msg) == first  # replayed from the stored answer
    resp = await client.get("/mie/api/mie/index", params={"certno": record(settings, 2)["certno"]})
    assert (await resp.json())["data"]["items"][0]["hiImgIndx"] == record(settings, 2)["hiImgIndx"]
    status, body = await send(client, message(settings, [record(settings, 1)], seq=2))
    assert "未重复保存" in body["data"][0]["message"]


async def _serve(settings: Settings) -> web.AppRunner:
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.province_port).start()
    return runner


async def test_province_answers_over_a_real_loopback_socket(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    runner = await _serve(settings)
    try:
        url = settings.url(settings.province_port)
        async with aiohttp.ClientSession() as session:
            body = json.dumps(message(settings, [record(settings, 1)]), ensure_ascii=False).encode()
            async with session.post(url + PATH, data=body,
                                    headers={"Content-Type": "application/json;charset=UTF-8"}) as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"].startswith("application/json")
                answer = await resp.json()
            async with session.get(url + "/openapi.json") as resp:
                assert (await resp.json())["openapi"].startswith("3.")
        assert answer["data"][0]["succFlag"] == "1"
        assert _rows_seen_by_another_connection(settings)[0][1] == "1"
    finally:
        await runner.cleanup()


async def test_oversize_body_is_refused_before_it_is_sent(make_settings: Callable[..., Settings]) -> None:
    """Only the headers go out: the province answers 413 from Content-Length without waiting for the body."""
    settings = make_settings(max_body_bytes=50_000)
    runner = await _serve(settings)
    try:
        reader, writer = await asyncio.open_connection(settings.host, settings.province_port)
        writer.write(f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {10 * 1024 * 1024}\r\n\r\n".encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
        assert head.startswith(b"HTTP/1.1 413")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
        answer = json.loads(await reader.readexactly(length))
        assert answer["code"] == 1003 and answer["type"] == "error"
        writer.close()
        await writer.wait_closed()
    finally:
        await runner.cleanup()


async def test_failure_while_storing_answers_500_and_keeps_nothing_so_a_retry_works(
    client: Any, settings: Settings, monkeypatch: Any
) -> None:
    from sandbox.province.store import IndexStore

    def full_disk(conn: Any, rows: Any) -> dict[str, str]:
        conn.executemany("INSERT INTO img_index (hiImgIndx) VALUES (?)", [(r[0],) for r in rows])  # half-done

    msg = message(settings, [record(settings, 1)])
    with monkeypatch.context() as patch:
        patch.setattr(IndexStore, "insert_new", staticmethod(full_disk))
        resp = await client.post(PATH, json=msg)
        body = await resp.json()
    assert resp.status == 500 and (body["code"], body["type"]) == (1099, "error")
    assert await stored(client) == (0, 0)
    status, body = await send(client, msg)
    assert body["data"][0]["succFlag"] == "1"
