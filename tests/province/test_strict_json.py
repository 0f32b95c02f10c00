"""Strict JSON at the receivers: a repeated key, a key with white space, control characters in names."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sandbox.config import Settings
from tests.province.helpers import message, record, send, stored

MODES = ["lenient", "strict"]


def raw(msg: dict[str, Any], head: str = "", tail: str = "") -> bytes:
    """The message as JSON text, with text spliced in just after the opening brace and before the last one."""
    text = json.dumps(msg, ensure_ascii=False)
    return ("{" + head + text[1:-1] + tail + "}").encode()


@pytest.mark.parametrize("mode", MODES)
async def test_a_repeated_key_is_refused_whole_naming_the_key(province: Any, make_settings: Any, mode: str) -> None:
    settings: Settings = make_settings(mode=mode)
    client = await province(settings)
    msg = message(settings, [record(settings, 1)])
    # "key":"WRONG" first, the right key last: a parser keeping the last value would authenticate it
    status, body = await send(client, raw(msg, head='"key": "WRONG",'))
    assert (status, body["code"], body["type"]) == (200, 1008, "error")
    assert "「key」出现了 2 次" in body["message"] and "报文头" in body["message"]
    # inside a record, with white space around the colon
    text = json.dumps(msg, ensure_ascii=False).replace('"psnName": ', '"psnName" :  "冒名", "psnName": ', 1)
    status, body = await send(client, text.encode())
    assert body["code"] == 1008 and "「psnName」" in body["message"] and "data 第1条记录" in body["message"]
    assert await stored(client) == (0, 0)
    # a `\":` inside a string value is not a key: the message is accepted
    clean = message(settings, [record(settings, 2, diagRslt='引用 "结论": 未见异常')])
    status, body = await send(client, json.dumps(clean, ensure_ascii=False).encode())
    assert body["code"] == 0 and body["data"][0]["succFlag"] == "1", body


@pytest.mark.parametrize("mode", MODES)
async def test_a_key_with_white_space_is_the_wrong_key(province: Any, make_settings: Any, mode: str) -> None:
    settings: Settings = make_settings(mode=mode)
    client = await province(settings)
    msg = message(settings, [record(settings, 1)])
    for spaced in (msg["key"] + " ", " " + msg["key"], msg["key"] + "\t"):
        status, body = await send(client, dict(msg, key=spaced))
        assert body["code"] == 1021, (spaced, body)
    renamed = {("key " if k == "key" else k): v for k, v in msg.items()}
    status, body = await send(client, renamed)
    assert body["code"] in (1010, 1021), body
    assert await stored(client) == (0, 0)


@pytest.mark.parametrize("value", ["李\u202e丽", "李\x00丽", "李\x1b[31m丽", "李\u2066丽\u2069"])
async def test_control_characters_in_a_name(province: Any, make_settings: Any, value: str) -> None:
    strict: Settings = make_settings(mode="strict")
    client = await province(strict)
    status, body = await send(client, message(strict, [record(strict, 1, psnName=value)]))
    answer = body["data"][0]
    assert answer["succFlag"] == "-1" and "psnName" in answer["message"] and "控制字符 U+" in answer["message"]
    assert await stored(client) == (0, 1)
    lenient: Settings = make_settings(mode="lenient")
    client = await province(lenient)
    status, body = await send(client, message(lenient, [record(lenient, 1, psnName=value)], seq=3))
    answer = body["data"][0]
    assert answer["succFlag"] == "1" and "提示" in answer["message"] and "控制字符 U+" in answer["message"]
    # tab and line feed are text in a free-text field
    status, body = await send(client, message(lenient, [record(lenient, 2, diagRslt="第一行\n\t第二行")], seq=4))
    assert body["data"][0]["message"] == "保存数据成功", body
