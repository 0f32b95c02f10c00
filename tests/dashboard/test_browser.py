"""The dashboard in a real headless Chromium (Debian's `chromium`, driven by Playwright): what a trainer sees.

One sandbox, one dashboard server and one browser for the module; each test opens its own page and fails on
any console error the page logged.
"""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import pytest_asyncio
from PIL import Image

from sandbox.app import Sandbox
from sandbox.dashboard.app import DashboardServer
from sandbox.journal.entry import Entry, classify, describe_request
from sandbox.synth.dicom import ImageSpec
from tests.dashboard.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    SKIPPED,
    chromium_missing,
    run_scenario_here,
    start_chain,
)
from tests.dashboard.helpers import RADIOLOGY, journal_facts

REASON = chromium_missing()
if REASON is not None:
    SKIPPED.append(REASON)
    pytest.skip(REASON, allow_module_level=True)

from playwright.async_api import Browser, Page, async_playwright  # noqa: E402

pytestmark = pytest.mark.asyncio(loop_scope="module")

VIEWPORT = {"width": 1600, "height": 900}
# Outcome colours of the message cards (app.css --ok, --partial …), as computed styles report them.
COLOURS = {"ok": "rgb(21, 128, 61)", "partial": "rgb(180, 83, 9)", "failed": "rgb(185, 28, 28)",
           "rejected": "rgb(109, 40, 217)", "transport": "rgb(71, 85, 105)"}
SCREENSHOTS: dict[str, Path] = {}
# Small studies, but big enough for the image page to show a real picture.
IMAGES = ImageSpec(slices=2, matrix=128, xray_matrix=128, us_shape=(128, 128), us_images=1)


@dataclass
class Site:
    sandbox: Sandbox
    url: str
    browser: Browser
    shots: Path


@dataclass
class Tab:
    page: Page
    errors: list[str] = field(default_factory=list)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    root = tmp_path_factory.mktemp("dashboard")
    sandbox = await start_chain(root / "data", images=IMAGES)
    server = DashboardServer(sandbox)
    url = await server.start()
    playwright = await async_playwright().start()
    browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        yield Site(sandbox, url, browser, root / "screenshots")
    finally:
        await browser.close()
        await playwright.stop()
        await server.stop()
        await sandbox.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def tab(site: Site) -> AsyncIterator[Tab]:
    context = await site.browser.new_context(viewport=VIEWPORT, locale="zh-CN")
    page = await context.new_page()
    opened = Tab(page)

    def console(message: Any) -> None:
        if message.type == "error":
            opened.errors.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda exc: opened.errors.append(str(exc)))
    try:
        yield opened
    finally:
        await context.close()


async def open_dashboard(site: Site, tab: Tab) -> Page:
    page = tab.page
    await page.goto(site.url)
    await page.wait_for_selector('#conn[data-state="live"]')
    await page.wait_for_selector("#scenario-select option", state="attached")
    # "live" means the event stream is open; the lanes' heads fill in with its first state event.
    await page.wait_for_selector("#role-province h2")
    return page


async def centre_x(page: Page, selector: str) -> float:
    box = await page.locator(selector).first.bounding_box()
    assert box is not None, selector
    return float(box["x"] + box["width"] / 2)


async def test_the_page_loads_in_chinese_with_no_console_errors_and_switches_to_english(site: Site, tab: Tab) -> None:
    page = await open_dashboard(site, tab)
    assert await page.inner_text("h1") == "医保影像云沙箱 · 培训看板"
    heads = await page.inner_text(".heads")
    for title in ("医疗机构", "地方影像云数据共享中心", "医保影像云索引共享模块"):
        assert title in heads
    options = await page.locator("#scenario-select option").evaluate_all("os => os.map(o => o.value)")
    assert "province-partial-failure" in options and "happy-path" in options
    await page.click('.lang button[data-lang="en"]')
    assert await page.inner_text("h1") == "Imaging-cloud sandbox · trainer's dashboard"
    assert "Provincial index module" in await page.inner_text(".heads")
    await page.click('.lang button[data-lang="zh"]')
    assert await page.inner_text("h1") == "医保影像云沙箱 · 培训看板"
    for name in ("exams", "quality", "chain"):
        await page.click(f'.tabs button[data-tab="{name}"]')
        await page.wait_for_selector(f"#tab-{name}.active")
    await page.wait_for_timeout(300)
    assert tab.errors == []


