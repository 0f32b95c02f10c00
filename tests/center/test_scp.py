"""The Storage SCP: a study pushed with dcmtk's storescu is named in hop 1 as dicom:<StudyInstanceUID>."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, Verification  # type: ignore[attr-defined]

from sandbox.config import Settings
from tests.center.helpers import FileServer, answers, instance, message, pdf, record, study, study_uid_for
from tests.center.test_ingest import send, status


async def run(*argv: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace")


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        print(f"跳过：未安装 dcmtk 的 {tool}（Debian: apt-get install dcmtk）")
        pytest.skip(f"dcmtk {tool} is not installed")
    return path


async def test_study_pushed_with_storescu_is_named_by_its_uid(center: TestClient, files: FileServer,
                                                              settings: Settings, tmp_path: Path) -> None:
    storescu = need("storescu")
    paths = []
    for i, data in enumerate(study(20, 4)):
        p = tmp_path / f"IM{i}.dcm"
        p.write_bytes(data)
        paths.append(str(p))
    code, out = await run(storescu, "-aet", "HIS_PACS", "-aec", settings.dicom_ae_title, "127.0.0.1",
                          str(settings.dicom_port), *paths)
    assert code == 0, out
    rec = record(settings, 20, files.add("/r20.pdf", pdf(), "application/pdf"), f"dicom:{study_uid_for(20)}")
    answer = answers(await send(center, message(settings, [rec])))[0]
    assert answer["succFlag"] == "1", answer
    st = await status(center, rec["hiImgIndx"])
    assert st["images"]["instances"] == 4 and st["images"]["studyInstanceUID"] == study_uid_for(20)


async def test_echoscu_gets_an_answer(center: TestClient, settings: Settings) -> None:
    echoscu = need("echoscu")
    code, out = await run(echoscu, "-aec", settings.dicom_ae_title, "127.0.0.1", str(settings.dicom_port))
    assert code == 0, out


async def test_unknown_pushed_study_is_refused(center: TestClient, files: FileServer, settings: Settings) -> None:
    rec = record(settings, 21, files.add("/r21.pdf", pdf(), "application/pdf"), "dicom:1.2.3.4.5.6.7")
    answer = answers(await send(center, message(settings, [rec])))[0]
    assert answer["succFlag"] == "-1"
    assert "未找到经 C-STORE 推送的检查 StudyInstanceUID「1.2.3.4.5.6.7」" in answer["message"]


def _push(settings: Settings, blobs: list[bytes]) -> list[int]:
    """C-ECHO then C-STORE each blob with pynetdicom as the SCU; the statuses."""
    import io

    import pydicom

    ae = AE(ae_title="TESTSCU")
    ae.add_requested_context(Verification)
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", settings.dicom_port, ae_title=settings.dicom_ae_title)
    assert assoc.is_established
    try:
        assert assoc.send_c_echo().Status == 0
        return [int(assoc.send_c_store(pydicom.dcmread(io.BytesIO(b))).Status) for b in blobs]
    finally:
        assoc.release()


async def test_pushing_again_is_idempotent_and_a_conflicting_instance_is_refused(
        center: TestClient, settings: Settings) -> None:
    original = instance(n=22)
    conflicting = instance(n=22, patient_name="ZHANG^SAN")  # same SOP Instance UID, other bytes
    statuses = await asyncio.to_thread(_push, settings, [original, original, conflicting])
    assert statuses == [0x0000, 0x0000, 0xC001]
