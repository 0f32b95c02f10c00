"""Where the center may fetch a hospital's files from: host AND port, checked before any network access.

`allowed_fetch_hosts` entries are `host:port`, `host:*` (any port), `*.example.org:443` (a domain and its
subdomains) or a bare `host` (ports 80 and 443). Empty (the default) means the emulated hospital's file
server: the loopback names on `hospital_port`.

A URL's host is normalised first — lower case, no trailing dot, IPv4 in any spelling the C library accepts
(`0177.0.0.1`, `2130706433`, `0x7f.1`, `127.1`) written as dotted decimal, IPv6 compressed — and only then
compared with the list; a host not on the list is refused without a DNS look-up. A listed name is resolved
once (`localhost` and `*.localhost` never leave the machine, RFC 6761), every address it resolves to is
checked, and the fetcher connects to that checked address, so a second, different DNS answer cannot take
the connection elsewhere. Whatever the list says, an address is refused when it is unspecified, multicast
or link-local (cloud metadata services), and a port of the sandbox's own services (center, province,
dashboard, DICOM) is refused on any address of this machine.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import Any

from sandbox.center.errors import FetchError
from sandbox.config import Settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
LOCAL_NAMES = ("localhost",)
_LEGACY_IPV4 = frozenset("0123456789abcdefx.")
# A DNS name as URLs carry it (IDNA already in ASCII): dot-separated labels of letters, digits, `-` and `_`.
_HOSTNAME = re.compile(r"(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*")


@functools.lru_cache(maxsize=1024)
def normalise_host(host: str) -> str:
    """The host as compared and resolved (see the module's text)."""
    name = host.strip().strip("[]").rstrip(".").lower()
    address = parse_address(name)
    return str(address) if address is not None else name


def parse_address(name: str) -> Address | None:
    """The address an IP literal stands for, in any IPv4 spelling inet_aton takes; None for a name."""
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        if not name or not set(name) <= _LEGACY_IPV4 or not name[0].isdigit():
            return None
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True, slots=True)
class Entry:
    host: str  # normalised name or address, or "*.domain"
    port: int | None  # None: any port

    def matches(self, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.host.startswith("*."):
            return host == self.host[2:] or host.endswith(self.host[1:])
        return host == self.host

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{'*' if self.port is None else self.port}"


def _ascii(name: str) -> str:
    """A host name in its ASCII (IDNA) form, or "" when it has none."""
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError:
        return ""


def parse_entry(text: str) -> list[Entry]:
    """One setting entry as Entries; ValueError (Chinese) when it cannot be read."""
    raw = text.strip()
    host, port_text = raw, ""
    if raw.startswith("["):
        end = raw.find("]")
        host, rest = raw[1:end], raw[end + 1:]
        port_text = rest[1:] if rest.startswith(":") else ""
    elif raw.count(":") == 1:
        host, port_text = raw.split(":")
    if raw.startswith("[") and "]" not in raw:
        raise ValueError(f"allowed_fetch_hosts 的条目「{text}」缺少与「[」配对的「]」")
    host = normalise_host(host) if not host.startswith("*.") else host.lower().rstrip(".")
    if not host:
        raise ValueError(f"allowed_fetch_hosts 的条目「{text}」没有主机名")
    name = host[2:] if host.startswith("*.") else host
    if parse_address(name) is None and not _HOSTNAME.fullmatch(_ascii(name)):
        raise ValueError(f"allowed_fetch_hosts 的条目「{text}」中的「{host}」不是主机名或 IP 地址")
    if port_text == "*":
        return [Entry(host, None)]
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"allowed_fetch_hosts 的条目「{text}」端口应为 1–65535 或 *")
        return [Entry(host, int(port_text))]
    return [Entry(host, 80), Entry(host, 443)]


@functools.lru_cache(maxsize=256)
def is_local_address(address: str) -> bool:
    """Whether an address belongs to this machine (binding to it succeeds only then)."""
    parsed = ipaddress.ip_address(address)
    if parsed.is_loopback or parsed.is_unspecified:
        return True
    family = socket.AF_INET6 if parsed.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((address, 0))
    except OSError:
        return False
    return True


async def lookup(host: str, port: int) -> list[tuple[Any, ...]]:
    """The one DNS look-up of a fetch (getaddrinfo)."""
    return list(await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM))


class FetchPolicy:
    """The allow-list of one center and the ports it must never fetch from itself."""

    def __init__(self, settings: Settings) -> None:
        entries = list(settings.allowed_fetch_hosts)
        if not entries:
            entries = [f"{name}:{settings.hospital_port}" for name in ("127.0.0.1", "localhost", "[::1]")]
        self.entries = [e for text in entries for e in parse_entry(text)]
        own = {settings.center_port, settings.province_port, settings.dashboard_port, settings.dicom_port}
        self.own_ports = frozenset(own - {settings.hospital_port})

    @property
    def shown(self) -> str:
        return "、".join(str(e) for e in self.entries) or "空"

    def allowed(self, host: str, port: int) -> bool:
        return any(e.matches(host, port) for e in self.entries)

    def check(self, host: str, port: int, url: str) -> str:
        """The normalised host when host and port are listed; FetchError (no I/O) otherwise."""
        name = normalise_host(host)
        if not self.allowed(name, port):
            shown = f"[{name}]" if ":" in name else name
            raise FetchError("host_not_allowed", host=f"{shown}:{port}", allowed=self.shown, url=url[:200])
        return name

    def forbidden(self, address: str, port: int) -> str | None:
        """Why an address may not be connected to, or None."""
        parsed = ipaddress.ip_address(address)
        if parsed.is_unspecified or parsed.is_multicast or parsed.is_link_local:
            return "forbidden_special"
        if port in self.own_ports and is_local_address(address):
            return "forbidden_own"
        return None

    async def resolve(self, host: str, port: int, url: str) -> str:
        """The one address to connect to: resolved once, every candidate checked (FetchError otherwise)."""
        address = parse_address(host)
        if address is not None:
            candidates = [str(address)]
        elif host in LOCAL_NAMES or host.endswith(".localhost"):
            candidates = ["127.0.0.1"]
        else:
            try:
                infos = await lookup(host, port)
            except (OSError, UnicodeError) as exc:
                raise FetchError("fetch_resolve", host=host, url=url[:200]) from exc
            candidates = [str(parse_address(str(info[4][0])) or info[4][0]) for info in infos]
        for candidate in candidates:
            why = self.forbidden(candidate, port)
            if why is not None:
                raise FetchError(why, host=host, address=candidate, port=port, url=url[:200])
        if not candidates:
            raise FetchError("fetch_resolve", host=host, url=url[:200])
        return candidates[0]
