"""The fault middleware: the transport faults a role shows its callers, and the per-record faults it hands
to the shared receive flow (sandbox.common.receiver.record_overrides) for the duration of one request."""

from __future__ import annotations

import asyncio
from http import HTTPStatus

import orjson
from aiohttp import web

from sandbox.common.envelope import envelope_body
from sandbox.common.http import Handler, json_response
from sandbox.common.receiver import record_overrides
from sandbox.faults.injector import Active, FaultInjector, applied_faults
from sandbox.faults.messages import FAULT_TEXTS
from sandbox.typedefs import FAULT_EFFECT, FAULTS_APPLIED


def fault_middleware(injector: FaultInjector, role: str) -> web.middleware:  # type: ignore[valid-type]
    """Middleware for one role's application; does nothing while no fault is loaded for its paths."""

    @web.middleware
    async def faults(request: web.Request, handler: Handler) -> web.StreamResponse:
        plan = injector.plan(role, request.path)
        if plan.empty:
            return await handler(request)
        names: list[str] = []
        request[FAULTS_APPLIED] = names
        names_token = applied_faults.set(names)
        hook_token = record_overrides.set(
            (lambda batch: injector.apply_records(batch, plan.records)) if plan.records else None)
        try:
            if plan.transport is None:
                return await handler(request)
            names.append(plan.transport.fault.label)
            plan.transport.applied += 1
            return await _transport(plan.transport, request, handler)
        finally:
            record_overrides.reset(hook_token)
            applied_faults.reset(names_token)

    return faults


async def _transport(a: Active, request: web.Request, handler: Handler) -> web.StreamResponse:
    f = a.fault
    if f.kind == "reject_batch":
        detail = f.message or FAULT_TEXTS["batch_rejected"].format(name=f.label)
        return json_response(envelope_body("batch_rejected", detail=detail))
    if f.kind == "http_error":
        phrase = HTTPStatus(f.status).phrase if f.status in HTTPStatus._value2member_map_ else "Server Error"
        body = f.body or FAULT_TEXTS["http_error_body"].format(status=f.status, phrase=phrase, name=f.label)
        headers = {"Retry-After": str(f.retry_after)} if f.retry_after is not None else None
        return web.Response(status=f.status, text=body, content_type="text/html", charset="utf-8", headers=headers)
    if f.kind == "non_json":
        body = f.body or FAULT_TEXTS["non_json_body"].format(name=f.label)
        return web.Response(status=200, text=body, content_type="text/html", charset="utf-8")
    if f.kind == "delay":
        if f.when == "before":
            await asyncio.sleep(f.seconds)
            return await handler(request)
        response = await handler(request)
        await asyncio.sleep(f.seconds)
        return response
    if f.kind == "drop":
        if f.when == "after":
            await handler(request)
        else:
            await request.read()
        return _drop(request, b"")
    # truncated: the answer's headers promise the whole body, the connection closes halfway through it
    if f.when == "after":
        response = await handler(request)
        full = response.body if isinstance(response, web.Response) and isinstance(response.body, bytes) else b"{}"
        status = response.status
    else:
        await request.read()
        full = orjson.dumps(envelope_body("ok", data=[]))
        status = 200
    sent = full[: max(1, len(full) // 2)]
    stream = web.StreamResponse(status=status)
    stream.content_type = "application/json"
    stream.charset = "utf-8"
    stream.content_length = len(full)
    await stream.prepare(request)
    await stream.write(sent)
    request[FAULT_EFFECT] = ("truncated", sent)
    if request.transport is not None:
        request.transport.abort()
    return stream


def _drop(request: web.Request, sent: bytes) -> web.Response:
    """Close the connection without an answer; aiohttp's attempt to write the returned response is lost."""
    request[FAULT_EFFECT] = ("dropped", sent)
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=200)
