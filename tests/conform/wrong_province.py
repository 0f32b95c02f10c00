"""Deliberately wrong provinces for the province kit's tests: small aiohttp apps, each right except for one fault.

Both check the envelope, the sender and its key, and every record with the sandbox's validator (strict), and
answer an identical resend with the first answer, as a province should. Then:

- `duplicates`: stores every valid record even when its hiImgIndx is already stored or repeats within the batch
  (succFlag 1 each time) — the index is no longer unique;
- `summary`: answers in the document example's summary style (one entry, null index, ERRATA E14) but always
  with succFlag "1", whatever the batch's records were.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from aiohttp import web

from sandbox.common.envelope import body_hash
from sandbox.config import Settings
from sandbox.spec.fields import HOP2
from sandbox.validate import validate_message

Fault = Literal["duplicates", "summary"]


def _error(code: int, message: str) -> web.Response:
    return web.json_response({"code": code, "type": "error", "message": message, "data": []})


def make_app(fault: Fault) -> web.Application:
    center = Settings().center
    stored: dict[str, dict[str, Any]] = {}
    answered: dict[str, tuple[str, dict[str, Any]]] = {}

    async def receive(request: web.Request) -> web.Response:
        try:
            message = json.loads(await request.read())
        except ValueError as e:
            return _error(1001, f"请求体不是合法的 JSON：{e}")
        report = validate_message(message, hop=2, mode="strict")
        head = [p.text() for p in report.envelope_problems if p.level == "error"]
        if head:
            return _error(1010, "报文头校验失败：" + "；".join(head))
        if report.envelope.get("infCode") != center.code:
            return _error(1020, f"交易机构编号 infCode「{report.envelope.get('infCode')}」未登记")
        if message.get("key") != center.key:
            return _error(1021, "密钥值 key 不匹配")
        msgid, digest = report.envelope["msgid"], body_hash(message)
        if msgid in answered:
            if answered[msgid][0] != digest:
                return _error(1040, f"报文ID「{msgid}」已使用，且报文内容不同")
            return web.json_response(answered[msgid][1])
        entries = []
        for result in report.records:
            errors = [p for p in result.errors if fault != "duplicates" or p.code != "duplicate_in_batch"]
            index = result.index
            if errors:
                entries.append({"hiImgIndx": index, "succFlag": "-1",
                                "message": "；".join(f"{p.field}({p.field_name}): {p.message}" for p in errors)})
            elif fault != "duplicates" and index in stored and stored[index] != result.values:
                entries.append({"hiImgIndx": index, "succFlag": "-1", "message": f"索引号重复：{index}"})
            else:
                assert index is not None
                stored[index] = result.values
                entries.append({"hiImgIndx": index, "succFlag": "1", "message": "保存数据成功"})
        if fault == "summary":
            failed = "；".join(e["message"] for e in entries if e["succFlag"] != "1")
            entries = [{"hiImgIndx": None, "succFlag": "1", "message": failed or "保存数据成功"}]
        body = {"code": 0, "type": "success", "message": "成功", "data": entries}
        answered[msgid] = (digest, body)
        return web.json_response(body)

    app = web.Application()
    app.router.add_post(HOP2.path, receive)
    return app
