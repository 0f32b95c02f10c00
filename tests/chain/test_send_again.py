"""`sandbox send` a second time against the real center: the same exams again keep their links (the file
port of the data folder's last send is reused), `--resend` repeats the same msgids and bodies
(idempotent), `--offset` sends new exams."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from sandbox.cli import main
from tests.chain.conftest import StartSandbox

ARGS = ["--count", "4", "--seed", "7", "--file-port", "0", "--slices", "2", "--matrix", "32", "--json"]


async def send(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    capsys.readouterr()
    status = await asyncio.to_thread(main, ["send", *argv])
    out, err = capsys.readouterr()
    return status, (json.loads(out) if out.strip().startswith("{") else {}), err


async def test_a_second_send_resend_and_offset(start_sandbox: StartSandbox, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    sb = await start_sandbox(("center", "province"), data_dir=tmp_path / "chain")
    to = ["--to", sb.url("center"), "--data-dir", str(tmp_path / "hosp")]
    status, first, err = await send(capsys, *to, *ARGS)
    assert status == 0 and first["succFlag"] == {"1": 4}, err
    assert "上次已发送" not in err

    # the same exams again: the hint names both ways, and the links are the same, so nothing is a duplicate
    status, again, err = await send(capsys, *to, *ARGS)
    assert "上次已发送" in err and "--resend" in err and "--offset 4" in err
    assert status == 0 and again["succFlag"] == {"1": 4}, again["answers"]
    assert {a["message"] for a in again["answers"]} == {"保存数据成功（相同记录已存在，未重复保存）"}
    assert again["msgids"] != first["msgids"]

    # --resend: the last send's msgids and bodies, answered with the first answers
    status, resent, err = await send(capsys, *to, *ARGS, "--resend")
    assert status == 0, err
    assert resent["msgids"] == again["msgids"] and resent["answers"] == again["answers"]

    # --offset: new exams
    status, new, err = await send(capsys, *to, *ARGS[:-1], "--offset", "4", "--json")
    assert status == 0 and new["succFlag"] == {"1": 4} and "上次已发送" not in err
    assert {a["message"] for a in new["answers"]} == {"保存数据成功"}
    assert (await sb.state("center").summary())["stored"] == 8


def test_resend_without_an_earlier_send_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["send", "--to", "http://127.0.0.1:9", "--data-dir", str(tmp_path), "--resend"]) == 2
    assert "没有上一次发送的记录" in capsys.readouterr().err
