"""Synthetic exam dates: fixed by default (reproducible), today's date for a demo."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date, datetime

import aiohttp
import pytest

import sandbox.serve
from sandbox.commands.serve import register
from sandbox.config import Settings
from sandbox.hospital.domain import Hospital
from sandbox.hospital.store import HospitalStore
from sandbox.spec.formats import china_now
from sandbox.synth.exams import BASE_DATE


async def exam_dates(settings: Settings) -> list[str]:
    store = HospitalStore(settings.data_dir / "hospital" / "hospital.db")
    await store.open()
    try:
        async with aiohttp.ClientSession() as session:
            exams = Hospital(settings, store, session).make_exams(3)
    finally:
        await store.close()
    return [e.record("http://h")["examDate"] for e in exams]


async def test_exams_start_on_the_fixed_day_unless_configured(make_settings: Callable[..., Settings]) -> None:
    assert set(await exam_dates(make_settings())) == {BASE_DATE.isoformat()}
    assert set(await exam_dates(make_settings(exam_base_date=date(2026, 3, 2)))) == {"2026-03-02"}


def test_serve_demo_dates_its_exams_today(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Settings] = []

    async def fake_serve(settings: Settings, options: object) -> int:
        seen.append(settings)
        return 0

    monkeypatch.setattr(sandbox.serve, "serve", fake_serve)
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    for argv in (["serve", "--demo"], ["serve"]):
        args = parser.parse_args(argv)
        assert args.func(args) == 0
    assert seen[0].exam_base_date == china_now().date()
    assert seen[1].exam_base_date is None


async def test_exams_dated_today_never_lie_in_the_future(make_settings: Callable[..., Settings]) -> None:
    """The demo's exams (dated today) — even exam 2000, whose calendar slot is days ahead — happen before the
    hospital's clock: report after exam, every time ≤ now, in China time whatever the host's zone."""
    now = china_now()
    settings = make_settings(exam_base_date=now.date())
    store = HospitalStore(settings.data_dir / "hospital" / "hospital.db")
    await store.open()
    try:
        hospital = Hospital(settings, store, None, now=lambda: now)
        exams = hospital.make_exams(3, 0) + hospital.make_exams(3, 2000)
    finally:
        await store.close()
    fields = ("appyDate", "diagTime", "sympBegndate", "rpotDate", "chkDate", "sdryChkDate", "rpotPubDate")
    for exam in exams:
        record = exam.record("http://h")
        times = {f: datetime.strptime(record[f], "%Y-%m-%d %H:%M:%S") for f in fields if record.get(f)}
        assert max(times.values()) <= now, (exam.n, times)
        t = exam.times
        assert t.exam <= t.rpot <= t.chk <= t.pub <= now
        assert record["examDate"] <= now.date().isoformat()
    # the index carries the exam time it was moved to
    late = exams[-1]
    assert f"{late.times.exam:%Y%m%d%H%M%S}" in late.index
