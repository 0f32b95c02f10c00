"""Fixtures every test folder shares."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sandbox.common.ports import free_port
from sandbox.config import Settings

FIXTURES = Path(__file__).parent / "fixtures"




@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings with a temporary data folder and free loopback ports; keyword arguments override."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "hospital_port": free_port(),
            "center_port": free_port(),
            "province_port": free_port(),
            "dicom_port": free_port(),
            # Test file servers listen on any free loopback port (the sandbox's own ports stay refused).
            "allowed_fetch_hosts": ("127.0.0.1:*",),
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def doc_example() -> Callable[[int], dict[str, Any]]:
    """The document's example message of hop 1 or 2 (PDF extraction damage repaired)."""

    def load(hop: int) -> dict[str, Any]:
        return json.loads((FIXTURES / f"doc_example_hop{hop}.json").read_text(encoding="utf-8"))

    return load



def pytest_asyncio_loop_factories(config: Any, item: Any) -> dict[str, Callable[[], Any]]:
    """The tests run on the event loop `sandbox serve` uses (sandbox.common.loop)."""
    from sandbox.common.loop import new_loop

    return {"loop": new_loop}


@pytest.fixture
def commit_groups(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every group-commit transaction written during the test (`Database(group_commit=True)`)."""
    import sqlite3

    import sandbox.common.db as db_module

    sizes: list[int] = []
    real = db_module._in_group

    def counting(conn: sqlite3.Connection, fns: list[Any]) -> list[tuple[bool, Any]]:
        sizes.append(len(fns))
        return real(conn, fns)

    monkeypatch.setattr(db_module, "_in_group", counting)
    return sizes
