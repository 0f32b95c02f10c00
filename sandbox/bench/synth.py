"""Synthetic data speed: exams per second without files, with a 20-slice 256×256 CT study each, and the
rate DICOM is written to disk (one instance at a time, never a whole study in memory)."""

from __future__ import annotations

import tempfile
import time
import tracemalloc
from pathlib import Path

from sandbox.bench import Row, per_reference, reference_us
from sandbox.config import Settings
from sandbox.synth.dicom import ImageSpec, iter_study
from sandbox.synth.exams import Exam, ExamFactory
from sandbox.synth.pdf import render_report
from sandbox.validate import validate_message

CT_SPEC = ImageSpec(slices=20, matrix=256)


def _factory(seed: int) -> ExamFactory:
    s = Settings()
    return ExamFactory(s.hospitals[0], s.center.uscc, seed, index_profile=s.index_profile)


def _ct_exams(factory: ExamFactory, count: int) -> list[Exam]:
    out: list[Exam] = []
    n = 0
    while len(out) < count:
        exam = factory.exam(n)
        if exam.modality == "CT" and not exam.enhanced and len(exam.items) == 1:
            out.append(exam)
        n += 1
    return out


def run(quick: bool) -> list[Row]:
    rows: list[Row] = []
    factory = _factory(20251231)
    factory.exam(0)  # warm caches (staff, Faker providers)

    count = 1000 if quick else 5000
    ref = reference_us()
    t0 = time.perf_counter()
    records = [e.record("http://127.0.0.1:8700") for e in factory.exams(count, 1)]
    dt = time.perf_counter() - t0
    rows.append(Row("exams (metadata only)", count / dt, "exams/s", 1000,
                    f"{count} 条，1000 条用时 {1000 * dt / count:.2f} s; {per_reference(1e6 * dt / count, ref, ' an exam')}"))

    t0 = time.perf_counter()
    message = {"infno": "saveExamRpotImgInfo", "msgid": "H51080200001202510080000000001",
               "infTime": "2025-10-08 00:00:00", "infCode": "H51080200001", "key": "k", "data": records[:15]}
    for _ in range(20):
        validate_message(message, 1, "strict")
    dt = time.perf_counter() - t0
    rows.append(Row("strict validation of generated records", 20 * 15 / dt, "records/s", None,
                    per_reference(1e6 * dt / (20 * 15), ref, " a record")))

    n_ct = 5 if quick else 25
    exams = _ct_exams(factory, n_ct)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        written = 0
        for exam in exams:
            for f in iter_study(exam, Path(tmp) / exam.exam_id, CT_SPEC):
                written += f.size
        dt = time.perf_counter() - t0
        # Peak Python memory while writing one more study: a slice or two, never the whole study.
        tracemalloc.start()
        for _ in iter_study(exams[0], Path(tmp) / "peak", CT_SPEC):
            pass
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    per_exam = written / n_ct
    rows.append(Row("exams with 20-slice 256×256 CT", n_ct / dt, "exams/s", None,
                    f"{n_ct} 个检查，每个 {per_exam / 2**20:.1f} MB；写入时峰值内存 {peak / 2**20:.1f} MB; "
                    f"{per_reference(1e6 * dt / n_ct, ref, ' an exam')}"))
    rows.append(Row("DICOM written", written / dt / 2**20, "MB/s", None,
                    per_reference(1e6 * dt / (written / 2**20), ref, " a MB")))

    n_pdf = 20 if quick else 100
    render_report(exams[0])  # font loading is a one-time cost
    t0 = time.perf_counter()
    for exam in factory.exams(n_pdf, 1):
        render_report(exam)
    dt = time.perf_counter() - t0
    rows.append(Row("PDF reports", n_pdf / dt, "reports/s", None, per_reference(1e6 * dt / n_pdf, ref, " a report")))
    return rows
