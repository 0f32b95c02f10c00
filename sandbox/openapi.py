"""OpenAPI 3.1 documents of the roles' endpoints, derived from the tables in sandbox.spec.

Nothing here names a record field: every property, type, length, dictionary and required list comes
from `TRANSACTIONS[hop].fields`, the envelope from `ENVELOPE_FIELDS`, the answer from `OUTPUT_FIELDS`
and the error codes from `ENVELOPE_CODES`. A role builds its document with `document(...)`, giving the
receive operation of its hop (`receive_path`) plus any paths of its own.
"""

from __future__ import annotations

import re
from typing import Any

from sandbox.spec.codes import ENVELOPE_CODES, SuccFlag
from sandbox.spec.dicts import DICT_TITLES, DICTIONARIES
from sandbox.spec.fields import (
    DATA_MAX_CHARS,
    ENVELOPE_FIELDS,
    OUTPUT_FIELDS,
    TRANSACTIONS,
    FieldSpec,
    Kind,
)
from sandbox.spec.formats import ADMDVS_RE, EXAM_PART_RE, MEDINS_CODE_RE, MSGID_RE, POSTCODE_RE
from sandbox.spec.index_profiles import PROFILES
from sandbox.spec.variants import FIELD_VARIANTS, INFNO_VARIANTS
from sandbox.validate import Mode

OPENAPI_VERSION = "3.1.0"
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
DATETIME_PATTERN = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"


def _portable(pattern: str) -> str:
    """A Python regex without named groups, read alike by ECMA-262 (JSON Schema) and Python."""
    return re.sub(r"\(\?P<\w+>", "(", pattern)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _multi(token: str) -> str:
    """Pattern of one or more tokens separated by single spaces."""
    return f"^{token}( {token})*$"


def field_schema(spec: FieldSpec, index_profile: str) -> dict[str, Any]:
    """JSON Schema of one record field: type, length, format or dictionary, Chinese name and note."""
    schema: dict[str, Any] = {"title": spec.name}
    description = spec.name + (f"。{spec.note}" if spec.note else "")
    if spec.kind is Kind.DECIMAL:
        assert spec.precision is not None and spec.scale is not None
        schema.update(type="number", minimum=0, exclusiveMaximum=10 ** (spec.precision - spec.scale))
        description += f"（BigDecimal {spec.doc_length}：最多 {spec.precision} 位，其中小数 {spec.scale} 位）"
    else:
        schema["type"] = "string"
        if spec.length is not None:
            schema["maxLength"] = spec.length
        if spec.kind is Kind.DATE:
            schema.update(format="date", pattern=DATE_PATTERN)
        elif spec.kind is Kind.DATETIME:
            schema["pattern"] = DATETIME_PATTERN
            description += "（yyyy-MM-dd HH:mm:ss）"
    rule = spec.rule
    if spec.dictionary is not None:
        codes = DICTIONARIES[spec.dictionary]
        description += "。字典【" + DICT_TITLES[spec.dictionary] + "】：" + "、".join(f"{k}-{v}" for k, v in codes.items())
        alternatives = "(" + "|".join(re.escape(c) for c in codes) + ")"
        if rule == "dict_external":
            schema["examples"] = list(codes)[:3]  # the standard has more codes than the common ones
        elif spec.multi:
            schema["pattern"] = _multi(alternatives)
        else:
            schema["enum"] = list(codes)
    elif rule == "hi_img_indx":
        profile = PROFILES[index_profile]
        schema["pattern"] = _portable(profile.regex.pattern)
        schema["examples"] = [profile.example]
        description += f"。编码规则「{profile.name}」：{profile.describe()}"
    elif rule == "admdvs":
        schema["pattern"] = ADMDVS_RE.pattern
    elif rule == "fixmedins_code":
        schema["examples"] = ["H51080200001"]
        description += f"（一般为 12 位：{MEDINS_CODE_RE.pattern}）"
    elif rule == "exam_part":
        schema["pattern"] = _multi(EXAM_PART_RE.pattern.strip("^$"))
    elif rule == "postcode":
        schema["examples"] = ["628000"]
        description += f"（{POSTCODE_RE.pattern}）"
    elif rule in ("url", "file_pdf", "file_dicom"):
        schema.update(format="uri", pattern="^https?://")
    schema["description"] = description
    schema["x-seq"] = spec.seq
    return schema


def record_schema(hop: int, mode: Mode | str = Mode.LENIENT, index_profile: str = "doc-example") -> dict[str, Any]:
    """JSON Schema of one `data` record of a hop, as its table defines it."""
    tx = TRANSACTIONS[hop]
    variants = "、".join(f"{v.wrong}→{v.right}" for v in FIELD_VARIANTS[hop].values())
    lenient = Mode(mode) is Mode.LENIENT
    return {
        "type": "object",
        "title": f"{tx.title} 输入记录",
        "description": (
            f"节点标识 data 的一条记录（{len(tx.fields)} 个字段）。"
            + (f"宽松模式接受文档示例中的异写（{variants}）并在应答中逐条提示；未定义的字段忽略并提示。"
               if lenient else "严格模式只接受表格定义的字段名。")
        ),
        "properties": {f.code: field_schema(f, index_profile) for f in tx.fields},
        "required": list(tx.required),
        "additionalProperties": lenient,
    }


