"""Validator throughput on one core: realistic synthetic records, batches filling the 40000-char limit."""

from __future__ import annotations

import time
from typing import Any

from sandbox.bench import Row
from sandbox.config import Settings
from sandbox.spec.fields import DATA_MAX_CHARS
from sandbox.synth.exams import ExamFactory
from sandbox.validate import Mode, data_length, validator

TARGET = 50_000  # records/s (issue 2)


def _full_batch(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """As many records as fit the data limit."""
    batch: list[dict[str, Any]] = []
    for rec in records:
        if data_length([*batch, rec]) > DATA_MAX_CHARS:
            break
        batch.append(rec)
    return batch


def _rate(hop: int, mode: Mode, batch: list[dict[str, Any]], seconds: float) -> float:
    v = validator(hop, mode)
    n = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
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
    records = [e.record(base) for e in factory.exams(200)]
    seconds = 0.5 if quick else 3.0
    rows = []
    for hop in (1, 2):
        recs = records if hop == 1 else [_hop2(r, settings, i) for i, r in enumerate(records)]
        batch = _full_batch(recs)
        assert validator(hop, Mode.STRICT).validate(
            {"infno": "x", "msgid": "x", "infTime": "x", "infCode": "x", "key": "x", "data": batch}
        ).records[0].ok, "bench records must be valid"
        for mode in (Mode.STRICT, Mode.LENIENT):
            rows.append(Row(f"hop {hop} {mode}, {len(batch)} records/batch", _rate(hop, mode, batch, seconds),
                            "records/s", TARGET, f"{data_length(batch)} chars/batch, one core"))
    return rows
