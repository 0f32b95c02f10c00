"""HTTP in and out for the hospital: the files it names in its records, and a small status endpoint.

Files are streamed from disk (FileResponse, or chunked multipart/zip writers), never held whole in memory.
"""

from __future__ import annotations

import asyncio
import uuid
import zipfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from sandbox.common.http import json_response
from sandbox.hospital.domain import Hospital
from sandbox.hospital.errors import HospitalError
from sandbox.synth.urls import INSTANCE_PATH, REPORT_PATH, SERIES_PATH, STUDY_PATH, ZIP_PATH
from sandbox.typedefs import HOSPITAL

CHUNK = 256 * 1024
DICOM = "application/dicom"
_UID = r"[0-9.]{1,64}"
_ID = r"[A-Za-z0-9_-]{1,64}"


def _route(template: str) -> str:
    """A path template of sandbox.synth.urls with the variable patterns aiohttp matches."""
    return (template.replace("{exam_id}", "{exam_id:" + _ID + "}").replace("{study}", "{study:" + _UID + "}")
            .replace("{series}", "{series:" + _UID + "}").replace("{instance}", "{instance:" + _UID + "}"))


@web.middleware
async def hospital_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Map HospitalError to a JSON body with its Chinese message and HTTP status."""
    try:
        return await handler(request)
    except HospitalError as exc:
        return json_response(exc.body(), status=exc.status)


def _hospital(request: web.Request) -> Hospital:
    hospital: Hospital = request.app[HOSPITAL]
    return hospital


async def report(request: web.Request) -> web.StreamResponse:
    path = await _hospital(request).report_file(request.match_info["exam_id"])
    return web.FileResponse(path, chunk_size=CHUNK, headers={"Content-Type": "application/pdf"})


def _wants_multipart(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "*/*")
    return "multipart/related" in accept


def _accepts(request: web.Request, *types: str) -> bool:
    accept = request.headers.get("Accept", "*/*")
    return any(t in accept for t in types) or "*/*" in accept or "multipart/*" in accept


async def _read_chunks(path: Path) -> Any:
    loop = asyncio.get_running_loop()
    with path.open("rb") as fh:
        while True:
            chunk = await loop.run_in_executor(None, fh.read, CHUNK)
            if not chunk:
                return
            yield chunk


async def _multipart(request: web.Request, files: list[tuple[Path, int, dict[str, Any]]]) -> web.StreamResponse:
    """DICOMweb WADO-RS response: multipart/related; type="application/dicom", one part per instance."""
    if not _accepts(request, "multipart/related", "application/dicom"):
        raise HospitalError("not_acceptable", accept=request.headers.get("Accept", ""))
    boundary = uuid.uuid4().hex
    heads = [f"--{boundary}\r\nContent-Type: {DICOM}\r\nContent-Length: {size}\r\n\r\n".encode()
             for _, size, _ in files]
    tail = f"--{boundary}--\r\n".encode()
    length = sum(len(h) + size + 2 for h, (_, size, _) in zip(heads, files, strict=True)) + len(tail)
    resp = web.StreamResponse(headers={
        "Content-Type": f'multipart/related; type="{DICOM}"; boundary={boundary}',
        "Content-Length": str(length),
    })
    await resp.prepare(request)
    for head, (path, _, _) in zip(heads, files, strict=True):
        await resp.write(head)
        async for chunk in _read_chunks(path):
            await resp.write(chunk)
        await resp.write(b"\r\n")
    await resp.write(tail)
    await resp.write_eof()
    return resp


async def study(request: web.Request) -> web.StreamResponse:
    files = await _hospital(request).study_files(request.match_info["study"])
    return await _multipart(request, files)


async def series(request: web.Request) -> web.StreamResponse:
    m = request.match_info
    return await _multipart(request, await _hospital(request).study_files(m["study"], m["series"]))


async def instance(request: web.Request) -> web.StreamResponse:
    """One instance: application/dicom by default, multipart when the client asks for it (WADO-RS)."""
    m = request.match_info
    files = await _hospital(request).study_files(m["study"], m["series"], m["instance"])
    if _wants_multipart(request):
        return await _multipart(request, files)
    path, _, row = files[0]
    return web.FileResponse(path, chunk_size=CHUNK, headers={
        "Content-Type": DICOM, "Content-Disposition": f'attachment; filename="{row["sop_uid"]}.dcm"'})


class _ChunkSink:
    """A write-only file object for zipfile; the handler drains what zipfile wrote after each member."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        return None

    def drain(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out


async def study_zip(request: web.Request) -> web.StreamResponse:
    """The exam's DICOM files as application/zip (stored, not compressed), streamed member by member."""
    exam_id = request.match_info["exam_id"]
    files = await _hospital(request).exam_files(exam_id)
    resp = web.StreamResponse(headers={"Content-Type": "application/zip",
                                       "Content-Disposition": f'attachment; filename="{exam_id}.zip"'})
    await resp.prepare(request)
    sink = _ChunkSink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as zf:  # type: ignore[call-overload]
        for path, name in files:
            with zf.open(name, "w") as member:
                async for chunk in _read_chunks(path):
                    member.write(chunk)
                    await resp.write(sink.drain())
            await resp.write(sink.drain())
    await resp.write(sink.drain())
    await resp.write_eof()
    return resp


async def status(request: web.Request) -> web.Response:
    """Who this hospital is and what it has made and sent."""
    h = _hospital(request)
    counts = await h.store.counts()
    return json_response({
        "role": "医疗机构及检查检验机构",
        "fixmedinsCode": h.institution.code,
        "fixmedinsName": h.institution.name,
        "seed": str(h.seed),
        "baseUrl": h.base_url,
        "exams": counts["exams"],
        "instances": counts["instances"],
        "sentMessages": counts["sent_messages"],
        "answers": counts["answers"],
    })


def setup(app: web.Application) -> None:
    app.router.add_get(_route(REPORT_PATH), report)
    app.router.add_get(_route(ZIP_PATH), study_zip)
    app.router.add_get(_route(STUDY_PATH), study)
    app.router.add_get(_route(SERIES_PATH), series)
    app.router.add_get(_route(INSTANCE_PATH), instance)
    app.router.add_get("/api/hospital/status", status)
