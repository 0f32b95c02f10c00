"""Benchmarks (`make bench`). Each module here has `run(quick: bool) -> list[Row]`; `python -m sandbox.bench`
runs them all and prints one table. Speed targets live here, never in timed tests."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    value: float
    unit: str
    target: float | None = None  # the target, same unit; higher is better unless lower_is_better
    note: str = ""
    lower_is_better: bool = False  # a time or a cost: the target is a ceiling

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        met = self.value <= self.target if self.lower_is_better else self.value >= self.target
        return "✓" if met else "✗"


async def wait_ready(url: str, what: str, timeout: float = 30.0) -> None:
    """Poll `url` until it answers 200: the role under test, started in its own process, is serving."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start")
            await asyncio.sleep(0.05)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float:
    """CPU time all cores of this machine have spent busy so far, every process included (Linux /proc/stat;
    0 elsewhere): with `cpu_seconds` it says what the rest of a benchmark costs beside the process measured."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            ticks = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")  # guest time is already counted in user


def reference_us(rounds: int = 1000) -> float:
    """Microseconds per round of a fixed CPU workload — a JSON round trip, a SHA-256 and a dict walk over one
    hop-1-sized record (about 1.6 KB) — the median of three passes. Measured in the same run as a figure set
    beside it (as `N×` this floor), so that a machine slowed by other work moves both sides alike."""
    import hashlib
    import json
    import statistics

    record = {f"field{i:02d}": ("值" * (i % 7)) + f"value-{i}" * 3 for i in range(40)}
    passes = []
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(rounds):
            text = json.dumps(record, ensure_ascii=False, sort_keys=True)
            hashlib.sha256(text.encode()).hexdigest()
            back = json.loads(text)
            sum(len(k) + len(v) for k, v in back.items())
        passes.append((time.perf_counter() - t0) / rounds * 1e6)
    return statistics.median(passes)


def times_reference(us: float, ref: float) -> str:
    """`us` (microseconds of some unit of work) as a multiple of the reference workload measured in the same run
    (`reference_us`), for a benchmark's note."""
    return f"{us / ref:.2f}× the reference workload"


def per_reference(us: float, ref: float, what: str = "") -> str:
    """`times_reference` with the figure itself and the reference's own time: "193 µs = 4.83× … (40 µs …)"."""
    return f"{us:,.0f} µs{what} = {times_reference(us, ref)} ({ref:.0f} µs in this run)"


def stop(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """End a server the benchmark started: SIGTERM, then SIGKILL if it has not exited within `timeout`."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
