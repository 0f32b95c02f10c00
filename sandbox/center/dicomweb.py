"""DICOMweb (PS3.18) and WADO-URI over the stored instances: what hop 2's `imgDldLink` points at.

`imgDldLink` = `{base}/dicomweb/studies/{StudyInstanceUID}`, so a DICOMweb client given `{base}/dicomweb`
as its service URL retrieves the study. Served:

- WADO-RS retrieve: `/studies/{study}`, `/studies/{study}/series/{series}`,
  `/studies/{study}/series/{series}/instances/{sop}` as `multipart/related; type="application/dicom"`
  (`application/dicom` alone for one instance; `application/zip` with a DICOMDIR — also what a browser
  opening the link gets — for a download; the `accept` query parameter may replace the Accept header).
  Transfer syntax (sandbox.center.syntax): `*` byte-for-byte as stored, Explicit VR Little Endian when
  none is named (PS3.18 8.7.3.5.2; big-endian, deflated and compressed instances are re-encoded or
  decoded), 406 before the 200 for a syntax that cannot be produced; each part names its syntax.
- metadata (`…/metadata`, `application/dicom+json`, Pixel Data as a BulkDataURI), frames
  (`…/frames/{n[,n…]}`: the stored compressed bitstream or uncompressed pixel data, as the Accept allows),
  bulk data (`…/bulkdata/7FE00010`), rendered (instance, frame, series and study; PNG or JPEG;
  `window=center,width` and `viewport=w,h`).
- STOW-RS (`POST /studies`, `POST /studies/{study}`) into the store C-STORE uses; `DELETE /studies/{study}`.
- QIDO-RS search: `sandbox.center.qido`.
- WADO-URI: `/wado?requestType=WADO&studyUID=…&seriesUID=…&objectUID=…&contentType=application/dicom`
  (default `image/jpeg`; also `image/png`; `frameNumber`, `windowCenter`/`windowWidth`, `rows`/`columns`,
  `transferSyntax`, `anonymize=yes`).
- Any other path under `/dicomweb`: 404, or 405 with `Allow` when the path exists for other methods.

Every answer carries `Access-Control-Allow-Origin: *` so a browser viewer on another origin can use it.
"""

from __future__ import annotations

import asyncio
import functools
import io
import logging
import sqlite3
import uuid
import warnings
from collections.abc import Iterable
from typing import Any

import aiosqlite
from aiohttp import web

from sandbox.center import dicomstore, syntax
from sandbox.center.dicomstore import InstanceInfo, media_type
from sandbox.center.domain import Center
from sandbox.center.errors import (
    BadDicomRequest,
    DicomNotFound,
    DicomProblem,
    FileProblem,
    NotAcceptable,
    PayloadTooLarge,
    UnsupportedMedia,
)
from sandbox.center.render import RenderError, Window
from sandbox.common.csrf import ANSWER_ONLY_ROUTE  # answers 404/405 and changes nothing
from sandbox.common.http import json_response
from sandbox.spec.formats import DICOM_UID_RE
from sandbox.spec.messages import CENTER as WORDS
from sandbox.typedefs import CENTER

log = logging.getLogger("sandbox.center.dicomweb")

PREFIX = "/dicomweb"
STUDY = PREFIX + "/studies/{study}"
SERIES = STUDY + "/series/{series}"
INSTANCE = SERIES + "/instances/{sop}"
WADO_URI = "/wado"

DICOM_JSON = "application/dicom+json"
CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "Content-Type, Content-Length"}
IMAGE_TYPES = ("image/png", "image/jpeg")
# STOW-RS failure reasons (PS3.18 table 10.5.3-2 / PS3.4 annex B): the instance cannot be understood, its
# SOP Instance UID is stored with other bytes (keep-first), it belongs to another study, out of resources.
STOW_CANNOT_UNDERSTAND = 0xC000
STOW_CONFLICT = 0x0111
STOW_MISMATCH = 0xA900
STOW_OUT_OF_RESOURCES = 0xA700


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


