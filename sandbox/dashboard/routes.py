"""HTTP in, HTTP out for the dashboard: the page, its JSON API, the event stream and the report's CSV."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from sandbox.common.guard import client_gone
from sandbox.common.http import Handler, json_response, read_json_object
from sandbox.common.storage import storage_problem
from sandbox.control.domain import ControlError
from sandbox.control.routes import check_ready
from sandbox.dashboard.domain import Client, Dashboard, DashboardError
from sandbox.journal.entry import OUTCOMES
from sandbox.spec.messages import DASHBOARD as WORDS
from sandbox.typedefs import DASHBOARD, SANDBOX

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("sandbox.dashboard")
KEEPALIVE_S = 15.0
NO_CACHE = {"Cache-Control": "no-cache"}
EXAM_STATUSES = ("indexed", "in_progress", "failed")


def _dash(request: web.Request) -> Dashboard:
    dash: Dashboard = request.app[DASHBOARD]
    return dash


def _ok(data: Any, message: str = WORDS["ok"]) -> web.Response:
    return json_response({"code": 0, "type": "success", "message": message, "data": data})


@web.middleware
async def dashboard_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refusals of the dashboard and of the control plane it drives, as a JSON envelope with a Chinese message."""
    try:
        check_ready(request.app[SANDBOX])
        return await handler(request)
    except (DashboardError, ControlError) as exc:
        return json_response({"code": exc.status, "type": "error", "message": str(exc), "data": None},
                             status=exc.status, headers={"Retry-After": "1"} if exc.status == 503 else None)
    except web.HTTPException:
        raise
    except Exception as exc:
        if client_gone(request):
            raise  # the guard notes it; nobody is listening
        problem = storage_problem(exc)
        if problem is None:
            log.exception("unhandled error on %s %s", request.method, request.path)
        status = 507 if problem is not None else 500
        message = WORDS["storage"].format(detail=problem) if problem is not None else WORDS["internal"]
        return json_response({"code": status, "type": "error", "message": message, "data": None}, status=status)


def _int(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise DashboardError(400, WORDS["bad_param"].format(name=name, kind=WORDS["kind_int"], value=raw))
    return int(raw)


def _filters(request: web.Request) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    hop = request.query.get("hop")
    if hop:
        if hop not in ("1", "2"):
            raise DashboardError(400, WORDS["bad_param"].format(name="hop", kind=WORDS["kind_hop"], value=hop))
        filters["hop"] = int(hop)
    outcome = request.query.get("outcome")
    if outcome:
        chosen = outcome.split(",")
        if not set(chosen) <= set(OUTCOMES):
            raise DashboardError(400, WORDS["bad_param"].format(name="outcome", kind=WORDS["kind_outcome"],
                                                                value=outcome))
        filters["outcome"] = chosen if len(chosen) > 1 else chosen[0]
    return filters


async def _body(request: web.Request) -> dict[str, Any]:
    return await read_json_object(request, lambda detail: DashboardError(400, WORDS["bad_body"].format(detail=detail)))


# ---- the page -----------------------------------------------------------------------------------------------

async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers=NO_CACHE)


# ---- live ---------------------------------------------------------------------------------------------------

async def state(request: web.Request) -> web.Response:
    return _ok(await _dash(request).state())


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: `state`, `entries`, `reset`, `resync` (see sandbox.dashboard.domain)."""
    dash = _dash(request)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                           "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    await response.prepare(request)
    client: Client = dash.join()
    try:
        await response.write(b"retry: 2000\n\n")
        client.put(b"event: state\ndata: " + orjson.dumps(await dash.state()) + b"\n\n")
        while True:
            event = await client.get(KEEPALIVE_S)
            if event is None:
                break
            await response.write(event or b": keep-alive\n\n")
    except ConnectionResetError:
        pass  # the page was closed
    finally:
        dash.leave(client)
    return response


# ---- messages -----------------------------------------------------------------------------------------------

async def exchanges(request: web.Request) -> web.Response:
    dash = _dash(request)
    return _ok(await dash.exchanges(_int(request, "offset", 0), _int(request, "limit", 100), **_filters(request)))


def unmasked(request: web.Request) -> bool:
    """A request for personal data in clear (needs the control token when one is set)."""
    return request.query.get("mask") == "0"


async def exchange(request: web.Request) -> web.Response:
    raw = request.match_info["seq"]
    if not raw.isdigit():
        raise DashboardError(400, WORDS["bad_param"].format(name="seq", kind=WORDS["kind_int"], value=raw))
    mask = not unmasked(request)
    return _ok(await _dash(request).exchange(int(raw), mask=mask))


# ---- scenarios ----------------------------------------------------------------------------------------------

async def list_scenarios(request: web.Request) -> web.Response:
    return _ok(_dash(request).scenarios())


async def start_scenario(request: web.Request) -> web.Response:
    body = await _body(request)
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise DashboardError(400, WORDS["bad_name"])
    await _dash(request).start_scenario(name.strip(), reset=body.get("reset", True) is not False)
    return _ok({"name": name.strip()}, WORDS["started"].format(name=name.strip()))


async def reset(request: web.Request) -> web.Response:
    return _ok(None, await _dash(request).reset())


# ---- exams and quality --------------------------------------------------------------------------------------

async def exams(request: web.Request) -> web.Response:
    status = request.query.get("status") or None
    if status is not None and status not in EXAM_STATUSES:
        raise DashboardError(400, WORDS["bad_param"].format(name="status", kind=" " + "、".join(EXAM_STATUSES),
                                                            value=status))
    dash = _dash(request)
    return _ok(await dash.exams(_int(request, "offset", 0), _int(request, "limit", 50), status))


async def quality(request: web.Request) -> web.Response:
    return _ok(await _dash(request).quality())


async def quality_csv(request: web.Request) -> web.Response:
    lang = "en" if request.query.get("lang") == "en" else "zh"
    body = await _dash(request).quality_csv(lang)
    return web.Response(body=body, headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": 'attachment; filename="upload-quality.csv"', **NO_CACHE})


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/", index)
    r.add_get("/api/state", state)
    r.add_get("/api/events", events)
    r.add_get("/api/exchanges", exchanges)
    r.add_get("/api/exchanges/{seq}", exchange)
    r.add_get("/api/scenarios", list_scenarios)
    r.add_post("/api/scenario", start_scenario)
    r.add_post("/api/reset", reset)
    r.add_get("/api/exams", exams)
    r.add_get("/api/quality", quality)
    r.add_get("/api/quality.csv", quality_csv)
    r.add_static("/static", STATIC, append_version=True)
