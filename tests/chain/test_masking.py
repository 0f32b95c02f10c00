"""Masked exports and the dashboard's masked view carry no personal value, wherever it travelled: in the
record, in the index, in the center's messages that quote the DICOM images, in the province's answers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from sandbox.cli import main
from sandbox.dashboard.app import create_app as dashboard_app
from sandbox.journal.mask import mask_entry
from sandbox.scenario.driver import Driver
from sandbox.scenario.model import SendStep
from sandbox.spec.checksums import id_check_char
from tests.chain.conftest import StartSandbox

OTHER_ID = "11010119900307451" + id_check_char("11010119900307451")
PLANTED = {"psnName": "冒名顶替", "certno": OTHER_ID, "patnId": "PIDPLANTED0042", "tel": "13912345678"}


def personal_values(record: dict[str, Any], images: list[tuple[str, str]]) -> set[str]:
    """Every personal value of the exchange, as sent and as the DICOM images carry them."""
    values = {str(record[k]) for k in ("psnName", "certno", "patnId", "tel", "fmAddr") if record.get(k)}
    values.add(record["hiImgIndx"].split("-")[1].lstrip("0"))  # the identity number inside the index
    for name, pid in images:
        values |= {name, name.replace("^", ""), pid}
    return {v for v in values if len(v) >= 2}


async def test_planted_personal_values_appear_in_no_masked_export(start_sandbox: StartSandbox, tmp_path: Path,
                                                                  aiohttp_client: Any,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    sb = await start_sandbox(data_dir=data)
    await Driver(sb).send(SendStep(count=2, overrides=PLANTED))
    journal = sb.journal
    assert journal is not None
    while await journal.count(hop=2) < 1:
        await asyncio.sleep(0.02)
    await journal.flush()
    entries = await journal.page(bodies=True)
    hop1 = next(e for e in entries if e["hop"] == 1)
    records = json.loads(hop1["request"])["data"]
    rows = await sb.state("center").store.reader.fetchall("SELECT patient_name, patient_id FROM instances")
    images = [(str(r[0]), str(r[1])) for r in rows]
    unmasked = json.dumps(entries, ensure_ascii=False)
    # the forms that travelled (a DICOM name is quoted as the image spells it, e.g. with ^)
    secrets = {v for v in set().union(*(personal_values(r, images) for r in records)) if v in unmasked}
    assert {PLANTED["psnName"], OTHER_ID, PLANTED["patnId"]} <= secrets
    assert any(name in secrets for name, _ in images)
    # the center's answer quotes the images' name and ID (they disagree with the planted ones)
    assert any(name in hop1["response"] for name, _ in images) and "PatientName" in hop1["response"]
    assert records[0]["certno"] not in records[0]["hiImgIndx"]  # the index carries another identity number
    assert records[0]["hiImgIndx"].split("-")[1].lstrip("0") in secrets

    out = tmp_path / "out"
    for fmt in ("jsonl", "har"):
        target = out / f"journal.{fmt}"
        assert await asyncio.to_thread(main, ["journal", "export", "--data-dir", str(data), "--format", fmt,
                                              "--out", str(target)]) == 0
        text = target.read_text(encoding="utf-8")
        leaked = [v for v in secrets if v in text or json.dumps(v)[1:-1] in text]
        assert not leaked, (fmt, leaked)
        assert "冒***" in text and "PatientName" in text  # masked, not dropped
    capsys.readouterr()

    dash = await aiohttp_client(dashboard_app(sb))
    for e in entries:
        view = await (await dash.get(f"/api/exchanges/{e['seq']}")).json()
        text = json.dumps(view, ensure_ascii=False)
        assert not [v for v in secrets if v in text], e["seq"]
    # with \\u escapes in what was sent, too
    escaped = dict(hop1, request=json.dumps(json.loads(hop1["request"]), ensure_ascii=True))
    text = json.dumps(mask_entry(escaped), ensure_ascii=True)
    assert not [v for v in secrets if json.dumps(v)[1:-1] in text]
