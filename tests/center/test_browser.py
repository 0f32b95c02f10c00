"""The two pages hop 2 links to, in a real headless Chromium (Debian's `chromium`, driven by Playwright)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from sandbox.config import Settings
from tests.center.helpers import FileServer, instance, study
from tests.center.test_pages import ingest, path_of

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _browser_missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"没有 Chromium（{CHROMIUM}）：浏览器测试跳过（Debian: apt-get install chromium）"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "没有安装 Playwright：浏览器测试跳过"
    return None


async def test_report_and_image_pages_work_in_a_browser(center: TestClient, files: FileServer,
                                                        settings: Settings) -> None:
    reason = _browser_missing()
    if reason:
        print(reason)
        pytest.skip(reason)
    from playwright.async_api import async_playwright

    st = await ingest(center, files, settings, 70, study(70, 4) + [instance(n=70, series=2, number=1)])
    base = str(center.make_url("")).rstrip("/")
    errors: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = await browser.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(base + path_of(st["links"]["examRpotLinkUrl"]))
            assert "胸部CT平扫未见明显异常。" in await page.inner_text("main")
            assert await page.locator("object.pdf").count() == 1

            await page.goto(base + path_of(st["links"]["imgInfoLinkUrl"]))
            frame = page.locator("#frame")
            await page.wait_for_function("() => document.getElementById('frame').naturalWidth > 0")
            assert await page.locator("#series li").count() == 2
            first = await frame.get_attribute("src")
            await page.locator("#slider").fill("1")
            await page.wait_for_function(
                "src => document.getElementById('frame').src !== src && document.getElementById('frame').complete"
                " && document.getElementById('frame').naturalWidth > 0", arg=first)
            assert "第 1 / 4 幅" in await page.inner_text("#counter")
            await page.keyboard.press("ArrowRight")
            assert "第 2 / 4 幅" in await page.inner_text("#counter")
            await page.select_option("#preset", "-600,1500")
            assert "window=-600%2C1500" in (await frame.get_attribute("src") or "")
            await page.locator("#series li").nth(1).click()
            assert "第 1 / 1 幅" in await page.inner_text("#counter")
        finally:
            await browser.close()
    assert errors == []


