"""The HTTP edge every role shares: reading a JSON body within limits, and the error middleware."""

from __future__ import annotations

import codecs
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from sandbox.common.envelope import EnvelopeError, envelope_body
from sandbox.common.guard import BodyTimeout, client_gone, note_aborted, timeout_response
from sandbox.common.jsondepth import brackets, too_deep
from sandbox.common.jsonkeys import RepeatedKeys
from sandbox.common.storage import storage_problem
from sandbox.spec.fields import TRANSACTIONS
from sandbox.spec.messages import RECEIVER
from sandbox.spec.variants import INFNO_VARIANTS
from sandbox.typedefs import PARSED_BODY, SETTINGS

log = logging.getLogger("sandbox")

JSON_CONTENT_TYPE = "application/json"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(body),
        status=status,
        headers=headers,
        content_type=JSON_CONTENT_TYPE,
        charset="utf-8",
    )


async def read_json(request: web.Request) -> Any:
    """The request's JSON body. Refuses (EnvelopeError) a wrong content type, an oversize body, bad UTF-8
    or bad JSON; the body limit is the application's client_max_size, enforced while reading."""
    if request.content_type != JSON_CONTENT_TYPE:
        raise EnvelopeError("bad_content_type", got=request.headers.get("Content-Type", ""))
    limit = request.client_max_size
    depth = request.app[SETTINGS].max_json_depth
    if request.content_length is not None and request.content_length > limit:
        raise EnvelopeError("body_too_large", limit=limit)
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise EnvelopeError("body_too_large", limit=limit) from exc
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    try:
        # orjson: several times faster on 40000-character batches, checks UTF-8 itself, and is strict
        # RFC 8259 (no NaN, no lone surrogates, bounded nesting), so whatever it returns can be hashed and stored.
        message = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raise EnvelopeError("bad_encoding") from exc
        if "depth limit" in exc.msg:  # deeper than orjson's own bound (1024 levels)
            raise EnvelopeError("too_deep", limit=depth) from exc
        raise EnvelopeError("bad_json", detail=f"第 {exc.lineno} 行第 {exc.colno} 列：{exc.msg}") from exc
    counted = brackets(raw)
    if too_deep(raw, message, depth, counted):
        raise EnvelopeError("too_deep", limit=depth)
    check_duplicate_keys(raw, message, counted)
    request[PARSED_BODY] = message
    return message


# A key ends with `"`, optional white space, then `:`. Counting those in the text gives at least the number of
# keys sent (a string may contain `\":` too); the parsed objects hold one per distinct key. When the two
# agree nothing was repeated — checked in C, without a second parse; otherwise the exact parse names the key.
_KEY_END_SPACED = re.compile(rb'"[ \t\r\n]+:')


def check_duplicate_keys(raw: bytes, message: Any, counted: int | None = None) -> None:
    """Refuse (EnvelopeError "duplicate_key", both modes) a body in which one object repeats a key: orjson,
    like every JSON parser, silently keeps the last value, so `"key":"WRONG","key":"<right>"` would pass.
    `counted`: `jsondepth.brackets(raw)`, when known."""
    sent = raw.count(b'":') + len(_KEY_END_SPACED.findall(raw))
    if sent == _count_keys(message, brackets(raw) if counted is None else counted):
        return
    repeated = RepeatedKeys()
    parsed = json.loads(raw.decode("utf-8-sig"), object_pairs_hook=repeated)
    if repeated.found is not None:
        key, count, obj = repeated.found
        raise EnvelopeError("duplicate_key", key=key[:50], count=count, where=_where(parsed, obj))


def _count_keys(value: Any, counted: int) -> int:
    """How many keys the parsed objects hold. A batch whose text has no more brackets than its message, its
    data list and its record objects has no other array or object anywhere (a bracket inside a string only
    adds to the count): its keys are counted in C, without walking the values."""
    data = value.get("data") if type(value) is dict else None
    if type(data) is list and counted == 2 + len(data) and all(type(r) is dict for r in data):
        return len(value) + sum(map(len, data))
    n = 0
    stack = [value]
    while stack:
        v = stack.pop()
        if type(v) is dict:
            n += len(v)
            stack.extend(x for x in v.values() if type(x) is dict or type(x) is list)
        elif type(v) is list:
            stack.extend(x for x in v if type(x) is dict or type(x) is list)
    return n


def _where(top: Any, obj: object) -> str:
    """Where in the message an object is (by identity)."""
    if top is obj:
        return "报文头"
    data = top.get("data") if isinstance(top, dict) else None
    if isinstance(data, list):
        for i, rec in enumerate(data, 1):
            if rec is obj:
                return f"data 第{i}条记录"
    return "嵌套对象"


async def read_json_object(request: web.Request, refuse: Callable[[str], Exception]) -> dict[str, Any]:
    """A small JSON-object body of a control or dashboard call: empty means {}; anything that is not a
    JSON object raises `refuse(detail)`, the caller's own error."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise refuse(str(exc)) from exc
    if not isinstance(body, dict):
        raise refuse(type(body).__name__)
    return body


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# The plain-text bodies aiohttp's router gives a path or method it has no route for.
_ROUTER_TEXTS = frozenset({"404: Not Found", "405: Method Not Allowed"})


def _path_hint(path: str) -> str:
    """Name the document's path when a request used a spelling of its examples (ERRATA #1)."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    if name in INFNO_VARIANTS or name.lower() in _PATHS_BY_LOWER:
        paths = "、".join(tx.path for tx in TRANSACTIONS.values())
        return f"；文档的接口路径为 {paths}（示例中的交易编号 saveExamRpotImgIdx 不是路径，勘误 #1）"
    return ""


_PATHS_BY_LOWER = {tx.infno.lower(): tx.path for tx in TRANSACTIONS.values()}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map domain errors to the response envelope; never let a traceback reach the client."""
    try:
        return await handler(request)
    except EnvelopeError as exc:
        return json_response(exc.body(), status=exc.http_status)
    except web.HTTPNotFound as exc:
        if exc.text not in _ROUTER_TEXTS:  # a handler's own 404 keeps its body
            raise
        return json_response(envelope_body("no_such_path", path=request.path, hint=_path_hint(request.path)),
                             status=404)
    except web.HTTPMethodNotAllowed as exc:
        if exc.text not in _ROUTER_TEXTS:
            raise
        resp = json_response(envelope_body("wrong_method", path=request.path, method=request.method,
                                           allowed="、".join(sorted(exc.allowed_methods))), status=405)
        resp.headers["Allow"] = ", ".join(sorted(exc.allowed_methods))
        return resp
    except web.HTTPException:
        raise
    except BodyTimeout as exc:
        return timeout_response(exc.seconds)
    except Exception as exc:
        if client_gone(request):  # the client left: its read failed; not the receiver's error
            note_aborted(request)
            return json_response(envelope_body("internal"), status=500)  # never sent
        problem = storage_problem(exc)
        if problem is not None:
            log.warning(RECEIVER["storage_failed"].format(method=request.method, path=request.path, detail=problem))
            error = EnvelopeError("storage_full", detail=problem)
            return json_response(error.body(), status=error.http_status)
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_response(envelope_body("internal"), status=500)
