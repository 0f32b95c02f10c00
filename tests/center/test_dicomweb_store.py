"""Storing and removing through DICOMweb and DIMSE: STOW-RS, DELETE, instances pydicom cannot read
consistently (refused everywhere with a reason), the policy for a different instance under a stored SOP
Instance UID, and the HTTP edges a viewer meets (404, 405 with Allow, 406, WADO-URI anonymize)."""

from __future__ import annotations

import asyncio
import io
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from aiohttp.test_utils import TestClient
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from pydicom.data import get_testdata_file
from pynetdicom import AE
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    MRImageStorage,
    RTDoseStorage,
    SecondaryCaptureImageStorage,
)
from requests.exceptions import HTTPError

from sandbox.center import create_app
from sandbox.config import Settings
from tests.center.helpers import (
    FileServer,
    answers,
    b64,
    instance,
    message,
    pdf,
    record,
    study,
    study_uid_for,
)
from tests.center.test_ingest import send
from tests.center.test_scp import need, run

ELE = "1.2.840.10008.1.2.1"


def bundled(name: str) -> bytes:
    path = get_testdata_file(name)
    assert path is not None
    return Path(path).read_bytes()


def dataset(data: bytes) -> pydicom.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(io.BytesIO(data))


def client_of(settings: Settings) -> DICOMwebClient:
    return DICOMwebClient(url=f"http://127.0.0.1:{settings.center_port}/dicomweb")


def c_store(settings: Settings, data: bytes) -> pydicom.Dataset:
    """One C-STORE with pynetdicom as the SCU; the whole response status data set."""
    ds = dataset(data)
    ae = AE(ae_title="TESTSCU")
    for sop_class in (MRImageStorage, RTDoseStorage, SecondaryCaptureImageStorage):
        ae.add_requested_context(sop_class, [str(ds.file_meta.TransferSyntaxUID)])
    assoc = ae.associate("127.0.0.1", settings.dicom_port, ae_title=settings.dicom_ae_title)
    assert assoc.is_established
    try:
        status: pydicom.Dataset = assoc.send_c_store(ds)
        return status
    finally:
        assoc.release()


async def test_an_instance_pydicom_cannot_read_consistently_is_refused_by_storescu_stow_and_hop1(
        center: TestClient, files: FileServer, settings: Settings, tmp_path: Path) -> None:
    bad = bundled("badVR.dcm")  # Number of Frames (IS) is "1A"
    path = tmp_path / "badVR.dcm"
    path.write_bytes(bad)
    code, out = await run(need("storescu"), "-d", "-aec", settings.dicom_ae_title, "127.0.0.1", str(settings.dicom_port),
                          str(path))
    # dcmtk's debug output shows the status and the Error Comment of the C-STORE response.
    assert "0xc000: Error: Cannot understand" in out, out
    assert "(0000,0902) LO [Invalid IS value in (0028,0008) NumberOfFrames]" in out, out

    resp = await center.post("/dicomweb/studies", data=_multipart([bad]), headers={"Content-Type": _MULTIPART})
    assert resp.status == 409
    failed = (await resp.json())["00081198"]["Value"][0]
    assert failed["00081197"]["Value"] == [0xC000]
    assert "NumberOfFrames 的值「1A」不符合其 VR IS" in failed["00000902"]["Value"][0]

    rec = record(settings, 80, files.add("/r80.pdf", pdf(), "application/pdf"), b64(bad))
    answer = answers(await send(center, message(settings, [rec])))[0]
    assert answer["succFlag"] == "-1" and "(0028,0008) NumberOfFrames 的值「1A」" in answer["message"]
    ds = dataset(bad)
    resp = await center.get(f"/dicomweb/studies/{ds.StudyInstanceUID}/metadata")
    assert resp.status == 404  # nothing of it was kept, so nothing answers 500 later


async def test_a_binary_value_of_the_wrong_length_is_refused_naming_its_element(center: TestClient) -> None:
    data = bytearray(instance(n=88))
    at = data.find(b"\x28\x00\x10\x00US")  # Rows, US: two bytes, made three
    data[at + 6:at + 8], data[at + 8:at + 8] = (3).to_bytes(2, "little"), b"\x00"
    resp = await center.post("/dicomweb/studies", data=_multipart([bytes(data)]), headers={"Content-Type": _MULTIPART})
    assert resp.status == 409
    comment = (await resp.json())["00081198"]["Value"][0]["00000902"]["Value"][0]
    assert "DICOM 元素 (0028,0010) Rows 的值「3 字节」不符合其 VR US" in comment


