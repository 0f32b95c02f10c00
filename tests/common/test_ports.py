"""free_port never hands out the same port twice in one process."""

from __future__ import annotations

import socket

from sandbox.common.ports import free_port


def test_ports_are_distinct_and_bindable() -> None:
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports[-1]))
