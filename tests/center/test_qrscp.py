"""DIMSE query/retrieve against the center's SCP with dcmtk (findscu, getscu, movescu to a storescp this test
starts, echoscu) and Storage Commitment with pynetdicom as the SCU, over what storescu pushed."""

from __future__ import annotations

import asyncio
import queue
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import StorageCommitmentPushModel  # type: ignore[attr-defined]

from sandbox.center import create_app
from sandbox.common.ports import free_port
from sandbox.config import Settings
from tests.center.helpers import uid
from tests.center.qr_corpus import Pushed, corpus, need, push
from tests.center.test_scp import run

COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"
WAIT_S = 60.0


@pytest.fixture
def move_port() -> int:
    return free_port()


@pytest.fixture
def settings(make_settings: Callable[..., Settings], move_port: int) -> Settings:
    return make_settings(dicom_destinations={"STORESCP": f"127.0.0.1:{move_port}"})


@pytest.fixture
async def pushed(aiohttp_client: Any, settings: Settings, tmp_path: Path) -> AsyncIterator[Pushed]:
    await aiohttp_client(create_app(settings), server_kwargs={"port": settings.center_port})
    files = corpus(tmp_path / "corpus")
    await push(settings, files)
    yield files


def _found(output: str, keyword: str) -> list[str]:
    """The values of one attribute in findscu's dump of its responses (not of its request)."""
    responses = output.partition("Find Response")[2]
    return [m.group(1).strip() for m in re.finditer(rf"\[([^\]]*)\]\s+#.*\b{keyword}\b", responses)]


async def findscu(settings: Settings, *keys: str, model: str = "-S") -> str:
    args = [need("findscu"), "-v", model, "-aet", "VIEWER", "-aec", settings.dicom_ae_title, "127.0.0.1",
            str(settings.dicom_port)]
    for key in keys:
        args += ["-k", key]
    code, out = await run(*args)
    assert code == 0, out
    return out


async def test_findscu_matches_at_every_level_of_both_roots(pushed: Pushed, settings: Settings) -> None:
    utf8 = "SpecificCharacterSet=ISO_IR 192"
    # Patient Root, PATIENT level: wildcard on the Ideographic group of a multi-group name.
    out = await findscu(settings, "QueryRetrieveLevel=PATIENT", utf8, "PatientName=黄*", "PatientID",
                        "NumberOfPatientRelatedStudies", model="-P")
    assert _found(out, "PatientID") == ["P51080265001"]
    assert _found(out, "PatientName") == ["HUANG^LIJUAN=黄^丽娟=huang^li juan"]
    # Patient Root, STUDY level under a patient; a date range.
    out = await findscu(settings, "QueryRetrieveLevel=STUDY", "PatientID=P51080265*", "StudyDate=20250310-",
                        "StudyInstanceUID", "ModalitiesInStudy", model="-P")
    assert _found(out, "StudyInstanceUID") == [pushed.studies["li"]]
    # Study Root, STUDY level: a Chinese name with ?, sent as UTF-8 without SpecificCharacterSet (as many do).
    out = await findscu(settings, "QueryRetrieveLevel=STUDY", "PatientName=李?", "StudyInstanceUID",
                        "NumberOfStudyRelatedInstances")
    assert _found(out, "StudyInstanceUID") == [pushed.studies["li"]]
    assert _found(out, "NumberOfStudyRelatedInstances") == ["2"]
    out = await findscu(settings, "QueryRetrieveLevel=STUDY", "ModalitiesInStudy=CT", "StudyInstanceUID")
    assert sorted(_found(out, "StudyInstanceUID")) == sorted([pushed.studies["huang"], pushed.studies["wang"]])
    # Study Root, SERIES level: Modality wildcard within a study.
    out = await findscu(settings, "QueryRetrieveLevel=SERIES", f"StudyInstanceUID={pushed.studies['huang']}",
                        "Modality=M*", "SeriesInstanceUID")
    assert _found(out, "Modality") == ["MR"]
    # Study Root, IMAGE level: a list of UIDs (backslash); each answer names its series, asked or not.
    sops = sorted(pushed.sops("huang"))[:2]
    out = await findscu(settings, "QueryRetrieveLevel=IMAGE", f"StudyInstanceUID={pushed.studies['huang']}",
                        "SOPInstanceUID=" + "\\".join(sops), "InstanceNumber")
    assert sorted(_found(out, "SOPInstanceUID")) == sops
    assert _found(out, "SeriesInstanceUID") == [uid(2, 61, 1)] * 2


