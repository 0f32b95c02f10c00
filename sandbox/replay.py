"""Replaying recorded traffic: resend each recorded hop-1 or hop-2 request to a target and report where its
answers differ from the recording. No CLI here (sandbox.commands.replay).

An answer is compared by what an integrator relies on: a usable answer or a transport failure, the HTTP
status, the envelope `code`, and per record its index, `succFlag` and (unless ignored) `message`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from sandbox.app import Sandbox
from sandbox.common.client import Exchange, post_message
from sandbox.common.ports import free_port
from sandbox.config import Settings
from sandbox.journal.entry import Entry, answers, classify
from sandbox.journal.files import base_of, read_manifest, rewrite

HOP_NAMES = {1: "第一跳", 2: "第二跳"}


@dataclass(slots=True)
class Replayed:
    """One recorded exchange sent again, and how its new answer compares."""

    seq: int | None
    hop: int
    msgid: str | None
    url: str
    differences: list[str] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return not self.differences

    def text(self) -> str:
        head = f"#{self.seq} {HOP_NAMES.get(self.hop, '')} {self.msgid or '（无 msgid）'}"
        if self.same:
            return f"{head}：与记录一致"
        return f"{head}：不一致 — " + "；".join(self.differences)


def target_url(to: str, recorded: str) -> str:
    """`--to` with a path is used as given; a bare base URL gets the recorded request's path."""
    parts = urlsplit(to)
    if parts.path in ("", "/"):
        return to.rstrip("/") + urlsplit(recorded).path
    return to


def replayable(entry: dict[str, Any], hop: int | None) -> bool:
    """What some receiver actually got: server-side entries, and client-side ones sent to an external peer."""
    if hop is not None and entry.get("hop") != hop:
        return False
    if not entry.get("request"):
        return False
    extra = entry.get("extra") or {}
    return entry.get("side", "server") == "server" or bool(extra.get("external"))


def _view(status: int | None, response: str | None, transport: str | None) -> Entry:
    e = Entry(hop=0, from_role="", to_role="", side="", url="", request="", started=0.0)
    classify(e, status, response, transport)
    return e


def compare(recorded: dict[str, Any], ex: Exchange, *, messages: bool = True) -> list[str]:
    """Where the new answer differs from the recorded one, in Chinese."""
    old = _view(recorded.get("status"), recorded.get("response"),
                recorded.get("transport") if recorded.get("outcome") == "transport" else None)
    text = None if ex.response is None else _json(ex.response)
    new = _view(ex.status, text if text is not None else ex.raw,
                ex.error if ex.error in ("timeout", "connection") else None)
    out: list[str] = []
    if (old.outcome == "transport") != (new.outcome == "transport"):
        out.append(f"记录为{_outcome(old)}，实际为{_outcome(new)}")
        return out
    if old.outcome == "transport":
        if old.transport != new.transport:
            out.append(f"传输故障 记录 {old.transport} → 实际 {new.transport}")
        return out
    if old.status != new.status:
        out.append(f"HTTP 状态 记录 {old.status} → 实际 {new.status}")
    if old.code != new.code:
        out.append(f"code 记录 {old.code} → 实际 {new.code}")
    a_old, a_new = answers(old.response), answers(new.response)
    if len(a_old) != len(a_new):
        out.append(f"逐条应答数 记录 {len(a_old)} → 实际 {len(a_new)}")
    for pos, (x, y) in enumerate(zip(a_old, a_new, strict=False), 1):
        ix, iy = x.get("hiImgIndx", x.get("hiImgIdx")), y.get("hiImgIndx", y.get("hiImgIdx"))
        if ix != iy:
            out.append(f"第{pos}条 索引号 记录 {ix} → 实际 {iy}")
        if str(x.get("succFlag")) != str(y.get("succFlag")):
            out.append(f"第{pos}条 succFlag 记录 {x.get('succFlag')} → 实际 {y.get('succFlag')}")
        elif messages and x.get("message") != y.get("message"):
            out.append(f"第{pos}条 message 记录「{x.get('message')}」→ 实际「{y.get('message')}」")
    return out


def _outcome(e: Entry) -> str:
    return f"传输故障（{e.transport}）" if e.outcome == "transport" else f"应答（code {e.code}）"


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


async def replay(entries: Iterable[dict[str, Any]], to: str, *, hop: int | None = None, timeout: float = 10.0,
                 messages: bool = True, files: Path | None = None) -> list[Replayed]:
    """Send every replayable entry to `to`, in recorded order, and compare each answer. `files` is a bundle
    of `journal export --with-files`: served here by the emulated hospital while the replay runs, the hop-1
    requests' file URLs pointing at it."""
    bases = read_manifest(files) if files is not None else None
    if files is None or bases is None:
        return await _replay(entries, to, hop, timeout, messages, None)
    settings = Settings(data_dir=files, hospital_port=free_port(), center_url=base_of(to))
    hospital = Sandbox(settings, ("hospital",), journal=False, shutdown_timeout=1.0)
    await hospital.start()
    try:
        return await _replay(entries, to, hop, timeout, messages, (bases, hospital.url("hospital")))
    finally:
        await hospital.stop()


async def _replay(entries: Iterable[dict[str, Any]], to: str, hop: int | None, timeout: float, messages: bool,
                  served: tuple[list[str], str] | None) -> list[Replayed]:
    out: list[Replayed] = []
    async with aiohttp.ClientSession() as session:
        for e in entries:
            if not replayable(e, hop):
                continue
            if served is not None:
                e = rewrite(e, *served)
            url = target_url(to, e["url"])
            try:
                message: Any = orjson.loads(e["request"])
            except orjson.JSONDecodeError:
                message = e["request"]
            ex = await post_message(session, url, message, timeout=timeout) if not isinstance(message, str) \
                else await _post_raw(session, url, message, timeout)
            result = Replayed(e.get("seq"), int(e.get("hop") or 0), e.get("msgid"), url)
            result.differences = compare(e, ex, messages=messages)
            out.append(result)
    return out


async def _post_raw(session: aiohttp.ClientSession, url: str, body: str, timeout: float) -> Exchange:
    """A recorded body that was not JSON, sent byte for byte."""
    ex = Exchange(url=url, request=body)
    t0 = time.perf_counter()
    try:
        async with session.post(url, data=body.encode(), headers={"Content-Type": "application/json"},
                                timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            ex.status = resp.status
            text = await resp.text(errors="replace")
            try:
                ex.response = orjson.loads(text)
            except orjson.JSONDecodeError:
                ex.raw, ex.error = text, "non_json"
    except TimeoutError:
        ex.error = "timeout"
    except (aiohttp.ClientError, OSError) as exc:
        ex.error, ex.detail = "connection", str(exc)
    ex.duration = time.perf_counter() - t0
    return ex
