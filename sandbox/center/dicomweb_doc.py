"""The OpenAPI paths of the center's DICOMweb (PS3.18) and WADO-URI resources, with their parameters and
the media types each really answers; `sandbox.center.routes` puts them in the center's document."""

from __future__ import annotations

from typing import Any

from sandbox import openapi
from sandbox.center.syntax import FRAME_MEDIA, OCTET
from sandbox.spec.formats import DICOM_UID_RE

TAG = "DICOMweb"
BINARY = {"schema": {"type": "string", "format": "binary"}}
DICOM_JSON = {"application/dicom+json": {"schema": {"type": "array", "items": {"type": "object"}}}}
DICOM_DATASET = {"application/dicom+json": {"schema": {"type": "object"}}}
PART10 = 'multipart/related; type="application/dicom"'
IMAGES = {"image/png": BINARY, "image/jpeg": BINARY}
FRAMES = {f'multipart/related; type="{media}"': BINARY for media in sorted({OCTET, *FRAME_MEDIA.values()})}

# QIDO-RS query keys (PS3.18 table 10.6.1-5) by level, with the paths that search each level.
STUDY_KEYS = ("StudyDate", "StudyTime", "AccessionNumber", "ModalitiesInStudy", "ReferringPhysicianName",
              "PatientName", "PatientID", "StudyInstanceUID", "StudyID")
SERIES_KEYS = ("Modality", "SeriesInstanceUID", "SeriesNumber", "PerformedProcedureStepStartDate",
               "PerformedProcedureStepStartTime", "RequestAttributeSequence.ScheduledProcedureStepID",
               "RequestAttributeSequence.RequestedProcedureID")
INSTANCE_KEYS = ("SOPClassUID", "SOPInstanceUID", "InstanceNumber")


def _uid(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string", "pattern": DICOM_UID_RE.pattern.replace("(?=.{1,64}$)", ""), "maxLength": 64}}


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string"}}


STUDY = _uid("study", "StudyInstanceUID")
SERIES = _uid("series", "SeriesInstanceUID")
SOP = _uid("sop", "SOPInstanceUID")
ACCEPT = _query("accept", "代替 Accept 头的媒体类型（PS3.18 8.3.3.1），如 application/zip")
WINDOW = _query("window", "窗位,窗宽（如 40,400），缺省用实例自带的窗宽窗位", {"type": "string", "pattern": r"^-?\d"})
VIEWPORT = _query("viewport", "宽,高（像素，1-4096），缩小到此范围内", {"type": "string", "pattern": r"^\d+,\d+$"})
INCLUDE = _query("includefield", "附加返回的属性（关键字或 8 位标签，逗号分隔），all 为全部")
PAGING = [_query("limit", "最多返回条数", {"type": "integer", "minimum": 1, "maximum": 1000}),
          _query("offset", "跳过的条数", {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}),
          _query("fuzzymatching", "人名模糊匹配（true/false）", {"type": "string", "enum": ["true", "false"]})]


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "参数错误（code 1073），如 UID 格式不对", 404: "对象不存在（code 1071）或路径不存在（code 1080）",
            406: "无法按 Accept 或 transfer-syntax 提供（code 1072），消息说明可用的类型",
            409: "全部实例未保存（FailedSOPSequence 说明每个实例的原因）",
            413: "请求体超过上限（code 1003）", 415: "请求类型不是 multipart/related; type=\"application/dicom\"（code 1074）"}
    out: dict[str, Any] = {}
    for code in codes:
        out[str(code)] = ({"description": text[code], "content": DICOM_DATASET} if code == 409
                          else openapi.error_response(text[code]))
    return out


def _op(summary: str, description: str, params: list[dict[str, Any]], ok: dict[str, Any],
        errors: tuple[int, ...] = (400, 404, 406), **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "description": description, "tags": [TAG], "parameters": params,
            "responses": {"200": {"description": "成功", "content": ok}, **_errors(*errors)}, **extra}


