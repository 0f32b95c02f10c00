"""A hop-1 message whose handler is cancelled (a shutdown) while its transaction is in the database thread: the
transaction runs to its end, and when it commits, the files its rows name stay on disk — removing them as if
nothing had been stored would leave stored exams whose report and images are gone."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from typing import Any

import pytest

from sandbox.center.domain import DB_FILE, FILES_DIR, Center, Ingest
from sandbox.center.store import CenterStore
from sandbox.common.db import CommittedWhileCancelled
from sandbox.common.receiver import Batch
from tests.center.helpers import b64, instance, message, pdf, record


async def test_a_receive_cancelled_while_its_transaction_runs_keeps_what_it_committed(
    make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings()
    store = CenterStore(settings.data_dir / DB_FILE)
    await store.open()
    center = Center(settings, store, settings.data_dir / FILES_DIR)
    await asyncio.to_thread(center.open)
    started = threading.Event()
    real_store = Ingest.store

    def slow_store(self: Ingest, conn: sqlite3.Connection, batch: Batch) -> None:
        real_store(self, conn, batch)
        started.set()
        time.sleep(0.3)  # the handler is cancelled meanwhile

    monkeypatch.setattr(Ingest, "store", slow_store)
    try:
        recs = [record(settings, n, b64(pdf(), "application/pdf"), b64(instance(n=n))) for n in range(2)]
        task = asyncio.create_task(center.receive(message(settings, recs)))
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
        task.cancel()
        with pytest.raises(CommittedWhileCancelled):
            await task
        pdfs, dicoms, packs = await store.all_file_ids()
        assert len(pdfs) + len(packs) >= 1 and (dicoms or packs)  # the two exams' files are named by rows
        paths = ([center.pdfs.path(f) for f in pdfs] + [center.dicoms.path(f) for f in dicoms]
                 + [center.packs.path(p) for p in packs])
        assert paths and all(os.path.exists(p) for p in paths), [p for p in paths if not os.path.exists(p)]
        summary = await center.summary()
        assert summary["stored"] == 2 and summary["pdfs"] == 2 and summary["instances"] == 2
    finally:
        await center.files.close()
        await store.close()
