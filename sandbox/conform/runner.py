"""Run one role's kit over the selected requirements and gather the report."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable

from sandbox.conform.kit import Kit, Options
from sandbox.conform.model import Report, Result, Role, load_catalogue, select
from sandbox.spec.formats import china_iso


def kit_class(role: Role) -> type[Kit]:
    """The kit of `role`: `sandbox.conform.kits.<role>.KIT`."""
    module = importlib.import_module(f"sandbox.conform.kits.{role}")
    cls: type[Kit] = module.KIT
    return cls


async def run_kit(role: Role, options: Options, only: list[str] | None = None, skip: list[str] | None = None,
                  on_result: Callable[[Result], None] | None = None,
                  say: Callable[[str], None] = print) -> Report:
    """Run the kit; `on_result` sees each result as it comes. Raises `Unreachable` (exit 2) from the kit's start."""
    reqs = select(load_catalogue(role), only, skip)
    started = time.time()
    clock = time.perf_counter()
    results: list[Result] = []
    async with kit_class(role)(options, say) as kit:
        async for result in kit.run(reqs):
            results.append(result)
            if on_result is not None:
                on_result(result)
    return Report(role, options.url or "", china_iso(started) or "", time.perf_counter() - clock,
                  options.to_json(), results)
