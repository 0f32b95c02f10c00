"""Validator throughput on one core: realistic synthetic records, batches filling the 40000-char limit.

The batches hold distinct records (2,000 exams), and the validator's check-character caches are
emptied at each pass over them, so a patient's ID number is checked afresh as in a real stream while
the doctors' numbers, which recur in every batch, are cached as they would be."""

from __future__ import annotations

import time
from typing import Any

from sandbox.bench import Row, per_reference, reference_us
from sandbox.config import Settings
from sandbox.spec.fields import DATA_MAX_CHARS
from sandbox.synth.exams import ExamFactory
from sandbox.validate import Mode, _idcard_problem, _uscc_problem, data_length, validator

TARGET = 50_000  # records/s (issue 2)


def _full_batches(records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The records cut into batches, each as many as fit the data limit."""
    batches: list[list[dict[str, Any]]] = [[]]
    size = 2  # "[]"
    for rec in records:
        length = data_length(rec)
        if batches[-1] and size + 1 + length > DATA_MAX_CHARS:
            batches.append([])
            size = 2
        size += length + (1 if len(batches[-1]) else 0)
        batches[-1].append(rec)
    return batches[:-1]  # the last one is not full


def _rate(hop: int, mode: Mode, batches: list[list[dict[str, Any]]], seconds: float) -> float:
    v = validator(hop, mode)
    n = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        _idcard_problem.cache_clear()
        _uscc_problem.cache_clear()
        for batch in batches:
            v.validate_records(batch)
            n += len(batch)
    return n / elapsed


def _hop2(rec: dict[str, Any], settings: Settings, n: int) -> dict[str, Any]:
    out = {k: v for k, v in rec.items() if k not in ("examRpotPdfI", "imgInfoDcm", "postcode")}
    if "postcode" in rec:
        out["poscode"] = rec["postcode"]
    base = settings.url(settings.center_port)
    out.update(stogInsUscc=settings.center.uscc, examRpotLinkUrl=f"{base}/report/{n}",
               imgInfoLinkUrl=f"{base}/viewer/{n}", imgDldLink=f"{base}/dicomweb/studies/1.2.3.{n}")
    return out


def run(quick: bool) -> list[Row]:
    settings = Settings()
    factory = ExamFactory(settings.hospitals[0], settings.center.uscc, settings.seed,
                          index_profile=settings.index_profile)
    base = settings.url(settings.hospital_port)
    records = [e.record(base) for e in factory.exams(400 if quick else 2000)]
    seconds = 0.5 if quick else 3.0
    ref = reference_us()
    rows = []
    for hop in (1, 2):
        recs = records if hop == 1 else [_hop2(r, settings, i) for i, r in enumerate(records)]
        batches = _full_batches(recs)
        assert all(r.ok for r in validator(hop, Mode.STRICT).validate_records(recs)), "bench records must be valid"
        per_batch = sum(map(len, batches)) / len(batches)
        chars = sum(data_length(b) for b in batches) / len(batches)
        for mode in (Mode.STRICT, Mode.LENIENT):
            rate = _rate(hop, mode, batches, seconds)
            rows.append(Row(f"hop {hop} {mode}, {per_batch:.1f} records/batch", rate, "records/s", TARGET,
                            f"{chars:.0f} chars/batch, {len(recs)} distinct records, one core; "
                            f"{per_reference(1e6 / rate, ref, ' a record')}"))
    return rows
