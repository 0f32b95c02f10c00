"""Synthetic exam dates: fixed by default (reproducible), today's date for a demo."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date

import aiohttp
import pytest

import sandbox.serve
from sandbox.commands.serve import register
from sandbox.config import Settings
from sandbox.hospital.domain import Hospital
from sandbox.hospital.store import HospitalStore
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
    assert seen[0].exam_base_date == date.today()
    assert seen[1].exam_base_date is None
