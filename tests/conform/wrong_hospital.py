"""A deliberately wrong hospital for the hospital kit's tests: after an HTTP 5xx it sends the same records again
under a NEW msgid (the document's msgid identifies the message; a resend must keep it and the body)."""

from __future__ import annotations

from typing import Any

import aiohttp

from sandbox.config import Institution
from sandbox.spec.formats import china_now
from sandbox.synth.batching import envelope


async def send_renumbering(url: str, records: list[dict[str, Any]], inst: Institution, attempts: int = 3) -> list[int]:
    """POST the records; on a 5xx, build a new envelope (new msgid, new infTime) around them and try again.
    Returns the HTTP status of each attempt."""
    statuses: list[int] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        for seq in range(1, attempts + 1):
            message = envelope(records, inst, china_now(), seq)  # the wrong part: seq (and msgid) change
            async with session.post(url, json=message) as resp:
                await resp.read()
                statuses.append(resp.status)
            if resp.status < 500:
                break
    return statuses
