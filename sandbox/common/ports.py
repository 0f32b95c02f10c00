"""Free loopback ports for roles started on the fly (scenarios, tests, benchmarks, `sandbox send`)."""

from __future__ import annotations

import socket

_HANDED_OUT: set[tuple[str, int]] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on `host` now, never one this process has handed out before: the kernel may offer a
    just-closed port again, and two roles given the same port would collide when they bind."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    while True:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if (host, port) not in _HANDED_OUT:
            _HANDED_OUT.add((host, port))
            return port
