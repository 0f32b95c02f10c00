"""DICOMweb (PS3.18) and WADO-URI over the stored instances: what hop 2's `imgDldLink` points at.

`imgDldLink` = `{base}/dicomweb/studies/{StudyInstanceUID}`, so a DICOMweb client given `{base}/dicomweb`
as its service URL retrieves the study. Served:

- WADO-RS retrieve: `/studies/{study}`, `/studies/{study}/series/{series}`,
  `/studies/{study}/series/{series}/instances/{sop}` as `multipart/related; type="application/dicom"`
  (`application/dicom` alone for one instance; `application/zip` — also what a browser opening the link
  gets — for a download of the whole study; the `accept` query parameter may replace the Accept header). Transfer syntax: the one asked for with
  `transfer-syntax=`, Explicit VR Little Endian when none is named (PS3.18 8.7.3.5.2), `*` for as stored.
  Uncompressed instances are converted as asked; compressed ones are sent as stored, each part naming its
  real transfer syntax.
- metadata (`…/metadata`, `application/dicom+json`, Pixel Data as a BulkDataURI), frames
  (`…/frames/{n[,n…]}`, uncompressed pixel data), bulk data (`…/bulkdata/7FE00010`), rendered
  (`…/rendered`, `…/frames/{n}/rendered`, PNG or JPEG; `window=center,width` and `viewport=w,h`).
- QIDO-RS search: `sandbox.center.qido`.
- WADO-URI: `/wado?requestType=WADO&studyUID=…&seriesUID=…&objectUID=…&contentType=application/dicom`
  (default `image/jpeg`; also `image/png`; `frameNumber`, `windowCenter`/`windowWidth`, `rows`/`columns`).

Every answer carries `Access-Control-Allow-Origin: *` so a browser viewer on another origin can use it.
"""

from __future__ import annotations

import asyncio
import io
import uuid
import warnings
import zipfile
from collections.abc import Iterable
from typing import Any

import aiosqlite
import pydicom
import pydicom.uid
from aiohttp import web

from sandbox.center.dicomstore import media_type
from sandbox.center.domain import Center
from sandbox.center.errors import BadDicomRequest, DicomNotFound, NotAcceptable
from sandbox.center.render import RenderError, Window
from sandbox.common.http import json_response
from sandbox.spec.formats import DICOM_UID_RE
from sandbox.typedefs import CENTER

PREFIX = "/dicomweb"
STUDY = PREFIX + "/studies/{study}"
SERIES = STUDY + "/series/{series}"
INSTANCE = SERIES + "/instances/{sop}"
WADO_URI = "/wado"

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
UNCOMPRESSED = frozenset({IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE})
DICOM_JSON = "application/dicom+json"
CONVERT_IN_THREAD = 1024 * 1024
CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "Content-Type, Content-Length"}
IMAGE_TYPES = ("image/png", "image/jpeg")


# ---- helpers ------------------------------------------------------------------------------------------


def _uid(request: web.Request, name: str) -> str:
    value = request.match_info[name]
    if not DICOM_UID_RE.match(value):
        raise BadDicomRequest(f"「{value[:80]}」不是合法的 UID")
    return value


def _base(request: web.Request) -> str:
    center: Center = request.app[CENTER]
    if center.settings.public_base_url:
        return center.base_url
    return f"{request.scheme}://{request.host}"


def _accept(request: web.Request) -> list[tuple[str, dict[str, str]]]:
    """Media ranges of the `accept` query parameter or the Accept header, best first."""
    raw = request.query.get("accept") or request.headers.get("Accept") or "*/*"
    ranges = []
    for n, item in enumerate(raw.split(",")):
        if not item.strip():
            continue
        kind, params = media_type(item)
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 1.0
        ranges.append((-q, n, kind, params))
    ranges.sort()
    return [(kind, params) for _, _, kind, params in ranges]


def _retrieve_form(request: web.Request, single: bool) -> tuple[str, str | None]:
    """('multipart' | 'dicom' | 'zip', transfer syntax asked for). A browser following imgDldLink (it asks for
    text/html first) gets the study as a zip of .dcm files to save; DICOMweb clients never ask for HTML."""
    ranges = _accept(request)
    if ranges and ranges[0][0] == "text/html":
        return "zip", "*"
    for kind, params in ranges:
        if kind == "multipart/related":
            if params.get("type", "application/dicom").lower() == "application/dicom":
                return "multipart", params.get("transfer-syntax")
        elif kind == "application/dicom" and single:
            return "dicom", params.get("transfer-syntax")
        elif kind == "application/zip":
            return "zip", "*"
        elif kind in ("*/*", "multipart/*", "application/*"):
            return "multipart", None
    raise NotAcceptable('可用类型：multipart/related; type="application/dicom"、application/dicom（单个实例）、application/zip')


