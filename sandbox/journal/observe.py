"""Recording exchanges on the sender's side: the observer a role passes to post_with_retry."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import orjson

from sandbox.common.client import Exchange, Observer
from sandbox.journal.entry import HOP_PATHS, HOP_ROLES, Entry, classify, describe_request, parse_request

if TYPE_CHECKING:
    from sandbox.journal.store import Journal


def client_observer(journal: Journal, from_role: str, is_local: Callable[[str], bool]) -> Observer:
    """The sender's observer for post_with_retry: records what no server here recorded.

    An in-process peer records the exchange itself (journal_middleware), so the sender records only a
    connection that never reached it (refused: the role is stopped); an external peer is always recorded.
    """
    hop_default = 1 if from_role == "hospital" else 2

    async def observe(ex: Exchange) -> None:
        local = is_local(ex.url)
        if local and not (ex.error == "connection" and "ClientConnectorError" in ex.detail):
            return
        hop = HOP_PATHS.get(urlsplit(ex.url).path, hop_default)
        request = ex.request if isinstance(ex.request, str) else orjson.dumps(ex.request).decode()
        entry = Entry(hop=hop, from_role=from_role, to_role=HOP_ROLES[hop][1], side="client", url=ex.url,
                      request=request, started=ex.started, duration_ms=round(ex.duration * 1000, 3),
                      attempt=ex.attempt)
        if not local:
            entry.extra["external"] = True
        describe_request(entry, ex.request if isinstance(ex.request, dict) else parse_request(request)[0])
        text = orjson.dumps(ex.response).decode() if ex.response is not None else ex.raw
        if ex.error in ("timeout", "connection") or (ex.error == "non_json" and ex.status is None):
            classify(entry, ex.status, text, transport=ex.error)
        else:
            classify(entry, ex.status, text)
        if ex.error:
            entry.extra["detail"] = ex.detail
        journal.record(entry)

    return observe
