"""The hospital kit's session: the kit plays the sharing center for a hospital (HIS) under test.

The HIS posts to the kit's own front door, `http://HOST:PORT/mie/api/mie/saveExamRpotImgInfo`. Behind it runs
the sandbox's own center (and a province for it to forward to) on free loopback ports: every message is passed
to that center unchanged, and its answer — the same code that answers `sandbox serve` — goes back to the HIS.
The center fetches each record's PDF and DICOM from the HIS's file server and compares the DICOM with the
record, so what the kit reports about files is what the center found (read back from its status API).

In front of it the kit keeps every request (for grading and as evidence) and, when asked (`--probe-retries`),
answers the first attempt of new messages with HTTP 503 or no answer at all (a stall past the HIS's timeout),
to see whether the resend keeps the msgid and the body.

The session ends once the center has answered `--messages N` messages (distinct msgids), or on Ctrl-C (SIGINT), or when the
kit is stopped.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

from sandbox.api import Sandbox
from sandbox.common.envelope import envelope_body
from sandbox.common.http import error_middleware, json_response
from sandbox.config import Institution, Settings
from sandbox.conform.model import Exchange
from sandbox.spec.fields import HOP1
from sandbox.spec.formats import china_iso

FAULTS = ("5xx", "stall")
LOOPBACK_FETCH = ("127.0.0.1:*", "localhost:*", "[::1]:*")  # where a HIS on this machine serves its files
FAULT_BODY = {"code": 1099, "type": "error", "data": [],
              "message": "一致性测试：本工具有意以 HTTP 503 应答此报文的第一次请求，请用同一 msgid、同一报文体重发"}


def record_indexes(message: Any) -> list[str]:
    """The hiImgIndx (or the examples' hiImgIdx) of each record of a message, as sent."""
    data = message.get("data") if isinstance(message, dict) else None
    if isinstance(data, str):  # the table's type String (ERRATA #13): a JSON array written as a string
        with suppress(ValueError):
            data = json.loads(data)
    if not isinstance(data, list):
        return []
    out = []
    for rec in data:
        if isinstance(rec, dict):
            value = rec.get("hiImgIndx", rec.get("hiImgIdx"))
            if isinstance(value, str) and value.strip():
                out.append(value.strip())
    return out


def masked_text(raw: bytes, message: Any) -> str:
    """The request body as evidence: the envelope's key replaced by ***."""
    if isinstance(message, dict) and "key" in message:
        return json.dumps({**message, "key": "***"}, ensure_ascii=False)
    return raw.decode("utf-8", errors="replace")


@dataclass(eq=False)  # compared and hashed by identity: one request is one Seen
class Seen:
    """One request the HIS made to the kit, and what became of it."""

    n: int  # 1-based, in arrival order
    method: str
    path: str
    content_type: str
    raw: bytes
    received: float  # unix time
    exchange: Exchange
    message: Any = None  # the parsed JSON (None when it is not JSON)
    json_error: str = ""  # why the body is not a JSON object, in Chinese
    # "5xx" or "stall" when the kit answered it instead of the center on purpose; "kit" when the kit's own
    # center failed (not graded against the HIS)
    fault: str | None = None
    fault_note: str = ""
    answer: Any = None  # the center's answer (JSON), None when the center did not answer
    status: int | None = None

    @property
    def on_path(self) -> bool:
        return self.method == "POST" and self.path == HOP1.path

    @property
    def msgid(self) -> str | None:
        value = self.message.get("msgid") if isinstance(self.message, dict) else None
        return value.strip() if isinstance(value, str) else None

    @property
    def code(self) -> Any:
        return self.answer.get("code") if isinstance(self.answer, dict) else None

    @property
    def label(self) -> str:
        """How the report names this message: `#3（msgid H5108…0003）`."""
        return f"#{self.n}（msgid {self.msgid}）" if self.msgid else f"#{self.n}"


async def _too_large(limit: int, request: web.Request) -> web.StreamResponse:
    return json_response(envelope_body("body_too_large", limit=limit), status=413)


SEEN: web.RequestKey[Seen] = web.RequestKey("conform_seen", Seen)


def _strict_json(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise ValueError(f"同一对象中键重复：{'、'.join(repeated)}")
    return dict(pairs)


def parse_body(raw: bytes) -> tuple[Any, str]:
    """(the JSON object, "") or (None, why not, in Chinese)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"请求体不是 UTF-8 编码（第 {exc.start} 字节）"
    try:
        value = json.loads(text, object_pairs_hook=_strict_json)
    except RecursionError:
        return None, "JSON 嵌套过深"
    except ValueError as exc:
        return None, f"请求体不是合法 JSON：{exc}"
    if not isinstance(value, dict):
        return None, f"报文应为 JSON 对象，实际为 {type(value).__name__}"
    return value, ""


@dataclass
class SessionConfig:
    listen_host: str
    listen_port: int
    public_host: str | None
    mode: str  # how the kit grades
    enforce: bool  # the center refuses what the grading refuses (strict center when grading strictly)
    institution: str | None
    key: str | None
    faults: list[str]
    stall: float
    messages: int | None
    timeout: float
    seed: int
    profile: str
    fetch_hosts: list[str] = field(default_factory=list)


class Session:
    """The kit's center and front door for one session; open with `async with`, then `await collect()`."""

    def __init__(self, config: SessionConfig, say: Callable[[str], None]) -> None:
        self.config = config
        self.say = say
        self.seen: list[Seen] = []
        self.sandbox: Sandbox | None = None
        self.done = asyncio.Event()
        self.closing = asyncio.Event()
        self.answered: set[str] = set()  # msgids the center answered (a resend of one counts once)
        self.faults = list(config.faults)
        self.known_msgids: set[str] = set()
        self.known_indexes: set[str] = set()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""

    # ---- life cycle ------------------------------------------------------------------------------

    def center_settings(self) -> dict[str, Any]:
        c = self.config
        settings: dict[str, Any] = {
            "mode": c.mode if c.enforce else "lenient",
            "allowed_fetch_hosts": tuple(c.fetch_hosts) or LOOPBACK_FETCH,
            "fetch_timeout_s": max(c.timeout, 1.0),
            "seed": c.seed,
            "index_profile": c.profile,
        }
        if c.institution:
            base = Settings().institutions
            tested = Institution(code=c.institution, name="被测医疗机构", key=c.key or "", role="hospital")
            settings["institutions"] = tuple(i for i in base if i.code != c.institution) + (tested,)
        return settings

    async def __aenter__(self) -> Session:
        c = self.config
        self.sandbox = Sandbox(("center", "province"), journal=False, **self.center_settings())
        await self.sandbox.start()
        try:
            self._session = aiohttp.ClientSession()
            app = web.Application(client_max_size=self.sandbox.settings.max_body_bytes,
                                  middlewares=[self._record, error_middleware])
            app.router.add_post(HOP1.path, self._hop1)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, c.listen_host, c.listen_port)
            await site.start()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        port = self._runner.addresses[0][1]
        host = c.public_host or c.listen_host
        host = f"[{host}]" if ":" in host else host
        self.url = f"http://{host}:{port}{HOP1.path}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.closing.set()
        try:
            if self._runner is not None:
                await self._runner.cleanup()
            if self._session is not None:
                await self._session.close()
        finally:
            if self.sandbox is not None:
                await self.sandbox.stop()

    def accepted_institutions(self) -> list[Institution]:
        assert self.sandbox is not None
        return list(self.sandbox.settings.hospitals)

    async def collect(self) -> str:
        """Wait until the session ends; returns why, in Chinese."""
        loop = asyncio.get_running_loop()
        interrupted = False

        def on_sigint() -> None:
            nonlocal interrupted
            interrupted = True
            self.done.set()

        installed = False
        with suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals
            loop.add_signal_handler(signal.SIGINT, on_sigint)
            installed = True
        try:
            await self.done.wait()
        finally:
            if installed:
                loop.remove_signal_handler(signal.SIGINT)
        if interrupted:
            return f"按 Ctrl-C 结束，共收到 {len(self.seen)} 个请求"
        return f"共享中心已应答 {len(self.answered)} 个报文（--messages {self.config.messages}），会话结束"

    # ---- the front door ----------------------------------------------------------------------------

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Keep every request the HIS makes (stray paths and methods too) with the answer it got."""
        started = time.perf_counter()
        try:
            raw = await request.read() if request.can_read_body else b""
        except web.HTTPRequestEntityTooLarge:
            raw = b""
            limit = request.client_max_size
            why = f"请求体超过 {limit} 字节（共享中心的上限 max_body_bytes），未处理"
            message = None
            handler = partial(_too_large, limit)
        else:
            message, why = parse_body(raw) if raw else (None, "请求体为空")
        seen = Seen(len(self.seen) + 1, request.method, request.path, request.headers.get("Content-Type", ""), raw,
                    time.time(), Exchange("received", request.method, str(request.url), china_iso(time.time()) or "",
                                          Exchange.clip(masked_text(raw, message))),
                    message=message, json_error=why)
        self.seen.append(seen)
        request[SEEN] = seen
        response = await handler(request)
        if seen.fault == "stall" and seen.status is None:  # the HIS gave up: it never saw an answer
            seen.exchange.error = seen.fault_note
            seen.exchange.seconds = round(time.perf_counter() - started, 3)
            return response
        seen.exchange.status = response.status
        body = getattr(response, "body", None)
        if seen.answer is None and isinstance(body, bytes):
            with suppress(ValueError):
                seen.answer = json.loads(body)
        if isinstance(body, bytes):
            seen.exchange.response_body = Exchange.clip(body.decode("utf-8", errors="replace"))
        seen.exchange.seconds = round(time.perf_counter() - started, 3)
        return response

    def _new_message(self, seen: Seen) -> bool:
        """A message the kit has not seen before: neither its msgid nor any of its indexes."""
        indexes = set(record_indexes(seen.message))
        fresh = seen.msgid not in self.known_msgids and not indexes & self.known_indexes
        if seen.msgid:
            self.known_msgids.add(seen.msgid)
        self.known_indexes |= indexes
        return fresh and bool(seen.msgid)

    async def _hop1(self, request: web.Request) -> web.StreamResponse:
        seen = request[SEEN]
        if self._new_message(seen) and self.faults:
            seen.fault = self.faults.pop(0)
            if seen.fault == "stall":
                return await self._stall(request, seen)
            seen.fault_note = "本工具以 HTTP 503 应答（模拟共享中心故障）"
            seen.status = 503
            return json_response(FAULT_BODY, status=503)
        return await self._forward(seen)

    async def _stall(self, request: web.Request, seen: Seen) -> web.StreamResponse:
        """No answer for `stall` seconds (or until the HIS gives up and closes the connection)."""
        deadline = time.monotonic() + self.config.stall
        while time.monotonic() < deadline and not self.closing.is_set():
            transport = request.transport
            if transport is None or transport.is_closing():
                seen.fault_note = f"本工具不应答；医疗机构在 {time.time() - seen.received:.1f} 秒后放弃了这次请求（超时）"
                seen.status = None
                return web.Response(status=503)  # nobody reads it: the HIS closed the connection
            await asyncio.sleep(0.1)
        seen.fault_note = (f"本工具 {self.config.stall:g} 秒不应答，医疗机构一直等待没有超时；"
                           "之后以 HTTP 503 应答")
        seen.status = 503
        return json_response(FAULT_BODY, status=503)

    async def _forward(self, seen: Seen) -> web.StreamResponse:
        """Pass the request to the kit's center unchanged; its answer goes back to the HIS as it is."""
        assert self.sandbox is not None and self._session is not None
        url = self.sandbox.urls.hop1
        assert url is not None
        headers = {"Content-Type": seen.content_type} if seen.content_type else {}
        wait = aiohttp.ClientTimeout(total=max(60.0, self.config.timeout * 6))
        try:
            async with self._session.post(url, data=seen.raw, headers=headers, timeout=wait) as resp:
                body = await resp.read()
                status, media = resp.status, resp.headers.get("Content-Type", "application/json")
        except (aiohttp.ClientError, TimeoutError) as exc:  # the kit's own center failed: not the HIS's doing
            seen.fault, seen.fault_note = "kit", f"本工具的共享中心没有应答：{type(exc).__name__} {exc}"
            seen.status = 502
            return json_response({**FAULT_BODY, "message": "一致性测试工具内部错误：" + seen.fault_note}, status=502)
        seen.status = status
        with suppress(ValueError):
            seen.answer = json.loads(body)
        if seen.msgid:  # a body without a msgid (not JSON, no envelope) is graded, not counted as a message
            self.answered.add(seen.msgid)
        if self.config.messages is not None and len(self.answered) >= self.config.messages:
            self.done.set()
        return web.Response(body=body, status=status, headers={"Content-Type": media})

    # ---- what the center found ---------------------------------------------------------------------

    def center_api(self, index: str) -> str:
        assert self.sandbox is not None and self.sandbox.urls.center is not None
        return f"{self.sandbox.urls.center}/api/exams/{quote(index, safe='')}"
