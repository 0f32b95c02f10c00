"""The browser pages hop 2's links open: the report page (`examRpotLinkUrl`), the image page
(`imgInfoLinkUrl`), and the center's home page. Plain HTML and JS from `templates/`, in Chinese, with no
CDN: they work offline inside the 医保专网. Field labels come from the hop-1 table, never typed here.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from string import Template
from typing import Any

from sandbox.spec.dicts import DICTIONARIES
from sandbox.spec.fields import HOP1
from sandbox.spec.messages import CENTER

TEMPLATES = Path(__file__).parent / "templates"
STATIC = TEMPLATES / "static"
STATIC_URL = "/static/center"

# Which record fields each part of the report page shows, in reading order.
PATIENT = ("psnName", "gend", "age", "brdy", "psnCertType", "certno", "patnId", "iptNo", "wardareaName")
EXAM = ("fixmedinsName", "hospLv", "imgExamType", "imgExamItem", "examPart", "examWay", "examDate", "examDeptName",
        "examDrName", "devName", "examTecnName", "appyNo", "appyDeptName", "bilgDrName")
CLINICAL = ("clncDiag", "disecode", "chfcomp", "illhis", "algs", "sympDscr")
FINDINGS = ("imgDscr", "diagRslt")
CONCLUSION = ("examRsltCode", "rpotAdv", "rpotCritVal")
SIGNED = ("rpotNo", "rpotDrName", "rpotDate", "chkDrName", "chkDate", "sdryChkDrName", "sdryChkDate", "rpotPubDate")
MASKED = frozenset({"certno"})
# Dictionary-coded fields shown as "code 名称".
CODED = {"gend": "gend", "hospLv": "hosp_lv", "imgExamType": "img_exam_type", "examWay": "exam_way",
         "examRsltCode": "exam_rslt_code", "psnCertType": "psn_cert_type"}
LABELS = {f.code: f.name for f in HOP1.fields}


@cache
def template(name: str) -> Template:
    return Template((TEMPLATES / name).read_text(encoding="utf-8"))


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def mask(value: str) -> str:
    """An identity number with its middle hidden (first 6, last 4 kept)."""
    if len(value) <= 10:
        return value[:2] + "*" * max(len(value) - 2, 0)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def shown(code: str, value: Any) -> str:
    """A record value as the page shows it: dictionary words, masked identity numbers."""
    text = str(value)
    if code in MASKED:
        return mask(text)
    if code in CODED:
        words = DICTIONARIES[CODED[code]]
        return "、".join(f"{words[t]}" if t in words else t for t in text.split(" ") if t)
    return text


def field_rows(record: dict[str, Any], codes: Iterable[str]) -> str:
    """`<dt>label</dt><dd>value</dd>` for the fields of a record that have a value."""
    out = []
    for code in codes:
        value = record.get(code)
        if value in (None, ""):
            continue
        out.append(f'<div class="kv"><dt>{esc(LABELS.get(code, code))}</dt><dd>{esc(shown(code, value))}</dd></div>')
    return "\n".join(out)


def prose(record: dict[str, Any], codes: Iterable[str]) -> str:
    out = []
    for code in codes:
        value = record.get(code)
        if value in (None, ""):
            continue
        out.append(f'<section class="prose"><h3>{esc(LABELS[code])}</h3><p>{esc(value)}</p></section>')
    return "\n".join(out)


def json_for_script(value: Any) -> str:
    """JSON safe inside a <script> element."""
    return json.dumps(value, ensure_ascii=False).replace("</", "<\\/")


def report_page(*, exam_id: str, index: str, record: dict[str, Any], has_pdf: bool, pdf_note: str, links: dict[str, str],
                flag: str, received: str, institution: str = "") -> str:
    """examRpotLinkUrl: the report fields and the PDF embedded."""
    title = f"{record.get('fixmedinsName') or institution or record.get('fixmedinsCode', '')} 影像检查报告"
    if has_pdf:
        pdf = (f'<object class="pdf" data="/report/{esc(exam_id)}/pdf" type="application/pdf">'
               f'<p>浏览器无法内嵌显示 PDF，请<a href="/report/{esc(exam_id)}/pdf">下载检查报告 PDF</a>。</p></object>')
    else:
        pdf = f'<p class="note">{esc(CENTER["no_pdf"])}{("：" + esc(pdf_note)) if pdf_note else ""}</p>'
    return template("report.html").substitute(
        title=esc(title),
        static=STATIC_URL,
        index=esc(index),
        received=esc(received),
        flag=esc(flag),
        patient=field_rows(record, PATIENT),
        exam=field_rows(record, EXAM),
        clinical=field_rows(record, CLINICAL),
        findings=prose(record, FINDINGS) or '<p class="note">报告未写影像描述与诊断结果。</p>',
        conclusion=field_rows(record, CONCLUSION),
        signed=field_rows(record, SIGNED),
        pdf=pdf,
        pdf_link=(f'<a class="button" href="/report/{esc(exam_id)}/pdf">下载报告 PDF</a>' if has_pdf else ""),
        viewer_url=esc(links["imgInfoLinkUrl"]),
        zip_url=esc(links["imgDldLink"] + "?accept=application/zip"),
        dicomweb_url=esc(links["imgDldLink"]),
    )


def viewer_page(*, exam_id: str, index: str, record: dict[str, Any], series: Sequence[dict[str, Any]],
                links: dict[str, str], dicomweb: str) -> str:
    """imgInfoLinkUrl: the study's series, one frame at a time, with a slider."""
    title = f"{record.get('psnName', '')} {record.get('imgExamItem', '')} 影像"
    manifest = {"examId": exam_id, "dicomweb": dicomweb, "series": list(series)}
    return template("viewer.html").substitute(
        title=esc(title),
        static=STATIC_URL,
        index=esc(index),
        summary=field_rows(record, ("psnName", "gend", "age", "imgExamItem", "examDate", "fixmedinsName")),
        manifest=json_for_script(manifest),
        report_url=esc(links["examRpotLinkUrl"]),
        zip_url=esc(links["imgDldLink"] + "?accept=application/zip"),
        dicomweb_url=esc(links["imgDldLink"]),
    )


