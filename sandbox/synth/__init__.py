"""Synthetic exams that look real: institutions, Faker patients, exam records, DICOM studies, PDF reports.

    factory = ExamFactory(hospital, center.uscc, seed, index_profile=settings.index_profile)
    exam = factory.exam(0)                 # the same exam 0 for the same seed, however many are made
    record = exam.record(base_url)         # hop-1 `data` entry (plain dict, the document's field order)
    write_study(exam, folder, ImageSpec()) # DICOM files, one instance at a time
    render_report(exam)                    # PDF bytes
"""

from sandbox.synth.batching import batches, envelope, record_chars
from sandbox.synth.dataset import DatasetSummary, generate_dataset
from sandbox.synth.dicom import ImageSpec, InstanceFile, iter_study, write_study
from sandbox.synth.exams import Exam, ExamFactory
from sandbox.synth.institutions import synth_center, synth_hospitals, workforce
from sandbox.synth.pdf import render_report, write_report

__all__ = [
    "DatasetSummary",
    "Exam",
    "ExamFactory",
    "ImageSpec",
    "InstanceFile",
    "batches",
    "envelope",
    "generate_dataset",
    "iter_study",
    "record_chars",
    "render_report",
    "synth_center",
    "synth_hospitals",
    "workforce",
    "write_report",
    "write_study",
]
