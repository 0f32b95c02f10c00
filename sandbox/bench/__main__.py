"""Run every benchmark module in sandbox.bench and print one table."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import platform
import sys

from rich.console import Console
from rich.table import Table

import sandbox.bench as pkg
from sandbox.bench import Row


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.bench")
    parser.add_argument("names", nargs="*", help="only these benchmark modules")
    parser.add_argument("--quick", action="store_true", help="smaller runs (smoke test)")
    args = parser.parse_args()
    names = args.names or sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))
    rows: list[tuple[str, Row]] = []
    for name in names:
        module = importlib.import_module(f"sandbox.bench.{name}")
        print(f"running {name} …", file=sys.stderr, flush=True)
        rows.extend((name, r) for r in module.run(args.quick))
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    table = Table(title=f"sandbox benchmarks — {os.cpu_count()} cores, {mem:.0f} GiB, Python {platform.python_version()}")
    for col in ("module", "benchmark", "value", "unit", "target", "", "note"):
        table.add_column(col)
    for module_name, r in rows:
        places = 2 if r.unit == "×" else 1  # a ratio such as 1.49 must not print as its target 1.5
        table.add_row(module_name, r.name, f"{r.value:,.{places}f}", r.unit,
                      f"{r.target:,.{places if r.target < 100 else 0}f}" if r.target is not None else "",
                      r.verdict, r.note)
    Console(width=160).print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
