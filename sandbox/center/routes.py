"""HTTP in, HTTP out: the center's endpoints. Domain work is in sandbox.center.domain."""

from __future__ import annotations

import asyncio
import json
from functools import lru_cache
from typing import Any

from aiohttp import web

from sandbox import openapi
from sandbox.center import dicomweb_doc, pages
from sandbox.center.dicomweb import PREFIX as DICOMWEB
from sandbox.center.dicomweb import delete_study, setup_dicomweb
from sandbox.center.domain import Center
from sandbox.center.errors import ExamNotFound
from sandbox.center.qido import setup_qido
from sandbox.center.store import REQUEUE_REASONS
from sandbox.common.envelope import EnvelopeError
from sandbox.common.http import json_response, read_json
from sandbox.config import Settings
from sandbox.spec.fields import HOP1
from sandbox.spec.formats import china_iso
from sandbox.spec.messages import CENTER as WORDS
from sandbox.typedefs import CENTER, SETTINGS

EXAMS_PATH = "/api/exams"
EXAM_PATH = EXAMS_PATH + "/{key}"
SUMMARY_PATH = "/api/summary"
RETRY_PATH = "/api/forward/retry"
RESET_PATH = "/sandbox/reset"
STUDY_PATH = "/api/studies/{study}"
OPENAPI_PATH = "/openapi.json"
PAGE_SIZE = 50
REASON_ALIASES = {"held": "http_rejected"}


async def save_exam_rpot_img_info(request: web.Request) -> web.Response:
    """POST saveExamRpotImgInfo: hop 1, from a hospital."""
    message = await read_json(request)
    return json_response(await request.app[CENTER].receive(message))


# ---- status API --------------------------------------------------------------------------------------


async def exam_status(request: web.Request) -> web.Response:
    """GET one exam by hiImgIndx or examId: its answer, files, links and forwarding."""
    return json_response(await request.app[CENTER].exam_status(request.match_info["key"]))


async def list_exams(request: web.Request) -> web.Response:
    center: Center = request.app[CENTER]
    page = _int(request.query.get("page"), 1)
    size = min(_int(request.query.get("size"), PAGE_SIZE), 500)
    total, rows = await center.store.list_exams((page - 1) * size, size)
    items = [{
        "hiImgIndx": r["hiImgIndx"], "examId": r["exam_id"], "infCode": r["infCode"],
        "receivedTime": china_iso(r["received"]),
        "succFlag": r["succFlag"], "instances": r["instances"], "pdf": r["pdf_id"] is not None,
        "forwardState": r["state"], "provinceSuccFlag": r["forward_flag"],
        "links": center.links(r["exam_id"], r["study_uid"]),
    } for r in rows]
    return json_response({"total": total, "page": page, "size": size, "items": items})


async def summary(request: web.Request) -> web.Response:
    return json_response(await request.app[CENTER].summary())


async def forward_retry(request: web.Request) -> web.Response:
    """POST: send again (same msgid, same body) the held and failed batches, all of them or those of the
    reasons given (`?reason=expired,http_rejected`; `held` stands for http_rejected)."""
    reasons: tuple[str, ...] = REQUEUE_REASONS
    asked = [r.strip() for v in request.query.getall("reason", []) for r in v.split(",") if r.strip()]
    if asked:
        wrong = [r for r in asked if REASON_ALIASES.get(r, r) not in REQUEUE_REASONS]
        if wrong:
            raise EnvelopeError("bad_query", detail=WORDS["fw_bad_reason"].format(
                value=wrong[0], choices="、".join(("held", *REQUEUE_REASONS))))
        reasons = tuple(dict.fromkeys(REASON_ALIASES.get(r, r) for r in asked))
    n = await request.app[CENTER].requeue(reasons)
    return json_response({"requeued": n, "reasons": list(reasons), "message": WORDS["fw_requeued"]})


