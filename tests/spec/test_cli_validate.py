"""`sandbox validate FILE`: readable output, JSON output, exit codes, and no traceback on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sandbox.cli import main

from .helpers import message, valid_record


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["validate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, content: Any, name: str = "msg.json") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_text(json.dumps(content, ensure_ascii=False), encoding="utf-8")
    return path


def test_valid_message_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(write(tmp_path, message(2, [valid_record(2)]))), "--strict")
    assert code == 0
    assert "第二跳 saveExamRpotImgIndx" in out and "严格模式" in out and "有效" in out


def test_document_example_lists_warnings_in_lenient_and_errors_in_strict(
    capsys: pytest.CaptureFixture[str], doc_example: Any, tmp_path: Path
) -> None:
    path = str(write(tmp_path, doc_example(1)))
    code, out, _ = run(capsys, path)
    assert code == 0 and "26 个警告" in out and "勘误" in out
    code, out, _ = run(capsys, path, "--strict")
    assert code == 1 and "27 个错误" in out and "hiImgIdx" in out


def test_json_output_carries_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = valid_record(1)
    rec["certno"] = "1" * 60
    code, out, _ = run(capsys, str(write(tmp_path, message(1, [rec]))), "--json")
    assert code == 1
    report = json.loads(out)
    assert report["valid"] is False and report["hop"] == 1
    assert report["errors"][0]["text"] == "第1条 certno(证件号码): 长度 60 超过上限 50"
    assert report["errors"][0]["fieldName"] == "证件号码"


def test_hop_flag_overrides_detection(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(write(tmp_path, message(1, [valid_record(1)]))), "--hop", "2", "--json")
    assert code == 1
    assert any(e["code"] == "env_infno" for e in json.loads(out)["errors"])


@pytest.mark.parametrize(("content", "reason"), [
    (b"", "文件为空"),
    (b"   \n", "文件为空"),
    (b"\xff\xfe\x00garbage", "不是 UTF-8"),
    (b"{not json", "不是合法的 JSON"),
    (b"[" * 100000 + b"]" * 100000, "JSON"),
])
def test_unreadable_files_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, reason: str
) -> None:
    code, out, err = run(capsys, str(write(tmp_path, content)))
    assert code == 2 and out == ""
    assert reason in err and err.count("\n") == 1


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, str(tmp_path / "nope.json"))
    assert code == 2 and "文件不存在" in err


@pytest.mark.parametrize(("content", "expected"), [
    ([1, 2, 3], "报文应为 JSON 对象，实际为数组"),
    (message(1, [valid_record(1)], data="plain text"), "data 字符串不是合法的 JSON 数组"),
    (message(1, [valid_record(1)], data=42), "data 应为记录数组，实际为整数"),
    (message(1, ["just a string"]), "记录应为 JSON 对象，实际为字符串"),
])
def test_wrong_shapes_exit_1_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: Any, expected: str
) -> None:
    code, out, _ = run(capsys, str(write(tmp_path, content)))
    assert code == 1 and expected in out


def test_ten_megabyte_message_is_refused_for_its_data_length(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = [valid_record(1, i % 3000) for i in range(5000)]
    path = write(tmp_path, message(1, records))
    assert path.stat().st_size > 10 * 1024 * 1024
    code, out, _ = run(capsys, str(path), "--json")
    assert code == 1
    errors = json.loads(out)["errors"]
    assert errors[0]["code"] == "env_data_too_long" and "超过上限 40000" in errors[0]["message"]


def test_module_entry_point_never_prints_a_traceback(tmp_path: Path) -> None:
    bad = write(tmp_path, b"\x00\x01\x02")
    proc = subprocess.run([sys.executable, "-m", "sandbox", "validate", str(bad)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "sandbox validate:" in proc.stderr


def test_each_record_shows_the_succflag_a_receiver_answers_and_why(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    renamed = valid_record(2, 1)
    renamed["hiImgIdx"] = renamed.pop("hiImgIndx")
    records = [valid_record(2), renamed, {**valid_record(2, 2), "patientColor": "blue"},
               {**valid_record(2, 3), "gend": "7"}]
    path = write(tmp_path, message(2, records))
    code, out, _ = run(capsys, str(path))
    assert code == 1  # one record invalid
    lines = [line for line in out.splitlines() if line.startswith("│ 第")]
    assert "接收方的逐条应答" in out
    assert "按原样保存" in lines[0] and "│ 1 " in lines[0]
    assert "完整保存" in out and "已保存，但发送的 patientColor 未保存" in out and "1 个错误，记录不保存" in out
    code, out, _ = run(capsys, str(path), "--json")
    assert [(a["position"], a["succFlag"]) for a in json.loads(out)["answers"]] == [
        (1, "1"), (2, "1"), (3, "0"), (4, "-1")]
    code, out, _ = run(capsys, str(path), "--json", "--strict")
    assert [a["succFlag"] for a in json.loads(out)["answers"]] == ["1", "-1", "-1", "-1"]
