"""The fast header reader and pydicom agree on every kind of file; what it declines, pydicom reads."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRBigEndian, JPEGBaseline8Bit

from sandbox.center import dicomhead, dicomstore
from sandbox.center.errors import DicomProblem
from sandbox.config import Settings
from sandbox.synth.dicom import ImageSpec, iter_study
from sandbox.synth.exams import ExamFactory
from tests.center.helpers import instance

TINY = ImageSpec(slices=2, matrix=16, xray_matrix=16, us_shape=(12, 16), us_images=1)


def resave(data: bytes, change: object) -> bytes:
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(data))
    change(ds)  # type: ignore[operator]
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def both(data: bytes) -> dicomstore.InstanceInfo:
    fast = dicomstore.inspect(data)
    slow = dicomstore.inspect_with_pydicom(data)
    assert fast == slow
    return fast


def test_synthetic_studies_of_every_modality_read_the_same(tmp_path: Path) -> None:
    settings = Settings()
    factory = ExamFactory(settings.hospitals[0], settings.center.uscc, settings.seed,
                          index_profile=settings.index_profile)
    seen = set()
    for n in range(40):
        exam = factory.exam(n)
        if exam.modality in seen:
            continue
        seen.add(exam.modality)
        for f in iter_study(exam, tmp_path / str(n), TINY):
            info = both(f.path.read_bytes())
            assert info.sop_uid == f.sop_uid and info.has_pixels
            assert info.patient_name.replace("^", "") == exam.patient.name
    assert {"CT", "MR", "DX", "US"} <= seen


def test_implicit_vr_multiframe_sequences_and_gb18030_names() -> None:
    implicit = instance(n=1, implicit=True, frames=3)
    assert both(implicit).frames == 3

    def with_sequences(ds: Dataset) -> None:
        item = Dataset()
        item.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
        item.ReferencedSOPInstanceUID = "1.2.3.4"
        inner = Dataset()
        inner.CodeValue, inner.CodingSchemeDesignator, inner.CodeMeaning = "T-A0100", "SRT", "脑"
        item.ConceptNameCodeSequence = Sequence([inner])
        ds.ReferencedStudySequence = Sequence([item, Dataset()])
        ds.SpecificCharacterSet = "GB18030"
        ds.PatientName = "李丽"
        ds.StudyDescription = "头颅平扫"

    info = both(resave(instance(n=2), with_sequences))
    assert info.patient_name == "李丽" and info.study_description == "头颅平扫"


def test_encapsulated_pixel_data_is_checked_for_its_end() -> None:
    def jpeg(ds: Dataset) -> None:
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
        ds.PixelData = encapsulate([b"\xff\xd8" + b"\x00" * 100 + b"\xff\xd9"])
        ds["PixelData"].VR = "OB"

    data = resave(instance(n=3), jpeg)
    assert both(data).has_pixels
    with pytest.raises(DicomProblem, match="像素数据不完整"):
        dicomstore.inspect(data[:-8])


def test_big_endian_is_declined_and_read_by_pydicom() -> None:
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(instance(n=4)))
    ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    del ds.PixelData  # byte-swapping pixels is not the point here
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, implicit_vr=False, little_endian=False, force_encoding=True)
    data = buf.getvalue()
    with pytest.raises(dicomhead.Declined):
        dicomhead.read(data)
    info = dicomstore.inspect(data)
    assert info.transfer_syntax == ExplicitVRBigEndian and info.rows == 32 and info.patient_name == "李丽"


@pytest.mark.parametrize("cut", [300, 1000])
def test_truncated_files_are_refused_by_both(cut: int) -> None:
    data = instance(n=5)[:cut]
    for reader in (dicomstore.inspect, dicomstore.inspect_with_pydicom):
        with pytest.raises(DicomProblem) as exc:
            reader(data)
        assert exc.value.code in ("dicom_truncated", "dicom_unreadable", "dicom_missing_tags")


def test_missing_uids_are_named() -> None:
    def no_series(ds: Dataset) -> None:
        del ds.SeriesInstanceUID

    with pytest.raises(DicomProblem, match="SeriesInstanceUID"):
        both(resave(instance(n=6), no_series))


@pytest.mark.parametrize("charset", [b"", b"ISO_IR 192", b"GB18030", b"ISO_IR 100", b"ISO 2022 IR 6\\ISO 2022 IR 87"])
def test_person_names_read_as_pydicom_reads_them(charset: bytes) -> None:
    from pydicom.valuerep import PersonName

    values = [b"Zhang^San", b"Zhang^San=", b"Zhang^San==  ", b"=Zhang", b"a=b=c", b"^", b"=", b"  Li^Si \0",
              "张^三".encode(), "张^三==".encode(), "张^三=zhang^san=".encode(), "李丽".encode("gb18030"),
              "Müller".encode("latin-1"), b"\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B", b"\xff\xfe^bad"]
    for raw in values:
        head = dicomhead.Header("1.2.840.10008.1.2.1", {0x00100010: raw, dicomhead.CHARSET: charset}, None)
        with warnings.catch_warnings():  # pydicom warns about the undecodable ones
            warnings.simplefilter("ignore")
            expected = str(PersonName(raw.rstrip(b" \0"), encodings=head.encodings())).strip()
            assert head.person_name(0x00100010) == expected, (charset, raw)
