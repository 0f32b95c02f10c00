"""Small DICOM/PDF fixtures, hop-1 records and a file server the center can fetch from."""

from __future__ import annotations

import asyncio
import base64
import io
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian, MRImageStorage
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from sandbox.config import Institution, Settings
from sandbox.province.samples import record as hop2_record
from sandbox.spec.fields import HOP1, HOP2
from sandbox.spec.formats import make_msgid

HOP1_PATH = HOP1.path
BASE_DAY = datetime(2025, 3, 1, 8, 0, 0)
ROOT = "1.2.826.0.1.3680043.10.1234"  # a UID root for test objects
SOP_CLASSES = {"CT": CTImageStorage, "MR": MRImageStorage}


def uid(*parts: int) -> str:
    return ".".join([ROOT, *map(str, parts)])


def study_uid_for(n: int) -> str:
    return uid(1, n)


def instance(*, n: int = 0, series: int = 1, number: int = 1, patient_name: str = "李丽",
             patient_id: str | None = None, study_date: str | None = None, modality: str = "CT",
             study_uid: str | None = None, size: int = 32, implicit: bool = False,
             sop_uid: str | None = None, frames: int = 1) -> bytes:
    """One small Part-10 instance of exam n, agreeing with `record(settings, n)` unless told otherwise."""
    sop_uid = sop_uid or uid(3, n, series, number)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SOP_CLASSES.get(modality, CTImageStorage)
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = study_date or (BASE_DAY + timedelta(days=n % 300)).strftime("%Y%m%d")
    ds.Modality = modality
    ds.PatientName = patient_name
    ds.PatientID = patient_id if patient_id is not None else f"P{n:010d}"
    ds.StudyInstanceUID = study_uid or study_uid_for(n)
    ds.SeriesInstanceUID = uid(2, n, series)
    ds.SeriesNumber = series
    ds.SeriesDescription = f"测试序列 {series}"
    ds.InstanceNumber = number
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleIntercept, ds.RescaleSlope = "-1024", "1"
    ds.WindowCenter, ds.WindowWidth = "40", "400"
    yy, xx = np.mgrid[0:size, 0:size]
    frames_px = []
    for f in range(frames):
        disc = ((xx - size / 2) ** 2 + (yy - size / 2) ** 2 < (size / 3) ** 2) * 200
        frames_px.append((1024 - 100 + (xx * 7 + yy * 3 + number * 5 + f * 11) % 300 + disc).astype(np.uint16))
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PixelData = np.stack(frames_px).tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def study(n: int, count: int = 3, **kw: Any) -> list[bytes]:
    return [instance(n=n, number=i + 1, **kw) for i in range(count)]


def multipart(parts: Iterable[bytes], boundary: str = "testboundary42") -> tuple[str, bytes]:
    body = bytearray()
    for p in parts:
        body += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + p + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return f'multipart/related; type="application/dicom"; boundary={boundary}', bytes(body)


def zip_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def pdf(text: str = "检查报告 Report") -> bytes:
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    c.drawString(72, 760, text)
    c.showPage()
    c.save()
    return buf.getvalue()


def b64(data: bytes, media: str | None = None) -> str:
    text = base64.b64encode(data).decode()
    return f"data:{media};base64,{text}" if media else text


def record(settings: Settings, n: int, pdf_url: str, dcm: str, **overrides: Any) -> dict[str, Any]:
    """A hop-1 record of exam n (valid in strict mode) naming its two files."""
    rec = hop2_record(settings, n)
    for code in ("stogInsUscc", "examRpotLinkUrl", "imgInfoLinkUrl", "imgDldLink"):
        rec.pop(code)
    rec["postcode"] = rec.pop("poscode")
    rec["examRpotPdfI"] = pdf_url
    rec["imgInfoDcm"] = dcm
    assert set(rec) <= set(HOP1.by_code) and not set(rec) - set(HOP1.by_code) - set(HOP2.by_code)
    rec.update(overrides)
    return rec


def message(settings: Settings, records: list[dict[str, Any]], seq: int = 1, hospital: Institution | None = None,
            **overrides: Any) -> dict[str, Any]:
    """A saveExamRpotImgInfo message from a hospital (the first configured one by default)."""
    hospital = hospital or settings.hospitals[0]
    msg: dict[str, Any] = {
        "infno": HOP1.infno,
        "msgid": make_msgid(hospital.code, BASE_DAY + timedelta(seconds=seq // 10000), seq),
        "infTime": "2025-03-01 08:00:00",
        "infCode": hospital.code,
        "key": hospital.key,
        "data": records,
    }
    msg.update(overrides)
    return msg


@dataclass
class Blob:
    body: bytes
    content_type: str
    status: int = 200
    delay: float = 0.0
    chunked: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    hits: int = 0


@dataclass
class FileServer:
    """A loopback HTTP server answering registered paths with registered bytes."""

    blobs: dict[str, Blob] = field(default_factory=dict)
    server: TestServer | None = None

    def add(self, path: str, body: bytes, content_type: str = "application/octet-stream", **kw: Any) -> str:
        self.blobs[path] = Blob(body, content_type, **kw)
        return self.url(path)

    def url(self, path: str) -> str:
        assert self.server is not None
        return str(self.server.make_url(path))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        blob = self.blobs.get(request.path)
        if blob is None:
            return web.Response(status=404, text="not found")
        blob.hits += 1
        if blob.delay:
            await asyncio.sleep(blob.delay)
        if blob.chunked:
            resp = web.StreamResponse(status=blob.status, headers={"Content-Type": blob.content_type})
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            for i in range(0, len(blob.body), 1000):
                await resp.write(blob.body[i:i + 1000])
            await resp.write_eof()
            return resp
        return web.Response(status=blob.status, body=blob.body,
                            headers={"Content-Type": blob.content_type, **blob.headers})

    async def start(self) -> FileServer:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self.handle)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()


def answers(body: dict[str, Any]) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = body["data"]
    return data
