"""Whole messages the province refuses: a non-zero code, type "error", a Chinese message, nothing stored."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from sandbox.config import Settings
from sandbox.spec.fields import DATA_MAX_CHARS
from sandbox.typedefs import SETTINGS
from sandbox.validate import Mode
from tests.province.helpers import PATH, message, record, send, stored


def _center_with(settings: Settings, **fields: Any) -> dict[str, Any]:
    return message(settings, [record(settings, 1)], **fields)


def _oversize_data(settings: Settings) -> dict[str, Any]:
    records, n = [], 0
    while len(json.dumps(records, ensure_ascii=False, separators=(",", ":"))) <= DATA_MAX_CHARS:
        records.append(record(settings, n))
        n += 1
    return message(settings, records)


# (case id, how to spoil a good message, expected code, words the message must contain)
CASES: list[tuple[str, Callable[[Settings], Any], int, tuple[str, ...]]] = [
    ("bad_json", lambda s: b'{"infno": "saveExamRpotImgIndx",', 1001, ("JSON",)),
    ("trailing_comma_as_in_the_document", lambda s: b'{"infno": "x",}', 1001, ("JSON",)),
    ("lone_surrogate_escape", lambda s: b'{"infno": "\\ud800"}', 1001, ("JSON",)),
    ("deeply_nested_json", lambda s: b"[" * 5000 + b"]" * 5000, 1005, ("JSON", "64 层")),
    ("nested_past_the_limit", lambda s: b"[" * 65 + b"]" * 65, 1005, ("JSON", "64 层")),
    ("nested_at_the_limit_is_judged_as_a_message", lambda s: b"[" * 64 + b"]" * 64, 1010, ("JSON 对象",)),
    ("not_utf8", lambda s: json.dumps(_center_with(s), ensure_ascii=False).encode("gbk"), 1004, ("UTF-8",)),
    ("message_is_an_array", lambda s: [_center_with(s)], 1010, ("JSON 对象",)),
    ("infno_of_hop_1", lambda s: _center_with(s, infno="saveExamRpotImgInfo"), 1010, ("infno", "saveExamRpotImgIndx")),
    ("unknown_infno", lambda s: _center_with(s, infno="saveSomething"), 1010, ("交易编号",)),
    ("msgid_too_short", lambda s: _center_with(s, msgid="C5108000000120250301"), 1010, ("msgid", "30 位")),
    ("msgid_bad_time", lambda s: _center_with(s, msgid="C51080000001202513010102030001"), 1010, ("msgid",)),
    ("inftime_with_t", lambda s: _center_with(s, infTime="2025-03-01T08:00:00"), 1010, ("infTime", "yyyy-MM-dd HH:mm:ss")),
    ("inftime_not_a_date", lambda s: _center_with(s, infTime="2025-02-30 08:00:00"), 1010, ("infTime",)),
    ("key_missing", lambda s: {k: v for k, v in _center_with(s).items() if k != "key"}, 1010, ("key", "缺少")),
    ("key_not_a_string", lambda s: _center_with(s, key=12345), 1010, ("key", "字符串")),
    ("unknown_infcode", lambda s: _center_with(s, infCode="C99999999999", msgid="C99999999999202503010800000001"),
     1020, ("C99999999999", "未登记")),
    ("wrong_key", lambda s: _center_with(s, key="NOT-THE-KEY"), 1021, ("密钥", "C51080000001")),
    ("key_of_another_institution", lambda s: _center_with(s, key=s.hospitals[0].key), 1021, ("密钥",)),
    ("hospital_sends_hop_2", lambda s: _center_with(s, infCode=s.hospitals[0].code, key=s.hospitals[0].key,
                                                     msgid=s.hospitals[0].code + "202503010800000001"),
     1022, ("地方影像云数据共享中心",)),
    ("data_missing", lambda s: {k: v for k, v in _center_with(s).items() if k != "data"}, 1030, ("交易输入", "缺少")),
    ("data_empty", lambda s: _center_with(s, data=[]), 1030, ("没有记录",)),
    ("data_a_number", lambda s: _center_with(s, data=42), 1030, ("数组",)),
    ("data_over_40000_chars", _oversize_data, 1030, ("40000",)),
]


@pytest.mark.parametrize("spoil,code,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_refused_message_answers_error_and_stores_nothing(
    client: Any, settings: Settings, spoil: Callable[[Settings], Any], code: int, words: tuple[str, ...]
) -> None:
    msg = spoil(settings)
    status, body = await send(client, msg if isinstance(msg, bytes) else json.dumps(msg, ensure_ascii=False).encode())
    assert status == 200
    assert body["code"] == code
    assert body["type"] == "error"
    assert body["data"] == []
    for word in words:
        assert word in body["message"]
    assert await stored(client) == (0, 0)


async def test_wrong_content_type_is_refused_with_415(client: Any, settings: Settings) -> None:
    resp = await client.post(PATH, data=json.dumps(_center_with(settings)), headers={"Content-Type": "text/plain"})
    body = await resp.json()
    assert resp.status == 415
    assert (body["code"], body["type"]) == (1002, "error")
    assert "application/json" in body["message"] and "text/plain" in body["message"]
    assert await stored(client) == (0, 0)


async def test_content_type_with_charset_is_accepted(client: Any, settings: Settings) -> None:
    resp = await client.post(PATH, data=json.dumps(_center_with(settings)).encode(),
                             headers={"Content-Type": "application/json;charset=UTF-8"})
    assert (await resp.json())["code"] == 0


async def test_body_over_the_configured_maximum_is_refused_from_its_length(province: Any) -> None:
    client = await province(max_body_bytes=10_000)
    resp = await client.post(PATH, data=b"{" + b" " * 20_000 + b"}", headers={"Content-Type": "application/json"})
    body = await resp.json()
    assert resp.status == 413
    assert (body["code"], body["type"]) == (1003, "error")
    assert "10000" in body["message"]
    assert await stored(client) == (0, 0)


async def test_chunked_body_over_the_maximum_is_refused_while_reading(province: Any) -> None:
    client = await province(max_body_bytes=10_000)

    async def chunks() -> Any:
        for _ in range(100):
            yield b" " * 1000

    resp = await client.post(PATH, data=chunks(), headers={"Content-Type": "application/json"})
    assert resp.status == 413
    assert (await resp.json())["code"] == 1003
    assert await stored(client) == (0, 0)


async def test_example_infno_spelling_is_accepted_with_a_note_in_lenient_mode(client: Any, settings: Settings) -> None:
    status, body = await send(client, _center_with(settings, infno="saveExamRpotImgIdx"))
    assert body["code"] == 0 and body["data"][0]["succFlag"] == "1"
    assert "saveExamRpotImgIdx" in body["message"] and "勘误 #1" in body["message"]


async def test_example_infno_spelling_is_refused_in_strict_mode(province: Any) -> None:
    client = await province(mode=Mode.STRICT)
    s = client.server.app[SETTINGS]
    status, body = await send(client, _center_with(s, infno="saveExamRpotImgIdx"))
    assert body["code"] == 1010 and "saveExamRpotImgIdx" in body["message"]
    assert await stored(client) == (0, 0)


async def test_blank_infcode_is_taken_from_msgid_in_lenient_mode(client: Any, settings: Settings) -> None:
    status, body = await send(client, _center_with(settings, infCode=" "))
    assert body["code"] == 0
    assert "勘误 #11" in body["message"]


async def test_blank_infcode_is_refused_in_strict_mode(province: Any) -> None:
    client = await province(mode=Mode.STRICT)
    s = client.server.app[SETTINGS]
    status, body = await send(client, _center_with(s, infCode=" "))
    assert body["code"] == 1010 and "infCode" in body["message"]


async def test_utf8_byte_order_mark_is_accepted(client: Any, settings: Settings) -> None:
    body = b"\xef\xbb\xbf" + json.dumps(_center_with(settings), ensure_ascii=False).encode()
    status, answer = await send(client, body)
    assert answer["code"] == 0 and answer["data"][0]["succFlag"] == "1"
