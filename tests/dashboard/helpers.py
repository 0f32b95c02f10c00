"""What the journal says, read straight from its entries and answer rows (never through the dashboard)."""

from __future__ import annotations

from typing import Any

import orjson

from sandbox.app import Sandbox

RADIOLOGY = {"1", "2", "3"}


async def journal_facts(sandbox: Sandbox) -> dict[str, Any]:
    """What the journal says, read straight from its entries and answer rows (not through the dashboard)."""
    journal = sandbox.journal
    assert journal is not None
    sent: dict[str, set[str]] = {}  # exam key → its imgExamType codes
    institution: dict[str, str] = {}
    async for e in journal.entries(hop=1):
        msg = orjson.loads(e["request"])
        data = msg.get("data")
        if isinstance(data, str):
            data = orjson.loads(data)
        records = data if isinstance(data, list) else [data] if isinstance(data, dict) else []
        for pos, rec in enumerate(records, 1):
            if not isinstance(rec, dict):  # counted under the message's institution
                key = f"{e['msgid']}#{pos}"
                sent.setdefault(key, set())
                institution[key] = msg.get("infCode")
                continue
            rec = {k.strip(): v for k, v in rec.items()}
            key = rec.get("hiImgIndx") or rec.get("hiImgIdx") or f"{e['msgid']}#{pos}"
            sent.setdefault(key, set()).update(str(rec.get("imgExamType") or "").split())
            institution[key] = rec.get("fixmedinsCode") or msg.get("infCode")
    indexed = {a["hiImgIndx"] for a in await journal.answer_rows(2) if a["succFlag"] in ("1", "0")}
    hop1_saved = {a["hiImgIndx"] for a in await journal.answer_rows(1) if a["succFlag"] in ("1", "0")}
    return {"sent": sent, "indexed": indexed, "hop1_saved": hop1_saved, "institution": institution}
