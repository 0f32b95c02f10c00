"""msgid replay: the same message again gets the same answer; another message under a used msgid is refused."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from sandbox.config import Institution, Settings, default_institutions
from sandbox.spec.checksums import uscc_check_char
from tests.province.helpers import message, record, send, stored


async def test_same_msgid_and_body_returns_the_first_answer_without_storing_again(
    client: Any, settings: Settings
) -> None:
    msg = message(settings, [record(settings, 1), record(settings, 2, gend="7")])
    first = await send(client, msg)
    again = await send(client, msg)
    assert again == first
    assert [a["succFlag"] for a in first[1]["data"]] == ["1", "-1"]
    assert await stored(client) == (1, 1)


async def test_replay_ignores_key_order_and_white_space(client: Any, settings: Settings) -> None:
    msg = message(settings, [record(settings, 1)])
    first = await send(client, msg)
    pretty = json.dumps(dict(reversed(list(msg.items()))), ensure_ascii=False, indent=4).encode()
    assert await send(client, pretty) == first
    assert await stored(client) == (1, 1)


async def test_replay_of_a_first_answer_survives_later_changes(client: Any, settings: Settings) -> None:
    """The replayed answer is the one given then, not a fresh decision (which would now be idempotent)."""
    msg = message(settings, [record(settings, 1)], seq=1)
    first = await send(client, msg)
    await send(client, message(settings, [record(settings, 1)], seq=2))
    assert (await send(client, msg))[1]["data"][0]["message"] == "保存数据成功"
    assert first[1]["data"][0]["message"] == "保存数据成功"


async def test_same_msgid_with_a_different_body_is_refused(client: Any, settings: Settings) -> None:
    await send(client, message(settings, [record(settings, 1)]))
    status, body = await send(client, message(settings, [record(settings, 2)]))
    assert (body["code"], body["type"], body["data"]) == (1040, "error", [])
    assert message(settings, [])["msgid"] in body["message"] and "不同" in body["message"]
    assert await stored(client) == (1, 1)


async def test_concurrent_copies_of_one_message_store_once_and_answer_alike(client: Any, settings: Settings) -> None:
    msg = message(settings, [record(settings, n) for n in range(5)])
    answers = await asyncio.gather(*(send(client, msg) for _ in range(6)))
    assert all(a == answers[0] for a in answers)
    assert await stored(client) == (5, 1)


async def test_msgid_is_scoped_to_the_sending_institution(
    province: Any, make_settings: Callable[..., Settings]
) -> None:
    second = Institution(code="C51080000002", name="第二共享中心", key="SECONDCENTERKEY02", role="center",
                         uscc="12510800MB0L31002" + uscc_check_char("12510800MB0L31002"))
    settings = make_settings(institutions=(*default_institutions(), second))
    client = await province(settings)
    msg = message(settings, [record(settings, 1)], seq=7)
    other = message(settings, [record(settings, 2, center=second)], seq=7, center=second)
    other["msgid"] = second.code + msg["msgid"][12:]  # same time and sequence, other institution
    assert (await send(client, msg))[1]["code"] == 0
    assert (await send(client, other))[1]["code"] == 0
    assert await stored(client) == (2, 2)
