"""Every aiohttp AppKey of the sandbox, declared once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import ClientSession, web

if TYPE_CHECKING:
    from sandbox.config import Settings

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
HTTP_CLIENT: web.AppKey[ClientSession] = web.AppKey("http_client", ClientSession)
# Role state objects; typed as Any here to keep this module free of role imports.
PROVINCE: web.AppKey[Any] = web.AppKey("province")
CENTER: web.AppKey[Any] = web.AppKey("center")
# The center's query records for QIDO-RS and C-FIND (sandbox.center.dicomindex.QueryIndex).
DICOM_INDEX: web.AppKey[Any] = web.AppKey("dicom_index")
HOSPITAL: web.AppKey[Any] = web.AppKey("hospital")
JOURNAL: web.AppKey[Any] = web.AppKey("journal")
FAULTS: web.AppKey[Any] = web.AppKey("faults")
# The sandbox composing the roles (sandbox.app.Sandbox), for the control API under /_sandbox/.
SANDBOX: web.AppKey[Any] = web.AppKey("sandbox")
# The trainer's dashboard (sandbox.dashboard.domain.Dashboard) on its own port.
DASHBOARD: web.AppKey[Any] = web.AppKey("dashboard")
# Per request, set by the sandbox's fault middleware for the journal: the names of the faults that shaped
# the answer, and the transport effect of a fault ("dropped", "truncated") with the bytes actually sent.
FAULTS_APPLIED: web.RequestKey[list[str]] = web.RequestKey("faults_applied", list)
FAULT_EFFECT: web.RequestKey[tuple[str, bytes]] = web.RequestKey("fault_effect", tuple)
# Per request, set by read_json: the body as parsed, so the journal need not parse a 40000-character
# message a second time.
PARSED_BODY: web.RequestKey[Any] = web.RequestKey("parsed_body", object)
# Per request, set by sandbox.common.guard: the client went away before the answer (journal outcome
# `aborted`), or the body did not arrive within the request timeout (answered 408).
ABORTED: web.RequestKey[bool] = web.RequestKey("aborted", bool)
TIMED_OUT: web.RequestKey[bool] = web.RequestKey("timed_out", bool)
