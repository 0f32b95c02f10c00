"""`sandbox conform province`: the sandbox's own province passes every required check; deliberately wrong
provinces fail the right checks with evidence (exit 1); an unreachable URL exits 2."""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from sandbox.api import Sandbox
from sandbox.cli import main
from sandbox.common.ports import free_port
from sandbox.conform.model import load_catalogue
from sandbox.spec.fields import HOP2
from tests.conform.wrong_province import Fault, make_app


async def conform(url: str, tmp_path: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    """Run `sandbox conform province` as a user does (its own event loop, in a thread); (exit, JSON report)."""
    out = tmp_path / f"report-{len(list(tmp_path.iterdir()))}.json"
    code = await asyncio.to_thread(main, ["conform", "province", "--url", url, "--json", str(out), *extra])
    report = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    return code, report


def by_id(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in report["results"]}


@pytest.fixture
async def wrong_province(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    fault: Fault = request.param
    runner = web.AppRunner(make_app(fault), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}{HOP2.path}"
    finally:
        await runner.cleanup()


async def test_the_sandbox_province_passes_every_required_check(tmp_path: Path) -> None:
    async with Sandbox(["province"], journal=False) as sb:
        assert sb.urls.hop2 is not None
        page, junit = tmp_path / "pages" / "report.html", tmp_path / "pages" / "report.xml"
        code, report = await conform(sb.urls.hop2, tmp_path, "--html", str(page), "--junit", str(junit))
        assert code == 0, [(r["id"], r["observed"]) for r in report["results"] if r["verdict"] != "pass"]
        # The three reports agree: go-live ready, with the recommended slips listed to fix.
        html = page.read_text(encoding="utf-8")
        assert "可以上线：全部必须项通过" in html and 'href="#P-HOP2-CHECKSUM"' in html
        suite = ET.parse(junit).getroot().find("testsuite")
        assert suite is not None and suite.get("failures") == "0" and suite.get("tests") == str(len(report["results"]))
        results = by_id(report)
        assert set(results) == {r.id for r in load_catalogue("province")}
        # The kit's key never reaches a report that is handed on; it reads *** in the evidence.
        assert sb.settings.center.key not in json.dumps(report, ensure_ascii=False) + html
        assert '"key": "***"' in results["P-HOP2-VALID"]["exchanges"][0]["request_body"]
        required = [r for r in results.values() if r["severity"] == "required"]
        assert required and all(r["verdict"] == "pass" for r in required)
        # A lenient province accepts checksum slips with a hint: the strict reading warns on it, naming fields.
        checksum = results["P-HOP2-CHECKSUM"]
        assert checksum["verdict"] == "warn" and "certno" in checksum["detail"]
        # Every record of every rule class was actually sent and answered.
        assert len(results["P-HOP2-REQ"]["exchanges"]) >= 1
        # Each rule class went over every field the hop-2 table gives it.
        assert all(f"✓ {code}(" in results["P-HOP2-REQ"]["detail"] for code in HOP2.required)
        assert all(f"✓ {f.code}(" in results["P-HOP2-LEN"]["detail"] for f in HOP2.fields if f.length is not None)
        # The lenient reading of the same province: nothing left to warn about.
        code, lenient = await conform(sb.urls.hop2, tmp_path, "--mode", "lenient")
        assert code == 0 and all(r["verdict"] == "pass" for r in lenient["results"]), \
            [(r["id"], r["observed"]) for r in lenient["results"] if r["verdict"] != "pass"]


async def test_a_strict_province_passes_the_strict_reading_in_full(tmp_path: Path) -> None:
    async with Sandbox(["province"], journal=False, mode="strict") as sb:
        assert sb.urls.hop2 is not None
        code, report = await conform(sb.urls.hop2, tmp_path, "--only", "errata", "--only", "checksum")
        assert code == 0
        assert {r["id"] for r in report["results"]} == {"P-HOP2-CHECKSUM", "P-HOP2-OPEN", "P-ERRATA-SPELLING"}
        assert all(r["verdict"] == "pass" for r in report["results"])


@pytest.mark.parametrize("wrong_province", ["duplicates"], indirect=True)
async def test_a_province_storing_duplicates_fails_the_duplicate_checks(wrong_province: str, tmp_path: Path) -> None:
    code, report = await conform(wrong_province, tmp_path, "--only", "duplicates", "--only", "hop2")
    assert code == 1
    results = by_id(report)
    failed = {rid for rid, r in results.items() if r["verdict"] == "fail"}
    assert failed == {"P-DUP-BATCH", "P-DUP-STORED"}, failed
    stored = results["P-DUP-STORED"]
    assert "succFlag 1" in stored["observed"]
    first, second = stored["exchanges"]
    index = json.loads(first["request_body"])["data"][0]["hiImgIndx"]
    assert index in second["request_body"] and '"succFlag": "1"' in second["response_body"]
    assert "两次" in results["P-DUP-BATCH"]["observed"]


@pytest.mark.parametrize("wrong_province", ["summary"], indirect=True)
async def test_a_summary_answer_with_a_wrong_flag_fails_shape_and_rules(wrong_province: str, tmp_path: Path) -> None:
    code, report = await conform(wrong_province, tmp_path, "--skip", "errata", "--skip", "checksum")
    assert code == 1
    results = by_id(report)
    shape = results["P-ANSWER-SHAPE"]
    assert shape["verdict"] == "fail" and "汇总应答 succFlag 1" in shape["observed"]
    assert "应为 -1" in shape["detail"] and "应为 0" in shape["detail"]
    for rid in ("P-HOP2-REQ", "P-HOP2-LEN", "P-HOP2-DICT", "P-HOP2-FORMAT", "P-DUP-BATCH"):
        assert results[rid]["verdict"] == "fail", (rid, results[rid]["observed"])
        assert results[rid]["exchanges"] and results[rid]["exchanges"][0]["response_body"]
    # A per-record order cannot be read from a summary answer: not checked, said so.
    assert results["P-ANSWER-ORDER"]["verdict"] == "skip"
    assert results["P-HOP2-VALID"]["verdict"] == "pass" and results["P-RESEND"]["verdict"] == "pass"


def test_a_sender_code_without_its_key_is_refused_before_anything_is_sent(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conform", "province", "--url", "http://127.0.0.1:9/x", "--as-code", "C51080000009"]) == 2
    assert "--as-key" in capsys.readouterr().err


def test_an_unreachable_province_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}{HOP2.path}"
    assert main(["conform", "province", "--url", url, "--timeout", "5"]) == 2
    err = capsys.readouterr().err
    assert "无法连接被测系统" in err and url in err