def _convert(data: bytes, stored: str, wanted: str | None) -> tuple[bytes, str]:
    """The instance in the wanted transfer syntax when it can be converted without a codec."""
    wanted = wanted or EXPLICIT_LE
    if wanted == "*" or wanted == stored or stored not in UNCOMPRESSED or wanted not in UNCOMPRESSED:
        return data, stored
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(io.BytesIO(data))
        ds.file_meta.TransferSyntaxUID = pydicom.uid.UID(wanted)
        buf = io.BytesIO()
        ds.save_as(buf, implicit_vr=wanted == IMPLICIT_LE, little_endian=wanted != EXPLICIT_BE,
                   enforce_file_format=True)
    return buf.getvalue(), wanted


async def _instance_bytes(center: Center, row: aiosqlite.Row, wanted: str | None) -> tuple[bytes, str]:
    data = await center.instance_bytes(row)
    stored = row["transfer_syntax"]
    if (wanted or EXPLICIT_LE) in ("*", stored) or stored not in UNCOMPRESSED:
        return data, stored
    if len(data) > CONVERT_IN_THREAD:
        return await asyncio.to_thread(_convert, data, stored, wanted)
    return _convert(data, stored, wanted)


async def _rows(request: web.Request, level: str) -> list[aiosqlite.Row]:
    """The stored instances a URL names (study, series or one instance); DicomNotFound when none."""
    center: Center = request.app[CENTER]
    study = _uid(request, "study")
    series = _uid(request, "series") if level in ("series", "instance") else None
    sop = _uid(request, "sop") if level == "instance" else None
    rows = await center.store.study_instances([study], series, sop)
    if not rows:
        what = {"study": f"检查 {study}", "series": f"序列 {series}", "instance": f"实例 {sop}"}[level]
        raise DicomNotFound(what)
    return rows


# ---- WADO-RS retrieve ---------------------------------------------------------------------------------


