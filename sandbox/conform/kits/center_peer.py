"""What the center kit plays around the center under test, on one aiohttp server (`--listen`):

- the hospitals' file server: each exam's report PDF (`/files/{examId}/report.pdf`) and its study as DICOMweb
  WADO-RS (`/dicomweb/studies/{StudyInstanceUID}`, multipart/related; type="application/dicom"), plus the
  broken files the file checks need (`/kit/missing/…` 404, `/kit/stall/…` never answers, `/kit/corrupt/…`
  bytes that are not DICOM);
- the province: `POST /mie/api/mie/saveExamRpotImgIndx`, which records every message the center forwards and
  answers as the document's example does, or with a fault planned for an index (HTTP 503, no answer, or a
  record's succFlag -1 / 0), or with HTTP 503 to everything while `down`, to see what the center does next.

Every request the center makes here is kept as evidence (`Exchange`, direction "received").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

from sandbox.conform.model import Exchange
from sandbox.spec.fields import HOP2
from sandbox.spec.formats import china_iso
from sandbox.synth.urls import REPORT_PATH, STUDY_PATH

DICOM = "application/dicom"
Fault = Literal["http-503", "stall", "reject", "partial"]


@dataclass
class Served:
    """The files of one exam the kit serves: the report PDF and the study's instances (SOP UID → path)."""

    pdf: Path
    instances: dict[str, Path]


@dataclass
class Forward:
    """One hop-2 message the center sent to the kit's province, and how the kit answered."""

    at: float  # time.monotonic() of arrival
    raw: str
    message: Any  # the JSON, or None when the body was not JSON
    exchange: Exchange
    answered: str = ""  # what the kit did: "1", "http-503", "stall", "reject", "partial"

    @property
    def msgid(self) -> str | None:
        m = self.message
        return m.get("msgid") if isinstance(m, dict) and isinstance(m.get("msgid"), str) else None

    @property
    def records(self) -> list[dict[str, Any]]:
        m = self.message
        data = m.get("data") if isinstance(m, dict) else None
        return [r for r in data if isinstance(r, dict)] if isinstance(data, list) else []

    @property
    def indexes(self) -> list[str]:
        # the example's spelling hiImgIdx (ERRATA #2) still says which exam it is; the validator grades the name
        return [str(r.get("hiImgIndx") or r.get("hiImgIdx")) for r in self.records]


