"""The three hop-2 links in use: the report page, the image page with rendered frames, and DICOMweb/WADO."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from aiohttp.test_utils import TestClient
from dicomweb_client.api import DICOMwebClient
from PIL import Image

from sandbox.config import Settings
from tests.center.helpers import (
    FileServer,
    answers,
    instance,
    message,
    multipart,
    pdf,
    record,
    study,
    study_uid_for,
)
from tests.center.test_ingest import send, status


async def ingest(center: TestClient, files: FileServer, settings: Settings, n: int, parts: list[bytes],
                 seq: int = 1) -> dict[str, Any]:
    ctype, body = multipart(parts)
    rec = record(settings, n, files.add(f"/r{n}.pdf", pdf(f"report {n}"), "application/pdf"),
                 files.add(f"/s{n}", body, ctype))
    assert answers(await send(center, message(settings, [rec], seq=seq)))[0]["succFlag"] == "1"
    return await status(center, rec["hiImgIndx"])


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def decoded_png(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return np.asarray(image)


async def test_report_page_shows_the_report_and_embeds_the_pdf(center: TestClient, files: FileServer,
                                                               settings: Settings) -> None:
    st = await ingest(center, files, settings, 40, study(40, 2))
    resp = await center.get(path_of(st["links"]["examRpotLinkUrl"]))
    assert resp.status == 200 and resp.content_type == "text/html"
    page = await resp.text()
    assert "双肺纹理清晰，未见明显实质性病变。" in page  # imgDscr
    assert "胸部CT平扫未见明显异常。" in page  # diagRslt
    assert "影像描述" in page and "诊断结果" in page and "李丽" in page
    assert "510802" in page and "*" in page  # certno shown masked
    pdf_path = re.search(r'data="([^"]+/pdf)"', page)
    assert pdf_path is not None
    pdf_resp = await center.get(pdf_path.group(1))
    assert pdf_resp.content_type == "application/pdf" and (await pdf_resp.read()).startswith(b"%PDF-")


async def test_image_page_lists_series_and_frames_render_as_png(center: TestClient, files: FileServer,
                                                                 settings: Settings) -> None:
    parts = study(41, 3) + [instance(n=41, series=2, number=1, frames=2)]
    st = await ingest(center, files, settings, 41, parts)
    resp = await center.get(path_of(st["links"]["imgInfoLinkUrl"]))
    assert resp.status == 200
    page = await resp.text()
    assert 'id="slider"' in page and "测试序列 1" in page and "测试序列 2" in page
    manifest = re.search(r'<script type="application/json" id="manifest">(.*?)</script>', page, re.S)
    assert manifest is not None
    import json

    series = json.loads(manifest.group(1))["series"]
    assert [len(s["slices"]) for s in series] == [3, 2]
    s = series[1]
    sop, frame, _ = s["slices"][1]
    url = f"/dicomweb/studies/{s['study']}/series/{s['uid']}/instances/{sop}/frames/{frame}/rendered"
    png = await center.get(url)
    assert png.status == 200 and png.content_type == "image/png"
    pixels = decoded_png(await png.read())
    assert pixels.shape == (32, 32) and pixels.std() > 5 and len(np.unique(pixels)) > 10
    narrow = decoded_png(await (await center.get(url + "?window=40,10")).read())
    assert not np.array_equal(narrow, pixels)  # the window asked for changes the picture
    thumb = await center.get(url + "?viewport=16,16")
    assert Image.open(io.BytesIO(await thumb.read())).size == (16, 16)


async def test_unknown_exam_pages_answer_404_in_chinese(center: TestClient) -> None:
    for path in ("/report/0123456789abcdef0123456789abcdef", "/viewer/nope", "/report/nope/pdf"):
        resp = await center.get(path)
        assert resp.status == 404 and resp.content_type == "text/html" and "未找到检查" in await resp.text()
    resp = await center.get("/api/exams/NOPE")
    assert resp.status == 404 and (await resp.json())["code"] == 1070


async def test_dicomweb_client_retrieves_the_stored_instances(center: TestClient, files: FileServer,
                                                              settings: Settings) -> None:
    parts = study(42, 3) + [instance(n=42, series=2, number=1, implicit=True)]
    st = await ingest(center, files, settings, 42, parts)
    uid = st["images"]["studyInstanceUID"]
    stored = {pydicom.dcmread(io.BytesIO(p)).SOPInstanceUID for p in parts}
    base = st["links"]["imgDldLink"].rsplit("/studies/", 1)[0]
    client = DICOMwebClient(url=base)

    def retrieve() -> dict[str, Any]:
        study_ds = client.retrieve_study(uid)
        series_ds = client.retrieve_series(uid, study_ds[0].SeriesInstanceUID)
        one = client.retrieve_instance(uid, study_ds[0].SeriesInstanceUID, study_ds[0].SOPInstanceUID)
        as_stored = client.retrieve_study(uid, media_types=(("application/dicom", "*"),))
        return {
            "study": study_ds, "series": series_ds, "one": one, "as_stored": as_stored,
            "metadata": client.retrieve_study_metadata(uid),
            "studies": client.search_for_studies(search_filters={"StudyInstanceUID": uid}),
            "series_list": client.search_for_series(uid),
            "frames": client.retrieve_instance_frames(uid, study_ds[0].SeriesInstanceUID,
                                                      study_ds[0].SOPInstanceUID, [1]),
        }

    got = await asyncio.to_thread(retrieve)
    assert {ds.SOPInstanceUID for ds in got["study"]} == stored
    assert all(ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1" for ds in got["study"])
    assert {ds.file_meta.TransferSyntaxUID for ds in got["as_stored"]} == {"1.2.840.10008.1.2.1", "1.2.840.10008.1.2"}
    assert np.array_equal(got["as_stored"][0].pixel_array, got["study"][0].pixel_array)
    assert len(got["series"]) == 3 and got["one"].SOPInstanceUID in stored
    assert {m["00080018"]["Value"][0] for m in got["metadata"]} == stored
    assert all("BulkDataURI" in m["7FE00010"] for m in got["metadata"])
    assert got["studies"][0]["00201208"]["Value"] == [4] and len(got["series_list"]) == 2
    assert len(got["frames"][0]) == 32 * 32 * 2


async def test_wado_uri_returns_the_instance_and_images(center: TestClient, files: FileServer,
                                                        settings: Settings) -> None:
    parts = study(43, 1)
    await ingest(center, files, settings, 43, parts)
    ds = pydicom.dcmread(io.BytesIO(parts[0]))
    q = f"requestType=WADO&studyUID={study_uid_for(43)}&seriesUID={ds.SeriesInstanceUID}&objectUID={ds.SOPInstanceUID}"
    dcm = await center.get(f"/wado?{q}&contentType=application/dicom")
    assert dcm.status == 200 and await dcm.read() == parts[0]
    jpeg = await center.get(f"/wado?{q}")
    assert jpeg.content_type == "image/jpeg" and Image.open(io.BytesIO(await jpeg.read())).format == "JPEG"
    bad = await center.get("/wado?requestType=WADO&studyUID=x")
    assert bad.status == 400 and (await bad.json())["code"] == 1073


async def test_home_page_and_openapi(center: TestClient, files: FileServer, settings: Settings) -> None:
    await ingest(center, files, settings, 44, study(44, 1))
    page = await (await center.get("/")).text()
    assert "地方影像云数据共享中心" in page and "胸部平扫" in page
    doc = await (await center.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    record_schema = doc["components"]["schemas"]["Hop1Record"]
    assert len(record_schema["properties"]) == 71
    assert "dicom:<StudyInstanceUID>" in record_schema["properties"]["imgInfoDcm"]["description"]
    assert "/mie/api/mie/saveExamRpotImgInfo" in doc["paths"] and "/dicomweb/studies/{study}" in doc["paths"]


async def test_a_browser_opening_imgdldlink_downloads_the_study_as_zip(center: TestClient, files: FileServer,
                                                                       settings: Settings) -> None:
    import zipfile

    parts = study(45, 3)
    st = await ingest(center, files, settings, 45, parts)
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
    resp = await center.get(path_of(st["links"]["imgDldLink"]), headers={"Accept": browser})
    assert resp.status == 200 and resp.content_type == "application/zip"
    assert "attachment" in resp.headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(await resp.read())) as zf:
        names = zf.namelist()
        files = {n: pydicom.dcmread(io.BytesIO(zf.read(n))) for n in names if n != "DICOMDIR"}
        dicomdir = pydicom.dcmread(io.BytesIO(zf.read("DICOMDIR")))
    sent = {ds.SOPInstanceUID: ds for ds in (pydicom.dcmread(io.BytesIO(p)) for p in parts)}
    assert {ds.SOPInstanceUID for ds in files.values()} == set(sent)
    assert all(ds.PixelData == sent[ds.SOPInstanceUID].PixelData for ds in files.values())
    # The DICOMDIR indexes every file by its path in the zip (PS3.10 media, as a CD burner would write it).
    referenced = {"/".join(r.ReferencedFileID): r.ReferencedSOPInstanceUIDInFile
                  for r in dicomdir.DirectoryRecordSequence if r.DirectoryRecordType == "IMAGE"}
    assert referenced == {n: ds.SOPInstanceUID for n, ds in files.items()}


# What PACS send: JPEG Lossless SV1 (dcmcjpeg's default), JPEG-LS and RLE are lossless; JPEG 2000 lossless
# through dcmtk is not in Debian's dcmtk, so pydicom's own encoders are not needed here.
COMPRESSED = [("dcmcjpeg", "1.2.840.10008.1.2.4.70"), ("dcmcjpls", "1.2.840.10008.1.2.4.80"),
              ("dcmcrle", "1.2.840.10008.1.2.5")]


@pytest.mark.parametrize(("tool", "syntax"), COMPRESSED, ids=[t for t, _ in COMPRESSED])
async def test_compressed_instances_render_as_the_uncompressed_would(
        center: TestClient, files: FileServer, settings: Settings, tmp_path: Path, tool: str, syntax: str) -> None:
    from sandbox.center.render import encode, frame_image
    from tests.center.test_scp import need, run

    n = 60 + [t for t, _ in COMPRESSED].index(tool)
    plain = instance(n=n, size=48)
    (tmp_path / "in.dcm").write_bytes(plain)
    code, out = await run(need(tool), str(tmp_path / "in.dcm"), str(tmp_path / "out.dcm"))
    assert code == 0, out
    packed = (tmp_path / "out.dcm").read_bytes()
    assert pydicom.dcmread(io.BytesIO(packed)).file_meta.TransferSyntaxUID == syntax
    st = await ingest(center, files, settings, n, [packed])
    ds = pydicom.dcmread(io.BytesIO(plain))
    url = (f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
           f"/instances/{ds.SOPInstanceUID}/frames/1/rendered")
    resp = await center.get(url)
    assert resp.status == 200 and resp.content_type == "image/png", await resp.text()
    shown = decoded_png(await resp.read())
    assert np.array_equal(shown, decoded_png(encode(frame_image(plain))))  # lossless: the same picture
    assert shown.std() > 5
    assert st["images"]["instances"] == 1
