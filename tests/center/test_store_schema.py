"""The center's database file across versions: what an older center.db gets when it is opened."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sandbox.center.store import SCHEMA, CenterStore


async def test_an_older_center_db_loses_the_unused_study_index_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "center.db"
    exam_id = "0" * 31 + "1"
    with sqlite3.connect(path) as db:  # as a center before issue 19 made it
        db.executescript(SCHEMA)
        db.execute("CREATE INDEX exam_studies_uid ON exam_studies (study_uid)")
        db.execute("INSERT INTO exam_studies (exam_id, study_uid) VALUES (?, '1.2.3'), (?, '1.2.4')",
                   (exam_id, exam_id))
    store = CenterStore(path)
    await store.open()
    try:
        assert await store.exam_studies(exam_id) == ["1.2.3", "1.2.4"]
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "exam_studies_uid" not in indexes
    assert {"exams_received", "instances_study", "receipts_index", "outbox_state"} <= indexes
