"""Fixtures of the hospital tests: a hospital app with tiny images, and a scriptable fake center."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from sandbox.config import Settings
from sandbox.spec.fields import HOP1
from sandbox.synth.dicom import ImageSpec

TINY = ImageSpec(slices=3, matrix=32, xray_matrix=48, us_shape=(40, 48), us_images=2)


@pytest.fixture
def hospital_settings(make_settings: Callable[..., Settings]) -> Settings:
    """Fast retries so transient-failure tests do not wait."""
    return make_settings(retry_base_s=0.001, retry_cap_s=0.005, retry_max_attempts=4, send_timeout_s=2.0)


@dataclass
class FakeCenter:
    """A stand-in for the sharing center: records every POST and answers as scripted.

    `script` holds one behaviour per incoming request, consumed in order ("503", "500-html", "sleep",
    "summary", "refuse", "drop-second"); when it is empty the center answers per record with succFlag 1.
    With `fetch` it downloads each record's files from the hospital before answering.
    """

    script: list[str] = field(default_factory=list)
    fetch: bool = False
    requests: list[dict[str, Any]] = field(default_factory=list)
    fetched: list[tuple[str, int, str]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        action = self.script.pop(0) if self.script else "ok"
        if action == "503":
            return web.json_response({"code": 1099, "message": "忙"}, status=503)
        if action == "500-html":
            return web.Response(text="<html>Internal Server Error</html>", status=500, content_type="text/html")
        if action == "sleep":
            await asyncio.sleep(5)
        if action == "refuse":
            return web.json_response({"code": 1021, "type": "error", "message": "密钥值 key 与交易机构不匹配", "data": []})
        if action == "summary":
            return web.json_response({"code": 0, "type": "success", "message": "成功",
                                      "data": [{"hiImgIdx": None, "succFlag": "1", "message": "保存数据成功"}]})
        if self.fetch:
            async with aiohttp.ClientSession() as s:
                for rec in body["data"]:
                    for key in ("examRpotPdfI", "imgInfoDcm"):
                        async with s.get(rec[key]) as resp:
                            data = await resp.read()
                            self.fetched.append((key, resp.status, resp.headers.get("Content-Type", "")))
                            assert len(data) > 0
        data = []
        for i, rec in enumerate(body["data"]):
            if action == "drop-second" and i == 1:
                data.append({"hiImgIndx": rec["hiImgIndx"], "succFlag": "-1", "message": "数据校验失败：certno(证件号码): 校验位错误"})
            else:
                data.append({"hiImgIndx": rec["hiImgIndx"], "succFlag": "1", "message": "保存数据成功"})
        return web.json_response({"code": 0, "type": "success", "message": "成功", "data": data})


@pytest.fixture
async def fake_center() -> AsyncIterator[FakeCenter]:
    center = FakeCenter()
    app = web.Application()
    app.router.add_post(HOP1.path, center.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    center.url = str(server.make_url(HOP1.path))
    try:
        yield center
    finally:
        await server.close()
