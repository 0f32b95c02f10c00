"""The guard in front of every application of the sandbox: who may change its state, and under which name.

A sandbox on a laptop is reachable from every web page the laptop's browser opens. The guard refuses
(HTTP 403, the response envelope, a Chinese reason):

- any request whose `Host` is a DNS name the sandbox does not answer to (DNS rebinding: a page of
  evil.example whose name is re-pointed at 127.0.0.1 sends `Host: evil.example` and could then read the
  answers). IP literals are always fine: a browser only sends one when the page itself was loaded from that
  address. The two receivers are exempt: they answer only a sender that knows its key, and a HIS may
  address the sandbox by any name it likes;
- a state-changing request (any method but GET/HEAD/OPTIONS, except the two receivers, which authenticate
  by key and read only JSON) that is not `Content-Type: application/json` — a plain HTML form can only
  send text/plain, urlencoded or multipart — or whose `Origin` (else `Referer`) is not one of the sandbox's
  own origins. Command-line clients send neither header and pass;
- when a control token is set (listening on a non-loopback address, `--allow-remote`): the control plane
  (`/_sandbox/…`, which lists every institution's key), every state-changing request and the sensitive
  reads an application names (the dashboard's unmasked view) without `X-Sandbox-Token: <token>`.
"""

from __future__ import annotations

import hmac
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from sandbox.common.envelope import envelope_body
from sandbox.common.http import Handler, json_response
from sandbox.config import Settings
from sandbox.spec.fields import TRANSACTIONS

TOKEN_HEADER = "X-Sandbox-Token"
CONTROL_PREFIX = "/_sandbox"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ANSWER_ONLY_ROUTE = "dicomweb-unknown"  # sandbox.center.dicomweb's catch-all: 404/405 only
PREFLIGHTED_TYPES = frozenset({"application/json", "multipart/related"})
RECEIVER_PATHS = frozenset(tx.path for tx in TRANSACTIONS.values())
LOOPBACK_NAMES = frozenset({"localhost"})


def normalise_name(name: str) -> str:
    """A host name as compared: lower case, no trailing dot, no IPv6 brackets."""
    return name.strip().strip("[]").rstrip(".").lower()


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    """Whether a listening address reaches this machine only."""
    name = normalise_name(host)
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def split_host(value: str) -> tuple[str, int | None]:
    """(name, port) of a Host header value or the netloc of an Origin; ValueError when malformed."""
    parts = urlsplit("//" + value)
    return normalise_name(parts.hostname or ""), parts.port


@dataclass(frozen=True, slots=True)
class Policy:
    """Names, ports and token of one sandbox, from its settings."""

    names: frozenset[str]  # DNS names and addresses the sandbox answers to
    ports: frozenset[int]  # its HTTP ports
    token: str | None

    @classmethod
    def of(cls, settings: Settings) -> Policy:
        names = set(LOOPBACK_NAMES) | {"127.0.0.1", "::1", normalise_name(settings.host)}
        names |= {normalise_name(n) for n in settings.server_names}
        ports = {settings.hospital_port, settings.center_port, settings.province_port, settings.dashboard_port}
        if settings.public_base_url:
            public = urlsplit(settings.public_base_url)
            if public.hostname:
                names.add(normalise_name(public.hostname))
            ports.add(public.port or (443 if public.scheme == "https" else 80))
        if settings.allow_remote and not is_loopback(settings.host):
            names.add(normalise_name(socket.gethostname()))
        return cls(frozenset(names), frozenset(ports), settings.control_token)

    def host_ok(self, value: str | None) -> bool:
        if not value:
            return True  # HTTP/1.0 clients; a browser always sends Host
        try:
            name, _ = split_host(value)
        except ValueError:
            return False
        return name in self.names or is_ip(name)

    def own_origin(self, origin: str) -> bool:
        """Whether a browser origin (`scheme://host[:port]`) is one of the sandbox's own pages."""
        try:
            parts = urlsplit(origin)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return False
        host = normalise_name(parts.hostname or "")
        return parts.scheme in ("http", "https") and host in self.names and port in self.ports

    def token_ok(self, request: web.Request) -> bool:
        if self.token is None:
            return True
        given = request.headers.get(TOKEN_HEADER, "")
        return hmac.compare_digest(given.encode(), self.token.encode())


def refusal(name: str, **kw: Any) -> web.Response:
    body = envelope_body(name, **kw)
    body["data"] = None
    return json_response(body, status=403)


def guard_middleware(settings: Settings, sensitive: Callable[[web.Request], bool] | None = None
                     ) -> Any:
    """The guard (see the module's text); `sensitive` names reads that need the token as well."""
    policy = Policy.of(settings)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.headers.get("Host")
        receiver = request.path in RECEIVER_PATHS
        if not receiver and not policy.host_ok(host):
            return refusal("forbidden_host", host=(host or "")[:100], names="、".join(sorted(policy.names)))
        # A path or method that does not exist changes nothing: the router answers it (404/405 with Allow).
        match = request.match_info
        changing = (request.method not in SAFE_METHODS and not receiver and match.http_exception is None
                    and match.route.name != ANSWER_ONLY_ROUTE)
        if changing:
            origin = request.headers.get("Origin")
            if origin is None and request.headers.get("Referer"):
                referer = urlsplit(request.headers["Referer"])
                origin = f"{referer.scheme}://{referer.netloc}"
            if origin is not None and not policy.own_origin(origin):
                return refusal("forbidden_origin", origin=origin[:100])
            if request.headers.get("Sec-Fetch-Site") == "cross-site":
                return refusal("forbidden_origin", origin=origin or "cross-site")
            # Only JSON, or a type no plain form can send and a cross-site page could only send after a CORS
            # preflight the sandbox refuses (STOW-RS's multipart/related; DELETE is never a simple request).
            if request.method != "DELETE" and request.content_type not in PREFLIGHTED_TYPES:
                return refusal("guard_content_type", got=request.headers.get("Content-Type", "")[:100])
        needs_token = changing or request.path.startswith(CONTROL_PREFIX) or (
            sensitive is not None and sensitive(request))
        if needs_token and not policy.token_ok(request):
            given = TOKEN_HEADER in request.headers
            return refusal("token_required", detail="；令牌不正确" if given else "")
        return await handler(request)

    return guard


def install(app: web.Application, settings: Settings,
            sensitive: Callable[[web.Request], bool] | None = None) -> None:
    """Put the guard in front of every other middleware of an application, and its CORS policy after it."""
    from sandbox.common import cors

    app.middlewares.insert(0, guard_middleware(settings, sensitive))
    cors.install(app, settings)
