"""A scenario whose expectation is wrong fails: exit 1, ✗ with the observed value; JUnit XML says the same."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sandbox.cli import main

WRONG = """
name: wrong-expectation
title: {zh: 预期写错的场景, en: A scenario with a wrong expectation}
description: {zh: 发送 4 条检查，却预期省级有 999 条索引。, en: Sends 4 exams but expects 999 indexes at the province.}
seed: 42
steps:
  - send: {count: 4}
  - wait: {check: center.idle, timeout: 20}
expect:
  - check: center.stored
    equals: 4
  - check: province.indexes
    equals: 999
"""


def test_a_wrong_expectation_exits_1_and_prints_the_observed_value(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "wrong.yaml"
    path.write_text(WRONG, encoding="utf-8")
    junit = tmp_path / "out" / "junit.xml"
    status = main(["run", str(path), "--junit", str(junit)])
    out = capsys.readouterr().out
    assert status == 1
    assert "✓ 共享中心保存的检查数（center.stored） = 4 — 实际 4" in out
    assert "✗ 省级模块保存的索引数（province.indexes） = 999 — 实际 4" in out
    assert "1 个场景：0 通过，1 未通过" in out

    root = ET.parse(junit).getroot()
    assert root.get("tests") == "3" and root.get("failures") == "1"
    failures = root.findall(".//failure")
    assert [f.get("message") for f in failures] == ["实际 4"]


def test_a_failed_wait_step_stops_the_scenario_and_names_the_observed_value(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "wait.yaml"
    path.write_text(WRONG.replace("check: center.idle, timeout: 20",
                                  "check: province.indexes, at_least: 50, timeout: 0.3"), encoding="utf-8")
    assert main(["run", str(path)]) == 1
    out = capsys.readouterr().out
    assert "步骤失败：0.3 秒内未满足：省级模块保存的索引数（province.indexes） ≥ 50；实际 4" in out


def test_an_unknown_scenario_name_exits_2_listing_the_library(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "no-such-scenario"]) == 2
    err = capsys.readouterr().err
    assert "找不到场景「no-such-scenario」" in err
    assert "happy-path" in err
