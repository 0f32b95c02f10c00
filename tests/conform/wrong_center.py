"""Deliberately wrong centers, for the center kit's tests.

- `yes_app()`: a center that answers code 0 and succFlag 1 to every record of every message, checks nothing,
  fetches nothing and forwards nothing. Run as its own process: `python -m tests.conform.wrong_center yes PORT`.
- `renaming_proxy(upstream)`: put between a center and its province, it turns that center into one that resends
  with a new msgid: every message whose msgid it has already passed on goes upstream under a fresh msgid
  (same institution and time, another sequence number), body otherwise unchanged.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import aiohttp
from aiohttp import web

from sandbox.spec.fields import HOP1, HOP2


async def _say_yes(request: web.Request) -> web.Response:
    try:
        message = json.loads(await request.read())
    except ValueError:
        message = {}
    data = message.get("data") if isinstance(message, dict) else None
    records = data if isinstance(data, list) else []
    entries = [{"hiImgIndx": r.get("hiImgIndx") if isinstance(r, dict) else None, "succFlag": "1",
                "message": "保存数据成功"} for r in records]
    return web.json_response({"code": 0, "type": "success", "message": "成功", "data": entries})


def yes_app() -> web.Application:
    app = web.Application()
    app.router.add_post(HOP1.path, _say_yes)
    return app


def renaming_proxy(upstream: str) -> web.Application:
    seen: set[str] = set()
    counter = iter(range(9000, 10000))

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            message: Any = json.loads(body)
        except ValueError:
            message = None
        if isinstance(message, dict) and isinstance(message.get("msgid"), str):
            msgid = message["msgid"]
            if msgid in seen:
                message["msgid"] = f"{msgid[:26]}{next(counter):04d}"
                body = json.dumps(message, ensure_ascii=False).encode("utf-8")
            seen.add(msgid)
        timeout = aiohttp.ClientTimeout(total=5)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session, session.post(
                    upstream, data=body, headers={"Content-Type": "application/json"}) as resp:
                return web.Response(status=resp.status, body=await resp.read(), content_type="application/json")
        except (TimeoutError, aiohttp.ClientError):
            return web.json_response({"code": 1099, "type": "error", "message": "上游无应答", "data": []}, status=504)

    app = web.Application()
    app.router.add_post(HOP2.path, forward)
    return app


async def serve(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def _main(kind: str, port: int) -> None:
    if kind != "yes":
        raise SystemExit(f"unknown wrong center {kind}")
    await serve(yes_app(), port)
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1], int(sys.argv[2])))
