"""`sandbox load` as a user runs it: headless, two Locust worker processes, against the sandbox's own center
and province (`--serve`, each its own process on free loopback ports). The counts must agree end to end:
what the workers saw acknowledged, what the center stored, and what the province indexed."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_workers_against_the_sandbox_center_every_acknowledged_exam_is_indexed(tmp_path: Path) -> None:
    out = tmp_path / "report"
    proc = subprocess.run(
        [sys.executable, "-m", "sandbox", "load", "--serve", "--headless", "--workers", "2", "--users", "4",
         "--run-time", "4s", "--records", "2-6", "--pool", "5", "--slices", "2", "--matrix", "32", "--seed", "77",
         "--stop-timeout", "20", "--out", str(out), "--json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    summary = json.loads(proc.stdout)
    assert summary == json.loads((out / "sandbox-summary.json").read_text(encoding="utf-8"))

    # both workers sent, and every record of every message was answered succFlag 1 (msgids and indexes unique)
    workers = json.loads((out / "sandbox-workers.json").read_text(encoding="utf-8"))["workers"]
    assert len(workers) == 2 and all(w["messages"] > 0 for w in workers.values())
    acknowledged = summary["examsAcknowledged"]
    assert acknowledged > 0 and summary["examsSent"] == acknowledged
    assert summary["succFlag"] == {"1": acknowledged} and summary["failureKinds"] == {}

    # end to end: the workers' acknowledged exams = the center's stored exams = the province's indexes
    e2e = summary["endToEnd"]
    assert e2e["ok"] and e2e["fresh"]
    assert e2e["acknowledged"] == e2e["distinct"] == e2e["indexed"] == e2e["centerStored"] == acknowledged
    assert e2e["centerForwarded"] == acknowledged and e2e["missingCount"] == 0

    # the center fetched each exam's report and study once from the workers' own file servers
    assert summary["filesServed"] == 2 * acknowledged and summary["fileBytesServed"] > 0

    # Locust's own reports: the per-message row counts the same messages the workers did
    with open(out / "locust_stats.csv", encoding="utf-8", newline="") as fh:
        row = next(r for r in csv.DictReader(fh) if r["Name"] == "saveExamRpotImgInfo")
    assert int(row["Request Count"]) == sum(w["messages"] for w in workers.values()) == summary["requests"]
    assert int(row["Failure Count"]) == 0
    assert summary["latencyMs"]["p50"] is not None and summary["latencyMs"]["p99"] >= summary["latencyMs"]["p50"]
    assert (out / "locust.html").stat().st_size > 1000
    # what the target had to be configured with: the four users' hospitals and the workers' file servers
    target = tomllib.loads((out / "target.toml").read_text(encoding="utf-8"))
    assert target["allowed_fetch_hosts"] == ["127.0.0.1:*"]
    assert sum(1 for i in target["institutions"] if i["role"] == "hospital") == 4
