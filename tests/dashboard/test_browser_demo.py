"""In a real headless Chromium, with the demo trickle running: scenarios started from the page pass, the
demo pauses while they run and resumes afterwards (what `make run` gives a trainer)."""

from __future__ import annotations

import asyncio
import contextlib
import io

import pytest

from sandbox.dashboard.app import DashboardServer
from sandbox.scenario import library
from sandbox.serve import ServeOptions, _demo
from tests.dashboard.conftest import CHROMIUM, CHROMIUM_ARGS, SKIPPED, chromium_missing, start_chain

REASON = chromium_missing()
if REASON is not None:
    SKIPPED.append(REASON)
    pytest.skip(REASON, allow_module_level=True)

from playwright.async_api import async_playwright  # noqa: E402

RUN_TIMEOUT_MS = 90_000


async def test_scenarios_started_from_the_page_pass_while_the_demo_runs_and_the_demo_resumes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    sandbox = await start_chain(tmp_path / "data")
    control = sandbox.control
    server = DashboardServer(sandbox)
    url = await server.start()
    out = io.StringIO()
    demo = asyncio.create_task(_demo(control, ServeOptions(demo=True, demo_interval=0.2, demo_batch=3), out))
    playwright = await async_playwright().start()
    browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    errors: list[str] = []
    try:
        page = await browser.new_page(viewport={"width": 1600, "height": 900}, locale="zh-CN")
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(url)
        await page.wait_for_selector('#conn[data-state="live"]')
        await page.wait_for_selector("#scenario-select option", state="attached")
        # the demo is sending before any scenario
        await page.wait_for_selector('.msg[data-hop="1"]', timeout=RUN_TIMEOUT_MS)

        for name in ("happy-path", "province-partial-failure"):
            await page.select_option("#scenario-select", name)
            await page.click("#run-scenario")
            title = library.find(name).title.zh
            # this scenario's run (not the previous one's verdict) has ended on the page
            await page.wait_for_function(
                """title => { const h = document.querySelector('#run-panel h3');
                   return h && h.textContent.includes(title)
                       && h.querySelector('.state.passed, .state.failed') !== null; }""",
                arg=title, timeout=RUN_TIMEOUT_MS)
            expectations = await page.locator("#run-panel .expects li").count()
            failed = await page.locator("#run-panel .expects li:not(.ok)").all_inner_texts()
            assert await page.locator("#run-panel .state.passed").count() == 1, (name, failed)
            assert expectations == await page.locator("#run-panel .expects li.ok").count() > 0

        # the demo paused during the runs (said so once per run) and resumes: new demo batches arrive
        assert "演示已暂停：场景「happy-path」进行中" in out.getvalue()
        sent = len(control.demo_driver.indexes)
        deadline = asyncio.get_running_loop().time() + RUN_TIMEOUT_MS / 1000
        while len(control.demo_driver.indexes) <= sent:
            assert asyncio.get_running_loop().time() < deadline, out.getvalue()
            await asyncio.sleep(0.1)
        assert control.active is None and control.overrides() == {}
        await page.wait_for_function("document.querySelectorAll('.msg[data-hop=\"1\"]').length >= 1")
        assert errors == []
    finally:
        demo.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await demo
        await browser.close()
        await playwright.stop()
        await server.stop()
        await sandbox.stop()
