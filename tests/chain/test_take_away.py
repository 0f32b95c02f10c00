"""Results taken away from a run: `sandbox run --keep`, `journal export --with-files`, and `sandbox replay`
into a fresh sandbox serving the bundled files — every answer equals the recording."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from sandbox.cli import main
from tests.chain.conftest import StartSandbox

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    status = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return status, out, err


async def test_keep_export_with_files_and_replay_into_a_fresh_sandbox(
        start_sandbox: StartSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kept = tmp_path / "kept"
    status, out, _ = await cli(capsys, "run", "happy-path", "--dir", str(SCENARIOS), "--keep", str(kept))
    assert status == 0, out
    folder = kept / "happy-path"
    assert f"数据目录与日志已保留：{folder}" in out
    assert (folder / "journal.db").is_file() and (folder / "hospital" / "hospital.db").is_file()

    export = tmp_path / "out" / "journal.jsonl"
    status, _, err = await cli(capsys, "journal", "export", "--data-dir", str(folder), "--no-mask", "--with-files",
                               "--out", str(export))
    assert status == 0, err
    assert "已打包 20 个检查的" in err
    bundle = export.with_name("journal.jsonl.files")
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["exams"] == 20 and len(manifest["bases"]) == 1
    # the run's own folder is gone: only the bundle can serve the files now
    shutil.rmtree(folder)

    fresh = await start_sandbox(("center", "province"), data_dir=tmp_path / "fresh")
    status, out, err = await cli(capsys, "replay", str(export), "--to", fresh.url("center"), "--hop", "1")
    assert status == 0, out + err
    assert "由本次重放在本机临时端口提供" in out
    assert "重放 3 次交互：3 次一致，0 次不一致" in out  # 20 exams in three batches
    center = fresh.state("center")
    assert (await center.summary())["stored"] == 20  # every PDF and study fetched from the replay's server

    # a second run of --keep into the same folder replaces what the first one left
    status, out, _ = await cli(capsys, "run", "happy-path", "--dir", str(SCENARIOS), "--keep", str(kept))
    assert status == 0, out


async def test_replaying_a_masked_export_says_why_it_cannot_authenticate(
        start_sandbox: StartSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kept = tmp_path / "kept"
    assert (await cli(capsys, "run", "wrong-key", "--dir", str(SCENARIOS), "--keep", str(kept)))[0] == 0
    masked = tmp_path / "masked.jsonl"
    assert (await cli(capsys, "journal", "export", "--data-dir", str(kept / "wrong-key"), "--hop", "1",
                      "--out", str(masked)))[0] == 0
    fresh = await start_sandbox(("center", "province"), data_dir=tmp_path / "fresh")
    status, out, _ = await cli(capsys, "replay", str(masked), "--to", fresh.url("center"))
    hints = [line for line in out.splitlines() if "--no-mask" in line]
    assert len(hints) == 1 and "key 被遮盖" in hints[0] and "1021" in hints[0]
    assert "未随导出打包" in out  # and its files were not bundled either
    assert status == 1


def test_keep_refuses_a_folder_it_did_not_make(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "happy-path").mkdir()
    (tmp_path / "happy-path" / "notes.txt").write_text("mine", encoding="utf-8")
    assert main(["run", "happy-path", "--dir", str(SCENARIOS), "--keep", str(tmp_path)]) == 2
    assert "未覆盖" in capsys.readouterr().err
    assert (tmp_path / "happy-path" / "notes.txt").read_text(encoding="utf-8") == "mine"
