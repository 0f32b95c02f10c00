"""The hospital serves the files its records name: report PDF, DICOMweb study/series/instance, zip."""

from __future__ import annotations

import io
import zipfile
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import pydicom
import pytest
from aiohttp.test_utils import TestClient
from aiohttp.web import Application

from sandbox.config import Settings
from sandbox.hospital.app import create_app
from sandbox.hospital.domain import Hospital
from sandbox.synth.exams import Exam
from sandbox.typedefs import HOSPITAL

from .conftest import TINY


@pytest.fixture
async def client(aiohttp_client: Any, hospital_settings: Settings) -> TestClient:
    app: Application = create_app(hospital_settings, seed=3, image_spec=TINY)
    return await aiohttp_client(app)


async def _exams(client: TestClient, count: int = 3) -> tuple[Hospital, list[Exam]]:
    hospital: Hospital = client.server.app[HOSPITAL]
    return hospital, await hospital.generate_exams(count)


def _parts(content_type: str, body: bytes) -> list[bytes]:
    msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    return [part.get_payload(decode=True) for part in msg.iter_parts()]


async def test_report_pdf_is_served_at_the_records_url(client: TestClient) -> None:
    hospital, exams = await _exams(client, 1)
    rec = exams[0].record(hospital.base_url)
    path = rec["examRpotPdfI"].removeprefix(hospital.base_url)
    resp = await client.get(path)
    assert resp.status == 200 and resp.content_type == "application/pdf"
    body = await resp.read()
    assert body.startswith(b"%PDF") and body == (hospital.root / "files" / exams[0].exam_id / "report.pdf").read_bytes()


async def test_study_url_returns_every_instance_as_multipart_related_dicom(client: TestClient) -> None:
    hospital, exams = await _exams(client, 3)
    for exam in exams:
        path = exam.record(hospital.base_url)["imgInfoDcm"].removeprefix(hospital.base_url)
        resp = await client.get(path, headers={"Accept": 'multipart/related; type="application/dicom"'})
        assert resp.status == 200
        ctype = resp.headers["Content-Type"]
        assert ctype.startswith("multipart/related") and 'type="application/dicom"' in ctype
        body = await resp.read()
        assert int(resp.headers["Content-Length"]) == len(body)
        parts = _parts(ctype, body)
        on_disk = sorted((hospital.root / "files" / exam.exam_id / "dicom").rglob("*.dcm"))
        assert len(parts) == len(on_disk) > 0
        assert parts == [p.read_bytes() for p in on_disk]
        ds = pydicom.dcmread(io.BytesIO(parts[0]))
        assert ds.StudyInstanceUID == exam.study_uid


async def test_series_and_single_instance_forms(client: TestClient) -> None:
    hospital, exams = await _exams(client, 2)
    exam = exams[0]
    rows = await hospital.store.instances(exam.study_uid)
    first = rows[0]
    base = f"/dicomweb/studies/{exam.study_uid}"
    resp = await client.get(f"{base}/series/{first['series_uid']}")
    parts = _parts(resp.headers["Content-Type"], await resp.read())
    assert len(parts) == sum(1 for r in rows if r["series_uid"] == first["series_uid"])
    url = f"{base}/series/{first['series_uid']}/instances/{first['sop_uid']}"
    resp = await client.get(url)
    assert resp.status == 200 and resp.content_type == "application/dicom"
    assert pydicom.dcmread(io.BytesIO(await resp.read())).SOPInstanceUID == first["sop_uid"]
    resp = await client.get(url, headers={"Accept": 'multipart/related; type="application/dicom"'})
    assert resp.headers["Content-Type"].startswith("multipart/related")
    assert len(_parts(resp.headers["Content-Type"], await resp.read())) == 1


async def test_study_zip_holds_the_dicom_files(client: TestClient) -> None:
    hospital, exams = await _exams(client, 1)
    resp = await client.get(f"/files/{exams[0].exam_id}/study.zip")
    assert resp.status == 200 and resp.content_type == "application/zip"
    with zipfile.ZipFile(io.BytesIO(await resp.read())) as zf:
        names = zf.namelist()
        assert names and all(n.startswith("dicom/S") and n.endswith(".dcm") for n in names)
        ds = pydicom.dcmread(io.BytesIO(zf.read(names[0])))
        assert ds.StudyInstanceUID == exams[0].study_uid


@pytest.mark.parametrize("path", [
    "/files/E0000000000000000000/report.pdf",
    "/dicomweb/studies/1.2.3",
    "/files/E0000000000000000000/study.zip",
])
async def test_unknown_ids_answer_404_with_a_chinese_message(client: TestClient, path: str) -> None:
    await _exams(client, 1)
    resp = await client.get(path)
    assert resp.status == 404
    body = await resp.json()
    assert body["type"] == "error" and "不存在" in body["message"]


async def test_unknown_series_and_instance_of_a_known_study(client: TestClient) -> None:
    _, exams = await _exams(client, 1)
    resp = await client.get(f"/dicomweb/studies/{exams[0].study_uid}/series/1.2.3")
    assert resp.status == 404 and "序列" in (await resp.json())["message"]


@pytest.mark.parametrize("path", ["/files/../hospital.db/report.pdf", "/files/%2e%2e%2fhospital.db/report.pdf",
                                  "/dicomweb/studies/..%2F..%2Fetc"])
async def test_paths_outside_the_id_patterns_are_not_served(client: TestClient, path: str) -> None:
    await _exams(client, 1)
    resp = await client.get(path)
    assert resp.status == 404


async def test_status_reports_what_the_hospital_made(client: TestClient) -> None:
    hospital, _ = await _exams(client, 2)
    body = await (await client.get("/api/hospital/status")).json()
    assert body["fixmedinsCode"] == hospital.institution.code and body["exams"] == 2 and body["instances"] > 0


async def test_files_of_a_deleted_study_answer_gone(client: TestClient) -> None:
    hospital, exams = await _exams(client, 1)
    (hospital.root / "files" / exams[0].exam_id / "report.pdf").unlink()
    resp = await client.get(f"/files/{exams[0].exam_id}/report.pdf")
    assert resp.status == 410


async def test_files_requested_while_they_are_still_being_written_are_served_once_written(
        client: TestClient) -> None:
    """`register_soon` (how `sandbox serve` writes its first message's files after the banner): a request made
    before the files exist waits for them and gets the same bytes as a request made afterwards."""
    hospital: Hospital = client.server.app[HOSPITAL]
    exam = hospital.make_exams(1, 0)[0]
    rec = exam.record(hospital.base_url)
    task = hospital.register_soon(exam)
    assert not task.done()
    early_pdf = await client.get(rec["examRpotPdfI"].removeprefix(hospital.base_url))
    early_study = await client.get(rec["imgInfoDcm"].removeprefix(hospital.base_url))
    early_zip = await client.get(f"/files/{exam.exam_id}/study.zip")
    assert task.done()
    assert early_pdf.status == early_study.status == early_zip.status == 200
    late_study = await client.get(rec["imgInfoDcm"].removeprefix(hospital.base_url))
    assert await early_pdf.read() == (hospital.root / "files" / exam.exam_id / "report.pdf").read_bytes()
    early_parts = _parts(early_study.headers["Content-Type"], await early_study.read())
    assert early_parts == _parts(late_study.headers["Content-Type"], await late_study.read()) and early_parts
    body = await (await client.get("/api/hospital/status")).json()
    assert body["exams"] == 1
