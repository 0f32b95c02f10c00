"""The event loop: uvloop where it is installed (Linux and macOS), asyncio's own elsewhere.

uvloop runs the same asyncio code faster (the chain benchmark gains about 5 %). Every command that runs
the sandbox goes through `run`, and the tests make their loops with `new_loop`, so what is tested is what
runs.

The event loop shares the GIL with a thread per SQLite connection. A database thread that has finished a
statement (SQLite runs without the GIL) waits for the GIL until the loop's thread blocks or the interpreter's
switch interval passes — 5 ms by default, while the loop validates one message after another. A group commit
takes the GIL back five or six times, so the province's writes waited about half their time; at 0.5 ms
(`SWITCH_INTERVAL_S`) the province stores 10-15 % more records a second on the wrk benchmark, with less CPU
per record. `new_loop` sets it for the whole process (only threads waiting for the GIL are affected).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

SWITCH_INTERVAL_S = 0.0005

_new_loop: Callable[[], asyncio.AbstractEventLoop]
try:
    from uvloop import new_event_loop as _new_loop
except ImportError:  # pragma: no cover - Windows
    _new_loop = asyncio.new_event_loop


def new_loop() -> asyncio.AbstractEventLoop:
    """A new event loop of the kind the sandbox runs on; sets the GIL switch interval (see above)."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    return _new_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on the sandbox's event loop."""
    with asyncio.Runner(loop_factory=new_loop) as runner:
        return runner.run(main)