def _retrieve(what: str, params: list[dict[str, Any]], single: bool = False) -> dict[str, Any]:
    content = {PART10: BINARY, "application/zip": BINARY}
    if single:
        content["application/dicom"] = BINARY
    return _op(f"WADO-RS 取回{what}",
               "按 Accept 的 transfer-syntax 提供：* 为存储的语法（逐字节），未指定为 Explicit VR Little Endian"
               "（大端、隐式、Deflate 与压缩实例都转换），也可要求 1.2.840.10008.1.2（未压缩存储的实例）；"
               "无法提供时 406（在发送任何内容之前）。每部分的 Content-Type 写明它的 transfer-syntax。"
               "浏览器（Accept 以 text/html 开头）或 accept=application/zip 得到带 DICOMDIR 的 zip。",
               [*params, ACCEPT], content)


def _search(level: str, params: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, Any]:
    query = [_query(k, f"匹配键 {k}（通配符 * ?、日期范围 A-B、UID 列表以逗号或反斜杠分隔）") for k in keys]
    return _op(f"QIDO-RS 查询{level}", "PS3.18 10.6：按标准匹配键查询，includefield、limit、offset；"
               "不支持的键在 Warning: 299 头中说明，格式错误的值 400。",
               [*params, *query, INCLUDE, *PAGING], DICOM_JSON, (400, 404))


