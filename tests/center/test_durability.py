"""The center keeps "acknowledged means stored" with a real process (`sandbox serve --roles center`): killed
with SIGKILL while 12 concurrent hospitals keep it busy, then started again on the same data folder (which
removes the files no row refers to), it holds every record it had answered `1` with the very report and
instance bytes that were sent, and every message is stored whole or not at all.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sandbox.center.domain import DB_FILE
from sandbox.config import Settings
from tests.center.helpers import HOP1_PATH, b64, instance, message, pdf, record, uid
from tests.chain.killed import assert_nothing_acknowledged_lost, send_until_killed
from tests.chain.test_serve import kill, start_serve, stop_serve
from tests.conftest import free_port

SENDERS = 12
RECORDS = 2
KILL_AFTER = 40  # acknowledged messages


async def test_center_killed_mid_load_keeps_every_acknowledged_record_and_its_files(tmp_path: Path) -> None:
    ports = {"center": free_port(), "dicom": free_port()}
    data = tmp_path / "data"
    # hop 2 goes to a loopback port nobody listens on: the outbox keeps retrying, which is not under test
    args = ("--roles", "center", "--no-dashboard", "--province-url", f"http://127.0.0.1:{free_port()}")
    settings = Settings(data_dir=data)  # the default institutions, as the served center has them
    report = pdf("检查报告")
    inline_report = b64(report, "application/pdf")
    images: dict[str, bytes] = {}  # hiImgIndx → the instance sent with it

    def make(seq: int) -> tuple[dict[str, Any], list[str]]:
        records = []
        for exam in range(seq * RECORDS, (seq + 1) * RECORDS):
            dcm = instance(n=exam, sop_uid=uid(9, exam), size=8)
            rec = record(settings, exam, inline_report, b64(dcm, "application/dicom"), psnName="李丽",
                         patnId=f"P{exam:010d}")
            images[rec["hiImgIndx"]] = dcm
            records.append(rec)
        return message(settings, records, seq=seq), [r["hiImgIndx"] for r in records]

    center = start_serve(data, ports, *args)
    try:
        acked, sent = await send_until_killed(center, f"http://127.0.0.1:{ports['center']}{HOP1_PATH}", make,
                                              senders=SENDERS, kill_after=KILL_AFTER)
        center = start_serve(data, ports, *args)  # recovers, and removes files of what never committed
        stop_serve(center)
        with sqlite3.connect(data / DB_FILE) as db:
            stored = {row[0]: row[1:] for row in db.execute(
                "SELECT e.hiImgIndx, e.msgid, e.pdf_id, e.pdf_pack, e.pdf_offset, e.pdf_size, i.instance_id,"
                " i.pack_id, i.offset, i.size FROM exams e JOIN instances i ON i.study_uid = e.study_uid")}
            answered = {row[0] for row in db.execute("SELECT msgid FROM messages")}
        assert_nothing_acknowledged_lost(acked, sent, {i: row[0] for i, row in stored.items()}, answered)
        root = data / "center"
        for index in (i for indexes in acked.values() for i in indexes):
            _, pdf_id, pdf_pack, pdf_offset, pdf_size, instance_id, pack_id, offset, size = stored[index]
            assert _read(root, pdf_id, pdf_pack, pdf_offset, pdf_size, "pdf") == report, index
            assert _read(root, instance_id, pack_id, offset, size, "dicom") == images[index], index
    finally:
        kill(center)


def _read(root: Path, object_id: str, pack: str | None, offset: int | None, size: int, folder: str) -> bytes:
    """A kept report or instance: an entry of its message's pack, or a file of its own."""
    if pack is None:
        suffix = ".pdf" if folder == "pdf" else ".dcm"
        return (root / folder / object_id[-2:] / f"{object_id}{suffix}").read_bytes()
    with (root / "packs" / pack[-2:] / f"{pack}.zip").open("rb") as fh:
        fh.seek(offset or 0)
        return fh.read(size)