async def test_the_partial_failure_scenario_started_from_the_page_fills_the_right_lanes_in_the_right_colours(
        site: Site, tab: Tab) -> None:
    page = await open_dashboard(site, tab)
    await page.select_option("#scenario-select", "province-partial-failure")
    await page.click("#run-scenario")
    await page.wait_for_selector("#run-panel .state.passed", timeout=30_000)
    await page.wait_for_selector('.msg[data-hop="2"]')
    hop1, hop2 = '.msg[data-hop="1"]', '.msg[data-hop="2"]'
    assert await page.get_attribute(hop1, "data-outcome") == "ok"
    assert await page.get_attribute(hop2, "data-outcome") == "partial"
    assert (await page.get_attribute(hop1, "data-from"), await page.get_attribute(hop1, "data-to")) == ("hospital", "center")
    assert (await page.get_attribute(hop2, "data-from"), await page.get_attribute(hop2, "data-to")) == ("center", "province")
    # lanes: the lifelines of the three roles are the centres of the three heads; hop 1 spans hospital → center,
    # hop 2 spans center → province
    hospital, center, province = [await centre_x(page, f"#role-{r}") for r in ("hospital", "center", "province")]
    for selector, left, right in ((hop1, hospital, center), (hop2, center, province)):
        box = await page.locator(selector).bounding_box()
        assert box is not None
        assert abs(box["x"] - left) < 40 and abs(box["x"] + box["width"] - right) < 40, (selector, box, left, right)
    # colours by outcome
    for selector, outcome in ((hop1, "ok"), (hop2, "partial")):
        colour = await page.locator(selector).evaluate("el => getComputedStyle(el).borderTopColor")
        assert colour == COLOURS[outcome], (selector, colour)
    assert "✓8" in await page.inner_text(hop2) and "✕2" in await page.inner_text(hop2)
    # the run: every step done, every expectation ✓
    assert await page.locator("#run-panel .steps li.done").count() == 2
    expectations = await page.locator("#run-panel .expects li").count()
    assert expectations == await page.locator("#run-panel .expects li.ok").count() > 0
    # counters per role (the next state event brings them)
    await page.wait_for_function("() => document.getElementById('role-province').textContent.includes('8')",
                                 timeout=15_000)
    assert tab.errors == []


async def test_clicking_a_rejected_record_shows_its_field_error_and_the_screenshot_is_written(
        site: Site, tab: Tab) -> None:
    if not await site.sandbox.journal.count(outcome="partial"):  # run alone: start the scenario here
        await run_scenario_here(site.sandbox, "province-partial-failure", reset=True)
    page = await open_dashboard(site, tab)
    await page.click('.msg[data-outcome="partial"]')
    rejected = page.locator("#detail details.rec.failed").first
    await rejected.wait_for()
    assert "-1" in await rejected.locator("summary").inner_text()
    field_line = rejected.locator('.kv.hl-error[data-field="imgExamType"]')
    assert await field_line.count() == 1
    assert "省平台校验不通过：检查项目与影像检查类型不符" in await field_line.locator(".note").inner_text()
    problems = await rejected.locator(".problems li.error").all_inner_texts()
    assert any(p.startswith("imgExamType 影像检查类型代码") for p in problems), problems
    assert await rejected.locator(".links a").count() == 4  # report page, image page, DICOM, DICOM zip
    site.shots.mkdir(parents=True, exist_ok=True)
    shot = site.shots / "dashboard.png"
    await page.screenshot(path=str(shot))
    print(f"\ndashboard screenshot: {shot}")
    image = Image.open(shot)
    assert image.size == (VIEWPORT["width"], VIEWPORT["height"])
    assert len(image.convert("RGB").getcolors(1 << 20) or []) > 50  # a rendered page, not a blank one
    SCREENSHOTS["dashboard"] = shot
    assert tab.errors == []


async def test_the_image_page_linked_from_an_exam_shows_a_non_blank_picture(site: Site, tab: Tab) -> None:
    if not await site.sandbox.journal.count(hop=2):
        await run_scenario_here(site.sandbox, "province-partial-failure", reset=True)
    page = await open_dashboard(site, tab)
    await page.click('.msg[data-hop="2"]')
    link = page.locator("#detail details.rec[open] .links a").nth(1)
    await link.wait_for()
    assert await link.inner_text() == "影像页"
    href = await link.get_attribute("href")
    assert href and href.startswith(site.sandbox.url("center") + "/viewer/")
    viewer = await page.context.new_page()
    await viewer.goto(href)
    await viewer.wait_for_function(
        "() => { const i = document.getElementById('frame'); return i && i.complete && i.naturalWidth > 0; }")
    png = await viewer.locator("#frame").screenshot()
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)
    assert pixels.size > 100 * 100
    assert pixels.std() > 10, pixels.std()  # a picture, not a blank (or single-colour) frame
    assert len(np.unique(pixels)) > 16
    await viewer.close()
    assert tab.errors == []


