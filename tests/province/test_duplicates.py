"""hiImgIndx is unique nationally: repeats in a batch, across batches, and identical resends."""

from __future__ import annotations

import asyncio
from typing import Any

from sandbox.config import Settings
from tests.province.helpers import message, record, send, stored


async def test_duplicate_index_in_one_batch_is_rejected(client: Any, settings: Settings) -> None:
    first = record(settings, 1)
    again = record(settings, 1, psnName="王五")
    status, body = await send(client, message(settings, [first, record(settings, 2), again]))
    assert [a["succFlag"] for a in body["data"]] == ["1", "1", "-1"]
    assert body["data"][2]["message"] == f"索引号重复：{first['hiImgIndx']} 在本批次第 1 条已出现"
    assert (await stored(client))[0] == 2


async def test_identical_record_twice_in_one_batch_is_still_a_duplicate(client: Any, settings: Settings) -> None:
    status, body = await send(client, message(settings, [record(settings, 1), record(settings, 1)]))
    assert [a["succFlag"] for a in body["data"]] == ["1", "-1"]
    assert "索引号重复" in body["data"][1]["message"]


async def test_different_record_under_a_stored_index_is_rejected(client: Any, settings: Settings) -> None:
    await send(client, message(settings, [record(settings, 1)], seq=1))
    changed = record(settings, 1, diagRslt="双肺多发结节。")
    status, body = await send(client, message(settings, [changed, record(settings, 2)], seq=2))
    assert [a["succFlag"] for a in body["data"]] == ["-1", "1"]
    assert body["data"][0]["message"] == f"索引号重复：{changed['hiImgIndx']} 已由其他记录使用"
    view = await (await client.get(f"/mie/api/mie/index/{changed['hiImgIndx']}")).json()
    assert view["data"]["record"]["diagRslt"] == record(settings, 1)["diagRslt"]  # the first one is kept
    assert view["data"]["msgid"] == message(settings, [], seq=1)["msgid"]


async def test_identical_resend_is_answered_success_without_a_second_row(client: Any, settings: Settings) -> None:
    await send(client, message(settings, [record(settings, 1)], seq=1))
    status, body = await send(client, message(settings, [record(settings, 1)], seq=2))
    (answer,) = body["data"]
    assert answer["succFlag"] == "1"
    assert answer["message"] == "保存数据成功（相同记录已存在，未重复保存）"
    assert await stored(client) == (1, 2)


async def test_resend_equal_after_normalising_is_identical(client: Any, settings: Settings) -> None:
    """Key order, surrounding blanks and the example's spellings do not make a record different."""
    await send(client, message(settings, [record(settings, 1)], seq=1))
    rec = record(settings, 1, psnName="  李丽 ", age="35")
    rec["hiImgIdx"] = rec.pop("hiImgIndx")
    reordered = dict(reversed(list(rec.items())))
    status, body = await send(client, message(settings, [reordered], seq=2))
    assert body["data"][0]["succFlag"] == "1"
    assert "未重复保存" in body["data"][0]["message"]
    assert (await stored(client))[0] == 1


async def test_concurrent_batches_with_the_same_new_index_store_it_once(client: Any, settings: Settings) -> None:
    same = record(settings, 1)
    answers = await asyncio.gather(*(send(client, message(settings, [same, record(settings, 10 + i)], seq=i))
                                     for i in range(1, 6)))
    flags = [body["data"][0] for _, body in answers]
    assert all(a["succFlag"] == "1" for a in flags)
    assert sum(a["message"] == "保存数据成功" for a in flags) == 1  # the others are idempotent resends
    assert (await stored(client))[0] == 6
