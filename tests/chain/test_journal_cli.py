"""`sandbox journal export|summary` read the journal file of a data folder."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from sandbox.cli import main
from sandbox.scenario.driver import Driver
from sandbox.scenario.model import SendStep
from tests.chain.conftest import StartSandbox


async def test_export_as_jsonl_and_har_and_summarise(start_sandbox: StartSandbox, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    sb = await start_sandbox(data_dir=data)
    driver = Driver(sb)
    await driver.send(SendStep(count=2))
    journal = sb.journal
    assert journal is not None
    while await journal.count(hop=2) < 1:
        await asyncio.sleep(0.02)
    await journal.flush()
    certno = json.loads((await journal.page(bodies=True))[0]["request"])["data"][0]["certno"]

    har = tmp_path / "out" / "j.har"
    assert await asyncio.to_thread(main, ["journal", "export", "--data-dir", str(data), "--format", "har",
                                          "--out", str(har)]) == 0
    assert "已导出 2 条交互" in capsys.readouterr().err
    doc = json.loads(har.read_text(encoding="utf-8"))
    assert len(doc["log"]["entries"]) == 2 and certno not in har.read_text(encoding="utf-8")

    assert await asyncio.to_thread(main, ["journal", "export", "--db", str(data / "journal.db"), "--hop", "1",
                                          "--no-mask"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["hop"] == 1 and certno in lines[0]

    assert await asyncio.to_thread(main, ["journal", "summary", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert "第一跳：1 次交互（成功 1）；记录 succFlag 1: 2" in out
    assert "第二跳：1 次交互（成功 1）；记录 succFlag 1: 2" in out


def test_export_without_a_journal_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["journal", "export", "--data-dir", str(tmp_path)]) == 2
    assert "找不到日志文件" in capsys.readouterr().err
