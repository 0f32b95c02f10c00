"""`sandbox serve` start-up: seconds from launching the command until its banner is printed and every role
answers, beside floors measured in the same run, and where the import time goes.

Each run starts `python -m sandbox serve` as a user does (a fresh data folder, free ports, bytecode cached
by a first run that is not counted) and polls each role over HTTP — the hospital's status, the center's
summary, the province's index query, the dashboard's state — until every one gives an answer that is not
503; the DICOM port then must answer C-ECHO. The median of several runs is reported with its ratio to two
floors started the same way in the same run: a bare interpreter (`python -c pass`) and one that only
imports aiohttp, the least any aiohttp server needs; a busy machine moves all of them alike.

The breakdown imports the modules `sandbox serve` loads before its banner (`python -X importtime`) and
sums the time by top-level package.
"""

from __future__ import annotations

import http.client
import os
import re
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sandbox.bench import Row, stop
from sandbox.common.ports import free_port

TARGET_MS = 1000.0
BANNER = "已就绪"
TIMEOUT_S = 60.0
# What `sandbox serve` imports before its banner: the command, the chain, every role's application, and Faker
# (the first message's patient is made before the banner).
SERVE_MODULES = ("sandbox.cli", "sandbox.commands.serve", "sandbox.serve", "sandbox.hospital.app",
                 "sandbox.center.app", "sandbox.province.app", "sandbox.dashboard.app", "faker")
FLOORS = {"bare interpreter (python -c pass)": "pass", "interpreter importing aiohttp": "import aiohttp"}
_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$")


def _env() -> dict[str, str]:
    """This environment, with bytecode caching on (as users have it)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONOPTIMIZE"] = ""
    return env


def _answers(port: int, path: str) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        return conn.getresponse().status != 503
    except OSError:
        return False
    finally:
        conn.close()


def _echo(port: int) -> bool:
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    ae = AE(ae_title="BENCH")
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    assoc = ae.associate("127.0.0.1", port, ae_title="IMGCLOUD")
    if not assoc.is_established:
        return False
    status = assoc.send_c_echo()
    assoc.release()
    return bool(status) and status.Status == 0


def start_once() -> dict[str, float]:
    """One `sandbox serve`: seconds to its banner, to every role answering, to C-ECHO answered."""
    ports = {k: free_port() for k in ("hospital", "center", "province", "dicom", "dashboard")}
    paths = {"hospital": "/api/hospital/status", "center": "/api/summary", "province": "/mie/api/mie/index",
             "dashboard": "/api/state"}
    with tempfile.TemporaryDirectory(prefix="sandbox-startup-") as tmp:
        args = [sys.executable, "-m", "sandbox", "serve", "--data-dir", str(Path(tmp) / "data")]
        for role, port in ports.items():
            args += [f"--{role}-port", str(port)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=_env(), cwd=tmp)
        try:
            assert proc.stdout is not None
            out = b""
            while BANNER.encode() not in out:
                if time.perf_counter() - t0 > TIMEOUT_S or proc.poll() is not None:
                    raise RuntimeError(f"sandbox serve printed no banner: {out.decode(errors='replace')[-2000:]}")
                if select.select([proc.stdout], [], [], 0.5)[0]:
                    out += os.read(proc.stdout.fileno(), 65536)
            banner = time.perf_counter() - t0
            waiting = dict(paths)
            while waiting:
                waiting = {r: p for r, p in waiting.items() if not _answers(ports[r], p)}
                if time.perf_counter() - t0 > TIMEOUT_S:
                    raise RuntimeError(f"roles not answering: {sorted(waiting)}")
            ready = time.perf_counter() - t0
            while not _echo(ports["dicom"]):
                if time.perf_counter() - t0 > TIMEOUT_S:
                    raise RuntimeError("the DICOM port did not answer C-ECHO")
                time.sleep(0.02)
            echo = time.perf_counter() - t0
        finally:
            stop(proc, timeout=30)
    return {"banner": banner, "ready": ready, "echo": echo}


def floor_once(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=_env())
    return time.perf_counter() - t0


def import_breakdown() -> tuple[float, list[tuple[str, float]]]:
    """Seconds `python -X importtime` spends importing SERVE_MODULES, and by top-level package (self time)."""
    code = f"import importlib\nfor m in {SERVE_MODULES!r}: importlib.import_module(m)"
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                          env=_env(), check=True)
    by_package: dict[str, float] = {}
    total = 0.0
    for line in proc.stderr.splitlines():
        m = _IMPORT_LINE.match(line)
        if not m:
            continue
        own, name = int(m.group(1)) / 1e6, m.group(4)
        package = name.split(".")[0]
        by_package[package] = by_package.get(package, 0.0) + own
        total += own
    return total, sorted(by_package.items(), key=lambda kv: -kv[1])


def run(quick: bool) -> list[Row]:
    runs = 3 if quick else 7
    start_once()  # writes the bytecode caches; not counted
    starts: list[dict[str, float]] = []
    floors: dict[str, list[float]] = {name: [] for name in FLOORS}
    for _ in range(runs):  # interleaved, so that load on the machine falls on both alike
        starts.append(start_once())
        for name, code in FLOORS.items():
            floors[name].append(floor_once(code))
    ready = statistics.median(s["ready"] for s in starts)
    banner = statistics.median(s["banner"] for s in starts)
    echo = statistics.median(s["echo"] for s in starts)
    floor = {name: statistics.median(v) for name, v in floors.items()}
    aiohttp_floor = floor["interpreter importing aiohttp"]
    rows = [
        Row("sandbox serve: banner printed and every role answering", ready * 1e3, "ms", TARGET_MS,
            f"median of {runs} (min {min(s['ready'] for s in starts):.2f}, max {max(s['ready'] for s in starts):.2f});"
            f" {ready / aiohttp_floor:.1f}× the aiohttp floor, {ready / floor['bare interpreter (python -c pass)']:.0f}×"
            f" the bare interpreter; banner at {banner:.2f} s", lower_is_better=True),
        Row("…and the DICOM port answering C-ECHO", echo * 1e3, "ms", None,
            f"median of {runs}; the port listens at start, pynetdicom and pydicom load when this first association "
            f"arrives"),
    ]
    rows += [Row(f"floor: {name}", value * 1e3, "ms", None, f"median of {runs}, same run")
             for name, value in floor.items()]
    total, packages = import_breakdown()
    rows.append(Row("imports before the banner (python -X importtime)", total * 1e3, "ms", None,
                    f"{len(SERVE_MODULES)} modules sandbox serve loads before its banner, and what they import"))
    for package, seconds in packages[:8]:
        rows.append(Row(f"  import {package}", seconds * 1e3, "ms", None, f"{seconds / total:.0%} of the imports"))
    return rows


if __name__ == "__main__":
    for row in run("--quick" in sys.argv):
        print(row)
