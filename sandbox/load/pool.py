"""Pre-rendered files for load tests: each Locust worker renders a small pool of exams once (DICOM study
and PDF report, by the sandbox's own generator) and serves every exam of the run from it.

Making an exam's pixels and report costs tens of milliseconds; under load that would make the generator,
not the center, the bottleneck. So a pooled study becomes a *template*: its bytes with the values that tie
images to a record — PatientName, PatientID, AccessionNumber, the study/series/acquisition/content dates
and the study, series and SOP instance UIDs (also in the file meta) — replaced by fixed-width markers.
Serving exam k joins the template's pieces around that exam's values, so the center receives images that
agree with the record (it compares name, ID, date and modality) under UIDs of their own (it stores each
instance once per SOP UID), at the cost of a memory copy. Other attributes (birth date, sex, institution,
pixel data) and the report PDF are those of the pooled exam.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.uid import UID

from sandbox.synth.dicom import ImageSpec, iter_study
from sandbox.synth.exams import Exam, ExamFactory
from sandbox.synth.pdf import render_report

DICOM = "application/dicom"
# Fixed-width markers; a value is padded to the marker's width (text with spaces, which DICOM ignores at the
# end of PN/LO/SH values). UIDs are generated at exactly UID_WIDTH characters, so they need no padding.
UID_WIDTH = 44  # "2.25." + 39 digits: a UUID's integer in [10**38, 2**128)
MARKERS: dict[str, bytes] = {
    "name": b"Qn" * 32,  # PN: up to 64 bytes (UTF-8)
    "id": b"Qi" * 32,  # LO: up to 64 characters
    "accession": b"Qa" * 8,  # SH: up to 16 characters
    "date": b"18880808",  # DA: always 8 (a valid date no synthetic exam or birth has)
    "study": b"9.9." + b"1" * (UID_WIDTH - 4),
    "series": b"9.9." + b"2" * (UID_WIDTH - 4),
    "sop": b"9.9." + b"3" * (UID_WIDTH - 4),
}
_PAD = {"name": b" ", "id": b" ", "accession": b" ", "date": b" "}
_UUID_SPAN = 2**128 - 10**38


def fixed_uid(*parts: object) -> str:
    """A reproducible `2.25.` UID of exactly UID_WIDTH characters (a name-based UUID's integer, 39 digits)."""
    digest = int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:16], "big")
    return f"2.25.{10**38 + digest % _UUID_SPAN}"


@dataclass(frozen=True, slots=True)
class Instance:
    """One pooled instance: its bytes cut at the markers (pieces[i], key[i], pieces[i+1], …)."""

    pieces: tuple[bytes, ...]
    keys: tuple[str, ...]
    series_no: int

    def render(self, values: dict[str, bytes]) -> bytes:
        out = [self.pieces[0]]
        for key, piece in zip(self.keys, self.pieces[1:], strict=True):
            out.append(values[key])
            out.append(piece)
        return b"".join(out)


def cut(data: bytes) -> tuple[tuple[bytes, ...], tuple[str, ...]]:
    """Split DICOM bytes at every marker occurrence."""
    hits: list[tuple[int, str]] = []
    for key, marker in MARKERS.items():
        start = data.find(marker)
        while start != -1:
            hits.append((start, key))
            start = data.find(marker, start + len(marker))
    hits.sort()
    pieces, keys, pos = [], [], 0
    for start, key in hits:
        pieces.append(data[pos:start])
        keys.append(key)
        pos = start + len(MARKERS[key])
    pieces.append(data[pos:])
    return tuple(pieces), tuple(keys)


def template(path: Path, series_no: int) -> Instance:
    """A written instance with its record-bound values replaced by the markers."""
    ds = dcmread(path)
    text = {k: MARKERS[k].decode() for k in MARKERS}
    ds.PatientName = text["name"]
    ds.PatientID = text["id"]
    ds.AccessionNumber = text["accession"]
    for keyword in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"):
        if keyword in ds:
            setattr(ds, keyword, text["date"])
    ds.StudyInstanceUID = text["study"]
    ds.SeriesInstanceUID = text["series"]
    ds.SOPInstanceUID = text["sop"]
    ds.file_meta.MediaStorageSOPInstanceUID = UID(text["sop"])
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    pieces, keys = cut(buf.getvalue())
    return Instance(pieces, keys, series_no)


@dataclass(frozen=True, slots=True)
class PooledExam:
    modality: str
    instances: tuple[Instance, ...]
    pdf: bytes

    @property
    def dicom_bytes(self) -> int:
        return sum(len(b"".join(i.pieces)) for i in self.instances)