async def reset(request: web.Request) -> web.Response:
    """POST (scenario control plane): forget every exam, instance, batch and msgid."""
    await request.app[CENTER].reset()
    return json_response({"reset": True})


def _int(text: str | None, default: int) -> int:
    if text and text.isdigit() and 0 < int(text) < 1_000_000:
        return int(text)
    return default


# ---- pages -------------------------------------------------------------------------------------------


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


async def _exam(request: web.Request) -> dict[str, Any]:
    """The exam a page is about; a Chinese HTML 404 page when there is none (not the JSON envelope
    error_middleware would make of ExamNotFound)."""
    try:
        exam: dict[str, Any] = await request.app[CENTER].exam_view(request.match_info["exam_id"])
    except ExamNotFound as exc:
        raise web.HTTPNotFound(text=pages.not_found_page(exc.message), content_type="text/html") from exc
    return exam


async def report_page(request: web.Request) -> web.Response:
    """examRpotLinkUrl."""
    center: Center = request.app[CENTER]
    exam = await _exam(request)
    row = exam["row"]
    pdf_note = ""
    if row["pdf_id"] is None:
        pdf_note = next((f["message"] for f in _failures(row) if f["source"] == "examRpotPdfI"), "")
    return _html(pages.report_page(
        exam_id=row["exam_id"], index=row["hiImgIndx"], record=exam["record"], has_pdf=row["pdf_id"] is not None,
        pdf_note=pdf_note, links=center.links(row["exam_id"], row["study_uid"]), flag=row["succFlag"],
        received=china_iso(row["received"]) or "", institution=_institution_name(center.settings, exam["record"].get("fixmedinsCode"))))


def _institution_name(settings: Settings, code: Any) -> str:
    inst = settings.institution(str(code)) if code else None
    return inst.name if inst is not None else ""


def _failures(row: Any) -> list[dict[str, str]]:
    value: list[dict[str, str]] = json.loads(row["failures"])
    return value


async def report_pdf(request: web.Request) -> web.StreamResponse:
    center: Center = request.app[CENTER]
    exam = await _exam(request)
    row = exam["row"]
    if row["pdf_id"] is None:
        return _html(pages.not_found_page(WORDS["no_pdf"]), status=404)
    data = await asyncio.to_thread(center.read_pdf, row)
    return web.Response(body=data, headers={
        "Content-Type": "application/pdf",
        "Content-Disposition": f'inline; filename="report-{row["exam_id"]}.pdf"'})


async def viewer_page(request: web.Request) -> web.Response:
    """imgInfoLinkUrl."""
    center: Center = request.app[CENTER]
    exam = await _exam(request)
    row = exam["row"]
    rows = await center.store.study_instances(exam["studies"])
    base = center.base_url if center.settings.public_base_url else ""
    return _html(pages.viewer_page(
        exam_id=row["exam_id"], index=row["hiImgIndx"], record=exam["record"], series=pages.viewer_series(rows),
        links=center.links(row["exam_id"], row["study_uid"]), dicomweb=base + DICOMWEB))


async def home(request: web.Request) -> web.Response:
    center: Center = request.app[CENTER]
    s = center.settings
    page = _int(request.query.get("page"), 1)
    total, rows = await center.store.list_exams((page - 1) * PAGE_SIZE, PAGE_SIZE)
    endpoints = {
        "第一跳上传（POST）": center.base_url + HOP1.path,
        "DICOM（C-STORE、C-FIND、C-GET、C-MOVE、存储确认）": f"AE {s.dicom_ae_title} @ {s.host}:{s.dicom_port}",
        "DICOMweb": center.base_url + DICOMWEB,
        "WADO-URI": center.base_url + "/wado",
        "检查状态": center.base_url + EXAMS_PATH + "/{hiImgIndx}",
        "统计": center.base_url + SUMMARY_PATH,
    }
    return _html(pages.index_page(
        summary=await center.summary(), exams=rows,
        links=[center.links(r["exam_id"], r["study_uid"])["examRpotLinkUrl"] for r in rows],
        endpoints=endpoints, page=page, pages=max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE)))


