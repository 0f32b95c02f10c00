"""One-page Chinese exam reports (检查报告单) as PDF, drawn with reportlab.

The font is WenQuanYi Micro Hei embedded as a subset when the system has it (Debian fonts-wqy-microhei;
it renders anywhere), otherwise Adobe's CID font STSong-Light, which every PDF reader substitutes. Both
carry a ToUnicode map, so the text extracts back. `invariant=1` keeps dates and ids out of the file, so
the same exam always gives the same bytes.
"""

from __future__ import annotations

import io
import threading
from functools import lru_cache
from pathlib import Path

from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from sandbox.spec.dicts import GEND, PSN_CERT_TYPE
from sandbox.spec.formats import format_date, format_datetime
from sandbox.synth.exams import Exam

FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/wqy-microhei/wqy-microhei.ttc"),
)
CID_FONT = "STSong-Light"
RESULT_TITLES = {"1": "阴性", "2": "阳性", "3": "不确定"}


@lru_cache(maxsize=4)
def report_font(prefer_embedded: bool = True) -> str:
    """Register and return the name of the font reports use."""
    if prefer_embedded:
        for path in FONT_CANDIDATES:
            if path.exists():
                pdfmetrics.registerFont(TTFont("WQYMicroHei", str(path), subfontIndex=0))
                return "WQYMicroHei"
    pdfmetrics.registerFont(UnicodeCIDFont(CID_FONT))
    return CID_FONT


def _wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """Break Chinese text into lines that fit `width` points (any character may start a line)."""
    lines: list[str] = []
    for para in text.split("\n"):
        line = ""
        for ch in para:
            if pdfmetrics.stringWidth(line + ch, font, size) > width:
                lines.append(line)
                line = ""
            line += ch
        lines.append(line)
    return lines


def render_report(exam: Exam, *, embedded_font: bool = True) -> bytes:
    """The exam's report as PDF bytes. One at a time: reportlab's TrueType subsetting keeps per-font state
    that two threads rendering at once corrupt (KeyError in makeSubset, seen with concurrent sends)."""
    with _RENDERING:
        return _render_report(exam, embedded_font)


_RENDERING = threading.Lock()


def _render_report(exam: Exam, embedded_font: bool) -> bytes:
    font = report_font(embedded_font)
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, invariant=1, pageCompression=1)
    c.setTitle(f"{exam.hospital.name} {exam.item_name} 检查报告单")
    c.setAuthor(exam.hospital.name)
    c.setSubject(exam.report_no)
    c.setCreator("医保影像云沙箱")
    width, height = A4
    left, right = 50.0, width - 50.0
    p, t = exam.patient, exam.times

    y = height - 60
    c.setFont(font, 18)
    c.drawCentredString(width / 2, y, exam.hospital.name)
    y -= 26
    dept = "超声检查报告单" if exam.modality == "US" else "医学影像检查报告单"
    c.setFont(font, 15)
    c.drawCentredString(width / 2, y, dept)
    y -= 20
    c.setFont(font, 9)
    c.drawString(left, y, f"报告编号：{exam.report_no}")
    c.drawRightString(right, y, f"检查号：{exam.accession}")
    y -= 8
    c.line(left, y, right, y)

    c.setFont(font, 10.5)
    age = exam.age
    rows = (
        (f"姓名：{p.name}", f"性别：{GEND[p.gend]}", f"年龄：{age}岁" if age >= 1 else f"年龄：{age}岁（{round(float(age) * 12)}月）"),
        (f"证件类型：{PSN_CERT_TYPE.get(p.cert_type, p.cert_type)}", f"证件号码：{p.certno}", f"病人ID：{exam.patient_id}"),
        (f"申请科室：{exam.ordering_dept}", f"申请医生：{exam.clinician.name}",
         f"住院号：{exam.inpatient_no}" if exam.inpatient_no else f"就诊类型：{exam.visit}"),
        (f"检查项目：{exam.item_name}", f"检查日期：{format_date(t.exam.date())}", f"检查设备：{exam.device.room}"),
        (f"临床诊断：{exam.indication.diagnosis}", f"检查部位代码：{' '.join(exam.parts)}", ""),
    )
    col = (right - left) / 3
    for row in rows:
        y -= 18
        for k, cell in enumerate(row):
            c.drawString(left + k * col, y, cell)
    y -= 10
    c.line(left, y, right, y)

    def section(title: str, body: str, y: float) -> float:
        y -= 22
        c.setFont(font, 12)
        c.drawString(left, y, title)
        c.setFont(font, 10.5)
        for line in _wrap(body, font, 10.5, right - left - 24):
            y -= 17
            c.drawString(left + 24, y, line)
        return y

    y = section("影像所见：", exam.findings, y)
    y = section("诊断意见：", exam.impression, y)
    if exam.advice:
        y = section("建议：", exam.advice, y)
    if exam.critical:
        y = section("危急值：", exam.critical, y)
    y -= 18
    c.setFont(font, 10.5)
    c.drawString(left, y, f"检查结果：{RESULT_TITLES[exam.result]}")

    y = 130.0
    c.line(left, y + 16, right, y + 16)
    c.drawString(left, y, f"检查技师：{exam.technician.name}")
    c.drawString(left + col, y, f"报告医师：{exam.reporter.name}")
    c.drawString(left + 2 * col, y, f"审核医师：{exam.checker.name}")
    y -= 18
    c.drawString(left, y, f"报告时间：{format_datetime(t.rpot)}")
    c.drawString(left + 1.5 * col, y, f"审核时间：{format_datetime(t.chk)}")
    y -= 18
    c.drawString(left, y, f"出具报告时间：{format_datetime(t.pub)}")
    c.setFont(font, 8.5)
    c.drawString(left, 60, "本报告仅供临床参考，请结合临床。医保影像云沙箱合成数据，非真实病例。")
    c.drawRightString(right, 60, f"{exam.hospital.name}  {exam.hospital.code}")
    c.showPage()
    c.save()
    return buf.getvalue()


def write_report(exam: Exam, path: Path, *, embedded_font: bool = True) -> int:
    """Write the report PDF to `path`; returns its size."""
    data = render_report(exam, embedded_font=embedded_font)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return len(data)
