"""A QA engineer's mistakes in a scenario file are reported in Chinese, naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.cli import main
from sandbox.scenario.model import ScenarioError, parse

HEAD = """
name: broken
title: {zh: 坏场景, en: Broken}
description: {zh: 用来测试错误信息。, en: Tests the error messages.}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        parse(HEAD + text, "broken.yaml")
    return info.value.problems


def test_a_misspelt_key_is_named_with_the_keys_allowed_there() -> None:
    got = problems("steps:\n  - send: {cout: 3}\nexpect:\n  - check: nothing_lost\n")
    assert len(got) == 1
    assert got[0].startswith("steps[1].send.cout：未知的键「cout」（可用的键：count、hospital、start")


def test_an_unknown_check_lists_the_checks() -> None:
    got = problems("steps:\n  - sleep: 0\nexpect:\n  - check: province.indexs\n    equals: 1\n")
    assert got[0].startswith("expect[1]：未知的检查项「province.indexs」，可选：hospital.messages")


def test_a_check_parameter_it_does_not_take_is_named() -> None:
    got = problems("steps:\n  - sleep: 0\nexpect:\n  - check: province.indexes\n    hop: 2\n    equals: 1\n")
    assert "检查项「province.indexes」不接受参数 hop" in got[0]


def test_a_count_check_without_a_comparison_is_refused() -> None:
    got = problems("steps:\n  - sleep: 0\nexpect:\n  - check: province.indexes\n")
    assert "需要一个比较" in got[0]


def test_a_step_with_two_actions_and_a_bad_value_both_reported() -> None:
    got = problems("steps:\n  - sleep: 1\n    restart: center\n  - send: {count: many}\n"
                   "expect:\n  - check: nothing_lost\n")
    assert any(p.startswith("steps[1]：每一步必须恰好有一个动作") for p in got)
    assert any(p == "steps[2].send.count：应为整数，实际为「many」" for p in got)


def test_faults_are_checked_for_kind_role_and_parameters() -> None:
    got = problems("faults:\n  - {at: province, kind: explode}\n  - {at: hospital, kind: reject_batch}\n"
                   "  - {at: province, kind: reject_records}\n"
                   "steps:\n  - sleep: 0\nexpect:\n  - check: nothing_lost\n")
    assert any("faults[1].kind：取值「explode」无效，可选：'reject_records'" in p for p in got)
    assert any("医疗机构只提供文件下载，不能设置「reject_batch」故障" in p for p in got)
    assert any("reject_records 故障需要 select" in p for p in got)


def test_unknown_malformation_and_setting_are_named() -> None:
    got = problems("settings: {colour: red}\nsteps:\n  - send: {malform: [{kind: broken_hearts}]}\n"
                   "expect:\n  - check: nothing_lost\n")
    text = "\n".join(got)
    assert "settings 中的「colour」不能由场景设置" in text
    assert "未知的数据错误类型「broken_hearts」" in text


def test_healing_a_fault_never_defined_is_named() -> None:
    got = problems("faults:\n  - {name: 慢, at: province, kind: delay, seconds: 1}\n"
                   "steps:\n  - heal: 不存在的故障\nexpect:\n  - check: nothing_lost\n")
    assert got == ["（顶层）：heal 指定的故障「不存在的故障」未在 faults 或步骤中定义（已定义：慢）"]


def test_bad_yaml_names_the_line() -> None:
    with pytest.raises(ScenarioError) as info:
        parse("name: x\n  title: [", "x.yaml")
    assert "不是合法的 YAML 第 2 行" in str(info.value)


def test_toml_scenarios_are_read_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text("""
name = "tiny-toml"
seed = 5
[title]
zh = "TOML 场景"
en = "A TOML scenario"
[description]
zh = "发送 2 条检查。"
en = "Sends 2 exams."
[[steps]]
send = { count = 2 }
[[steps]]
wait = { check = "center.idle", timeout = 20 }
[[expect]]
check = "province.indexes"
equals = 2
""", encoding="utf-8")
    assert main(["run", str(path)]) == 0
    assert "✓ 省级模块保存的索引数（province.indexes） = 2 — 实际 2" in capsys.readouterr().out


def test_run_refuses_a_broken_file_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(HEAD + "steps: []\nexpect: []\n", encoding="utf-8")
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "场景文件" in err and "steps：至少需要 1 项" in err
