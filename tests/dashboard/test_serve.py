"""`sandbox serve` starts the dashboard on its own port and prints its URL; a taken port costs only the dashboard."""

from __future__ import annotations

import asyncio
import io
import socket
from pathlib import Path

import aiohttp

from sandbox.config import Settings
from sandbox.serve import ServeOptions, serve
from tests.dashboard.conftest import chain_settings

READY = "按 Ctrl-C 停止"


async def _serve_until_ready(settings: Settings,
                            options: ServeOptions) -> tuple[asyncio.Task[int], asyncio.Event, io.StringIO]:
    out = io.StringIO()
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, options, out=out, stop=stop))
    for _ in range(600):
        if READY in out.getvalue() or task.done():
            break
        await asyncio.sleep(0.02)
    assert READY in out.getvalue(), out.getvalue()
    return task, stop, out


async def test_serve_prints_the_dashboard_url_and_serves_the_page(tmp_path: Path) -> None:
    settings = chain_settings(tmp_path / "data")
    task, stop, out = await _serve_until_ready(settings, ServeOptions())
    try:
        url = f"http://127.0.0.1:{settings.dashboard_port}/"
        assert f"培训看板（浏览器打开，中文 / English）：{url}" in out.getvalue()
        async with aiohttp.ClientSession() as session, session.get(url) as page:
            assert page.status == 200 and "培训看板" in await page.text()
    finally:
        stop.set()
        assert await task == 0


async def test_a_taken_dashboard_port_leaves_the_chain_running(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings = chain_settings(tmp_path / "data", dashboard_port=taken.getsockname()[1])
        task, stop, out = await _serve_until_ready(settings, ServeOptions())
        try:
            text = out.getvalue()
            assert "看板无法监听" in text and "本次不启动培训看板，三个角色照常运行" in text
            assert "培训看板（浏览器打开" not in text
        finally:
            stop.set()
            assert await task == 0


async def test_no_dashboard_when_asked(tmp_path: Path) -> None:
    settings = chain_settings(tmp_path / "data")
    task, stop, out = await _serve_until_ready(settings, ServeOptions(dashboard=False))
    try:
        assert "培训看板" not in out.getvalue()
    finally:
        stop.set()
        assert await task == 0
