"""What the center makes of stored instances for a person to take away: a study zip with a DICOMDIR, and
de-identified copies (WADO-URI `anonymize=yes`)."""

from __future__ import annotations

import io
import logging
import tempfile
import warnings
import zipfile
from pathlib import Path

import pydicom
from dicognito.anonymizer import Anonymizer
from pydicom.dataset import Dataset
from pydicom.fileset import FileSet, RecordNode

log = logging.getLogger("sandbox.center")


def study_zip(blobs: list[bytes]) -> bytes:
    """A zip of the instances as stored, laid out as PS3.10 media with a DICOMDIR (pydicom's FileSet). When
    FileSet cannot index some instance (a SOP class without a directory record), the zip holds the files
    without a DICOMDIR rather than failing."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        datasets = [pydicom.dcmread(io.BytesIO(b)) for b in blobs]
        with tempfile.TemporaryDirectory(prefix="sandbox-dicomdir-") as tmp:
            root = Path(tmp)
            fs = FileSet()
            try:
                for ds in datasets:
                    try:
                        fs.add(ds)
                    except ValueError:
                        # pydicom's record creators need every Type 1 key of the records (Study Time, Study
                        # ID…); PACS data often lacks one, so its records are built from what it has.
                        fs.add_custom(ds, _image_record(ds))
                fs.write(root)
            except (ValueError, KeyError, AttributeError, NotImplementedError) as exc:
                log.warning("检查 zip 未附 DICOMDIR：%s", exc)
                return _plain_zip(blobs)
            finally:
                # FileSet stages into a TemporaryDirectory of its own and has no public close: without this
                # the directory is only removed (with a ResourceWarning) when the object is collected.
                fs._stage["t"].cleanup()
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
                for path in sorted(root.rglob("*")):
                    if path.is_file():
                        zf.write(path, path.relative_to(root).as_posix())
            return buf.getvalue()


def _record(kind: str, ds: Dataset, keywords: tuple[str, ...], **extra: str) -> RecordNode:
    record = Dataset()
    record.DirectoryRecordType = kind
    if "SpecificCharacterSet" in ds:
        record.SpecificCharacterSet = ds.SpecificCharacterSet  # Chinese names stay readable in DICOMDIR
    for keyword in keywords:
        setattr(record, keyword, ds.get(keyword, ""))
    for keyword, value in extra.items():
        setattr(record, keyword, value)
    return RecordNode(record)


def _image_record(ds: Dataset) -> RecordNode:
    """PATIENT / STUDY / SERIES / IMAGE records of an instance, each key taken as it is (empty when absent)."""
    patient = _record("PATIENT", ds, ("PatientName", "PatientID"))
    study = _record("STUDY", ds, ("StudyDate", "StudyTime", "StudyDescription", "StudyInstanceUID", "StudyID",
                                  "AccessionNumber"))
    series = _record("SERIES", ds, ("Modality", "SeriesInstanceUID", "SeriesNumber"))
    # The leaf's key is read as the node is made, before add_custom would fill it in.
    image = _record("IMAGE", ds, ("InstanceNumber",), ReferencedSOPInstanceUIDInFile=ds.SOPInstanceUID)
    study.parent, series.parent, image.parent = patient, study, series
    return image


def _plain_zip(blobs: list[bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for n, data in enumerate(blobs, 1):
            zf.writestr(f"IM{n:05d}.dcm", data)
    return buf.getvalue()


def anonymized(data: bytes, seed: int) -> bytes:
    """The instance de-identified (dicognito: names, IDs, addresses, dates and UIDs replaced, PS3.15 Basic
    Application Level Confidentiality Profile), the same seed giving the same replacements."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(io.BytesIO(data))
        Anonymizer(seed=str(seed)).anonymize(ds)
        # PS3.15 E.1.1: say that, and by which profile, the identity was removed.
        ds.PatientIdentityRemoved = "YES"
        method = Dataset()
        method.CodeValue, method.CodingSchemeDesignator = "113100", "DCM"
        method.CodeMeaning = "Basic Application Confidentiality Profile"
        ds.DeidentificationMethodCodeSequence = [method]
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()
