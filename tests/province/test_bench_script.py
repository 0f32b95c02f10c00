"""The benchmark's wrk script (`sandbox/bench/hop2.lua`), run by Debian's wrk against a province: every
request it makes is a new message whose records are all new, so every answer is code 0 with each record
`1`, and the province stores one msgid per answered request and every record of it."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from typing import Any

import pytest

from sandbox.bench.prism import RECORDS, SCRIPT, template
from sandbox.config import Settings
from sandbox.province import create_app
from sandbox.spec.fields import HOP2


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (scripts/sysdeps.sh installs it)")
async def test_wrk_script_sends_only_new_messages_with_new_indexes_from_every_thread(
    aiohttp_server: Any, make_settings: Any, tmp_path: Any
) -> None:
    settings: Settings = make_settings()
    server = await aiohttp_server(create_app(settings))
    body = tmp_path / "template.json"
    body.write_text(template(settings), encoding="utf-8")
    url = f"http://127.0.0.1:{server.port}{HOP2.path}"
    runs = []
    for turn in (0, 1):  # two runs of one benchmark: the same nonce base must not repeat an index
        proc = await asyncio.create_subprocess_exec(
            "wrk", "-t2", "-c4", "-d1s", "--timeout", "30s", "-s", str(SCRIPT), url, "--", str(body),
            f"AB{turn}", str(1_740_000_000 + turn * 3_000_000), "1",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
        assert proc.returncode == 0, err.decode()
        line = next(ln for ln in out.decode().splitlines() if ln.startswith("WRKJSON "))
        runs.append(json.loads(line.removeprefix("WRKJSON ")))
    for run in runs:
        assert run["requests"] > 0 and run["bad"] == 0, run
        assert run["connect"] + run["read"] + run["write"] + run["timeout"] == 0, run
    answered = sum(run["requests"] for run in runs)
    with sqlite3.connect(settings.data_dir / "province.db") as db:
        rows, msgids = db.execute("SELECT COUNT(*), COUNT(DISTINCT msgid) FROM img_index").fetchone()
        days = {m[12:20] for (m,) in db.execute("SELECT msgid FROM messages")}
    # a request wrk cut off at the end of its run may be stored without being counted
    assert answered <= msgids <= answered + 2 * 4 and rows == msgids * RECORDS
    # thread t of a run counts msgid times from its base + t·10^6 s (11.6 days): 2 runs × 2 threads, 4 days
    assert len(days) >= 4, days
