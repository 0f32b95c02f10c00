"""The center kit against the sandbox's own center (every required check passes) and against deliberately wrong
centers (the right checks fail with evidence, exit status 1)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from dicomweb_client.api import DICOMwebClient

from sandbox.api import Sandbox, SyncSandbox
from sandbox.cli import main
from sandbox.common.ports import free_port
from sandbox.config import Settings
from sandbox.conform.kit import Options
from sandbox.conform.kits.center import CenterKit
from sandbox.conform.kits.center_cases import cases
from sandbox.conform.kits.center_media import sop_uids
from sandbox.conform.kits.center_peer import Peer
from sandbox.conform.model import load_catalogue
from sandbox.conform.runner import run_kit
from sandbox.spec.fields import HOP1
from sandbox.synth.exams import ExamFactory
from tests.conform.wrong_center import renaming_proxy, serve

ROOT = Path(__file__).resolve().parents[2]


def center_settings(province_port: int, mode: str = "strict", kit_port: int | None = None) -> dict[str, Any]:
    """The sandbox's center forwarding to `province_port`, fetching from the kit, retrying quickly."""
    return {"mode": mode, "province_url": f"http://127.0.0.1:{province_port}",
            "allowed_fetch_hosts": (f"127.0.0.1:{kit_port or province_port}",),
            "retry_base_s": 0.05, "retry_cap_s": 0.5, "send_timeout_s": 2.0, "fetch_timeout_s": 2.0}


def conform(url: str, kit_port: int, out: Path, *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["conform", "center", "--url", url, "--listen", f"127.0.0.1:{kit_port}", "--timeout", "10",
                 "--json", str(out), *args])
    return code, json.loads(out.read_text(encoding="utf-8"))


def by_id(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in report["results"]}


def test_the_sandbox_center_passes_every_required_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kit_port = free_port()
    with SyncSandbox(["center"], center_settings(kit_port)) as sb:
        code, report = conform(sb.urls.hop1 or "", kit_port, tmp_path / "r.json", "--wait", "30",
                               "--institution", sb.settings.center.uscc)
    out = capsys.readouterr().out
    assert f"127.0.0.1:{kit_port}/mie/api/mie/saveExamRpotImgIndx" in out  # the URL the operator configures
    results = by_id(report)
    assert sorted(results) == sorted(r.id for r in load_catalogue("center"))
    assert {r["id"]: r["observed"] for r in report["results"] if r["verdict"] != "pass"} == {}
    assert code == 0 and report["passed"]
    # evidence a vendor can read: the download check names the instances, the retry check the msgid resent
    assert "SOP 实例" in results["C-LINK-DLD"]["observed"]
    assert "同一 msgid" in results["C-RETRY-5XX"]["observed"]
    assert any(e["direction"] == "received" for e in results["C-RETRY-5XX"]["exchanges"])


async def test_a_lenient_center_passes_the_lenient_kit_with_the_errata_rows_named() -> None:
    kit_port = free_port()
    async with Sandbox(["center"], center_settings(kit_port, "lenient")) as sb:
        options = Options(url=sb.urls.hop1, mode="lenient", listen_port=kit_port, wait=30)
        report = await run_kit("center", options, only=["fields", "envelope", "C-FILE-MISMATCH"], say=lambda s: None)
    results = {r.requirement.id: r for r in report.results}
    assert report.passed, {k: r.observed for k, r in results.items() if r.verdict != "pass"}
    # a lenient center saves examWay "ZZ" with a warning: accepted, and the ERRATA row is named
    assert "勘误 E9" in results["C-HOP1-DICT"].detail
    assert "勘误 E11" in results["C-ENV-HEAD"].detail
    # images of another patient saved with the disagreement in the record's message
    assert "succFlag 1" in results["C-FILE-MISMATCH"].detail and "不一致" in results["C-FILE-MISMATCH"].detail


