"""Journal export: JSON Lines (one entry per line, as stored) or HAR 1.2 (opens in a browser's network panel
or any HAR viewer). Both are read back by `sandbox replay`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from http import HTTPStatus
from typing import Any, TextIO

import orjson

from sandbox.journal.mask import mask_entry
from sandbox.spec.formats import china_iso

FORMATS = ("jsonl", "har")
CREATOR = {"name": "yibao-imgcloud-sandbox", "version": "0.1.0"}
JSON_MIME = "application/json;charset=UTF-8"


def har_entry(e: dict[str, Any]) -> dict[str, Any]:
    """One journal entry as a HAR entry; the sandbox's own fields are kept under `_` keys (HAR allows them)."""
    request = e.get("request") or ""
    response = e.get("response")
    status = e.get("status") or 0
    try:
        status_text = HTTPStatus(status).phrase if status else ""
    except ValueError:
        status_text = ""
    req_size = len(request.encode())
    resp_size = len(response.encode()) if response is not None else 0
    return {
        "startedDateTime": china_iso(e["started"]),  # China time with its offset, whatever the host's zone
        "time": round(e.get("duration_ms") or 0.0, 3),
        "request": {
            "method": e.get("method", "POST"),
            "url": e["url"],
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": [{"name": "Content-Type", "value": JSON_MIME}],
            "queryString": [],
            "postData": {"mimeType": JSON_MIME, "text": request},
            "headersSize": -1,
            "bodySize": req_size,
        },
        "response": {
            "status": status,
            "statusText": status_text or (e.get("transport") or ""),
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": [{"name": "Content-Type", "value": JSON_MIME}] if response is not None else [],
            "content": {"size": resp_size, "mimeType": JSON_MIME if response is not None else "x-unknown",
                        "text": response or ""},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": resp_size if response is not None else -1,
            "_transportError": e.get("transport"),
        },
        "cache": {},
        "timings": {"send": 0, "wait": round(e.get("duration_ms") or 0.0, 3), "receive": 0},
        "_sandbox": {k: e.get(k) for k in ("seq", "hop", "from_role", "to_role", "side", "infno", "msgid",
                                          "infcode", "records", "outcome", "code", "n_ok", "n_partial",
                                          "n_failed", "transport", "attempt", "fault", "step", "scenario")},
    }


async def write_jsonl(entries: AsyncIterator[dict[str, Any]], out: TextIO, *, mask: bool = True) -> int:
    n = 0
    async for e in entries:
        row = mask_entry(e) if mask else e
        # `started` stays the stored unix time (replay reads it); `startedTime` is it in China time, +08:00.
        out.write(orjson.dumps({**row, "startedTime": china_iso(row["started"])}).decode() + "\n")
        n += 1
    return n


async def write_har(entries: AsyncIterator[dict[str, Any]], out: TextIO, *, mask: bool = True) -> int:
    """HAR is one JSON document; entries are written one by one so a long journal is never held whole."""
    out.write('{"log":{"version":"1.2","creator":' + orjson.dumps(CREATOR).decode()
              + ',"pages":[],"entries":[\n')
    n = 0
    async for e in entries:
        if n:
            out.write(",\n")
        out.write(orjson.dumps(har_entry(mask_entry(e) if mask else e)).decode())
        n += 1
    out.write("\n]}}\n")
    return n


def read_entries(text: str) -> Iterable[dict[str, Any]]:
    """Entries of an export (JSON Lines or HAR), as dicts with at least url, request, response, status."""
    stripped = text.lstrip()
    if stripped.startswith("{") and '"log"' in stripped[:200]:
        doc = orjson.loads(text)
        for h in doc["log"]["entries"]:
            meta = h.get("_sandbox") or {}
            content = h["response"].get("content") or {}
            has_body = bool(h["response"].get("headers")) or bool(content.get("text"))
            yield {
                **meta,
                "url": h["request"]["url"],
                "method": h["request"].get("method", "POST"),
                "request": (h["request"].get("postData") or {}).get("text", ""),
                "status": h["response"].get("status") or None,
                "response": content.get("text") if has_body else None,
                "transport": meta.get("transport") or h["response"].get("_transportError"),
            }
        return
    for line in text.splitlines():
        if line.strip():
            yield orjson.loads(line)