@dataclass
class Peer:
    """The kit's server; `start()` binds it, `stop()` releases every stalled request and closes it."""

    host: str
    port: int
    public_host: str
    exams: dict[str, Served] = field(default_factory=dict)  # by examId
    studies: dict[str, Served] = field(default_factory=dict)  # by StudyInstanceUID
    forwards: list[Forward] = field(default_factory=list)
    fetches: list[Exchange] = field(default_factory=list)
    faults: dict[str, Fault] = field(default_factory=dict)  # hiImgIndx → the fault its next batch meets
    stall_cap: float = 30.0
    down: bool = False  # the province is away: every message is answered HTTP 503 while set
    answers: dict[str, tuple[int, str]] = field(default_factory=dict)  # msgid → (status, body) first given

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Condition()
        self._closing = asyncio.Event()

    # ---- life cycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post(HOP2.path, self._hop2)
        app.router.add_get(REPORT_PATH.replace("{exam_id}", "{exam}"), self._report)
        app.router.add_get(STUDY_PATH, self._study)
        app.router.add_get("/kit/{kind}/{name}", self._broken)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        if self.port == 0:
            self.port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base(self) -> str:
        host = f"[{self.public_host}]" if ":" in self.public_host else self.public_host
        return f"http://{host}:{self.port}"

    @property
    def province_url(self) -> str:
        return self.base + HOP2.path

    def broken_url(self, kind: str, name: str) -> str:
        return f"{self.base}/kit/{kind}/{name}"

    # ---- waiting for the center -------------------------------------------------------------------

    async def wait_for(self, condition: Callable[[], Any], timeout: float) -> Any:
        """Wait until `condition()` is truthy (checked after each request the center makes); its last value."""
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                return await asyncio.wait_for(self._changed.wait_for(condition), timeout)
        return condition()

    async def _note(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def carrying(self, index: str) -> list[Forward]:
        """The forwards whose data holds a record of `index`, in arrival order."""
        return [f for f in self.forwards if index in f.indexes]

    # ---- the province -----------------------------------------------------------------------------

    async def _hop2(self, request: web.Request) -> web.Response:
        raw = (await request.read()).decode("utf-8", errors="replace")
        ex = Exchange("received", "POST", str(request.url), china_iso(time.time()) or "", Exchange.clip(raw))
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        forward = Forward(time.monotonic(), raw, message, ex)
        self.forwards.append(forward)
        fault = next((self.faults.pop(i) for i in forward.indexes if self.faults.get(i) in ("http-503", "stall")),
                     None)
        try:
            if not isinstance(message, dict):
                forward.answered = "refused"
                return self._answer(ex, 400, {"code": 1001, "type": "error", "message": "报文不是 JSON 对象",
                                              "data": []})
            if fault == "http-503" or self.down:
                forward.answered = "http-503"
                return self._answer(ex, 503, {"code": 1099, "type": "error", "message": "一致性测试：模拟省级模块暂时不可用",
                                              "data": []})
            if fault == "stall":
                forward.answered = "stall"
                ex.error = "本工具有意不应答（模拟超时）"
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), self.stall_cap)
                return self._answer(ex, 503, {"code": 1099, "type": "error", "message": "一致性测试：模拟超时结束",
                                              "data": []})
            msgid = forward.msgid or ""
            if msgid in self.answers:  # the same msgid again: the first answer, as a province's replay log gives
                status, body = self.answers[msgid]
                forward.answered = "replay"
                ex.status, ex.response_body = status, body
                return web.Response(status=status, text=body, content_type="application/json")
            entries = []
            for index in forward.indexes:
                planned = self.faults.pop(index, None)
                if planned == "reject":
                    entries.append({"hiImgIndx": index, "succFlag": "-1", "message": "一致性测试：省级模块拒收此条（模拟）"})
                elif planned == "partial":
                    entries.append({"hiImgIndx": index, "succFlag": "0", "message": "一致性测试：部分数据未保存（模拟）"})
                else:
                    entries.append({"hiImgIndx": index, "succFlag": "1", "message": "保存数据成功"})
            forward.answered = ",".join(e["succFlag"] for e in entries)
            flags = {e["succFlag"] for e in entries}
            body_json = {"code": -1 if flags == {"-1"} else 0, "type": "success", "message": "成功", "data": entries}
            response = self._answer(ex, 200, body_json)
            if msgid:
                self.answers[msgid] = (200, ex.response_body)
            return response
        finally:
            await self._note()

    @staticmethod
    def _answer(ex: Exchange, status: int, body: dict[str, Any]) -> web.Response:
        text = json.dumps(body, ensure_ascii=False)
        ex.status, ex.response_body = status, text
        return web.Response(status=status, text=text, content_type="application/json")

    # ---- the hospitals' files ---------------------------------------------------------------------

    def _fetched(self, request: web.Request, status: int, note: str = "") -> Exchange:
        ex = Exchange("received", request.method, str(request.url), china_iso(time.time()) or "", status=status,
                      response_body=note)
        self.fetches.append(ex)
        return ex

    async def _report(self, request: web.Request) -> web.StreamResponse:
        served = self.exams.get(request.match_info["exam"])
        if served is None:
            self._fetched(request, 404, "没有这个检查")
            raise web.HTTPNotFound(text="没有这个检查的报告")
        self._fetched(request, 200, f"PDF {served.pdf.stat().st_size} 字节")
        return web.FileResponse(served.pdf, headers={"Content-Type": "application/pdf"})

    async def _study(self, request: web.Request) -> web.Response:
        served = self.studies.get(request.match_info["study"])
        if served is None:
            self._fetched(request, 404, "没有这个检查")
            raise web.HTTPNotFound(text="没有这个检查的影像")
        boundary = uuid.uuid4().hex
        chunks = []
        for path in served.instances.values():
            blob = await asyncio.to_thread(path.read_bytes)
            chunks.append(f"--{boundary}\r\nContent-Type: {DICOM}\r\nContent-Length: {len(blob)}\r\n\r\n".encode()
                          + blob + b"\r\n")
        chunks.append(f"--{boundary}--\r\n".encode())
        self._fetched(request, 200, f"DICOM {len(served.instances)} 个实例（multipart/related）")
        return web.Response(body=b"".join(chunks), headers={
            "Content-Type": f'multipart/related; type="{DICOM}"; boundary={boundary}'})

    async def _broken(self, request: web.Request) -> web.StreamResponse:
        kind = request.match_info["kind"]
        if kind == "stall":
            self._fetched(request, 0, "本工具有意不应答（模拟超时）")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self.stall_cap)
            raise web.HTTPServiceUnavailable(text="一致性测试：模拟超时结束")
        if kind == "corrupt":
            self._fetched(request, 200, "不是 DICOM 的字节（模拟损坏）")
            return web.Response(body=b"NOT-DICOM " * 64, content_type=DICOM)
        self._fetched(request, 404, "文件不存在（模拟）")
        raise web.HTTPNotFound(text="一致性测试：文件不存在（模拟）")