async def openapi_json(request: web.Request) -> web.Response:
    return json_response(openapi_document(request.app[SETTINGS]))


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_post(HOP1.path, save_exam_rpot_img_info)
    r.add_get(EXAMS_PATH, list_exams)
    r.add_get(EXAM_PATH, exam_status)
    r.add_get(SUMMARY_PATH, summary)
    r.add_post(RETRY_PATH, forward_retry)
    r.add_post(RESET_PATH, reset)
    r.add_delete(STUDY_PATH, delete_study)
    r.add_get("/", home)
    r.add_get("/report/{exam_id}", report_page)
    r.add_get("/report/{exam_id}/pdf", report_pdf)
    r.add_get("/viewer/{exam_id}", viewer_page)
    r.add_static(pages.STATIC_URL, pages.STATIC)
    r.add_get(OPENAPI_PATH, openapi_json)
    setup_qido(app)
    setup_dicomweb(app)


# ---- OpenAPI -----------------------------------------------------------------------------------------

_FILE_FORMS = {
    "examRpotPdfI": "检查报告 PDF：http(s) 下载地址（中心按配置只从允许的主机获取，限时限大小）；宽松模式也接受内联 base64 或 "
                    "data:application/pdf;base64,… 。",
    "imgInfoDcm": "影像：http(s) 下载地址，应答为单个 application/dicom 实例、multipart/related; type=\"application/dicom\" "
                  "的整个检查（DICOMweb 格式）或 application/zip；或 dicom:<StudyInstanceUID> 引用已用 C-STORE 推送到中心的检查；"
                  "宽松模式也接受内联 base64。",
}


def _status_schemas() -> dict[str, Any]:
    link = {"type": "string", "format": "uri"}
    return {
        "ExamStatus": {
            "type": "object",
            "description": "一条检查的接收结果、保存的文件、第二跳链接与转发状态",
            "properties": {
                "hiImgIndx": {"type": "string"}, "examId": {"type": "string"}, "stored": {"type": "boolean"},
                "succFlag": {"type": "string", "enum": ["1", "0", "-1"]}, "message": {"type": "string"},
                "report": {"type": "object"}, "images": {"type": "object"},
                "links": {"type": "object", "properties": {"examRpotLinkUrl": link, "imgInfoLinkUrl": link,
                                                           "imgDldLink": link}},
                "forward": {"type": "object", "description": "state: pending 等待转发 | sending 转发中 | done 已转发 | failed 转发失败"},
                "receipts": {"type": "array", "items": {"type": "object"}},
            },
            "required": ["hiImgIndx", "stored"],
        },
        "Summary": {
            "type": "object",
            "description": "收到、保存、转发、失败（按原因）的计数",
            "properties": {k: {"type": ["integer", "object"]} for k in (
                "received", "messages", "answers", "rejected", "stored", "storedPartial", "pdfs", "instances",
                "instanceBytes", "forwarded", "forwardedWithWarning", "forwardPending", "forwardSending",
                "forwardFailed", "batches")},
        },
    }


