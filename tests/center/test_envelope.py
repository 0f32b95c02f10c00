"""Envelope-level refusals of hop 1 at the center: each answers a code and a Chinese message, stores nothing."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from sandbox.config import Settings
from sandbox.spec.codes import ENVELOPE_CODES
from tests.center.helpers import HOP1_PATH, FileServer, instance, message, pdf, record


async def post_raw(center: TestClient, body: bytes, content_type: str = "application/json") -> tuple[int, Any]:
    resp = await center.post(HOP1_PATH, data=body, headers={"Content-Type": content_type})
    return resp.status, await resp.json()


async def nothing_stored(center: TestClient) -> None:
    summary = await (await center.get("/api/summary")).json()
    assert summary["received"] == 0 and summary["stored"] == 0 and summary["instances"] == 0


@pytest.fixture
def valid(settings: Settings) -> dict[str, Any]:
    return message(settings, [record(settings, 30, "http://127.0.0.1:9/r.pdf", "http://127.0.0.1:9/s.dcm")])


def code(name: str) -> int:
    return ENVELOPE_CODES[name].code


async def test_bad_json(center: TestClient) -> None:
    status, body = await post_raw(center, b'{"infno": ')
    assert status == 200 and body["code"] == code("bad_json") and body["type"] == "error"
    assert "请求体不是合法的 JSON" in body["message"]
    await nothing_stored(center)


async def test_wrong_content_type(center: TestClient) -> None:
    status, body = await post_raw(center, b"{}", "text/plain")
    assert status == 415 and body["code"] == code("bad_content_type") and "text/plain" in body["message"]


async def test_body_too_large(aiohttp_client: Any, make_settings: Any) -> None:
    from sandbox.center import create_app

    center = await aiohttp_client(create_app(make_settings(max_body_bytes=1024)))
    status, body = await post_raw(center, b"[" + b" " * 4096 + b"]")
    assert status == 413 and body["code"] == code("body_too_large")


async def test_not_utf8(center: TestClient) -> None:
    status, body = await post_raw(center, '{"infno": "中"}'.encode("gbk"))
    assert body["code"] == code("bad_encoding")


async def test_missing_msgid(center: TestClient, valid: dict[str, Any]) -> None:
    del valid["msgid"]
    status, body = await post_raw(center, _json(valid))
    assert body["code"] == code("bad_envelope") and "msgid" in body["message"]
    await nothing_stored(center)


async def test_unknown_institution(center: TestClient, valid: dict[str, Any]) -> None:
    valid["infCode"] = "H99999999999"
    valid["msgid"] = "H99999999999" + valid["msgid"][12:]
    _, body = await post_raw(center, _json(valid))
    assert body["code"] == code("unknown_infcode") and "H99999999999" in body["message"]


async def test_wrong_key(center: TestClient, valid: dict[str, Any]) -> None:
    valid["key"] = "WRONGKEY"
    _, body = await post_raw(center, _json(valid))
    assert body["code"] == code("wrong_key")
    await nothing_stored(center)


async def test_center_cannot_send_hop_1(center: TestClient, settings: Settings, valid: dict[str, Any]) -> None:
    c = settings.center
    msg = message(settings, valid["data"], hospital=c)
    _, body = await post_raw(center, _json(msg))
    assert body["code"] == code("wrong_role") and "医疗机构及检查检验机构" in body["message"]


async def test_empty_and_oversize_data(center: TestClient, settings: Settings, valid: dict[str, Any]) -> None:
    _, body = await post_raw(center, _json(dict(valid, data=[])))
    assert body["code"] == code("bad_data") and "没有记录" in body["message"]
    big = [dict(valid["data"][0], hiImgIndx=f"X{i}", clncDiag="很长的临床诊断" * 200) for i in range(30)]
    _, body = await post_raw(center, _json(dict(valid, data=big)))
    assert body["code"] == code("bad_data") and "40000" in body["message"]
    await nothing_stored(center)


async def test_msgid_replay_and_conflict(center: TestClient, files: FileServer, settings: Settings) -> None:
    rec = record(settings, 31, files.add("/r31.pdf", pdf(), "application/pdf"), files.add("/s31.dcm", instance(n=31)))
    msg = message(settings, [rec], seq=7)
    _, first = await post_raw(center, _json(msg))
    _, again = await post_raw(center, _json(msg))
    assert first == again and first["code"] == 0
    assert files.blobs["/s31.dcm"].hits == 1
    changed = message(settings, [dict(rec, diagRslt="另一个诊断")], seq=7)
    _, conflict = await post_raw(center, _json(changed))
    assert conflict["code"] == code("msgid_conflict") and msg["msgid"] in conflict["message"]


async def test_invalid_record_is_minus_1_with_field_named(center: TestClient, settings: Settings,
                                                          valid: dict[str, Any]) -> None:
    valid["data"][0]["gend"] = "7"
    _, body = await post_raw(center, _json(valid))
    entry = body["data"][0]
    assert entry["succFlag"] == "-1" and "gend(性别)" in entry["message"]
    summary = await (await center.get("/api/summary")).json()
    assert summary["received"] == 1 and summary["stored"] == 0 and summary["rejected"]["byReason"] == {"invalid": 1}


def _json(value: Any) -> bytes:
    import json

    return json.dumps(value, ensure_ascii=False).encode()