def viewer_series(rows: Iterable[Any]) -> list[dict[str, Any]]:
    """Instances grouped by series for the image page: every frame of every image is one slice."""
    series: dict[str, dict[str, Any]] = {}
    for r in rows:
        s = series.setdefault(r["series_uid"], {
            "study": r["study_uid"], "uid": r["series_uid"], "number": r["series_number"], "modality": r["modality"],
            "description": r["series_description"], "instances": 0, "slices": []})
        s["instances"] += 1
        if r["has_pixels"]:
            for frame in range(1, (r["frames"] or 1) + 1):
                s["slices"].append([r["sop_uid"], frame, r["instance_number"]])
    return list(series.values())


def index_page(*, summary: dict[str, Any], exams: Sequence[Any], links: Iterable[str],
               endpoints: dict[str, str], page: int, pages: int) -> str:
    """The center's home page: counts, recent exams, and where each endpoint is."""
    rows = []
    for e, link in zip(exams, links, strict=True):
        record = json.loads(e["record"])
        state = e["state"] or "none"
        word = CENTER["state_warning"] if state == "done" and e["forward_flag"] == "0" else (
            CENTER.get(f"state_{'forwarded' if state == 'done' else state}", state))
        rows.append(
            f"<tr><td class=mono>{esc(e['hiImgIndx'])}</td><td>{esc(record.get('psnName'))}</td>"
            f"<td>{esc(record.get('imgExamItem'))}</td><td>{esc(record.get('examDate'))}</td>"
            f"<td>{esc(e['instances'])}</td><td class=flag{esc(e['succFlag']).replace('-', 'm')}>{esc(e['succFlag'])}</td>"
            f"<td>{esc(word)}</td><td><a href=\"{esc(link)}\">报告</a> · "
            f"<a href=\"/viewer/{esc(e['exam_id'])}\">影像</a> · <a href=\"/api/exams/{esc(e['exam_id'])}\">状态</a></td></tr>")
    nav = []
    if page > 1:
        nav.append(f'<a href="/?page={page - 1}">上一页</a>')
    if page < pages:
        nav.append(f'<a href="/?page={page + 1}">下一页</a>')
    endpoint_rows = "\n".join(f"<div class=kv><dt>{esc(k)}</dt><dd class=mono>{esc(v)}</dd></div>"
                              for k, v in endpoints.items())
    return template("index.html").substitute(
        static=STATIC_URL,
        received=esc(summary["received"]),
        stored=esc(summary["stored"]),
        partial=esc(summary["storedPartial"]),
        rejected=esc(summary["rejected"]["total"]),
        forwarded=esc(summary["forwarded"]),
        pending=esc(summary["forwardPending"] + summary["forwardSending"]),
        failed=esc(summary["forwardFailed"]["total"]),
        instances=esc(summary["instances"]),
        rows="\n".join(rows) or '<tr><td colspan=8 class=note>尚未收到检查。</td></tr>',
        nav=" · ".join(nav),
        endpoints=endpoint_rows,
    )


def not_found_page(message: str) -> str:
    return template("notfound.html").substitute(static=STATIC_URL, message=esc(message))
