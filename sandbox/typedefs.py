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
HOSPITAL: web.AppKey[Any] = web.AppKey("hospital")
JOURNAL: web.AppKey[Any] = web.AppKey("journal")
FAULTS: web.AppKey[Any] = web.AppKey("faults")