@lru_cache(maxsize=8)
def openapi_document(settings: Settings) -> dict[str, Any]:
    """The center's OpenAPI 3.1 document: hop 1 from the spec tables, plus status, pages and DICOMweb."""
    schemas = openapi.components(1, settings.mode, settings.index_profile)
    props = schemas["Hop1Record"]["properties"]
    for code, text in _FILE_FORMS.items():
        props[code] = {**props[code], "description": props[code]["description"] + "。" + text}
        props[code].pop("pattern", None)
        props[code].pop("format", None)
    schemas.update(_status_schemas())

    def get(summary: str, description: str, content: dict[str, Any], params: list[dict[str, Any]] | None = None,
            tag: str = "地方影像云数据共享中心") -> dict[str, Any]:
        # Pages answer an unknown exam with a Chinese HTML page, the API with the JSON envelope.
        missing = ({"description": "未找到（中文页面）", "content": html} if "text/html" in content
                   else openapi.error_response("未找到"))
        op: dict[str, Any] = {"summary": summary, "description": description, "tags": [tag],
                              "responses": {"200": {"description": "成功", "content": content}, "404": missing}}
        if params:
            op["parameters"] = params
        return {"get": op}

    def path_param(name: str, description: str) -> dict[str, Any]:
        return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}, "description": description}

    json_of = {"application/json": {"schema": {"type": "object"}}}
    html = {"text/html": {"schema": {"type": "string"}}}
    study = dicomweb_doc.STUDY
    paths: dict[str, Any] = {
        HOP1.path: openapi.receive_path(1),
        EXAM_PATH: get("检查状态", "按 hiImgIndx 或 examId 查询：上传结果、保存的 PDF 与 DICOM、三个链接、向省平台转发的状态。",
                       {"application/json": {"schema": {"$ref": "#/components/schemas/ExamStatus"}}},
                       [path_param("key", "hiImgIndx 或 examId")]),
        EXAMS_PATH: get("检查列表", "最近收到的检查，分页（page、size）。", json_of),
        SUMMARY_PATH: get("统计", "收到、保存、转发、失败（按原因）的计数。",
                          {"application/json": {"schema": {"$ref": "#/components/schemas/Summary"}}}),
        RETRY_PATH: {"post": {"summary": "重新发送暂停或失败的批次", "tags": ["地方影像云数据共享中心"],
                              "description": "把暂停（held，省平台应答 4xx）或失败（超过重试期限 expired、整批拒收等）的批次重新排队，"
                                             "报文ID与报文体不变，重试期限重新计算。省级逐条拒收（province_rejected）是最终结果，不重发。",
                              "parameters": [{"name": "reason", "in": "query", "required": False,
                                              "schema": {"type": "string"},
                                              "description": "只重发这些原因的批次，逗号分隔：held、"
                                                             + "、".join(REQUEUE_REASONS) + "；不给则全部"}],
                              "responses": {"200": {"description": "成功", "content": json_of},
                                            "400": openapi.error_response("reason 不可重发")}}},
        "/report/{exam_id}": get("检查报告页（examRpotLinkUrl）", "中文报告页，内嵌检查报告 PDF。", html,
                                 [path_param("exam_id", "中心生成的检查编号")]),
        "/viewer/{exam_id}": get("影像页（imgInfoLinkUrl）", "序列列表、逐幅显示（按 DICOM 窗宽窗位渲染为 PNG）、滑块切换层面。", html,
                                 [path_param("exam_id", "中心生成的检查编号")]),
        STUDY_PATH: {"delete": {
            "summary": "删除检查", "tags": ["地方影像云数据共享中心"], "parameters": [study],
            "description": "与 DELETE /dicomweb/studies/{study} 相同：删除检查的全部实例与文件。",
            "responses": {"200": {"description": "已删除", "content": json_of},
                          "400": openapi.error_response("UID 格式不对（code 1073）"),
                          "404": openapi.error_response("检查不存在（code 1071）")}}},
        **dicomweb_doc.paths(DICOMWEB),
    }
    return openapi.document(
        title="地方影像云数据共享中心（沙箱）",
        description=f"{HOP1.title}：接收 {HOP1.infno}，保存检查报告 PDF 与 DICOM 影像，以 saveExamRpotImgIndx 向省平台转发索引。"
                    f"DICOM C-STORE：AE {settings.dicom_ae_title}，端口 {settings.dicom_port}。",
        server_url=(settings.public_base_url or settings.url(settings.center_port)).rstrip("/"),
        paths=paths,
        schemas=schemas,
    )
