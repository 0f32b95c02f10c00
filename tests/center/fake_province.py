"""A scripted province for the forwarding tests: answers each POST as its script says, keeps a msgid replay
log like the real one, and counts how often each index was stored as new."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from sandbox.config import Settings
from sandbox.spec.fields import HOP2
from sandbox.validate import data_length, validator


@dataclass
class FakeProvince:
    """Script actions, consumed one per request (then "ok" forever):
    ok | 500 | nonjson | drop | sleep:<seconds> (answer after storing) | envelope:<code> |
    status:<code>[:<Retry-After>] (that HTTP status with a gateway's JSON body, not the envelope);
    `reject`/`warn` name indexes answered -1/0."""

    settings: Settings
    script: list[str] = field(default_factory=list)
    reject: set[str] = field(default_factory=set)
    warn: set[str] = field(default_factory=set)
    summary_style: bool = False
    stored: Counter[str] = field(default_factory=Counter)  # index → times stored as new
    replies: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)  # msgid of every POST that reached processing
    problems: list[str] = field(default_factory=list)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    hits: list[float] = field(default_factory=list)  # time.monotonic() of every POST, whatever the script said
    server: TestServer | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(time.monotonic())
        action = self.script.pop(0) if self.script else "ok"
        if action == "500":
            return web.Response(status=500, text="Internal Server Error")
        if action == "nonjson":
            return web.Response(status=200, text="<html>维护中</html>", content_type="text/html")
        if action == "drop":
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        if action.startswith("status:"):
            _, code, *after = action.split(":")
            headers = {"Retry-After": after[0]} if after else {}
            return web.json_response({"error": f"gateway says {code}"}, status=int(code), headers=headers)
        if action.startswith("envelope:"):
            return web.json_response({"code": int(action.split(":")[1]), "type": "error",
                                      "message": "密钥值 key 与交易机构不匹配", "data": []})
        message = await request.json()
        reply = self.answer(message)
        if action.startswith("sleep:"):  # stored, but the answer comes late (or never reaches the center)
            await asyncio.sleep(float(action.split(":")[1]))
        return web.json_response(reply)

    def answer(self, message: dict[str, Any]) -> dict[str, Any]:
        msgid = message["msgid"]
        self.requests.append(msgid)
        if msgid in self.replies:
            return self.replies[msgid]
        center = self.settings.center
        if message["infno"] != HOP2.infno or message["key"] != center.key or message["infCode"] != center.code:
            self.problems.append(f"envelope {message['infno']} {message['infCode']}")
        if not msgid.startswith(center.code) or len(msgid) != 30:
            self.problems.append(f"msgid {msgid}")
        if data_length(message["data"]) > 40000:
            self.problems.append(f"data too long in {msgid}")
        check = validator(2, "strict", self.settings.index_profile)
        data = []
        for pos, rec in enumerate(message["data"], 1):
            result = check.validate_record(rec, pos)
            if result.errors:
                self.problems.append(result.summary())
            index = rec["hiImgIndx"]
            if index in self.reject:
                data.append({"hiImgIndx": index, "succFlag": "-1", "message": "省平台拒收：检查部位代码不在目录中"})
                continue
            if index not in self.records:
                self.stored[index] += 1
                self.records[index] = rec
            elif self.records[index] != rec:
                data.append({"hiImgIndx": index, "succFlag": "-1", "message": "索引号重复"})
                continue
            flag = "0" if index in self.warn else "1"
            data.append({"hiImgIndx": index, "succFlag": flag, "message": "保存数据成功" if flag == "1" else "提示"})
        if self.summary_style:
            data = [{"hiImgIndx": None, "succFlag": "1", "message": "保存数据成功"}]
        reply = {"code": 0, "type": "success", "message": "成功", "data": data}
        self.replies[msgid] = reply
        return reply

    async def start(self, port: int) -> FakeProvince:
        app = web.Application()
        app.router.add_post(HOP2.path, self.handle)
        self.server = TestServer(app, host="127.0.0.1", port=port)
        await self.server.start_server()
        return self

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.close()
            self.server = None