async def _instance_bytes(center: Center, row: aiosqlite.Row, wanted: str | None) -> tuple[bytes, str]:
    """The instance in the syntax asked for (NotAcceptable when it cannot be produced)."""
    data = await center.instance_bytes(row)
    stored = row["transfer_syntax"]
    if syntax.target(wanted) in ("*", stored):
        return data, stored
    try:
        return await asyncio.to_thread(syntax.convert, data, stored, wanted)
    except syntax.NotProducible as exc:
        raise NotAcceptable(str(exc)) from exc


def _check_producible(rows: Iterable[aiosqlite.Row], wanted: str | None) -> None:
    """406 before anything is sent when some instance cannot be given in the syntax asked for."""
    want = syntax.target(wanted)
    bad = sorted({r["transfer_syntax"] for r in rows if not syntax.producible(r["transfer_syntax"], want)})
    if bad:
        raise NotAcceptable(f"传输语法 {'、'.join(bad)} 的实例不能以 {want} 提供；"
                            f"可用 transfer-syntax=* 按存储的语法取回，或 {syntax.EXPLICIT_LE}")


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


async def _multipart(request: web.Request, rows: list[aiosqlite.Row], wanted: str | None) -> web.StreamResponse:
    """The instances as one multipart body. Every syntax was checked before the 200; an instance whose
    conversion still fails (a corrupt bitstream) goes out as stored, its part naming its real syntax, so the
    body is always whole."""
    center: Center = request.app[CENTER]
    _check_producible(rows, wanted)
    first = await _part_bytes(center, rows[0], wanted)
    boundary = uuid.uuid4().hex
    resp = web.StreamResponse(headers={
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}', **CORS})
    await resp.prepare(request)
    base = _base(request)
    for n, row in enumerate(rows):
        data, ts = first if n == 0 else await _part_bytes(center, row, wanted)
        location = f"{base}{PREFIX}/studies/{row['study_uid']}/series/{row['series_uid']}/instances/{row['sop_uid']}"
        head = (f"--{boundary}\r\nContent-Type: application/dicom; transfer-syntax={ts}\r\n"
                f"Content-Location: {location}\r\nContent-Length: {len(data)}\r\n\r\n").encode()
        await resp.write(head + data + b"\r\n")
    await resp.write(f"--{boundary}--\r\n".encode())
    await resp.write_eof()
    return resp


async def _part_bytes(center: Center, row: aiosqlite.Row, wanted: str | None) -> tuple[bytes, str]:
    try:
        return await _instance_bytes(center, row, wanted)
    except NotAcceptable as exc:
        log.warning("实例 %s 无法转换，按存储的传输语法发送：%s", row["sop_uid"], exc.message)
        return await center.instance_bytes(row), row["transfer_syntax"]


async def _zip(request: web.Request, rows: list[aiosqlite.Row], name: str) -> web.Response:
    """The instances as stored, with a DICOMDIR (PS3.10 media: pydicom's FileSet names the files)."""
    center: Center = request.app[CENTER]
    blobs = [await center.instance_bytes(row) for row in rows]
    from sandbox.center.media import study_zip  # pydicom's FileSet: loaded with the first zip

    body = await asyncio.to_thread(study_zip, blobs)
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
    import pydicom

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
    if not any(kind in (DICOM_JSON, "application/json", "application/*", "*/*") for kind, _ in _accept(request)):
        raise NotAcceptable(f"元数据可用类型：{DICOM_JSON}")
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
    resp.charset = None  # JSON is UTF-8 by definition; clients compare the bare media type (dicomweb-client's STOW)
    resp.headers.update(CORS)
    return resp


async def study_metadata(request: web.Request) -> web.Response:
    return await _metadata(request, "study")


async def series_metadata(request: web.Request) -> web.Response:
    return await _metadata(request, "series")


async def instance_metadata_handler(request: web.Request) -> web.Response:
    return await _metadata(request, "instance")


# ---- frames, bulk data, rendered ----------------------------------------------------------------------


def _parts_multipart(chunks: list[bytes], media: str, ts: str | None, location: str | None = None) -> web.Response:
    """Frames or rendered images as multipart/related, each part typed (and its syntax named)."""
    boundary = uuid.uuid4().hex
    part_type = media + (f"; transfer-syntax={ts}" if ts else "")
    body = bytearray()
    for chunk in chunks:
        body += f"--{boundary}\r\nContent-Type: {part_type}\r\n".encode()
        if location:
            body += f"Content-Location: {location}\r\n".encode()
        body += f"Content-Length: {len(chunk)}\r\n\r\n".encode() + chunk + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return web.Response(body=bytes(body), headers={
        "Content-Type": f'multipart/related; type="{media}"; boundary={boundary}', **CORS})


def _numbers(text: str) -> list[int]:
    try:
        numbers = [int(n) for n in text.split(",") if n.strip()]
    except ValueError:
        numbers = []
    if not numbers or any(n < 1 for n in numbers):
        raise BadDicomRequest(f"帧号「{text[:40]}」应为从 1 开始的整数，多个用逗号分隔")
    return numbers


def _frame_form(request: web.Request, stored: str) -> syntax.FrameForm:
    """The first Accept choice the stored frames can meet (PS3.18 8.7.3.5.2 and table 8.7.3-5)."""
    for kind, params in _accept(request):
        if kind == "multipart/related":
            part = params.get("type", syntax.OCTET).lower()
        elif kind in syntax.FRAME_TYPES or kind in ("*/*", "multipart/*"):
            part = kind
        else:
            continue
        form = syntax.frame_form(stored, "*" if part in ("*/*", "multipart/*") else part,
                                 params.get("transfer-syntax"))
        if form is not None:
            return form
    offer = syntax.FRAME_MEDIA.get(stored)
    choices = f'multipart/related; type="{offer}"（transfer-syntax={stored}）、' if offer else ""
    raise NotAcceptable(f"存储的传输语法为 {stored}；可用：{choices}"
                        f'multipart/related; type="application/octet-stream"（未压缩，{syntax.EXPLICIT_LE}）'
                        "、transfer-syntax=*")


async def _frame_parts(request: web.Request, numbers: list[int] | None) -> web.Response:
    """Frames (all of them when `numbers` is None) in the form the Accept header allows."""
    center: Center = request.app[CENTER]
    row = (await _rows(request, "instance"))[0]
    if not row["has_pixels"]:
        raise DicomNotFound("该实例没有像素数据")
    count = row["frames"] or 1
    numbers = numbers or list(range(1, count + 1))
    bad = [n for n in numbers if n > count]
    if bad:
        raise DicomNotFound(f"帧 {bad[0]}（该实例共 {count} 帧）")
    form = _frame_form(request, row["transfer_syntax"])
    try:
        chunks = await asyncio.to_thread(syntax.frames, await center.instance_bytes(row), numbers, form)
    except syntax.NotProducible as exc:
        raise NotAcceptable(str(exc)) from exc
    return _parts_multipart(chunks, form.media, form.ts)


async def frames(request: web.Request) -> web.Response:
    return await _frame_parts(request, _numbers(request.match_info["frames"]))


async def bulkdata(request: web.Request) -> web.Response:
    if request.match_info["tag"].upper() != "7FE00010":
        raise DicomNotFound(f"批量数据 {request.match_info['tag'][:16]}")
    return await _frame_parts(request, None)


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


async def _rendered_many(request: web.Request, level: str) -> web.Response:
    """A series or study rendered (PS3.18 10.4.1.1.3): the first frame of each instance with pixel data,
    as a multipart of images."""
    center: Center = request.app[CENTER]
    rows = [r for r in await _rows(request, level) if r["has_pixels"]]
    if not rows:
        raise DicomNotFound("该序列没有可渲染的图像" if level == "series" else "该检查没有可渲染的图像")
    kinds = [kind for kind, _ in _accept(request)]
    wanted = [params.get("type", "") for kind, params in _accept(request) if kind == "multipart/related"]
    media = _image_type([*wanted, *kinds])
    window, viewport = _window(request.query.get("window")), _viewport(request.query.get("viewport"))
    images = []
    for row in rows:
        try:
            images.append(await asyncio.to_thread(center.renders.render, functools.partial(center.read_instance, row),
                                                  row["instance_id"], 1, window, media, viewport))
        except RenderError as exc:
            raise NotAcceptable(f"实例 {row['sop_uid']}：{exc}") from exc
    return _parts_multipart(images, media, None)


async def rendered_series(request: web.Request) -> web.Response:
    return await _rendered_many(request, "series")


async def rendered_study(request: web.Request) -> web.Response:
    return await _rendered_many(request, "study")


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
    anonymize = q.get("anonymize")
    if anonymize is not None and anonymize != "yes":
        raise BadDicomRequest(f"anonymize 只能为 yes，实际为「{anonymize[:20]}」")
    wanted = [kind for kind, _ in (media_type(t) for t in q.get("contentType", "image/jpeg").split(","))]
    if "application/dicom" in wanted:
        # WADO-URI's default for application/dicom is Explicit VR Little Endian (PS3.18 9.1.2.1.7).
        data, ts = await _instance_bytes(center, row, q.get("transferSyntax") or syntax.EXPLICIT_LE)
        name = row["sop_uid"]
        if anonymize == "yes":
            from sandbox.center.media import anonymized

            data = await asyncio.to_thread(anonymized, data, center.settings.seed)
            name = "anonymized"
        return web.Response(body=data, headers={
            "Content-Type": f"application/dicom; transfer-syntax={ts}",
            "Content-Disposition": f'attachment; filename="{name}.dcm"', **CORS})
    # A rendered image carries no patient data (nothing is burned in), so anonymize=yes is met as it is.
    media_kind = _image_type(wanted)
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
    return await render_response(center, row, frame, window, media_kind, viewport)


async def preflight(request: web.Request) -> web.Response:
    """CORS preflight: DICOMweb Accept values are not CORS-safelisted."""
    return web.Response(status=204, headers={**CORS, "Access-Control-Allow-Methods": "GET, OPTIONS",
                                             "Access-Control-Allow-Headers": "Accept, Content-Type",
                                             "Access-Control-Max-Age": "86400"})


# ---- STOW-RS and DELETE ------------------------------------------------------------------------------


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The request body up to `limit` bytes (STOW bodies are larger than the JSON limit); 413 beyond."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(limit)
    body = bytearray()
    async for chunk in request.content.iter_chunked(1 << 20):
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(limit)
    return bytes(body)


def _attr(vr: str, value: Any) -> dict[str, Any]:
    """A DICOM JSON attribute (PS3.18 F.2)."""
    if value is None or value == "":
        return {"vr": vr}
    return {"vr": vr, "Value": value if isinstance(value, list) else [value]}


def _sop_item(sop_class: str, sop_uid: str) -> dict[str, Any]:
    return {"00081150": _attr("UI", sop_class), "00081155": _attr("UI", sop_uid)}


async def stow(request: web.Request) -> web.Response:
    """STOW-RS (PS3.18 10.5): store the instances of a multipart/related; type="application/dicom" body in the
    store C-STORE uses. 200 all stored, 202 some failed, 409 none stored; the answer names each instance."""
    center: Center = request.app[CENTER]
    study = _uid(request, "study") if "study" in request.match_info else None
    kind, params = media_type(request.headers.get("Content-Type", ""))
    if kind != "multipart/related" or params.get("type", "application/dicom").lower() != "application/dicom":
        raise UnsupportedMedia('请求类型应为 multipart/related; type="application/dicom"（每部分一个 DICOM 实例）')
    if not params.get("boundary"):
        raise BadDicomRequest("multipart/related 缺少 boundary 参数")
    body = await _read_body(request, center.settings.fetch_max_bytes)
    try:
        parts = dicomstore.split_multipart(body, params["boundary"])
    except FileProblem as exc:
        raise BadDicomRequest(exc.message) from exc
    if not parts:
        raise BadDicomRequest("请求体中没有 DICOM 实例")
    base = _base(request)
    stored: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for part in parts:
        status, comment, info = await _stow_part(center, part.data, study)
        if info is None or status:
            item = _sop_item(info.sop_class if info else "", info.sop_uid if info else "")
            failed.append({**item, "00081197": _attr("US", status), "00000902": _attr("LO", f"{part.label}：{comment}")})
            continue
        url = f"{base}{PREFIX}/studies/{info.study_uid}/series/{info.series_uid}/instances/{info.sop_uid}"
        stored.append({**_sop_item(info.sop_class, info.sop_uid), "00081190": _attr("UR", url)})
    answer: dict[str, Any] = {}
    if study is not None or stored:
        answer["00081190"] = _attr("UR", f"{base}{PREFIX}/studies/{study or stored[0]['00081155']['Value'][0]}")
    if stored:
        answer["00081199"] = {"vr": "SQ", "Value": stored}
    if failed:
        answer["00081198"] = {"vr": "SQ", "Value": failed}
    status = 200 if not failed else (202 if stored else 409)
    resp = json_response_typed(answer, DICOM_JSON)
    resp.set_status(status)
    return resp


async def _stow_part(center: Center, data: bytes, study: str | None) -> tuple[int, str, InstanceInfo | None]:
    """(failure reason or 0, Chinese comment, the instance's info when it was read) of one STOW part."""
    try:
        if study is not None:
            info = await asyncio.to_thread(dicomstore.inspect, data)
            if info.study_uid != study:
                return STOW_MISMATCH, WORDS["dicom_study_mismatch"].format(got=info.study_uid, expected=study), info
        info, kept = await center.store_part(data, "stow-rs")
    except DicomProblem as exc:
        return STOW_CANNOT_UNDERSTAND, exc.message, None
    except (OSError, sqlite3.Error) as exc:
        log.exception("STOW-RS 保存失败")
        return STOW_OUT_OF_RESOURCES, f"中心保存失败：{exc.__class__.__name__}", None
    if not kept:
        return STOW_CONFLICT, WORDS["dicom_conflict"].format(uid=info.sop_uid), info
    return 0, "", info


async def delete_study(request: web.Request) -> web.Response:
    """DELETE a study: its instances and files are gone from QIDO, WADO and the image page."""
    center: Center = request.app[CENTER]
    study = _uid(request, "study")
    deleted = await center.delete_study(study)
    if not deleted:
        raise DicomNotFound(f"检查 {study}")
    return json_response({"studyInstanceUID": study, "deleted": deleted,
                          "message": WORDS["study_deleted"].format(uid=study, count=deleted)})


async def unknown(request: web.Request) -> web.Response:
    """Any other /dicomweb path: 404, or 405 with Allow when the path exists for other methods."""
    allowed: set[str] = set()
    catch_all = request.match_info.route.resource
    for resource in request.app.router.resources():
        if resource is catch_all or (catch_all is not None and resource.canonical == catch_all.canonical):
            continue  # the catch-all itself, and the preflight route on the same pattern
        match, methods = await resource.resolve(request)
        if match is None:
            allowed |= methods
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound()


def setup_dicomweb(app: web.Application) -> None:
    r = app.router
    r.add_post(PREFIX + "/studies", stow)
    r.add_get(STUDY, retrieve_study)
    r.add_post(STUDY, stow)
    r.add_delete(STUDY, delete_study)
    r.add_get(STUDY + "/rendered", rendered_study)
    r.add_get(SERIES + "/rendered", rendered_series)
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
    r.add_route("*", PREFIX + "/{tail:.*}", unknown, name=ANSWER_ONLY_ROUTE)