async def _multipart(request: web.Request, rows: Iterable[aiosqlite.Row], wanted: str | None) -> web.StreamResponse:
    center: Center = request.app[CENTER]
    boundary = uuid.uuid4().hex
    resp = web.StreamResponse(headers={
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}', **CORS})
    await resp.prepare(request)
    base = _base(request)
    for row in rows:
        data, ts = await _instance_bytes(center, row, wanted)
        location = f"{base}{PREFIX}/studies/{row['study_uid']}/series/{row['series_uid']}/instances/{row['sop_uid']}"
        head = (f"--{boundary}\r\nContent-Type: application/dicom; transfer-syntax={ts}\r\n"
                f"Content-Location: {location}\r\nContent-Length: {len(data)}\r\n\r\n").encode()
        await resp.write(head + data + b"\r\n")
    await resp.write(f"--{boundary}--\r\n".encode())
    await resp.write_eof()
    return resp


async def _zip(request: web.Request, rows: list[aiosqlite.Row], name: str) -> web.Response:
    center: Center = request.app[CENTER]

    def build() -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
            for n, row in enumerate(rows, 1):
                series = row["series_number"] if row["series_number"] is not None else 0
                number = row["instance_number"] if row["instance_number"] is not None else n
                zf.writestr(f"S{series:04d}/I{number:05d}_{n:05d}.dcm", center.read_instance(row))
        return buf.getvalue()

    body = await asyncio.to_thread(build)
    return web.Response(body=body, content_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{name}.zip"', **CORS})


async def _retrieve(request: web.Request, level: str) -> web.StreamResponse:
    rows = await _rows(request, level)
    form, wanted = _retrieve_form(request, single=level == "instance")
    if form == "zip":
        return await _zip(request, rows, rows[0]["study_uid"])
    if form == "dicom":
        data, ts = await _instance_bytes(request.app[CENTER], rows[0], wanted)
        return web.Response(body=data, headers={"Content-Type": f"application/dicom; transfer-syntax={ts}", **CORS})
    return await _multipart(request, rows, wanted)


async def retrieve_study(request: web.Request) -> web.StreamResponse:
    return await _retrieve(request, "study")


async def retrieve_series(request: web.Request) -> web.StreamResponse:
    return await _retrieve(request, "series")


async def retrieve_instance(request: web.Request) -> web.StreamResponse:
    return await _retrieve(request, "instance")


# ---- metadata -----------------------------------------------------------------------------------------


def instance_metadata(data: bytes, row: aiosqlite.Row, base: str) -> dict[str, Any]:
    """The DICOM JSON model of one instance (PS3.18 F.2), its Pixel Data as a BulkDataURI."""
    url = f"{base}{PREFIX}/studies/{row['study_uid']}/series/{row['series_uid']}/instances/{row['sop_uid']}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        meta: dict[str, Any] = ds.to_json_dict(
            bulk_data_threshold=4096,
            bulk_data_element_handler=lambda elem: f"{url}/bulkdata/{elem.tag:08X}",
        )
    meta["00020010"] = {"vr": "UI", "Value": [row["transfer_syntax"]]}
    if row["has_pixels"]:
        bits = int(ds.get("BitsAllocated", 16) or 16)
        meta["7FE00010"] = {"vr": "OW" if bits > 8 else "OB", "BulkDataURI": f"{url}/bulkdata/7FE00010"}
    meta["00081190"] = {"vr": "UR", "Value": [url]}
    return meta


async def _metadata(request: web.Request, level: str) -> web.Response:
    center: Center = request.app[CENTER]
    rows = await _rows(request, level)
    base = _base(request)
    out = []
    for row in rows:
        key = (row["instance_id"], base)
        meta = center.metadata_cache.get(key)
        if meta is None:
            meta = instance_metadata(await center.instance_bytes(row), row, base)
            center.metadata_cache.put(key, meta)
        out.append(meta)
    return json_response_typed(out, DICOM_JSON)


def json_response_typed(body: Any, content_type: str) -> web.Response:
    resp = json_response(body)
    resp.content_type = content_type
    resp.headers.update(CORS)
    return resp


async def study_metadata(request: web.Request) -> web.Response:
    return await _metadata(request, "study")


async def series_metadata(request: web.Request) -> web.Response:
    return await _metadata(request, "series")


async def instance_metadata_handler(request: web.Request) -> web.Response:
    return await _metadata(request, "instance")


# ---- frames, bulk data, rendered ----------------------------------------------------------------------


def _pixel_bytes(data: bytes) -> tuple[bytes, int, str]:
    """(Pixel Data value, bytes per frame, transfer syntax) of an uncompressed instance."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(io.BytesIO(data))
    ts = str(ds.file_meta.get("TransferSyntaxUID", ""))
    if "PixelData" not in ds:
        raise DicomNotFound("该实例没有像素数据")
    if ts not in (IMPLICIT_LE, EXPLICIT_LE):
        raise NotAcceptable(f"传输语法 {ts} 的像素数据只能随实例整体下载")
    bits = int(ds.get("BitsAllocated", 16))
    if bits % 8:
        raise NotAcceptable(f"BitsAllocated {bits} 的像素数据只能随实例整体下载")
    frame_len = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1)) * bits // 8
    return bytes(ds.PixelData), frame_len, ts


def _octet_multipart(request: web.Request, chunks: list[bytes], ts: str) -> web.Response:
    boundary = uuid.uuid4().hex
    body = bytearray()
    for chunk in chunks:
        body += (f"--{boundary}\r\nContent-Type: application/octet-stream; transfer-syntax={ts}\r\n"
                 f"Content-Length: {len(chunk)}\r\n\r\n").encode()
        body += chunk + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return web.Response(body=bytes(body), headers={
        "Content-Type": f'multipart/related; type="application/octet-stream"; boundary={boundary}', **CORS})


def _numbers(text: str) -> list[int]:
    try:
        numbers = [int(n) for n in text.split(",") if n.strip()]
    except ValueError:
        numbers = []
    if not numbers or any(n < 1 for n in numbers):
        raise BadDicomRequest(f"帧号「{text[:40]}」应为从 1 开始的整数，多个用逗号分隔")
    return numbers


async def frames(request: web.Request) -> web.Response:
    center: Center = request.app[CENTER]
    row = (await _rows(request, "instance"))[0]
    numbers = _numbers(request.match_info["frames"])
    pixels, frame_len, ts = await asyncio.to_thread(_pixel_bytes, await center.instance_bytes(row))
    count = row["frames"] or 1
    bad = [n for n in numbers if n > count]
    if bad:
        raise BadDicomRequest(f"帧号 {bad[0]} 超出范围 1-{count}")
    return _octet_multipart(request, [pixels[(n - 1) * frame_len:n * frame_len] for n in numbers], ts)


async def bulkdata(request: web.Request) -> web.Response:
    center: Center = request.app[CENTER]
    row = (await _rows(request, "instance"))[0]
    if request.match_info["tag"].upper() != "7FE00010":
        raise DicomNotFound(f"批量数据 {request.match_info['tag'][:16]}")
    pixels, _, ts = await asyncio.to_thread(_pixel_bytes, await center.instance_bytes(row))
    return _octet_multipart(request, [pixels], ts)


def _window(text: str | None) -> Window | None:
    if not text:
        return None
    parts = text.split(",")
    try:
        center, width = float(parts[0]), float(parts[1])
    except (ValueError, IndexError) as exc:
        raise BadDicomRequest(f"window「{text[:40]}」应为 窗位,窗宽") from exc
    if width <= 0:
        raise BadDicomRequest("窗宽应大于 0")
    return Window(center, width)


def _viewport(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        w, h = (int(v) for v in text.split(",")[:2])
    except ValueError as exc:
        raise BadDicomRequest(f"viewport「{text[:40]}」应为 宽,高") from exc
    if not (0 < w <= 4096 and 0 < h <= 4096):
        raise BadDicomRequest("viewport 宽高应在 1-4096 之间")
    return w, h


def _image_type(candidates: Iterable[str]) -> str:
    for kind in candidates:
        if kind in IMAGE_TYPES:
            return kind
        if kind in ("*/*", "image/*"):
            return "image/png"
    raise NotAcceptable("渲染结果可用类型：image/png、image/jpeg")


async def render_response(center: Center, row: aiosqlite.Row, frame: int, window: Window | None, media: str,
                          viewport: tuple[int, int] | None) -> web.Response:
    try:
        data = await asyncio.to_thread(center.renders.render, lambda: center.read_instance(row), row["instance_id"],
                                       frame, window, media, viewport)
    except RenderError as exc:
        raise NotAcceptable(str(exc)) from exc
    return web.Response(body=data, content_type=media, headers={"Cache-Control": "max-age=3600", **CORS})


async def _rendered(request: web.Request, frame: int) -> web.Response:
    row = (await _rows(request, "instance"))[0]
    media = _image_type(kind for kind, _ in _accept(request))
    return await render_response(request.app[CENTER], row, frame, _window(request.query.get("window")), media,
                                 _viewport(request.query.get("viewport")))


async def rendered_instance(request: web.Request) -> web.Response:
    return await _rendered(request, 1)


async def rendered_frame(request: web.Request) -> web.Response:
    numbers = _numbers(request.match_info["frame"])
    return await _rendered(request, numbers[0])


# ---- WADO-URI -----------------------------------------------------------------------------------------


async def wado_uri(request: web.Request) -> web.StreamResponse:
    """PS3.18 chapter 9 (URI service): one instance as DICOM or as an image."""
    center: Center = request.app[CENTER]
    q = request.query
    if q.get("requestType") != "WADO":
        raise BadDicomRequest("requestType 应为 WADO")
    uids = {}
    for name in ("studyUID", "seriesUID", "objectUID"):
        value = q.get(name, "")
        if not DICOM_UID_RE.match(value):
            raise BadDicomRequest(f"{name}「{value[:80]}」不是合法的 UID")
        uids[name] = value
    rows = await center.store.study_instances([uids["studyUID"]], uids["seriesUID"], uids["objectUID"])
    if not rows:
        raise DicomNotFound(f"实例 {uids['objectUID']}")
    row = rows[0]
    wanted = [kind for kind, _ in (media_type(t) for t in q.get("contentType", "image/jpeg").split(","))]
    if "application/dicom" in wanted:
        data, ts = await _instance_bytes(center, row, q.get("transferSyntax"))
        return web.Response(body=data, headers={
            "Content-Type": "application/dicom",
            "Content-Disposition": f'attachment; filename="{row["sop_uid"]}.dcm"', **CORS})
    media = _image_type(wanted)
    try:
        frame = int(q.get("frameNumber", "1"))
    except ValueError as exc:
        raise BadDicomRequest("frameNumber 应为整数") from exc
    window = None
    if q.get("windowCenter") and q.get("windowWidth"):
        window = _window(f"{q['windowCenter']},{q['windowWidth']}")
    viewport = None
    if q.get("rows") or q.get("columns"):
        viewport = _viewport(f"{q.get('columns') or q.get('rows')},{q.get('rows') or q.get('columns')}")
    return await render_response(center, row, frame, window, media, viewport)


async def preflight(request: web.Request) -> web.Response:
    """CORS preflight: DICOMweb Accept values are not CORS-safelisted."""
    return web.Response(status=204, headers={**CORS, "Access-Control-Allow-Methods": "GET, OPTIONS",
                                             "Access-Control-Allow-Headers": "Accept, Content-Type",
                                             "Access-Control-Max-Age": "86400"})


def setup_dicomweb(app: web.Application) -> None:
    r = app.router
    r.add_get(STUDY, retrieve_study)
    r.add_get(STUDY + "/metadata", study_metadata)
    r.add_get(SERIES, retrieve_series)
    r.add_get(SERIES + "/metadata", series_metadata)
    r.add_get(INSTANCE, retrieve_instance)
    r.add_get(INSTANCE + "/metadata", instance_metadata_handler)
    r.add_get(INSTANCE + "/rendered", rendered_instance)
    r.add_get(INSTANCE + "/frames/{frames}", frames)
    r.add_get(INSTANCE + "/frames/{frame}/rendered", rendered_frame)
    r.add_get(INSTANCE + "/bulkdata/{tag}", bulkdata)
    r.add_get(WADO_URI, wado_uri)
    r.add_route("OPTIONS", PREFIX + "/{tail:.*}", preflight)
