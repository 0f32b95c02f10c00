"""The event loop: uvloop where it is installed (Linux and macOS), asyncio's own elsewhere.

uvloop runs the same asyncio code faster (the chain benchmark gains about 5 %). Every command that runs
the sandbox goes through `run`, and the tests make their loops with `new_loop`, so what is tested is what
runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

new_loop: Callable[[], asyncio.AbstractEventLoop]
try:
    from uvloop import new_event_loop as new_loop
except ImportError:  # pragma: no cover - Windows
    new_loop = asyncio.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on the sandbox's event loop."""
    with asyncio.Runner(loop_factory=new_loop) as runner:
        return runner.run(main)