def test_a_center_that_says_yes_to_everything_fails_with_evidence(tmp_path: Path) -> None:
    port, kit_port = free_port(), free_port()
    with subprocess.Popen([sys.executable, "-m", "tests.conform.wrong_center", "yes", str(port)], cwd=ROOT,
                          stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            code, report = conform(f"http://127.0.0.1:{port}/mie/api/mie/saveExamRpotImgInfo", kit_port,
                                   tmp_path / "r.json", "--wait", "3")
        finally:
            proc.terminate()
            proc.wait(30)
    assert code == 1 and not report["passed"]
    results = by_id(report)
    for rid in ("C-ENV-KEY", "C-HOP1-REQ", "C-HOP1-LEN", "C-HOP1-DICT", "C-HOP2-FWD", "C-FILE-404",
                "C-FILE-CORRUPT", "C-HOP1-DUP"):
        assert results[rid]["verdict"] == "fail", (rid, results[rid]["observed"])
        assert results[rid]["exchanges"], rid  # the request and the answer that show it
    required = [f.code for f in HOP1.fields if f.required]
    assert all(code in results["C-HOP1-REQ"]["observed"] for code in required)
    assert "succFlag 1（期望 -1）" in results["C-HOP1-REQ"]["detail"]
    assert "未转发到省级模块" in results["C-HOP2-FWD"]["observed"]
    # what needs a forward cannot be graded, and says so rather than passing
    assert results["C-LINK-DLD"]["verdict"] == "skip" and results["C-RETRY-5XX"]["verdict"] == "skip"


def test_a_center_that_resends_with_a_new_msgid_fails_the_retry_checks(tmp_path: Path) -> None:
    kit_port, proxy_port = free_port(), free_port()
    with SyncSandbox(["center"], center_settings(proxy_port, kit_port=kit_port)) as sb:
        runner = sb.call(serve(renaming_proxy(f"http://127.0.0.1:{kit_port}/mie/api/mie/saveExamRpotImgIndx"),
                               proxy_port))
        try:
            code, report = conform(sb.urls.hop1 or "", kit_port, tmp_path / "r.json", "--wait", "30",
                                   "--only", "retry")
        finally:
            sb.call(runner.cleanup())
    results = by_id(report)
    assert code == 1
    for rid in ("C-RETRY-5XX", "C-RETRY-TIMEOUT"):
        assert results[rid]["verdict"] == "fail" and "换了 msgid" in results[rid]["observed"], results[rid]
        received = [e for e in results[rid]["exchanges"] if e["direction"] == "received"]
        assert len({json.loads(e["request_body"])["msgid"] for e in received}) == 2
    assert results["C-RETRY-REJECT"]["verdict"] == "pass"


def test_an_unreachable_center_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}/mie/api/mie/saveExamRpotImgInfo"
    assert main(["conform", "center", "--url", url, "--timeout", "3"]) == 2
    assert url in capsys.readouterr().err


def test_per_field_cases_cover_every_field_of_each_rule_class() -> None:
    s = Settings()
    record = ExamFactory(s.hospitals[0], s.center.uscc, 1, index_profile=s.index_profile).exam(0).record(
        "http://127.0.0.1:9/")
    required, notes = cases("required", record, s.index_profile)
    assert [c.field for c in required] == [f.code for f in HOP1.fields if f.required] and not notes
    lengths, notes = cases("length", record, s.index_profile)
    assert {c.field for c in lengths} == {f.code for f in HOP1.fields if f.length or f.precision} and not notes
    dictionary, _ = cases("dictionary", record, s.index_profile)
    assert {c.field for c in dictionary} == {f.code for f in HOP1.fields if f.dictionary}
    # the document states gend's dictionary itself; examWay's example reads otherwise (ERRATA 9)
    soft = {c.field: (c.document_rule, c.erratum) for c in dictionary}
    assert soft["gend"] == (True, None) and soft["examWay"] == (False, 9)


async def test_the_kit_serves_each_study_as_dicomweb_wado_rs(tmp_path: Path) -> None:
    """What the kit names in imgInfoDcm is a WADO-RS study a DICOMweb client retrieves, and the kit's own reading
    of a download (sop_uids) agrees with that client."""
    kit = CenterKit(Options(url="http://127.0.0.1:9/x"), say=lambda s: None)
    kit.root = tmp_path
    kit.peer = Peer("127.0.0.1", 0, "127.0.0.1")
    await kit.peer.start()
    try:
        exam, record = await kit.exam()
        served = set(kit.peer.studies[exam.study_uid].instances)
        client = DICOMwebClient(url=kit.peer.base + "/dicomweb")
        datasets = await asyncio.to_thread(client.retrieve_study, exam.study_uid)
        assert {str(ds.SOPInstanceUID) for ds in datasets} == served
        async with aiohttp.ClientSession() as session, session.get(record["imgInfoDcm"]) as resp:
            assert sop_uids(resp.headers["Content-Type"], await resp.read()) == (served, [])
    finally:
        await kit.peer.stop()
