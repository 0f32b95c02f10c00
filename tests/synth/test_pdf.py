from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from sandbox.synth.exams import Exam
from sandbox.synth.pdf import FONT_CANDIDATES, render_report


def _text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) == 1
    return reader.pages[0].extract_text()


@pytest.mark.parametrize("embedded", [True, False], ids=["embedded-font", "cid-stsong"])
def test_report_text_extracts_back_in_chinese(one_of_each: dict[str, Exam], embedded: bool) -> None:
    if embedded and not any(p.exists() for p in FONT_CANDIDATES):
        pytest.skip("fonts-wqy-microhei not installed: the report falls back to STSong-Light (tested separately)")
    for key in ("ct_chest", "mr_head", "us_gyn"):
        exam = one_of_each[key]
        text = _text(render_report(exam, embedded_font=embedded)).replace(" ", "")
        for expected in (exam.hospital.name, exam.patient.name, exam.item_name, exam.report_no,
                         exam.impression[:12], exam.findings[:12], exam.reporter.name, exam.checker.name,
                         exam.times.pub.strftime("%Y-%m-%d%H:%M:%S"), "影像所见", "诊断意见"):
            assert expected.replace(" ", "") in text, (key, expected)


def test_embedded_font_is_a_subset_inside_the_file(one_of_each: dict[str, Exam]) -> None:
    if not any(p.exists() for p in FONT_CANDIDATES):
        pytest.skip("fonts-wqy-microhei not installed: nothing to embed")
    data = render_report(one_of_each["ct_head"])
    assert b"/FontFile2" in data and b"/ToUnicode" in data


def test_same_exam_gives_the_same_pdf_bytes(one_of_each: dict[str, Exam]) -> None:
    exam = one_of_each["dx_chest"]
    assert render_report(exam) == render_report(exam)
    assert render_report(exam) != render_report(one_of_each["dx_knee"])
