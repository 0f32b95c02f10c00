"""A receiving role (`sandbox serve` in its own process) killed with SIGKILL under concurrent senders, and
the checks that it lost nothing it had acknowledged."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp

from tests.chain.test_serve import Served, kill

# make(seq) → (the message, the hiImgIndx of each of its records)
MakeMessage = Callable[[int], tuple[dict[str, Any], list[str]]]


async def send_until_killed(served: Served, url: str, make: MakeMessage, *, senders: int,
                            kill_after: int) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """`senders` concurrent senders post make(seq) messages, each of which must be answered code 0 with every
    record `1`, until `kill_after` are acknowledged; then SIGKILL with requests in flight. (acknowledged, sent):
    msgid → its indexes."""
    acked: dict[str, list[str]] = {}
    sent: dict[str, list[str]] = {}
    enough = asyncio.Event()

    async def sender(session: aiohttp.ClientSession, k: int) -> None:
        for n in range(10_000):
            msg, indexes = make(k * 10_000 + n + 1)
            sent[msg["msgid"]] = indexes
            try:
                async with session.post(url, json=msg) as resp:
                    body = await resp.json()
            except (TimeoutError, aiohttp.ClientError):
                return  # the process is gone
            assert body["code"] == 0 and [a["succFlag"] for a in body["data"]] == ["1"] * len(indexes), body
            acked[msg["msgid"]] = indexes
            if len(acked) >= kill_after:
                enough.set()

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        tasks = [asyncio.create_task(sender(session, k)) for k in range(senders)]
        await asyncio.wait_for(enough.wait(), timeout=180)
        kill(served)
        await asyncio.gather(*tasks)
    assert len(acked) >= kill_after and len(sent) > len(acked)
    return acked, sent


def assert_nothing_acknowledged_lost(acked: dict[str, list[str]], sent: dict[str, list[str]],
                                     stored: dict[str, str], answered: set[str]) -> None:
    """Every acknowledged record is stored (`stored`: hiImgIndx → msgid, `answered`: the msgids whose answer
    is kept), and every message sent is stored whole, with its answer, or not at all."""
    lost = [i for indexes in acked.values() for i in indexes if i not in stored]
    assert lost == [], f"{len(lost)} acknowledged records lost"
    assert set(acked) <= answered
    for msgid, indexes in sent.items():
        kept = [i for i in indexes if i in stored]
        assert kept in ([], indexes), msgid
        assert (msgid in answered) == bool(kept), msgid
        assert all(stored[i] == msgid for i in kept)
