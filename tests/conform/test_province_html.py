"""The HTML report: one self-contained page, read in a real headless Chromium as a project manager opens it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sandbox.conform.html import render_html, write_html
from sandbox.conform.model import Exchange, Outcome, Report, Requirement, Result, Text

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _req(rid: str, severity: str = "required") -> Requirement:
    return Requirement(id=rid, role="province", source="三、(五) 输入 hiImgIndx", severity=severity,  # type: ignore[arg-type]
                       title=Text(zh=f"要求 {rid}", en=f"requirement {rid}"),
                       expected=Text(zh="succFlag -1 并点名字段", en="succFlag -1 naming the field"))


def _report(failing: bool) -> Report:
    hostile = '{"message": "<script>document.title=\'pwned\'</script>", "code": 0, "data": "\\u4fdd\\u5b58"}'
    ex = Exchange("sent", "POST", "http://127.0.0.1:9/mie/api/mie/saveExamRpotImgIndx", "2025-10-08T08:00:00+08:00",
                  '{"infno": "saveExamRpotImgIndx"}', 200, hostile)
    results = [Result.of(_req("P-A-OK"), Outcome.passed("逐条 succFlag 1", [ex]), 0.1),
               Result.of(_req("P-A-REC", "recommended"), Outcome.failed("校验位错误被接受"), 0.1)]
    if failing:
        results.append(Result.of(_req("P-A-BAD"), Outcome.failed("succFlag 1（应为 -1）", [ex], "✗ certno 未点名"), 0.1))
    return Report("province", "http://127.0.0.1:9/mie/api/mie/saveExamRpotImgIndx", "2025-10-08T08:00:00+08:00",
                  1.5, {"mode": "strict", "key": "***"}, results)


def test_the_page_says_go_or_no_go_and_lists_what_to_fix() -> None:
    go = render_html(_report(failing=False))
    assert "可以上线：全部必须项通过" in go and "1 项建议项未满足" in go and "+08:00" in go
    nogo = render_html(_report(failing=True))
    assert "暂不能上线：1 项必须项未通过" in nogo
    fix = nogo.split("需要修复", 1)[1].split("逐项结果", 1)[0]
    assert 'href="#P-A-BAD"' in fix and 'href="#P-A-REC"' in fix and "P-A-OK" not in fix
    # Evidence is escaped (never markup) and JSON is shown with its Chinese as characters.
    assert "<script>" not in nogo and "&lt;script&gt;" in nogo and "保存" in nogo
    assert "http://" not in nogo.split("<body>", 1)[0]  # no outside stylesheet or script


async def test_the_page_works_in_a_browser_with_nothing_fetched(tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"没有 Chromium（{CHROMIUM}）：浏览器测试跳过（Debian: apt-get install chromium）")
    from playwright.async_api import async_playwright

    page_file = tmp_path / "report.html"
    write_html(_report(failing=True), page_file)
    fetched: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = await browser.new_page()
            page.on("request", lambda r: fetched.append(r.url))
            await page.goto(page_file.as_uri())
            assert await page.title() == "一致性测试报告 · 医保影像云索引共享模块（province）"
            assert "暂不能上线" in await page.inner_text(".verdict")
            row = page.locator("#P-A-BAD")
            evidence = row.locator(".evidence")
            assert not await evidence.is_visible()  # folded
            await row.locator("summary").click()
            assert await evidence.is_visible()
            text = await evidence.inner_text()
            assert "<script>document.title='pwned'</script>" in text and "✗ certno 未点名" in text
            assert "succFlag -1 并点名字段" in text
        finally:
            await browser.close()
    assert fetched == [page_file.as_uri()]
