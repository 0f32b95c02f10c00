"""The catalogue is data: every entry valid, every entry checked by its kit, every check in the catalogue."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sandbox.cli import main
from sandbox.conform.kit import Kit
from sandbox.conform.model import (
    ROLES,
    Exchange,
    Outcome,
    Report,
    Requirement,
    Result,
    Text,
    load_catalogue,
    select,
)
from sandbox.conform.report import write_json, write_junit
from sandbox.conform.runner import kit_class


@pytest.mark.parametrize("role", ROLES)
def test_every_requirement_has_its_check_and_every_check_its_requirement(role: str) -> None:
    ids = [r.id for r in load_catalogue(role)]  # type: ignore[arg-type]
    methods = kit_class(role).checks()  # type: ignore[arg-type]
    assert sorted(ids) == sorted(methods), (set(ids) ^ set(methods))


def _req(rid: str, tags: tuple[str, ...] = (), severity: str = "required") -> Requirement:
    return Requirement(id=rid, role="province", source="§3 表2", severity=severity, tags=tags,  # type: ignore[arg-type]
                       title=Text(zh="标题", en="title"), expected=Text(zh="预期", en="expected"))


def test_selection_by_id_prefix_glob_and_tag() -> None:
    reqs = (_req("P-ENV-CODE", ("envelope",)), _req("P-HOP2-REQ", ("hop2",)), _req("P-HOP2-LEN", ("hop2",)))
    assert [r.id for r in select(reqs, ["hop2"], None)] == ["P-HOP2-REQ", "P-HOP2-LEN"]
    assert [r.id for r in select(reqs, ["P-HOP2-"], ["P-HOP2-LEN"])] == ["P-HOP2-REQ"]
    assert [r.id for r in select(reqs, ["P-*-CODE"], None)] == ["P-ENV-CODE"]
    assert [r.id for r in select(reqs, None, ["envelope"])] == ["P-HOP2-REQ", "P-HOP2-LEN"]


def test_bad_requirement_is_refused_in_chinese() -> None:
    with pytest.raises(ValueError, match="编号"):
        _req("lower-case")


class _Sample(Kit):
    role = "province"

    async def _ok(self) -> Outcome:
        return Outcome.passed("应答 code=0")

    async def _broken(self) -> Outcome:
        raise KeyError("data")


async def test_a_broken_check_is_an_error_result_not_a_crash() -> None:
    from sandbox.conform.kit import Options

    kit = _Sample(Options(url="http://127.0.0.1:9"), say=lambda s: None)
    _Sample._broken.__conform_id__ = "P-X-BROKEN"  # type: ignore[attr-defined]
    try:
        result = await kit.run_check(_req("P-X-BROKEN"))
    finally:
        del _Sample._broken.__conform_id__  # type: ignore[attr-defined]
    assert result.verdict == "error" and "KeyError" in result.observed and "Traceback" in result.detail
    assert result.blocking


def test_recommended_failure_warns_and_does_not_fail_the_run(tmp_path: Path) -> None:
    ex = Exchange("sent", "POST", "http://127.0.0.1:1/x", "2025-10-08T08:00:00+08:00", "{}", 200, '{"code":0}')
    results = [Result.of(_req("P-A-ONE"), Outcome.passed("ok", [ex]), 0.1),
               Result.of(_req("P-A-TWO", severity="recommended"), Outcome.failed("没有 message"), 0.1),
               Result.of(_req("P-A-SKIP"), Outcome.skip("没有前提"), 0.0)]
    report = Report("province", "http://x", "2025-10-08T08:00:00+08:00", 0.2, {"mode": "strict"}, results)
    assert [r.verdict for r in results] == ["pass", "warn", "skip"] and report.passed
    write_json(report, tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert data["passed"] is True and data["results"][0]["exchanges"][0]["status"] == 200
    failing = Report("province", "http://x", "t", 0.1, {}, [Result.of(_req("P-A-ONE"), Outcome.failed("code=1"), 0)])
    write_junit(failing, tmp_path / "r.xml")
    suite = ET.parse(tmp_path / "r.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "1"
    assert not failing.passed


def test_list_prints_every_role(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conform", "--list"]) == 0
    out = capsys.readouterr().out
    for role in ROLES:
        n = len(load_catalogue(role))  # type: ignore[arg-type]
        assert f"■ {role}（{n} 项）" in out


def test_unreachable_system_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conform", "province"]) == 2
    assert "--url" in capsys.readouterr().err


def test_an_unusable_option_is_not_called_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conform", "hospital", "--messages", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("无法开始测试：") and "--messages" in err and "无法连接" not in err


def test_only_and_skip_take_several_values_after_one_flag_and_profile_is_an_alias() -> None:
    from sandbox.cli import build_parser

    args = build_parser(["conform"]).parse_args(
        ["conform", "province", "--url", "http://x", "--only", "hop2", "envelope", "--only", "P-URL",
         "--skip", "errata", "checksum", "--profile", "nhsa-2025-draft"])
    assert args.only == ["hop2", "envelope", "P-URL"] and args.skip == ["errata", "checksum"]
    assert args.profile == "nhsa-2025-draft"
