"""HTTP in, HTTP out for the control plane: the same routes on every role's port, under /_sandbox/."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from sandbox.common.http import json_response, read_json_object
from sandbox.control.domain import TEXTS, ControlError, ControlPlane, scenarios
from sandbox.spec.messages import RECEIVER
from sandbox.typedefs import SANDBOX

PREFIX = "/_sandbox"


def _control(request: web.Request) -> ControlPlane:
    sandbox = request.app[SANDBOX]
    if getattr(sandbox, "control", None) is None:
        sandbox.control = ControlPlane(sandbox)
    control: ControlPlane = sandbox.control
    return control


def _ok(message: str, data: Any = None) -> web.Response:
    return json_response({"code": 0, "type": "success", "message": message, "data": data})


def _role(request: web.Request) -> str | None:
    """The role whose port this request came in on."""
    sandbox = request.app[SANDBOX]
    return next((r for r in sandbox.roles if sandbox.running(r) and sandbox.app(r) is request.app), None)


async def _answer_then_restart(request: web.Request, response: web.Response) -> web.Response:
    """Send the answer in full, then restart this role if the call changed its settings: a role cannot
    restart while one of its own handlers waits for the restart."""
    control = _control(request)
    if control.deferred is None:
        return response
    body = orjson.loads(response.body) if isinstance(response.body, bytes) else {}
    body["message"] += TEXTS["restarting"]
    response = json_response(body)
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    control.restart_later()
    return response


async def _body(request: web.Request) -> dict[str, Any]:
    return await read_json_object(request, lambda detail: ControlError(400, TEXTS["bad_body"].format(detail=detail)))


def _seed(body: dict[str, Any]) -> int | None:
    seed = body.get("seed")
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ControlError(400, TEXTS["bad_seed"])
    return seed


def check_ready(sandbox: Any) -> None:
    """ControlError 503 (with Retry-After) while the sandbox is starting or stopping."""
    if not sandbox.ready:
        raise ControlError(503, RECEIVER["stopping" if sandbox.stopping else "not_ready"])


@web.middleware
async def control_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        if request.path == PREFIX or request.path.startswith(PREFIX + "/"):
            check_ready(request.app[SANDBOX])
        response: web.StreamResponse = await handler(request)
        return response
    except ControlError as exc:
        if exc.status == 503:
            return json_response({"code": 503, "type": "error", "message": str(exc), "data": None}, status=503,
                                 headers={"Retry-After": "1"})
        return json_response({"code": exc.status, "type": "error", "message": str(exc), "data": None},
                             status=exc.status)


async def state(request: web.Request) -> web.Response:
    return _ok(TEXTS["state"], await _control(request).state())


async def reset(request: web.Request) -> web.Response:
    body = await _body(request)
    message = await _control(request).reset(_seed(body), keep=_role(request))
    return await _answer_then_restart(request, _ok(message))


async def seed(request: web.Request) -> web.Response:
    value = _seed(await _body(request))
    if value is None:
        raise ControlError(400, TEXTS["bad_seed"])
    message = await _control(request).seed(value, keep=_role(request))
    return await _answer_then_restart(request, _ok(message))


async def scenario(request: web.Request) -> web.Response:
    body = await _body(request)
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ControlError(400, TEXTS["bad_name"])
    reset = body.get("reset")
    message = await _control(request).load_scenario(name.strip(), run=bool(body.get("run", False)),
                                                    keep=_role(request),
                                                    reset=None if reset is None else bool(reset))
    return await _answer_then_restart(request, _ok(message))


async def list_scenarios(request: web.Request) -> web.Response:
    return _ok("场景库", scenarios())


async def heal(request: web.Request) -> web.Response:
    body = await _body(request)
    name = body.get("name")
    return _ok(_control(request).heal(name if isinstance(name, str) and name.strip() else None))


async def faults(request: web.Request) -> web.Response:
    return _ok("当前故障", request.app[SANDBOX].faults.state())


async def add_fault(request: web.Request) -> web.Response:
    return _ok(_control(request).add_fault(await _body(request)))


async def send(request: web.Request) -> web.Response:
    message, data = await _control(request).send(await _body(request))
    return _ok(message, data)


async def journal(request: web.Request) -> web.Response:
    return _ok("日志", await _control(request).journal_page(request.query))


async def journal_entry(request: web.Request) -> web.Response:
    try:
        seq = int(request.match_info["seq"])
    except ValueError as exc:
        raise ControlError(400, TEXTS["invalid"].format(detail="seq")) from exc
    return _ok("日志", await _control(request).journal_entry(seq))


def setup_routes(app: web.Application) -> None:
    """Add the control routes and their error mapping to a role's application."""
    app.middlewares.append(control_errors)
    app.router.add_get(PREFIX + "/", state)
    app.router.add_get(PREFIX, state)
    app.router.add_post(PREFIX + "/reset", reset)
    app.router.add_post(PREFIX + "/seed", seed)
    app.router.add_post(PREFIX + "/scenario", scenario)
    app.router.add_get(PREFIX + "/scenarios", list_scenarios)
    app.router.add_post(PREFIX + "/heal", heal)
    app.router.add_get(PREFIX + "/faults", faults)
    app.router.add_post(PREFIX + "/faults", add_fault)
    app.router.add_post(PREFIX + "/send", send)
    app.router.add_get(PREFIX + "/journal", journal)
    app.router.add_get(PREFIX + "/journal/{seq}", journal_entry)
