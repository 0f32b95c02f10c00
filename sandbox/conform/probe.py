"""The kit's HTTP client: every request it makes becomes an `Exchange` kept as evidence.

A connection error or timeout is not an exception here: it is a `Reply` with `status=None` and `error` in Chinese,
because "the system did not answer" is itself an observation a check grades.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from sandbox.conform.model import Exchange
from sandbox.spec.formats import china_iso


@dataclass
class Reply:
    status: int | None
    body: bytes
    headers: dict[str, str]
    exchange: Exchange
    error: str = ""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def body_text(body: bytes | str | Any) -> str:
    if isinstance(body, bytes):
        return body.decode("utf-8", errors="replace")
    if isinstance(body, str):
        return body
    return json.dumps(body, ensure_ascii=False)


class Probe:
    """One aiohttp session for the kit's requests; open with `async with`."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._secrets: set[str] = set()

    def hide(self, *secrets: str | None) -> None:
        """Keep these (keys) out of the evidence: in recorded bodies they read `***`. Reports are handed on."""
        self._secrets.update(s for s in secrets if s)

    def _shown(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return Exchange.clip(text)

    async def __aenter__(self) -> Probe:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(self, method: str, url: str, body: bytes | str | Any = None,
                      headers: dict[str, str] | None = None, timeout: float | None = None) -> Reply:
        """Send `body` (bytes and str as they are, anything else as JSON) and read the whole answer."""
        assert self._session is not None, "Probe used outside `async with`"
        sent = b"" if body is None else body if isinstance(body, bytes) else body_text(body).encode("utf-8")
        hdrs = dict(headers or {})
        if body is not None and not any(k.lower() == "content-type" for k in hdrs):
            hdrs["Content-Type"] = "application/json; charset=utf-8"
        ex = Exchange("sent", method, url, china_iso(time.time()) or "", self._shown(body_text(sent)))
        started = time.perf_counter()
        try:
            async with self._session.request(
                method, url, data=sent if body is not None else None, headers=hdrs,
                timeout=aiohttp.ClientTimeout(total=timeout or self.timeout),
            ) as resp:
                data = await resp.read()
                ex.status = resp.status
                ex.response_body = self._shown(data.decode("utf-8", errors="replace"))
                ex.seconds = round(time.perf_counter() - started, 3)
                return Reply(resp.status, data, dict(resp.headers), ex)
        except TimeoutError:
            ex.error = f"{timeout or self.timeout:g} 秒内没有应答（超时）"
        except aiohttp.ClientError as e:
            ex.error = f"连接失败：{type(e).__name__} {e}"
        ex.seconds = round(time.perf_counter() - started, 3)
        return Reply(None, b"", {}, ex, ex.error)

    async def post(self, url: str, body: bytes | str | Any, headers: dict[str, str] | None = None,
                   timeout: float | None = None) -> Reply:
        return await self.request("POST", url, body, headers, timeout)

    async def get(self, url: str, headers: dict[str, str] | None = None, timeout: float | None = None) -> Reply:
        return await self.request("GET", url, None, headers, timeout)
