"""The sandbox runs on uvloop where it is installed, and so do the tests."""

from __future__ import annotations

import asyncio

import uvloop

from sandbox.common.loop import run


async def _loop_type() -> type:
    return type(asyncio.get_running_loop())


async def test_the_tests_run_on_the_loop_the_sandbox_uses() -> None:
    assert isinstance(asyncio.get_running_loop(), uvloop.Loop)


def test_commands_run_on_uvloop() -> None:
    assert run(_loop_type()) is uvloop.Loop