async def test_stow_rs_stores_into_the_same_store_and_answers_per_instance(center: TestClient,
                                                                          settings: Settings) -> None:
    parts = study(81, 2)
    sent = [dataset(p) for p in parts]
    client = client_of(settings)
    answer = await asyncio.to_thread(client.store_instances, sent)
    refs = answer.ReferencedSOPSequence
    assert {r.ReferencedSOPInstanceUID for r in refs} == {ds.SOPInstanceUID for ds in sent}
    assert all(r.RetrieveURL.endswith(r.ReferencedSOPInstanceUID) for r in refs)
    back = await asyncio.to_thread(client.retrieve_study, study_uid_for(81), (("application/dicom", "*"),))
    assert sorted(ds.PixelData for ds in back) == sorted(ds.PixelData for ds in sent)

    # To a study URL: an instance of another study is refused and named, the rest stored (202).
    other = instance(n=82)
    resp = await center.post(f"/dicomweb/studies/{study_uid_for(81)}", data=_multipart([instance(n=81, number=3), other]),
                             headers={"Content-Type": _MULTIPART})
    body = await resp.json()
    assert resp.status == 202 and len(body["00081199"]["Value"]) == 1
    assert f"不是请求路径中的 {study_uid_for(81)}" in body["00081198"]["Value"][0]["00000902"]["Value"][0]

    resp = await center.post("/dicomweb/studies", data=b"{}", headers={"Content-Type": "application/json"})
    assert resp.status == 415 and "multipart/related" in (await resp.json())["message"]


async def test_deleting_a_study_removes_it_from_qido_wado_and_the_store(center: TestClient,
                                                                        settings: Settings) -> None:
    client = client_of(settings)
    await asyncio.to_thread(client.store_instances, [dataset(p) for p in study(83, 2)])
    await asyncio.to_thread(client.store_instances, [dataset(p) for p in study(84, 1)])
    await asyncio.to_thread(client.delete_study, study_uid_for(83))
    found = await asyncio.to_thread(client.search_for_studies)
    assert [s["0020000D"]["Value"][0] for s in found] == [study_uid_for(84)]
    assert (await center.get(f"/dicomweb/studies/{study_uid_for(83)}")).status == 404
    summary = await (await center.get("/api/summary")).json()
    assert summary["instances"] == 1
    # The center's own API deletes too; an unknown study is a 404 with the reason.
    resp = await center.delete(f"/api/studies/{study_uid_for(84)}")
    assert resp.status == 200 and (await resp.json())["deleted"] == 1
    resp = await center.delete(f"/api/studies/{study_uid_for(84)}")
    assert resp.status == 404 and "未找到 DICOM 对象" in (await resp.json())["message"]


async def test_keep_first_refuses_a_different_instance_with_a_comment_and_replace_stores_it(
        aiohttp_client: Any, make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture) -> None:
    first, second = bundled("MR_small_bigendian.dcm"), bundled("MR_small_jpeg_ls_lossless.dcm")  # one SOP UID
    uid = dataset(first).SOPInstanceUID
    assert dataset(second).SOPInstanceUID == uid
    caplog.set_level(logging.WARNING, "sandbox.center")
    for policy, status in (("keep-first", 0xC001), ("replace", 0x0000)):
        settings = make_settings(instance_conflict=policy, data_dir=make_settings().data_dir / policy)
        await aiohttp_client(create_app(settings), server_kwargs={"port": settings.center_port})
        assert (await asyncio.to_thread(c_store, settings, first)).Status == 0
        answer = await asyncio.to_thread(c_store, settings, second)
        assert answer.Status == status
        ds = dataset(first)
        kept = await asyncio.to_thread(client_of(settings).retrieve_instance, ds.StudyInstanceUID,
                                       ds.SeriesInstanceUID, uid, (("application/dicom", "*"),))
        if policy == "keep-first":
            assert answer.ErrorComment == "SOP Instance UID stored with other content"
            assert kept.file_meta.TransferSyntaxUID == dataset(first).file_meta.TransferSyntaxUID
        else:
            assert kept.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.80"
        assert f"SOPInstanceUID {uid} 已存储且内容不同：按 instance_conflict={policy}" in caplog.text


@pytest.mark.parametrize(("policy", "flag", "rows"), [("keep-first", "-1", 32), ("replace", "1", 40)])
async def test_hop1_follows_the_policy_for_a_different_instance_under_a_stored_uid(
        aiohttp_client: Any, make_settings: Callable[..., Settings], files: FileServer, policy: str, flag: str,
        rows: int) -> None:
    settings = make_settings(instance_conflict=policy)
    center = await aiohttp_client(create_app(settings), server_kwargs={"port": settings.center_port})
    sop = "1.2.826.0.1.3680043.10.1234.9.89"
    first, second = instance(n=89, sop_uid=sop, size=32), instance(n=89, sop_uid=sop, size=40)
    flags = []
    for seq, (n, data) in enumerate(((89, first), (90, second)), 1):
        rec = record(settings, n, files.add(f"/r{n}.pdf", pdf(), "application/pdf"), b64(data))
        flags.append(answers(await send(center, message(settings, [rec], seq=seq)))[0])
    # Exam 90 sent exam 89's images: with replace it is stored, and the disagreement with its record is a
    # 提示 on 1 in lenient mode (one meaning of succFlag: nothing the sender sent was left unsaved).
    assert flags[0]["succFlag"] == "1" and flags[1]["succFlag"] == flag, flags
    if policy == "replace":
        assert "提示" in flags[1]["message"] and "不符" in flags[1]["message"]
    if policy == "keep-first":
        assert f"SOPInstanceUID {sop} 已存储且内容不同，未覆盖" in flags[1]["message"]
    ds = dataset(first)
    kept = await asyncio.to_thread(client_of(settings).retrieve_instance, ds.StudyInstanceUID, ds.SeriesInstanceUID,
                                   sop, (("application/dicom", "*"),))
    assert kept.Rows == rows
    assert (await (await center.get("/api/summary")).json())["instances"] == 1