async def test_the_quality_report_on_the_page_equals_the_journal(site: Site, tab: Tab) -> None:
    if not await site.sandbox.journal.count(hop=2):
        await run_scenario_here(site.sandbox, "province-partial-failure", reset=True)
    await run_scenario_here(site.sandbox, "wrong-key")  # a second scenario on top: envelope refusals too
    page = await open_dashboard(site, tab)
    await page.click('.tabs button[data-tab="quality"]')
    total = page.locator("#quality-table tr.total")
    await total.wait_for()

    async def cell(key: str) -> str:
        return (await total.locator(f'td[data-key="{key}"]').inner_text()).strip()

    facts = await journal_facts(site.sandbox)
    indexed = len(facts["indexed"])
    missing = sum(1 for k, types in facts["sent"].items() if types & RADIOLOGY and k not in facts["indexed"])
    assert int(await cell("sent")) == len(facts["sent"])
    assert int(await cell("indexed")) == indexed == await site.sandbox.state("province").indexes.count()
    assert int(await cell("failed")) == len(facts["sent"]) - indexed
    assert int(await cell("radiologyNotIndexed")) == missing
    assert int(await cell("exposureYuan")) == 5 * missing
    assert "省级模块拒收（succFlag -1） ×2" in await cell("failedByReason")
    assert "第一跳报文被整批拒收（code 1021）" in await cell("failedByReason")
    assert "¥" + str(5 * missing) in await page.inner_text("#quality-cards")
    csv = await page.request.get(site.url + "api/quality.csv")
    body = await csv.body()
    assert csv.headers["content-type"].startswith("text/csv") and body.startswith(b"\xef\xbb\xbf")
    assert "机构编码,机构名称,检查日期" in body.decode("utf-8-sig")
    assert "按时上传" in await page.inner_text("#quality-defs")
    assert tab.errors == []


async def test_ten_thousand_messages_stay_responsive(site: Site, tab: Tab) -> None:
    sandbox = site.sandbox
    await sandbox.control.reset()
    journal = sandbox.journal
    assert journal is not None
    t0 = time.perf_counter()
    for n in range(10_000):
        journal.record(_fake_entry(n))
    await journal.flush()
    recorded = time.perf_counter() - t0
    t1 = time.perf_counter()
    page = await open_dashboard(site, tab)
    await page.wait_for_function("() => document.getElementById('count').textContent.includes('10000')")
    await page.wait_for_selector('.msg[data-seq="10000"]')  # follows the newest
    loaded = time.perf_counter() - t1
    assert await page.locator(".row").count() < 80  # only the visible window is in the DOM
    # jump through the list: every position renders its rows quickly
    t2 = time.perf_counter()
    for target in (5000, 1, 2500, 7500, 9999):
        await page.evaluate(f"document.getElementById('list').scrollTop = {(target - 1) * 44}")
        await page.wait_for_selector(f'.msg[data-seq="{target}"]', timeout=15_000)  # generous: a loaded machine
    jumped = (time.perf_counter() - t2) / 5
    assert await page.locator(".row").count() < 80
    await page.click('.msg[data-seq="9999"]')
    await page.wait_for_selector("#detail h3")
    assert "#9999" in await page.inner_text("#detail h3")
    # every outcome has its colour
    for outcome, colour in COLOURS.items():
        card = page.locator(f'.msg[data-outcome="{outcome}"]').first
        assert await card.evaluate("el => getComputedStyle(el).borderTopColor") == colour, outcome
    # still live with 10,000 in the journal: a new entry arrives and the count follows
    journal.record(_fake_entry(10_000))
    await page.wait_for_function("() => document.getElementById('count').textContent.includes('10001')")
    # the reset button empties everything, the page included
    await page.click("#reset")
    await page.wait_for_selector("#empty", state="visible")
    assert await page.locator(".msg").count() == 0 and await journal.count() == 0
    print(f"\n10,000 messages: recorded in {recorded:.2f} s, page ready in {loaded:.2f} s, "
          f"a jump renders in {jumped * 1000:.0f} ms")
    assert loaded < 10 and jumped < 2
    assert tab.errors == []


def _fake_entry(n: int) -> Entry:
    """A small, realistic-looking exchange: alternating hops and outcomes."""
    hop = 1 + n % 2
    roles = {1: ("hospital", "center"), 2: ("center", "province")}[hop]
    message = {"infno": "saveExamRpotImgInfo" if hop == 1 else "saveExamRpotImgIndx",
               "msgid": f"H51080200001202512010900{n:06d}", "infTime": "2025-12-01 09:00:00",
               "infCode": "H51080200001", "key": "k",
               "data": [{"hiImgIndx": f"IDX{n}", "psnName": "张三", "imgExamType": "2", "examDate": "2025-10-08"}]}
    entry = Entry(hop=hop, from_role=roles[0], to_role=roles[1], side="server", url="http://127.0.0.1/x",
                  request=orjson.dumps(message).decode(), started=time.time(), duration_ms=3.0)
    describe_request(entry, message)
    kind = n % 6
    if kind == 4:
        classify(entry, None, None, transport="timeout")
    elif kind == 5:
        classify(entry, 200, orjson.dumps({"code": 1021, "type": "error", "message": "密钥值 key 与交易机构不匹配",
                                           "data": None}).decode())
    else:
        flag = {0: "1", 1: "1", 2: "0", 3: "-1"}[kind]
        classify(entry, 200, orjson.dumps({"code": 0, "message": "x", "data": [
            {"hiImgIndx": f"IDX{n}", "succFlag": flag, "message": "保存数据成功"}]}).decode())
    return entry