@dataclass(frozen=True, slots=True)
class Served:
    """What the file server answers for one exam of the run."""

    exam_id: str
    study_uid: str
    pooled: PooledExam
    values: dict[str, bytes]

    def study(self) -> tuple[str, bytes]:
        """(Content-Type, body) of the whole study as DICOMweb multipart/related."""
        boundary = uuid.uuid5(uuid.NAMESPACE_OID, self.study_uid).hex
        parts = []
        for k, inst in enumerate(self.pooled.instances, 1):
            values = dict(self.values)
            values["series"] = fixed_uid(self.study_uid, "series", inst.series_no).encode()
            values["sop"] = fixed_uid(self.study_uid, "sop", k).encode()
            body = inst.render(values)
            parts.append(f"--{boundary}\r\nContent-Type: {DICOM}\r\nContent-Length: {len(body)}\r\n\r\n".encode())
            parts.append(body)
            parts.append(b"\r\n")
        parts.append(f"--{boundary}--\r\n".encode())
        return f'multipart/related; type="{DICOM}"; boundary={boundary}', b"".join(parts)


def _text(value: str, key: str) -> bytes:
    raw = value.encode("utf-8")
    width = len(MARKERS[key])
    if len(raw) > width:
        raise ValueError(f"{key} 的值超过模板宽度 {width} 字节：{value!r}")
    return raw.ljust(width, _PAD[key])


class FilePool:
    """A worker's pooled studies and reports, and the exams of the run that map onto them.

    `pooled` maps a modality to its templates; `serve(exam)` remembers which template and values an exam's
    URLs stand for (the newest `keep` exams: the center fetches right after the message is sent).
    """

    def __init__(self, factory: ExamFactory, size: int, modalities: tuple[str, ...], spec: ImageSpec,
                 *, keep: int = 50_000, scan: int = 5_000) -> None:
        self.spec = spec
        self.pooled: dict[str, list[PooledExam]] = {m: [] for m in modalities}
        self.exams: OrderedDict[str, Served] = OrderedDict()
        self.studies: dict[str, str] = {}
        self.keep = keep
        # the pool's exams: the factory's first exams of the chosen modalities, at least one per modality
        made = 0
        with tempfile.TemporaryDirectory(prefix="sandbox-load-pool-") as tmp:
            for n in range(scan):
                exam = factory.exam(n)
                group = self.pooled.get(exam.modality)
                if group is None or (group and made >= size):
                    continue
                group.append(self._render(exam, Path(tmp) / str(n)))
                made += 1
                if made >= size and all(self.pooled.values()):
                    break
        missing = [m for m, group in self.pooled.items() if not group]
        if missing:
            raise ValueError(f"在前 {scan} 个合成检查中找不到这些影像类型：{'、'.join(missing)}")

    def _render(self, exam: Exam, folder: Path) -> PooledExam:
        instances = tuple(template(f.path, f.series_no) for f in iter_study(exam, folder, self.spec))
        return PooledExam(exam.modality, instances, render_report(exam))

    @property
    def size(self) -> int:
        return sum(len(g) for g in self.pooled.values())

    @property
    def pdf_bytes(self) -> list[int]:
        return [len(p.pdf) for g in self.pooled.values() for p in g]

    @property
    def dicom_bytes(self) -> list[int]:
        return [p.dicom_bytes for g in self.pooled.values() for p in g]

    def serve(self, exam: Exam, number: int, study_uid: str) -> Served:
        """Map an exam of the run onto a pooled exam of its modality; its URLs are then answered."""
        group = self.pooled[exam.modality]
        p = exam.patient
        values = {
            "name": _text(f"{p.family}^{p.given}" if p.given else p.family, "name"),
            "id": _text(exam.patient_id if "patnId" in exam.filled else p.certno, "id"),
            "accession": _text(exam.accession, "accession"),
            "date": _text(f"{exam.times.exam:%Y%m%d}", "date"),
            "study": study_uid.encode(),
        }
        served = Served(exam.exam_id, study_uid, group[number % len(group)], values)
        self.exams[exam.exam_id] = served
        self.studies[study_uid] = exam.exam_id
        while len(self.exams) > self.keep:
            old = self.exams.popitem(last=False)[1]
            self.studies.pop(old.study_uid, None)
        return served

    def by_exam(self, exam_id: str) -> Served | None:
        return self.exams.get(exam_id)

    def by_study(self, study_uid: str) -> Served | None:
        exam_id = self.studies.get(study_uid)
        return None if exam_id is None else self.exams.get(exam_id)
