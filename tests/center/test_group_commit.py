"""Group commit at the center gives exactly the answers, rows and files of the plain path.

The center writes the hop-1 messages that reach its database while a transaction is being written all in the
next one (`CenterStore` opens its file with `Database(group_commit=True)`). The same messages — new records,
identical resends across messages, a different record under a stored index, a bad record, a record repeated
within its batch, a record whose images cannot be fetched, a report that is not a PDF, an instance another
message of the group brings too, msgid replays and a msgid conflict — are sent concurrently to a grouped
center, held back until all of them wait together, and one after the other, in the same order, to a center on
the plain path (one transaction per message). Every answer, every stored row (but the center's own random ids
and the clock) and every kept file must be the same.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from sandbox.center import create_app
from sandbox.center.domain import DB_FILE
from sandbox.config import Settings
from sandbox.typedefs import CENTER
from tests.center.helpers import HOP1_PATH, FileServer, instance, message, pdf, record
from tests.conftest import free_port


def _messages(settings: Settings, files: FileServer) -> list[Any]:
    """The inputs, in the order they reach the center (dicts, or raw bytes sent as they are)."""

    def rec(n: int, *, dcm: str | None = None, report: str | None = None, **kw: Any) -> dict[str, Any]:
        report = report or files.add(f"/r/{n}.pdf", pdf(f"报告 {n}"), "application/pdf")
        dcm = dcm or files.add(f"/d/{n}.dcm", instance(n=n), "application/dicom")
        return record(settings, n, report, dcm, **kw)

    not_pdf = files.add("/r/bad.pdf", b"<html>not a report</html>", "text/html")
    missing = files.url("/d/missing.dcm")
    shared = files.url("/d/7.dcm")
    first = message(settings, [rec(1), rec(2)], seq=1)
    third = message(settings, [rec(1, diagRslt="双肺多发结节。"), rec(4)], seq=3)
    return [
        first,
        message(settings, [rec(2), rec(3)], seq=2),                       # 2 again, identical: idempotent
        third,                                                            # 1 changed: 索引号重复
        first,                                                            # replay of the first
        message(settings, [rec(5)], seq=2),                               # msgid 2 with another body: 1040
        message(settings, [rec(6, certno="1" * 60), rec(7)], seq=6),      # one bad record
        message(settings, [rec(8), rec(8)], seq=7),                       # repeated within the batch
        message(settings, [rec(9, dcm=missing), rec(10)], seq=8),         # images not found: -1
        message(settings, [rec(4), rec(11)], seq=9),                      # 4 identical, stored in this group
        message(settings, [rec(12, report=not_pdf)], seq=10),             # report not kept: 0
        message(settings, [rec(13, dcm=shared)], seq=11),                 # exam 7's instance again: linked
        message(settings, [rec(3, psnName="王五"), rec(14)], seq=12),     # 3 changed, stored in this group
        json.dumps(dict(reversed(list(third.items()))), ensure_ascii=False, indent=2).encode(),  # replay
    ]


async def _send(client: TestClient, msg: Any) -> tuple[int, dict[str, Any]]:
    if isinstance(msg, bytes):
        resp = await client.post(HOP1_PATH, data=msg, headers={"Content-Type": "application/json"})
    else:
        resp = await client.post(HOP1_PATH, json=msg)
    return resp.status, await resp.json()


def _stored(data_dir: Path) -> dict[str, Any]:
    """Every stored row in the order written, the center's random ids replaced by the record they belong to
    and the clock left out; and the bytes of every report and instance kept, by hiImgIndx and SOP UID."""
    center = data_dir / "center"
    with sqlite3.connect(data_dir / DB_FILE) as db:
        index_of = dict(db.execute("SELECT exam_id, hiImgIndx FROM exams"))
        exams = db.execute("SELECT hiImgIndx, record_hash, infCode, msgid, succFlag, message, record, pdf_size,"
                           " study_uid, instances, failures, notes FROM exams ORDER BY rowid").fetchall()
        instances = db.execute(
            "SELECT sop_uid, study_uid, series_uid, sop_class, transfer_syntax, modality, patient_name, patient_id,"
            " study_date, size, digest, source FROM instances ORDER BY rowid").fetchall()
        studies = sorted((index_of[e], s) for e, s in db.execute("SELECT exam_id, study_uid FROM exam_studies"))
        receipts = [(*r[:-1], index_of.get(r[-1])) for r in db.execute(
            "SELECT hiImgIndx, infCode, msgid, position, succFlag, reason, message, exam_id FROM receipts"
            " ORDER BY seq")]
        outbox = sorted(index_of[r[0]] for r in db.execute("SELECT exam_id FROM outbox"))
        messages = db.execute("SELECT infcode, msgid, body_hash, response FROM messages ORDER BY rowid").fetchall()
        reports = {}
        for index, pdf_id, pack, offset, size in db.execute(
                "SELECT hiImgIndx, pdf_id, pdf_pack, pdf_offset, pdf_size FROM exams WHERE pdf_id IS NOT NULL"):
            reports[index] = _read(center, pdf_id, pack, offset, size, "pdf")
        images = {sop: _read(center, iid, pack, offset, size, "dicom") for sop, iid, pack, offset, size in db.execute(
            "SELECT sop_uid, instance_id, pack_id, offset, size FROM instances")}
    return {"exams": exams, "instances": instances, "studies": studies, "receipts": receipts, "outbox": outbox,
            "messages": messages, "reports": reports, "images": images}


def _read(root: Path, object_id: str, pack: str | None, offset: int | None, size: int, folder: str) -> bytes:
    if pack is None:
        suffix = ".pdf" if folder == "pdf" else ".dcm"
        return (root / folder / object_id[-2:] / f"{object_id}{suffix}").read_bytes()
    with (root / "packs" / pack[-2:] / f"{pack}.zip").open("rb") as fh:
        fh.seek(offset or 0)
        return fh.read(size)


async def _idle(client: TestClient) -> None:
    """Wait until the center has written what it writes at start (the forwarder's note of the province URL)."""
    center = client.server.app[CENTER]
    for _ in range(3000):
        if await center.store.get_meta("province_url") is not None and center.store.db.pending == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the center never finished starting")


async def test_grouped_answers_rows_and_files_equal_the_plain_path_in_the_same_order(
    aiohttp_client: Any, make_settings: Callable[..., Settings], tmp_path: Path, files: FileServer,
    commit_groups: list[int]
) -> None:
    grouped_settings = make_settings(data_dir=tmp_path / "grouped", fetch_timeout_s=10.0)
    plain_settings = grouped_settings.model_copy(update={"data_dir": tmp_path / "plain", "dicom_port": free_port()})
    msgs = _messages(grouped_settings, files)

    grouped = await aiohttp_client(create_app(grouped_settings))
    db = grouped.server.app[CENTER].store.db
    assert db.group_commit
    await _idle(grouped)
    groups = commit_groups
    groups.clear()
    tasks = []
    async with db.lock:  # nothing is written until every message waits for its commit
        for n, msg in enumerate(msgs, 1):
            tasks.append(asyncio.create_task(_send(grouped, msg)))
            for _ in range(3000):  # one at a time, so they reach the database in this order
                if db.pending == n:
                    break
                await asyncio.sleep(0.01)
            else:
                raise AssertionError(f"message {n} never reached the database")
    concurrent = await asyncio.gather(*tasks)
    assert sum(groups) >= len(msgs) and max(groups) > 1  # they did share transactions

    plain = await aiohttp_client(create_app(plain_settings))
    plain.server.app[CENTER].store.db.group_commit = False
    await _idle(plain)
    groups.clear()
    serial = [await _send(plain, msg) for msg in msgs]
    assert groups == []  # the plain path never groups

    assert concurrent == serial
    flags = [[a["succFlag"] for a in body["data"]] or [body["code"]] for _, body in serial]
    assert flags == [["1", "1"], ["1", "1"], ["-1", "1"], ["1", "1"], [1040], ["-1", "1"], ["1", "-1"], ["-1", "1"],
                     ["1", "1"], ["0"], ["1"], ["-1", "1"], ["-1", "1"]]
    grouped_rows = _stored(grouped_settings.data_dir)
    assert grouped_rows == _stored(plain_settings.data_dir)
    assert len(grouped_rows["exams"]) == 11 and len(grouped_rows["images"]) == 10
