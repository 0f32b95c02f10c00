from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pydicom
import pytest

from sandbox.cli import main
from sandbox.validate import validate_message

ARGS = ["--count", "9", "--slices", "3", "--matrix", "32"]


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_writes_identical_bytes_and_another_seed_differs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", "--seed", "4", "--out", str(tmp_path / "a"), *ARGS]) == 0
    assert main(["generate", "--seed", "4", "--out", str(tmp_path / "b"), *ARGS]) == 0
    assert main(["generate", "--seed", "5", "--out", str(tmp_path / "c"), *ARGS]) == 0
    a, b, c = _tree(tmp_path / "a"), _tree(tmp_path / "b"), _tree(tmp_path / "c")
    assert a == b
    assert any(k.endswith(".dcm") for k in a) and any(k.endswith(".pdf") for k in a)
    assert set(a.values()).isdisjoint(c.values())
    out = capsys.readouterr().out
    assert "第一跳报文" in out and "DICOM 文件" in out


def test_generated_messages_are_valid_and_name_the_files_written(tmp_path: Path) -> None:
    out = tmp_path / "set"
    assert main(["generate", "--seed", "7", "--out", str(out), "--base-url", "http://192.0.2.10:8700", *ARGS]) == 0
    manifest = {e["hiImgIndx"]: e for e in json.loads((out / "manifest.json").read_text("utf-8"))["exams"]}
    records = 0
    for path in sorted((out / "messages").glob("hop1-*.json")):
        msg = json.loads(path.read_text("utf-8"))
        assert validate_message(msg, 1, "strict").valid
        for rec in msg["data"]:
            records += 1
            entry = manifest[rec["hiImgIndx"]]
            assert entry["message"] == path.name
            assert rec["examRpotPdfI"].startswith("http://192.0.2.10:8700/files/")
            assert (out / entry["report"]["path"]).is_file()
            first = pydicom.dcmread(out / entry["dicom"][0]["path"])
            assert first.StudyInstanceUID == entry["studyInstanceUID"] and rec["imgInfoDcm"].endswith(
                entry["studyInstanceUID"])
    assert records == 9


def test_other_regions_and_metadata_only_runs(tmp_path: Path) -> None:
    out = tmp_path / "cd"
    assert main(["generate", "--seed", "1", "--out", str(out), "--region", "510100", "--hospitals", "2",
                 "--no-dicom", "--no-pdf", "--count", "6"]) == 0
    msgs = [json.loads(p.read_text("utf-8")) for p in sorted((out / "messages").glob("*.json"))]
    assert {m["infCode"][1:5] for m in msgs} == {"5101"}
    assert all(r["examAdmdvs"].startswith("5101") for m in msgs for r in m["data"])
    assert not list(out.rglob("*.dcm")) and not list(out.rglob("*.pdf"))


def test_unusable_arguments_exit_2_with_a_chinese_reason(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--out", str(tmp_path), "--institution", "H00000000000"]) == 2
    assert "没有编号为 H00000000000 的医疗机构" in capsys.readouterr().err
    assert main(["generate", "--out", str(tmp_path), "--count", "0"]) == 2


def test_file_url_sets_where_the_records_links_point(tmp_path: Path) -> None:
    out = tmp_path / "links"
    assert main(["generate", "--count", "2", "--seed", "3", "--no-dicom", "--no-pdf", "--out", str(out),
                 "--file-url", "https://files.hosp.example:9443/pacs"]) == 0
    for path in (out / "messages").glob("hop1-*.json"):
        for rec in json.loads(path.read_text("utf-8"))["data"]:
            assert rec["examRpotPdfI"].startswith("https://files.hosp.example:9443/pacs/files/")
            assert rec["imgInfoDcm"].startswith("https://files.hosp.example:9443/pacs/dicomweb/studies/")