def envelope_schema(hop: int, record_ref: str, mode: Mode | str = Mode.LENIENT) -> dict[str, Any]:
    """JSON Schema of a whole request message (交易输入参数定义 + data)."""
    tx = TRANSACTIONS[hop]
    props: dict[str, Any] = {}
    for f in ENVELOPE_FIELDS:
        if f.code == "data":
            props["data"] = {
                "title": f.name,
                "type": "array",
                "minItems": 1,
                "items": _ref(record_ref),
                "description": f"{f.name}：记录数组，按紧凑 JSON 计算不超过 {DATA_MAX_CHARS} 个字符（表格类型 String，长度 {f.length}）",
                "x-max-chars": DATA_MAX_CHARS,
            }
            continue
        schema: dict[str, Any] = {"title": f.name, "type": "string", "description": f.name + (f"。{f.note}" if f.note else "")}
        if f.length is not None:
            schema["maxLength"] = f.length
        if f.code == "infno":
            accepted = [tx.infno] + (list(INFNO_VARIANTS) if Mode(mode) is Mode.LENIENT else [])
            schema["enum"] = accepted
        elif f.code == "msgid":
            schema["pattern"] = _portable(MSGID_RE.pattern)
        elif f.code == "infTime":
            schema["pattern"] = DATETIME_PATTERN
        elif f.code == "infCode":
            schema["description"] += f"。{tx.infcode_note}"
        elif f.code == "key":
            schema["description"] += "。按交易机构分配的共享密钥"
        props[f.code] = schema
    return {
        "type": "object",
        "title": f"{tx.infno} 请求报文",
        "properties": props,
        "required": [f.code for f in ENVELOPE_FIELDS if f.required],
    }


def answer_schema() -> dict[str, Any]:
    """JSON Schema of one entry of a response's data (输出 table)."""
    props: dict[str, Any] = {}
    for f in OUTPUT_FIELDS:
        schema: dict[str, Any] = {"title": f.name, "type": "string", "maxLength": f.length,
                                  "description": f.name + (f"。{f.note}" if f.note else "")}
        if f.code == "succFlag":
            schema["enum"] = [flag.value for flag in SuccFlag]
        if not f.required:
            schema["type"] = ["string", "null"]
        props[f.code] = schema
    return {"type": "object", "properties": props, "required": [f.code for f in OUTPUT_FIELDS if f.required]}


def envelope_answer_schema(data: dict[str, Any]) -> dict[str, Any]:
    """The {code, type, message, data} answer every endpoint gives."""
    codes = "；".join(f"{c.code} {c.message}" for c in ENVELOPE_CODES.values())
    return {
        "type": "object",
        "properties": {
            "code": {"type": "integer", "description": f"0 成功，-1 全部失败，其余为报文级错误：{codes}"},
            "type": {"type": "string", "enum": ["success", "error"]},
            "message": {"type": "string"},
            "data": data,
        },
        "required": ["code", "type", "message", "data"],
    }


def error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("ErrorAnswer")}}}


def receive_path(hop: int) -> dict[str, Any]:
    """The path item of a hop's upload transaction."""
    tx = TRANSACTIONS[hop]
    return {
        "post": {
            "operationId": tx.infno,
            "summary": tx.title,
            "description": f"交易发送方：{tx.sender}；交易接收方：{tx.receiver}。逐条返回 succFlag："
                           "1 成功，0 已保存但部分数据未按原样保存（字段被忽略或规整），-1 失败未保存。",
            "tags": [tx.receiver],
            "requestBody": {"required": True,
                            "content": {"application/json": {"schema": _ref(f"Hop{hop}Request")}}},
            "responses": {
                "200": {"description": "已处理（code 为 0/-1 时 data 为逐条结果；其余 code 为报文级错误）",
                        "content": {"application/json": {"schema": _ref("BatchAnswer")}}},
                "408": error_response("请求体未在 request_timeout_s 秒内到齐（code 1006）"),
                "413": error_response("请求体超过上限"),
                "415": error_response("请求类型不是 application/json"),
                "503": error_response("同一客户端地址的并发连接超过上限（code 1007）"),
                "507": error_response("存储空间不足或数据目录不可写，未保存，可原样重发（code 1090）"),
            },
        }
    }


def components(hop: int, mode: Mode | str, index_profile: str) -> dict[str, Any]:
    """The schemas a hop's document refers to."""
    return {
        f"Hop{hop}Record": record_schema(hop, mode, index_profile),
        f"Hop{hop}Request": envelope_schema(hop, f"Hop{hop}Record", mode),
        "RecordAnswer": answer_schema(),
        "BatchAnswer": envelope_answer_schema({"type": "array", "items": _ref("RecordAnswer")}),
        "ErrorAnswer": envelope_answer_schema({"type": "array", "maxItems": 0}),
    }


def document(*, title: str, description: str, server_url: str, paths: dict[str, Any],
             schemas: dict[str, Any]) -> dict[str, Any]:
    """A whole OpenAPI 3.1 document. Every state-changing operation but the two receivers may be refused 403
    by the guard of sandbox.common.csrf (foreign Host or Origin, a type a plain form can send, a token)."""
    receivers = {"/mie/api/mie/saveExamRpotImgInfo", "/mie/api/mie/saveExamRpotImgIndx"}
    for path, item in paths.items():
        for method, op in item.items():
            if method in ("post", "put", "patch", "delete") and path not in receivers and isinstance(op, dict):
                op.setdefault("responses", {}).setdefault("403", error_response(
                    "沙箱的防护拒绝：Host 或来源不是沙箱自己的，请求类型不是 JSON（STOW-RS 为 multipart/related），或缺少控制令牌"))
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": "1.0", "description": description},
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {"schemas": schemas},
    }
