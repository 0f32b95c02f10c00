"""Benchmarks (`make bench`). Each module here has `run(quick: bool) -> list[Row]`; `python -m sandbox.bench`
runs them all and prints one table. Speed targets live here, never in timed tests."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    value: float
    unit: str
    target: float | None = None  # the target, same unit; higher is better
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        return "✓" if self.value >= self.target else "✗"
