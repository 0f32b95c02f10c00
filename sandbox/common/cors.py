"""Which browser pages on other origins may read DICOMweb and the pages (CORS).

A role's handlers may set their own CORS headers; just before any answer is sent (`on_response_prepare`,
so streamed answers too) this module replaces them by the policy: on DICOMweb, WADO-URI, the report and
image pages and the hospital's file downloads, `Access-Control-Allow-Origin` names the request's Origin
when it is allowed, and is absent otherwise (the browser then refuses the page the answer). Every other
path never grants CORS. Allowed: the sandbox's own origins, and `cors_origins` (default: viewers on
`http://localhost:*`, `http://127.0.0.1:*`, `http://[::1]:*`).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from sandbox.common.csrf import Policy, normalise_name
from sandbox.config import Settings

DEFAULT_ORIGINS = ("http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*")
CORS_PATHS = ("/dicomweb", "/wado", "/report/", "/viewer/", "/files/")
GRANTS = ("Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Allow-Methods",
          "Access-Control-Allow-Headers", "Access-Control-Max-Age", "Access-Control-Expose-Headers")


def _parse(origin: str) -> tuple[str, str, str] | None:
    """(scheme, host, port text) of an origin or a pattern whose port may be `*`."""
    if origin.endswith(":*"):
        base, port = origin[:-2], "*"
    else:
        base, port = origin, ""
    try:
        parts = urlsplit(base)
        number = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if not port:
        port = str(number or (443 if parts.scheme == "https" else 80))
    return parts.scheme, normalise_name(parts.hostname), port


class CorsPolicy:
    def __init__(self, settings: Settings) -> None:
        self.own = Policy.of(settings)
        self.patterns = [p for p in (_parse(o) for o in (settings.cors_origins or DEFAULT_ORIGINS)) if p]

    def allowed(self, origin: str) -> bool:
        if self.own.own_origin(origin):
            return True
        parsed = _parse(origin)
        if parsed is None or parsed[2] == "*":
            return False
        scheme, host, port = parsed
        return any(scheme == s and host == h and p in ("*", port) for s, h, p in self.patterns)

    async def on_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        origin = request.headers.get("Origin")
        granted = response.headers.get("Access-Control-Allow-Origin") is not None
        shared = request.path.startswith(CORS_PATHS)
        if not (granted or (shared and origin)):
            return
        if shared and origin and self.allowed(origin):
            response.headers["Access-Control-Allow-Origin"] = origin
            if request.method == "OPTIONS":
                response.headers.setdefault("Access-Control-Allow-Methods", "GET, OPTIONS")
                response.headers.setdefault("Access-Control-Allow-Headers", "Accept, Content-Type")
        else:
            for name in GRANTS:
                response.headers.popall(name, None)
        if "Origin" not in response.headers.get("Vary", ""):
            response.headers.add("Vary", "Origin")


def install(app: web.Application, settings: Settings) -> None:
    app.on_response_prepare.append(CorsPolicy(settings).on_prepare)