async def test_unknown_paths_wrong_methods_and_unproducible_types_are_named(center: TestClient,
                                                                           settings: Settings) -> None:
    await asyncio.to_thread(client_of(settings).store_instances, [dataset(instance(n=85))])
    ds = dataset(instance(n=85))
    inst = f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    resp = await center.get("/dicomweb/no/such/resource")
    assert resp.status == 404 and (await resp.json())["code"] == 1080
    resp = await center.put(inst)
    assert resp.status == 405 and resp.headers["Allow"] == "GET, HEAD"
    resp = await center.get("/mie/api/mie/saveExamRpotImgInfo")
    assert resp.status == 405 and resp.headers["Allow"] == "POST"
    # A syntax the center cannot make, a frame type the stored syntax does not have: 406 with what it can give.
    resp = await center.get(inst, headers={"Accept": 'multipart/related; type="application/dicom"; '
                                                     "transfer-syntax=1.2.840.10008.1.2.4.50"})
    assert resp.status == 406 and "transfer-syntax=*" in (await resp.json())["message"]
    resp = await center.get(inst + "/frames/1", headers={"Accept": 'multipart/related; type="image/jpeg"'})
    assert resp.status == 406 and "application/octet-stream" in (await resp.json())["message"]
    resp = await center.get(inst + "/frames/2")
    assert resp.status == 404
    resp = await center.get(inst + "/metadata", headers={"Accept": "application/dicom+xml"})
    assert resp.status == 406 and "application/dicom+json" in (await resp.json())["message"]


async def test_province_and_hospital_405s_carry_allow(aiohttp_client: Any, make_settings: Callable[..., Settings]) -> None:
    from sandbox.hospital.app import create_app as hospital_app
    from sandbox.province.app import create_app as province_app

    province = await aiohttp_client(province_app(make_settings()))
    resp = await province.get("/mie/api/mie/saveExamRpotImgIndx")
    assert resp.status == 405 and resp.headers["Allow"] == "POST"
    hospital = await aiohttp_client(hospital_app(make_settings()))
    resp = await hospital.post("/api/hospital/status")
    assert resp.status == 405 and resp.headers["Allow"] == "GET, HEAD"


async def test_wado_uri_anonymize_yes_gives_a_de_identified_instance(center: TestClient, settings: Settings) -> None:
    data = instance(n=86, patient_name="王小明", patient_id="P86")
    await asyncio.to_thread(client_of(settings).store_instances, [dataset(data)])
    ds = dataset(data)
    q = (f"/wado?requestType=WADO&studyUID={ds.StudyInstanceUID}&seriesUID={ds.SeriesInstanceUID}"
         f"&objectUID={ds.SOPInstanceUID}&contentType=application/dicom")
    plain = dataset(await (await center.get(q)).read())
    assert str(plain.PatientName) == "王小明"
    resp = await center.get(q + "&anonymize=yes")
    assert resp.status == 200
    anon = dataset(await resp.read())
    assert str(anon.PatientName) != "王小明" and anon.PatientID != "P86"
    assert anon.PatientIdentityRemoved == "YES" and "113100" in str(anon.DeidentificationMethodCodeSequence[0].CodeValue)
    assert anon.StudyInstanceUID != ds.StudyInstanceUID and np.array_equal(anon.pixel_array, plain.pixel_array)
    resp = await center.get(q + "&anonymize=no")
    assert resp.status == 400 and "anonymize" in (await resp.json())["message"]


async def test_series_rendered_is_one_image_per_instance(center: TestClient, settings: Settings) -> None:
    sent = [dataset(p) for p in study(87, 3)]
    client = client_of(settings)
    await asyncio.to_thread(client.store_instances, sent)
    image = await asyncio.to_thread(client.retrieve_instance_rendered, study_uid_for(87), sent[0].SeriesInstanceUID,
                                    sent[0].SOPInstanceUID, ("image/png",))
    assert Image.open(io.BytesIO(image)).size == (32, 32)
    resp = await center.get(f"/dicomweb/studies/{study_uid_for(87)}/series/{sent[0].SeriesInstanceUID}/rendered",
                            headers={"Accept": 'multipart/related; type="image/png"'})
    body = await resp.read()
    assert resp.status == 200 and body.count(b"\x89PNG") == 3
    with pytest.raises(HTTPError):
        await asyncio.to_thread(client.retrieve_series_rendered, study_uid_for(87), "1.2.3.4", ("image/png",))


_MULTIPART = 'multipart/related; type="application/dicom"; boundary=stowboundary'


def _multipart(parts: list[bytes]) -> bytes:
    body = bytearray()
    for p in parts:
        body += b"--stowboundary\r\nContent-Type: application/dicom\r\n\r\n" + p + b"\r\n"
    return bytes(body + b"--stowboundary--\r\n")
