"""A whole synthetic data set on disk: hop-1 messages, DICOM studies and PDF reports (`sandbox generate`).

Layout of the output folder (the same as a hospital's file store, so a generated set can be served):

    messages/hop1-0001.json          one envelope per file, `data` within 40000 characters
    files/{exam_id}/report.pdf       the exam's report
    files/{exam_id}/dicom/S001/I0001.dcm …
    manifest.json                    every exam: index, study UID, files, the message that carries it

Everything derives from the seed and a fixed calendar (never the clock), so the same arguments give the
same bytes.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sandbox.config import Institution
from sandbox.synth.batching import batches, envelope
from sandbox.synth.dicom import DEFAULT_IMAGES, ImageSpec, iter_study
from sandbox.synth.exams import Exam, ExamFactory
from sandbox.synth.pdf import write_report

Progress = Callable[[Exam], None]


@dataclass(slots=True)
class DatasetSummary:
    exams: int = 0
    messages: int = 0
    dicom_files: int = 0
    dicom_bytes: int = 0
    pdf_files: int = 0
    pdf_bytes: int = 0
    modalities: dict[str, int] = field(default_factory=dict)


def exam_dir(root: Path, exam: Exam) -> Path:
    return root / "files" / exam.exam_id


def write_exam_files(exam: Exam, root: Path, *, dicom: bool, pdf: bool, spec: ImageSpec,
                     embedded_font: bool = True) -> dict[str, Any]:
    """Write one exam's DICOM study and report under root/files/{exam_id}; returns its manifest entry."""
    folder = exam_dir(root, exam)
    entry: dict[str, Any] = {"examId": exam.exam_id, "studyInstanceUID": exam.study_uid, "dicom": [], "report": None}
    if dicom:
        for f in iter_study(exam, folder / "dicom", spec):
            entry["dicom"].append({"path": f.path.relative_to(root).as_posix(), "seriesInstanceUID": f.series_uid,
                                   "sopInstanceUID": f.sop_uid, "sopClassUID": f.sop_class, "size": f.size,
                                   "seriesNumber": f.series_no, "instanceNumber": f.instance_no})
    if pdf:
        size = write_report(exam, folder / "report.pdf", embedded_font=embedded_font)
        entry["report"] = {"path": (folder / "report.pdf").relative_to(root).as_posix(), "size": size}
    return entry


def plan_exams(factories: Sequence[ExamFactory], count: int, offset: int = 0) -> list[tuple[ExamFactory, int]]:
    """Which hospital makes which exam: round robin over the factories, exam n per hospital."""
    k = len(factories)
    return [(factories[i % k], (offset + i) // k) for i in range(offset, offset + count)]


def generate_dataset(
    factories: Sequence[ExamFactory],
    count: int,
    out: Path,
    *,
    base_url: str,
    dicom: bool = True,
    pdf: bool = True,
    spec: ImageSpec = DEFAULT_IMAGES,
    embedded_font: bool = True,
    progress: Progress | None = None,
) -> DatasetSummary:
    """Write `count` exams (round robin over the hospitals) with their messages, files and manifest."""
    summary = DatasetSummary()
    per_inst: dict[str, list[tuple[Exam, dict[str, Any]]]] = defaultdict(list)
    manifest: list[dict[str, Any]] = []
    for factory, n in plan_exams(factories, count):
        exam = factory.exam(n)
        entry = write_exam_files(exam, out, dicom=dicom, pdf=pdf, spec=spec, embedded_font=embedded_font)
        entry.update({"n": n, "fixmedinsCode": exam.hospital.code, "hiImgIndx": exam.index,
                      "modality": exam.modality, "imgExamItem": exam.item_name})
        manifest.append(entry)
        per_inst[exam.hospital.code].append((exam, exam.record(base_url)))
        summary.exams += 1
        summary.modalities[exam.modality] = summary.modalities.get(exam.modality, 0) + 1
        summary.dicom_files += len(entry["dicom"])
        summary.dicom_bytes += sum(d["size"] for d in entry["dicom"])
        if entry["report"]:
            summary.pdf_files += 1
            summary.pdf_bytes += entry["report"]["size"]
        if progress is not None:
            progress(exam)

    by_index = {e["hiImgIndx"]: e for e in manifest}
    messages = out / "messages"
    messages.mkdir(parents=True, exist_ok=True)
    insts: dict[str, Institution] = {f.hospital.code: f.hospital for f in factories}
    for code, items in per_inst.items():
        for msg in build_messages(insts[code], items):
            summary.messages += 1
            name = f"hop1-{summary.messages:04d}.json"
            for rec in msg["data"]:
                by_index[rec["hiImgIndx"]]["message"] = name
            (messages / name).write_text(json.dumps(msg, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    (out / "manifest.json").write_text(json.dumps({"exams": manifest}, ensure_ascii=False, indent=2) + "\n",
                                       encoding="utf-8")
    return summary


def build_messages(inst: Institution, items: list[tuple[Exam, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Envelopes for one hospital's records, each sent 10 minutes after its last report was published;
    msgid sequence numbers count per day, as a hospital's interface would."""
    out = []
    seq: dict[str, int] = defaultdict(int)
    by_record = {id(rec): exam for exam, rec in items}
    last = datetime.min
    for batch in batches(rec for _, rec in items):
        when = max(by_record[id(r)].times.pub for r in batch) + timedelta(minutes=10)
        when = max(when, last + timedelta(seconds=1))
        last = when
        day = f"{when:%Y%m%d}"
        seq[day] += 1
        out.append(envelope(batch, inst, when, seq[day]))
    return out
