from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian

from sandbox.synth.dicom import SOP_CLASSES, ImageSpec, iter_study, write_study
from sandbox.synth.exams import Exam

from .conftest import TINY


@pytest.fixture(scope="module")
def studies(one_of_each: dict[str, Exam], tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Exam, list[Path]]]:
    root = tmp_path_factory.mktemp("dicom")
    out = {}
    for key, exam in one_of_each.items():
        files = write_study(exam, root / key, TINY)
        out[key] = (exam, [f.path for f in files])
    return out


def test_every_modality_gets_its_sop_class_and_file_meta(studies: dict[str, tuple[Exam, list[Path]]]) -> None:
    modalities = set()
    for exam, paths in studies.values():
        for path in paths:
            ds = pydicom.dcmread(path)
            modalities.add(ds.Modality)
            assert ds.Modality == exam.modality
            assert ds.SOPClassUID == SOP_CLASSES[exam.modality]
            assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID
            assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
            assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
            assert path.read_bytes()[128:132] == b"DICM"
    assert modalities == {"CT", "MR", "DX", "CR", "US"}


def test_dicom_tags_agree_with_the_exam_record(studies: dict[str, tuple[Exam, list[Path]]]) -> None:
    for exam, paths in studies.values():
        rec = exam.record("http://h")
        for path in paths:
            ds = pydicom.dcmread(path)
            assert ds.SpecificCharacterSet == "ISO_IR 192"
            name = ds.PatientName
            assert (name.family_name + name.given_name) == rec["psnName"]
            # PatientID is the record's patnId, or its certno when the record carries no patnId
            assert ds.PatientID == rec.get("patnId", rec["certno"])
            assert ds.AccessionNumber == exam.accession and rec.get("appyNo", exam.accession) == ds.AccessionNumber
            assert ds.StudyDate == rec["examDate"].replace("-", "")
            assert ds.PatientBirthDate == exam.patient.birth.strftime("%Y%m%d")
            assert ds.PatientSex == {"1": "M", "2": "F"}[rec["gend"]]
            assert ds.InstitutionName == exam.hospital.name
            assert ds.StudyInstanceUID == exam.study_uid and rec["imgInfoDcm"].endswith(exam.study_uid)
            assert ds.StudyDescription == rec["imgExamItem"]
            assert ds.BodyPartExamined == exam.items[0].body_part or len(exam.items) > 1


def test_ct_and_mr_series_have_slice_geometry(studies: dict[str, tuple[Exam, list[Path]]]) -> None:
    for exam, paths in studies.values():
        if exam.modality not in ("CT", "MR"):
            continue
        by_series: dict[str, list[pydicom.Dataset]] = {}
        for path in paths:
            ds = pydicom.dcmread(path)
            by_series.setdefault(ds.SeriesInstanceUID, []).append(ds)
        for series in by_series.values():
            assert len(series) == TINY.slices
            zs = [float(ds.ImagePositionPatient[2]) for ds in series]
            steps = {round(a - b, 3) for a, b in zip(zs, zs[1:], strict=False)}
            assert steps == {round(float(series[0].SliceThickness), 3)}
            assert all(float(ds.SliceLocation) == float(ds.ImagePositionPatient[2]) for ds in series)
            assert [int(ds.InstanceNumber) for ds in series] == list(range(1, TINY.slices + 1))
            assert len({ds.FrameOfReferenceUID for ds in series}) == 1
            assert len(series[0].PixelSpacing) == 2 and list(series[0].ImageOrientationPatient) == [1, 0, 0, 0, 1, 0]
            assert "WindowCenter" in series[0] and "WindowWidth" in series[0]
        if exam.enhanced:
            assert len(by_series) == 2


def test_pixel_data_shows_a_phantom_not_noise_or_zeros(studies: dict[str, tuple[Exam, list[Path]]]) -> None:
    for key, (exam, paths) in studies.items():
        ds = pydicom.dcmread(paths[len(paths) // 2])
        arr = ds.pixel_array.astype(np.float64)
        assert arr.shape == (ds.Rows, ds.Columns)
        assert arr.std() > 10, key
        # Structure, not noise: neighbouring pixels are strongly correlated.
        a, b = arr[:, :-1].ravel(), arr[:, 1:].ravel()
        assert np.corrcoef(a, b)[0, 1] > 0.5, key
        if exam.modality == "CT":
            hu = arr * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
            assert hu.min() < -900  # air around the body
            assert (hu > 200).any() or exam.items[0].phantom in ("abdomen",)  # bone


def test_dcmdump_reads_every_file(studies: dict[str, tuple[Exam, list[Path]]]) -> None:
    dcmdump = shutil.which("dcmdump")
    if dcmdump is None:
        pytest.skip("dcmdump not installed: Debian package dcmtk is missing (make sysdeps installs it)")
    paths = [p for _, ps in studies.values() for p in ps]
    proc = subprocess.run([dcmdump, "-q", "+U8", *map(str, paths)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "E:" not in proc.stderr and "W:" not in proc.stderr, proc.stderr
    assert proc.stdout.count("(7fe0,0010)") == len(paths)  # every file's pixel data was reached
    for exam, _ in studies.values():
        assert exam.patient.family in proc.stdout and exam.hospital.name in proc.stdout


def test_same_seed_gives_the_same_bytes_and_another_seed_other_uids(
    one_of_each: dict[str, Exam], tmp_path: Path
) -> None:
    exam = one_of_each["ct_head"]
    a = write_study(exam, tmp_path / "a", TINY)
    b = write_study(exam, tmp_path / "b", TINY)
    assert [hashlib.sha256(f.path.read_bytes()).digest() for f in a] == [
        hashlib.sha256(f.path.read_bytes()).digest() for f in b]
    assert len({f.sop_uid for f in a}) == len(a)


def test_study_is_streamed_one_instance_at_a_time(one_of_each: dict[str, Exam], tmp_path: Path) -> None:
    spec = ImageSpec(slices=6, matrix=32)
    files = iter_study(one_of_each["ct_chest"], tmp_path, spec)
    first = next(files)
    assert first.path.exists()
    assert len(list(tmp_path.rglob("*.dcm"))) == 1  # nothing else written before it is asked for
    rest = list(files)
    assert len(rest) + 1 == len(list(tmp_path.rglob("*.dcm")))
