"""`sandbox replay`: recorded hop-1 and hop-2 traffic sent again; where the answers differ is reported."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from sandbox.cli import main
from sandbox.faults.model import Fault
from sandbox.journal.export import write_har, write_jsonl
from sandbox.scenario.driver import Driver
from sandbox.scenario.model import SendStep
from tests.chain.conftest import StartSandbox


async def recorded(start_sandbox: StartSandbox, tmp_path: Path) -> tuple[Path, Path]:
    """A journal of 2 hop-1 and 2 hop-2 exchanges, exported unmasked as JSON Lines and HAR."""
    sb = await start_sandbox(data_dir=tmp_path / "recorded")
    driver = Driver(sb)
    await driver.send(SendStep(count=4, batch=2))
    journal = sb.journal
    assert journal is not None
    while await journal.count(hop=2) < 2:
        await asyncio.sleep(0.02)
    jsonl, har = tmp_path / "j.jsonl", tmp_path / "j.har"
    out = io.StringIO()
    await write_jsonl(journal.entries(), out, mask=False)
    jsonl.write_text(out.getvalue(), encoding="utf-8")
    out = io.StringIO()
    await write_har(journal.entries(), out, mask=False)
    har.write_text(out.getvalue(), encoding="utf-8")
    return jsonl, har


async def test_replaying_hop2_to_a_fresh_province_matches_and_a_faulty_one_differs(
        start_sandbox: StartSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    jsonl, har = await recorded(start_sandbox, tmp_path)
    fresh = await start_sandbox(("province",), data_dir=tmp_path / "fresh")
    status = await asyncio.to_thread(main, ["replay", str(jsonl), "--to", fresh.url("province"), "--hop", "2"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "重放 2 次交互：2 次一致，0 次不一致" in out

    faulty = await start_sandbox(("province",), data_dir=tmp_path / "faulty")
    faulty.faults.load([Fault(name="拒收", at="province", kind="reject_records", message="不收",
                              select={"positions": [1]})])
    status = await asyncio.to_thread(main, ["replay", str(har), "--to", faulty.url("province"), "--hop", "2"])
    out = capsys.readouterr().out
    assert status == 1
    assert "✗ #" in out and "第1条 succFlag 记录 1 → 实际 -1" in out
    assert "重放 2 次交互：0 次一致，2 次不一致" in out


async def test_replaying_hop1_to_the_center_that_answered_gives_the_recorded_answers(
        start_sandbox: StartSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sb = await start_sandbox(data_dir=tmp_path / "live")
    await Driver(sb).send(SendStep(count=3, malform=({"kind": "bad_date", "positions": (2,)},)))
    db = tmp_path / "live" / "journal.db"
    status = await asyncio.to_thread(main, ["replay", str(db), "--to", sb.url("center"), "--hop", "1"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "✓ #1 第一跳 H51080200001" in out and "与记录一致" in out


def test_replay_of_a_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(tmp_path / "none.jsonl"), "--to", "http://127.0.0.1:9"]) == 2
    assert "文件不存在" in capsys.readouterr().err