async def test_findscu_with_a_malformed_date_or_wrong_level_gets_a_failure(pushed: Pushed, settings: Settings) -> None:
    out = await findscu(settings, "QueryRetrieveLevel=STUDY", "StudyDate=garbage", "StudyInstanceUID")
    assert "Final Find Response (Error: DataSetDoesNotMatchSOPClass)" in out, out
    assert "Pending" not in out
    out = await findscu(settings, "QueryRetrieveLevel=PATIENT", "PatientID")  # Study Root has no PATIENT level
    assert "Pending" not in out and "DataSetDoesNotMatchSOPClass" in out, out


async def test_getscu_retrieves_the_pushed_study_byte_for_byte(pushed: Pushed, settings: Settings,
                                                                tmp_path: Path) -> None:
    out_dir = tmp_path / "got"
    out_dir.mkdir()
    code, out = await run(need("getscu"), "-S", "-aet", "VIEWER", "-aec", settings.dicom_ae_title, "-od",
                          str(out_dir), "127.0.0.1", str(settings.dicom_port), "-k", "QueryRetrieveLevel=STUDY",
                          "-k", f"StudyInstanceUID={pushed.studies['huang']}")
    assert code == 0, out
    # getscu accepts its instances in Implicit VR Little Endian only; pynetdicom converts (values unchanged).
    _assert_same(pushed, "huang", out_dir, same_syntax=False)


async def test_movescu_sends_a_series_to_the_configured_destination(pushed: Pushed, settings: Settings,
                                                                    move_port: int, tmp_path: Path) -> None:
    out_dir = tmp_path / "moved"
    out_dir.mkdir()
    storescp = await asyncio.create_subprocess_exec(need("storescp"), "-aet", "STORESCP", "-od", str(out_dir),
                                                    str(move_port), stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.DEVNULL)
    try:
        await _wait_for_echo(move_port, "STORESCP")
        code, out = await run(need("movescu"), "-P", "-aet", "VIEWER", "-aec", settings.dicom_ae_title, "-aem",
                              "STORESCP", "127.0.0.1", str(settings.dicom_port), "-k", "QueryRetrieveLevel=STUDY",
                              "-k", "PatientID=Q7700", "-k", f"StudyInstanceUID={pushed.studies['wang']}")
        assert code == 0, out
        _assert_same(pushed, "wang", out_dir)
        code, out = await run(need("movescu"), "-S", "-aet", "VIEWER", "-aec", settings.dicom_ae_title, "-aem",
                              "NOWHERE", "127.0.0.1", str(settings.dicom_port), "-k", "QueryRetrieveLevel=STUDY",
                              "-k", f"StudyInstanceUID={pushed.studies['li']}")
        assert code != 0 and "MoveDestinationUnknown" in out, out
    finally:
        storescp.terminate()
        await storescp.wait()


async def _wait_for_echo(port: int, ae_title: str) -> None:
    echoscu = need("echoscu")
    for _ in range(200):
        code, _out = await run(echoscu, "-aec", ae_title, "127.0.0.1", str(port))
        if code == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"storescp on {port} never answered")


def _assert_same(pushed: Pushed, study: str, folder: Path, same_syntax: bool = True) -> None:
    got = {str(pydicom.dcmread(p).SOPInstanceUID): p for p in folder.iterdir()}
    assert set(got) == pushed.sops(study)
    for sop, path in got.items():
        sent, came = pydicom.dcmread(pushed.files[sop]), pydicom.dcmread(path)
        assert came.PixelData == sent.PixelData and came == sent
        if same_syntax:
            assert came.file_meta.TransferSyntaxUID == sent.file_meta.TransferSyntaxUID


