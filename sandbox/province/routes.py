"""HTTP in, HTTP out: the province's endpoints and the OpenAPI document describing them."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aiohttp import web

from sandbox import openapi
from sandbox.common.http import json_response, read_json
from sandbox.config import Settings
from sandbox.province.domain import DEFAULT_PAGE_SIZE, FILTER_FIELDS, LINK_FIELDS, MAX_PAGE_SIZE
from sandbox.spec.fields import HOP2, URL_PREFIX
from sandbox.typedefs import PROVINCE, SETTINGS

INDEX_PATH = URL_PREFIX + "index"
INDEX_ITEM_PATH = INDEX_PATH + "/{hiImgIndx}"
OPENAPI_PATH = "/openapi.json"


async def save_exam_rpot_img_indx(request: web.Request) -> web.Response:
    """POST saveExamRpotImgIndx: hop 2, from a sharing center."""
    message = await read_json(request)
    return json_response(await request.app[PROVINCE].receive(message))


async def get_index(request: web.Request) -> web.Response:
    """GET one stored index by hiImgIndx."""
    return json_response(await request.app[PROVINCE].get_index(request.match_info["hiImgIndx"]))


async def list_indexes(request: web.Request) -> web.Response:
    """GET stored indexes by certno / fixmedinsCode / examAdmdvs / exam date range, paged."""
    return json_response(await request.app[PROVINCE].search(list(request.query.items())))


async def openapi_json(request: web.Request) -> web.Response:
    return json_response(openapi_document(request.app[SETTINGS]))


def setup_routes(app: web.Application) -> None:
    app.router.add_post(HOP2.path, save_exam_rpot_img_indx)
    app.router.add_get(INDEX_PATH, list_indexes)
    app.router.add_get(INDEX_ITEM_PATH, get_index)
    app.router.add_get(OPENAPI_PATH, openapi_json)


def _query_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


@lru_cache(maxsize=8)
def openapi_document(settings: Settings) -> dict[str, Any]:
    """The province's OpenAPI 3.1 document: hop 2 upload plus the 调阅 queries, from the spec tables."""
    fields = HOP2.by_code
    profile = settings.index_profile
    schemas = openapi.components(2, settings.mode, profile)
    schemas["IndexView"] = {
        "type": "object",
        "description": "已保存的一条索引：上传机构、报文ID、接收时间、三个访问链接与完整记录",
        "properties": {
            "hiImgIndx": openapi.field_schema(fields["hiImgIndx"], profile),
            "infCode": {"type": "string", "description": "上传的地方影像云数据共享中心编号"},
            "msgid": {"type": "string", "description": "上传该记录的报文ID"},
            "receivedTime": {"type": "string", "format": "date-time",
                             "description": "接收时间（北京时间，ISO 8601，带 +08:00）"},
            "succFlag": {"type": "string", "enum": ["1", "0"], "description": "保存时的成功标志"},
            "links": {"type": "object",
                      "properties": {code: openapi.field_schema(fields[code], profile) for code in LINK_FIELDS}},
            "record": {"$ref": "#/components/schemas/Hop2Record"},
        },
        "required": ["hiImgIndx", "infCode", "msgid", "receivedTime", "succFlag", "links", "record"],
    }
    schemas["IndexAnswer"] = openapi.envelope_answer_schema({"$ref": "#/components/schemas/IndexView"})
    schemas["IndexPage"] = openapi.envelope_answer_schema({
        "type": "object",
        "properties": {
            "total": {"type": "integer", "description": "符合条件的总条数"},
            "page": {"type": "integer"},
            "size": {"type": "integer"},
            "pages": {"type": "integer"},
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/IndexView"}},
        },
        "required": ["total", "page", "size", "pages", "items"],
    })
    params = [
        _query_param(name, openapi.field_schema(fields[code], profile), f"按{fields[code].name}精确匹配")
        for name, code in FILTER_FIELDS.items()
    ]
    params += [
        _query_param("from", {"type": "string", "format": "date"}, "检查日期 examDate 起（含），yyyy-MM-dd"),
        _query_param("to", {"type": "string", "format": "date"}, "检查日期 examDate 止（含），yyyy-MM-dd"),
        _query_param("page", {"type": "integer", "minimum": 1, "default": 1}, "页码，从 1 开始"),
        _query_param("size", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE,
                              "default": DEFAULT_PAGE_SIZE}, f"每页条数，最多 {MAX_PAGE_SIZE}"),
    ]
    bad_query = openapi.error_response("查询参数错误（code 1060）")
    paths: dict[str, Any] = {
        HOP2.path: openapi.receive_path(2),
        INDEX_PATH: {"get": {
            "operationId": "listImgIndx",
            "summary": "按证件号码、定点医药机构、检查医保区划、检查日期分页查询索引（调阅）",
            "tags": ["调阅"],
            "parameters": params,
            "responses": {
                "200": {"description": "一页结果，按检查日期从新到旧",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IndexPage"}}}},
                "400": bad_query,
            },
        }},
        INDEX_ITEM_PATH: {"get": {
            "operationId": "getImgIndx",
            "summary": "按医保影像云索引号调阅一条索引及其访问链接",
            "tags": ["调阅"],
            "parameters": [{"name": "hiImgIndx", "in": "path", "required": True,
                            "schema": openapi.field_schema(fields["hiImgIndx"], profile)}],
            "responses": {
                "200": {"description": "索引与完整记录",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IndexAnswer"}}}},
                "404": openapi.error_response("索引号不存在（code 1061）"),
            },
        }},
    }
    return openapi.document(
        title=f"{HOP2.receiver}（模拟）",
        description=f"{HOP2.receiver}：接收{HOP2.sender}上传的 {HOP2.infno}（{HOP2.title}），保存索引并提供调阅查询。"
                    f"校验模式：{settings.mode}；索引号规则：{profile}；应答样式：{settings.response_style}。",
        server_url=settings.url(settings.province_port),
        paths=paths,
        schemas=schemas,
    )
