"""What the sandbox's own center sustains under Locust (`sandbox load --serve`), with 1 and with 2 local
worker processes on this machine: exams acknowledged per second, the 1-worker run being the ratio base of
the 2-worker run measured right after it. Every run must end with every acknowledged exam indexed.

Each run is the command a user types, in its own processes (Locust master and workers; the center and
province in `sandbox serve`), so its numbers include the load generator sharing the machine's cores.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from sandbox.bench import Row

USERS = 8
IMAGES = ("--slices", "5", "--matrix", "128")  # smaller than the generator's default study, to spare the disk


def measure(workers: int, run_time: str, tmp: Path) -> dict[str, Any]:
    out = tmp / f"w{workers}"
    proc = subprocess.run(
        [sys.executable, "-m", "sandbox", "load", "--serve", "--headless", "--workers", str(workers),
         "--users", str(USERS), "--run-time", run_time, *IMAGES, "--out", str(out), "--json"],
        cwd=tmp, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"sandbox load 失败（退出码 {proc.returncode}）：{proc.stderr[-2000:]}")
    summary: dict[str, Any] = json.loads(proc.stdout)
    if not summary["endToEnd"]["ok"]:
        raise RuntimeError(f"端到端核对未通过：{summary['endToEnd']}")
    return summary


def run(quick: bool) -> list[Row]:
    run_time = "5s" if quick else "30s"
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        one = measure(1, run_time, Path(tmp))
        two = measure(2, run_time, Path(tmp))

    def note(s: dict[str, Any], extra: str) -> str:
        cpu = "/".join(f"{c:.0f}%" for c in s["workerCpuPercent"])
        bound = "client-bound" if s["clientBound"] else "center-bound"
        return (f"{s['examsAcknowledged']} exams in {s['seconds']:.0f} s, {USERS} users, p95 "
                f"{s['latencyMs']['p95']:.0f} ms/message, worker CPU {cpu} ({bound}); {extra}")

    base = one["examsPerSecond"] or 1e-9
    return [
        Row("center under Locust, 1 worker", one["examsPerSecond"], "exams/s", None,
            note(one, "all indexed end to end")),
        Row("center under Locust, 2 workers", two["examsPerSecond"], "exams/s", None,
            note(two, f"×{two['examsPerSecond'] / base:.2f} the 1-worker run; all indexed end to end")),
    ]