async def test_wrong_called_or_calling_ae_is_rejected(aiohttp_client: Any,
                                                      make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(dicom_calling_aets=["HIS_PACS"])
    await aiohttp_client(create_app(settings), server_kwargs={"port": settings.center_port})
    port = str(settings.dicom_port)
    code, out = await run(need("echoscu"), "-aet", "HIS_PACS", "-aec", "NOTCLOUD", "127.0.0.1", port)
    assert code != 0 and "Rejected Permanent" in out and "Called AE Title Not Recognized" in out, out
    code, out = await run(need("findscu"), "-S", "-aet", "HIS_PACS", "-aec", "NOTCLOUD", "127.0.0.1", port,
                          "-k", "QueryRetrieveLevel=STUDY")
    assert code != 0 and "Called AE Title Not Recognized" in out, out
    code, out = await run(need("echoscu"), "-aet", "STRANGER", "-aec", settings.dicom_ae_title, "127.0.0.1", port)
    assert code != 0 and "Calling AE Title Not Recognized" in out, out
    code, out = await run(need("echoscu"), "-aet", "HIS_PACS", "-aec", settings.dicom_ae_title, "127.0.0.1", port)
    assert code == 0, out


def _commit_request(items: list[tuple[str, str]]) -> Dataset:
    ds = Dataset()
    ds.TransactionUID = pydicom.uid.generate_uid()
    refs = []
    for sop_class, sop in items:
        item = Dataset()
        item.ReferencedSOPClassUID = sop_class
        item.ReferencedSOPInstanceUID = sop
        refs.append(item)
    ds.ReferencedSOPSequence = refs
    return ds


async def test_storage_commitment_reports_on_the_same_association(pushed: Pushed, settings: Settings) -> None:
    stored = sorted(pushed.sops("li"))
    ct = str(pydicom.dcmread(next(iter(pushed.files.values()))).SOPClassUID)
    mr = str(pydicom.dcmread(pushed.files[stored[0]]).SOPClassUID)
    request = _commit_request([(mr, stored[0]), (mr, stored[1]), (mr, "1.2.3.4.5.404"), (ct, stored[1])])
    reports: queue.Queue[tuple[int, Dataset]] = queue.Queue()

    def on_report(event: Any) -> tuple[int, None]:
        reports.put((event.event_type, event.event_information))
        return 0x0000, None

    def commit() -> tuple[int, tuple[int, Dataset]]:
        ae = AE(ae_title="COMMITSCU")
        ae.add_requested_context(StorageCommitmentPushModel)
        assoc = ae.associate("127.0.0.1", settings.dicom_port, ae_title=settings.dicom_ae_title,
                             evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
        assert assoc.is_established
        try:
            status, _ = assoc.send_n_action(request, 1, StorageCommitmentPushModel, COMMITMENT_INSTANCE)
            return int(status.Status), reports.get(timeout=WAIT_S)
        finally:
            assoc.release()

    status, (event_type, report) = await asyncio.to_thread(commit)
    assert status == 0x0000
    assert event_type == 2  # some failed
    assert report.TransactionUID == request.TransactionUID
    assert sorted(i.ReferencedSOPInstanceUID for i in report.ReferencedSOPSequence) == stored
    failed = {(i.ReferencedSOPInstanceUID, i.FailureReason) for i in report.FailedSOPSequence}
    assert failed == {("1.2.3.4.5.404", 0x0112), (stored[1], 0x0119)}


async def test_storage_commitment_falls_back_to_a_new_association(
        aiohttp_client: Any, make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    """An SCU that does not take the report on its own association (it answers 0x0110 there) gets it on a new
    association the center opens to its configured address, in the SCP role (PS3.4 J.3.3)."""
    scu_port = free_port()
    settings = make_settings(dicom_destinations={"COMMITSCU": f"127.0.0.1:{scu_port}"})
    await aiohttp_client(create_app(settings), server_kwargs={"port": settings.center_port})
    files = corpus(tmp_path / "corpus")
    await push(settings, files)
    sop = sorted(files.sops("wang"))[0]
    request = _commit_request([(str(pydicom.dcmread(files.files[sop]).SOPClassUID), sop)])
    reports: queue.Queue[tuple[int, Dataset, str]] = queue.Queue()
    declined: queue.Queue[str] = queue.Queue()

    def on_report(event: Any) -> tuple[int, None]:
        reports.put((event.event_type, event.event_information, str(event.assoc.requestor.ae_title).strip()))
        return 0x0000, None

    def decline(event: Any) -> tuple[int, None]:
        declined.put(str(event.event_information.TransactionUID))
        return 0x0110, None

    def commit() -> tuple[int, tuple[int, Dataset, str]]:
        ae = AE(ae_title="COMMITSCU")
        ae.add_requested_context(StorageCommitmentPushModel)
        # As the acceptor of the center's association it takes the SCU role the report needs.
        ae.add_supported_context(StorageCommitmentPushModel, scu_role=True, scp_role=True)
        server = ae.start_server(("127.0.0.1", scu_port), block=False,
                                 evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
        try:
            assoc = ae.associate("127.0.0.1", settings.dicom_port, ae_title=settings.dicom_ae_title,
                                 evt_handlers=[(evt.EVT_N_EVENT_REPORT, decline)])
            assert assoc.is_established
            status, _ = assoc.send_n_action(request, 1, StorageCommitmentPushModel, COMMITMENT_INSTANCE)
            report = reports.get(timeout=WAIT_S)
            assoc.release()
            return int(status.Status), report
        finally:
            server.shutdown()

    status, (event_type, report, sender) = await asyncio.to_thread(commit)
    assert status == 0x0000 and event_type == 1
    assert sender == settings.dicom_ae_title  # the center opened this association
    assert declined.get_nowait() == request.TransactionUID
    assert [i.ReferencedSOPInstanceUID for i in report.ReferencedSOPSequence] == [sop]
    assert "FailedSOPSequence" not in report


async def test_a_compressed_instance_is_moved_as_stored_and_decompressed_for_those_that_need_it(
        pushed: Pushed, settings: Settings, move_port: int, tmp_path: Path) -> None:
    rle = Path(pydicom.data.get_testdata_file("MR_small_RLE.dcm"))  # pydicom's bundled RLE Lossless MR
    original = pydicom.dcmread(rle)
    code, out = await run(need("storescu"), "-xr", "-aet", "HIS_PACS", "-aec", settings.dicom_ae_title,
                          "127.0.0.1", str(settings.dicom_port), str(rle))
    assert code == 0, out
    keys = ["-k", "QueryRetrieveLevel=IMAGE", "-k", f"StudyInstanceUID={original.StudyInstanceUID}",
            "-k", f"SeriesInstanceUID={original.SeriesInstanceUID}", "-k", f"SOPInstanceUID={original.SOPInstanceUID}"]
    got_dir, moved_dir = tmp_path / "got", tmp_path / "moved"
    got_dir.mkdir()
    moved_dir.mkdir()
    code, out = await run(need("getscu"), "-S", "-aet", "VIEWER", "-aec", settings.dicom_ae_title, "-od",
                          str(got_dir), "127.0.0.1", str(settings.dicom_port), *keys)
    assert code == 0, out
    (got,) = [pydicom.dcmread(p) for p in got_dir.iterdir()]
    assert got.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"  # all getscu accepted
    assert (got.pixel_array == original.pixel_array).all()
    moved = await move_one(settings, move_port, moved_dir, "+xa", keys)
    assert moved.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.5"
    assert moved.PixelData == original.PixelData
    # a destination that takes Implicit VR Little Endian only gets it decompressed, as getscu did
    plain_dir = tmp_path / "moved-plain"
    plain_dir.mkdir()
    plain = await move_one(settings, move_port, plain_dir, "+xi", keys)
    assert plain.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
    assert (plain.pixel_array == original.pixel_array).all()


async def move_one(settings: Settings, move_port: int, into: Path, accept: str, keys: list[str]) -> pydicom.Dataset:
    """movescu of `keys` to a dcmtk storescp (transfer syntaxes it accepts: `accept`, e.g. +xa, +xi) writing into
    `into`; the one instance it received."""
    storescp = await asyncio.create_subprocess_exec(need("storescp"), accept, "-aet", "STORESCP", "-od", str(into),
                                                    str(move_port), stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.DEVNULL)
    try:
        await _wait_for_echo(move_port, "STORESCP")
        code, out = await run(need("movescu"), "-S", "-aet", "VIEWER", "-aec", settings.dicom_ae_title, "-aem",
                              "STORESCP", "127.0.0.1", str(settings.dicom_port), *keys)
        assert code == 0, out
    finally:
        storescp.terminate()
        await storescp.wait()
    (moved,) = [pydicom.dcmread(p) for p in into.iterdir()]
    return moved


async def push_big_endian(settings: Settings) -> pydicom.Dataset:
    """pydicom's big-endian MR test file, sent to the center by storescu in Explicit VR Big Endian; its dataset."""
    big = Path(pydicom.data.get_testdata_file("MR_small_bigendian.dcm"))
    code, out = await run(need("storescu"), "-xb", "-aet", "HIS_PACS", "-aec", settings.dicom_ae_title,
                          "127.0.0.1", str(settings.dicom_port), str(big))
    assert code == 0, out
    return pydicom.dcmread(big)


async def test_a_big_endian_instance_reaches_a_getscu_that_accepts_little_endian_only(
        pushed: Pushed, settings: Settings, tmp_path: Path) -> None:
    """Explicit VR Big Endian (retired, still sent by old PACS) is kept as stored and converted on the way out
    for a requestor that accepts only Implicit VR Little Endian: same values, same pixels."""
    original = await push_big_endian(settings)
    got_dir = tmp_path / "got"
    got_dir.mkdir()
    code, out = await run(need("getscu"), "-S", "+xi", "-aet", "VIEWER", "-aec", settings.dicom_ae_title, "-od",
                          str(got_dir), "127.0.0.1", str(settings.dicom_port), "-k", "QueryRetrieveLevel=STUDY",
                          "-k", f"StudyInstanceUID={original.StudyInstanceUID}")
    assert code == 0, out
    (got,) = [pydicom.dcmread(p) for p in got_dir.iterdir()]
    assert got.SOPInstanceUID == original.SOPInstanceUID and got.PatientName == original.PatientName
    assert (got.pixel_array == original.pixel_array).all()


async def test_a_big_endian_instance_is_moved_to_a_storescp_that_accepts_little_endian_only(
        pushed: Pushed, settings: Settings, move_port: int, tmp_path: Path) -> None:
    """C-MOVE converts like C-GET: the destination's association accepted Implicit VR Little Endian only
    (storescp +xi), so the big-endian instance goes out byte-swapped, same values, same pixels."""
    original = await push_big_endian(settings)
    moved_dir = tmp_path / "moved"
    moved_dir.mkdir()
    moved = await move_one(settings, move_port, moved_dir, "+xi",
                           ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={original.StudyInstanceUID}"])
    assert moved.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
    assert moved.SOPInstanceUID == original.SOPInstanceUID and moved.PatientName == original.PatientName
    assert (moved.pixel_array == original.pixel_array).all()


def test_dicom_settings_are_checked_and_name_the_setting() -> None:
    from pydantic import ValidationError

    from sandbox.config import load_settings

    settings = load_settings(None, dicom_destinations=("STORESCP=127.0.0.1:11113",), dicom_calling_aets=("PACS",))
    assert settings.dicom_destination("STORESCP") == ("127.0.0.1", 11113)
    assert settings.dicom_destination("NOWHERE") is None
    for bad, says in (({"dicom_destinations": ("STORESCP=127.0.0.1",)}, "应为 主机:端口"),
                      ({"dicom_destinations": ("STORESCP",)}, "AE标题=主机:端口"),
                      ({"dicom_calling_aets": ("A" * 17,)}, "dicom_calling_aets"),
                      ({"dicom_ae_title": ""}, "dicom_ae_title")):
        with pytest.raises(ValidationError) as info:
            load_settings(None, **bad)
        assert says in str(info.value)
