"""A wrong path or method gets the JSON envelope with a Chinese reason, not aiohttp's plain text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sandbox.center.app import create_app as center_app
from sandbox.config import Settings
from sandbox.province.app import create_app as province_app


async def test_the_examples_infno_used_as_a_path_is_answered_with_the_documents_paths(
    aiohttp_client: Any, make_settings: Callable[..., Settings]
) -> None:
    client = await aiohttp_client(province_app(make_settings()))
    resp = await client.post("/mie/api/mie/saveExamRpotImgIdx", json={})
    assert resp.status == 404
    body = await resp.json()
    assert body["code"] == 1080 and body["type"] == "error"
    assert "/mie/api/mie/saveExamRpotImgIndx" in body["message"] and "勘误 #1" in body["message"]


async def test_wrong_method_names_the_allowed_one(aiohttp_client: Any, make_settings: Callable[..., Settings]) -> None:
    client = await aiohttp_client(center_app(make_settings()))
    resp = await client.get("/mie/api/mie/saveExamRpotImgInfo")
    assert resp.status == 405
    body = await resp.json()
    assert body["code"] == 1081 and "不支持 GET 请求，应使用 POST" in body["message"]


async def test_unknown_path_is_named(aiohttp_client: Any, make_settings: Callable[..., Settings]) -> None:
    client = await aiohttp_client(province_app(make_settings()))
    resp = await client.get("/no/such/thing")
    assert resp.status == 404
    assert (await resp.json())["message"] == "路径「/no/such/thing」不存在"
