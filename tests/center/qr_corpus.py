"""Three patients' studies for the query/retrieve tests, pushed to the center with dcmtk's storescu."""

from __future__ import annotations

import io
import shutil
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest

from sandbox.config import Settings
from tests.center.helpers import instance, study_uid_for

CHINESE_NAME = "HUANG^LIJUAN=黄^丽娟=huang^li juan"


@dataclass(frozen=True)
class Pushed:
    """What a test pushed: the files by SOP Instance UID, and the studies' UIDs."""

    files: dict[str, Path]
    studies: dict[str, str]  # short name -> StudyInstanceUID

    def sops(self, study: str) -> set[str]:
        uid_ = self.studies[study]
        return {sop for sop, p in self.files.items() if str(pydicom.dcmread(p).StudyInstanceUID) == uid_}


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"dcmtk {tool} is not installed (Debian: apt-get install dcmtk)")
    return path


def _instance(n: int, series: int, number: int, modality: str, name: str, patient_id: str, date: str,
              time: str, accession: str, description: str, sex: str, birth: str) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(instance(n=n, series=series, number=number, modality=modality,
                                             patient_name=name, patient_id=patient_id, study_date=date)))
    ds.StudyTime = time
    ds.AccessionNumber = accession
    ds.StudyDescription = description
    ds.StudyID = f"S{n}"
    ds.PatientSex = sex
    ds.PatientBirthDate = birth
    ds.ReferringPhysicianName = "ZHOU^MING=周^明"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def corpus(folder: Path) -> Pushed:
    """7 instances: 黄丽娟's CT+MR study, 李丽's MR study, WANG XIAOMING's CT study."""
    specs = [
        (61, 1, 1, "CT"), (61, 1, 2, "CT"), (61, 1, 3, "CT"), (61, 2, 1, "MR"),
        (62, 1, 1, "MR"), (62, 1, 2, "MR"),
        (63, 1, 1, "CT"),
    ]
    patients = {
        61: (CHINESE_NAME, "P51080265001", "20250301", "083000", "ACC061", "胸部CT平扫", "F", "19800101"),
        62: ("李丽", "P51080265002", "20250315", "141500", "ACC062", "头颅MR", "F", "19900202"),
        63: ("WANG^XIAOMING", "Q7700", "20250401", "101010", "ACC063", "腹部CT", "M", "19700303"),
    }
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for n, series, number, modality in specs:
        data = _instance(n, series, number, modality, *patients[n])
        path = folder / f"I{n}_{series}_{number}.dcm"
        path.write_bytes(data)
        files[str(pydicom.dcmread(path).SOPInstanceUID)] = path
    return Pushed(files, {"huang": study_uid_for(61), "li": study_uid_for(62), "wang": study_uid_for(63)})


async def push(settings: Settings, pushed: Pushed) -> None:
    """storescu every file of the corpus to the center."""
    from tests.center.test_scp import run

    code, out = await run(need("storescu"), "-aet", "HIS_PACS", "-aec", settings.dicom_ae_title, "127.0.0.1",
                          str(settings.dicom_port), *map(str, pushed.files.values()))
    assert code == 0, out