def paths(prefix: str) -> dict[str, Any]:
    """Every DICOMweb resource under `prefix` (/dicomweb), and WADO-URI at /wado."""
    s, se, i = prefix + "/studies/{study}", prefix + "/studies/{study}/series/{series}", \
        prefix + "/studies/{study}/series/{series}/instances/{sop}"
    stow_body = {"required": True, "content": {PART10: BINARY}}
    stow_ok = {"description": "全部实例已保存（ReferencedSOPSequence）", "content": DICOM_DATASET}
    stow_partial = {"description": "部分实例未保存（FailedSOPSequence 的 FailureReason 与 ErrorComment 说明原因）",
                    "content": DICOM_DATASET}

    def stow(params: list[dict[str, Any]]) -> dict[str, Any]:
        return {"summary": "STOW-RS 存储实例", "tags": [TAG], "parameters": params, "requestBody": stow_body,
                "description": "与 C-STORE 存入同一存储；每部分一个 DICOM 实例。无法一致读取的实例（如元素值不符合 VR）"
                               "以 0xC000 拒收；同一 SOPInstanceUID 内容不同时按 instance_conflict（keep-first 拒收，"
                               "FailureReason 0x0111；replace 替换）；不属于路径中检查的实例 0xA900。",
                "responses": {"200": stow_ok, "202": stow_partial, **_errors(400, 409, 413, 415)}}

    rendered = [WINDOW, VIEWPORT, ACCEPT]
    frame = {"name": "frames", "in": "path", "required": True, "description": "帧号，从 1 开始，多个以逗号分隔",
             "schema": {"type": "string", "pattern": r"^\d+(,\d+)*$"}}
    one_frame = {**frame, "name": "frame", "description": "帧号，从 1 开始"}
    many_rendered = {f'multipart/related; type="{m}"': BINARY for m in IMAGES}
    wado_params = [
        _query("requestType", "固定为 WADO", {"type": "string", "enum": ["WADO"]}),
        {**_query("studyUID", "StudyInstanceUID"), "required": True},
        {**_query("seriesUID", "SeriesInstanceUID"), "required": True},
        {**_query("objectUID", "SOPInstanceUID"), "required": True},
        _query("contentType", "application/dicom，或 image/jpeg（默认）、image/png"),
        _query("transferSyntax", "contentType=application/dicom 时的传输语法（默认 1.2.840.10008.1.2.1）"),
        _query("anonymize", "yes：按 PS3.15 基本去标识化规则去除患者信息（dicognito）", {"type": "string", "enum": ["yes"]}),
        _query("frameNumber", "帧号，从 1 开始", {"type": "integer", "minimum": 1}),
        _query("windowCenter", "窗位", {"type": "number"}), _query("windowWidth", "窗宽", {"type": "number"}),
        _query("rows", "图像高度上限", {"type": "integer", "minimum": 1, "maximum": 4096}),
        _query("columns", "图像宽度上限", {"type": "integer", "minimum": 1, "maximum": 4096}),
    ]
    return {
        prefix + "/studies": {"get": _search("检查", [], STUDY_KEYS), "post": stow([])},
        prefix + "/series": {"get": _search("序列", [], STUDY_KEYS + SERIES_KEYS)},
        prefix + "/instances": {"get": _search("实例", [], STUDY_KEYS + SERIES_KEYS + INSTANCE_KEYS)},
        s: {"get": _retrieve("检查（imgDldLink）", [STUDY]), "post": stow([STUDY]),
            "delete": {"summary": "删除检查", "tags": [TAG], "parameters": [STUDY],
                       "description": "删除检查的全部实例与文件；之后 QIDO、WADO、影像页都不再提供。",
                       "responses": {"200": {"description": "已删除", "content": {"application/json": {"schema": {
                           "type": "object", "properties": {"studyInstanceUID": {"type": "string"},
                                                            "deleted": {"type": "integer"},
                                                            "message": {"type": "string"}}}}}},
                                     **_errors(400, 404)}}},
        s + "/metadata": {"get": _op("WADO-RS 检查元数据", "DICOM JSON（PS3.18 F.2），像素数据为 BulkDataURI。",
                                     [STUDY], DICOM_JSON, (400, 404, 406))},
        s + "/rendered": {"get": _op("渲染检查", "每个有像素的实例的第一帧，multipart 图像。", [STUDY, *rendered],
                                     many_rendered)},
        s + "/series": {"get": _search("检查中的序列", [STUDY], SERIES_KEYS)},
        s + "/instances": {"get": _search("检查中的实例", [STUDY], SERIES_KEYS + INSTANCE_KEYS)},
        se: {"get": _retrieve("序列", [STUDY, SERIES])},
        se + "/metadata": {"get": _op("WADO-RS 序列元数据", "DICOM JSON。", [STUDY, SERIES], DICOM_JSON, (400, 404, 406))},
        se + "/rendered": {"get": _op("渲染序列", "每个有像素的实例的第一帧，multipart 图像。",
                                      [STUDY, SERIES, *rendered], many_rendered)},
        se + "/instances": {"get": _search("序列中的实例", [STUDY, SERIES], INSTANCE_KEYS)},
        i: {"get": _retrieve("实例", [STUDY, SERIES, SOP], single=True)},
        i + "/metadata": {"get": _op("WADO-RS 实例元数据", "DICOM JSON。", [STUDY, SERIES, SOP], DICOM_JSON, (400, 404, 406))},
        i + "/rendered": {"get": _op("渲染实例", "第一帧，PNG 或 JPEG，按 DICOM 窗宽窗位。", [STUDY, SERIES, SOP, *rendered],
                                     IMAGES)},
        i + "/frames/{frames}": {"get": _op(
            "WADO-RS 帧", "Accept 允许存储的语法时（transfer-syntax=* 或该 UID，或对应的 image/jpeg、image/jls、image/jp2、"
            "image/dicom-rle）为存储的压缩帧；application/octet-stream 为未压缩帧（Explicit VR Little Endian）。",
            [STUDY, SERIES, SOP, frame, ACCEPT], FRAMES)},
        i + "/frames/{frame}/rendered": {"get": _op("渲染帧", "PNG 或 JPEG。", [STUDY, SERIES, SOP, one_frame, *rendered],
                                                    IMAGES)},
        i + "/bulkdata/{tag}": {"get": _op(
            "批量数据（像素）", "7FE00010：全部帧，类型同 frames。",
            [STUDY, SERIES, SOP, {"name": "tag", "in": "path", "required": True, "description": "标签，如 7FE00010",
                                  "schema": {"type": "string", "pattern": "^[0-9A-Fa-f]{8}$"}}, ACCEPT], FRAMES)},
        "/wado": {"get": _op("WADO-URI", "PS3.18 第 9 章：单个实例，DICOM 或渲染图像。", wado_params,
                             {"application/dicom": BINARY, **IMAGES})},
    }
