"""The outbox over long outages, on a clock the test moves: a ten-minute outage is one probe per backoff and
drains by itself once the province is back; a day-long one ends every batch as failed / expired."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import aiohttp

from sandbox.center.app import province_endpoint
from sandbox.center.domain import DB_FILE, FILES_DIR, Center
from sandbox.center.forwarder import Forwarder
from sandbox.center.store import CenterStore
from sandbox.common.client import Exchange
from tests.center.fake_province import FakeProvince
from tests.center.helpers import b64, instance, message, pdf, record

PDF = b64(pdf(), "application/pdf")
START = 1_900_000_000.0


@asynccontextmanager
async def center_on_a_clock(settings: Any) -> AsyncIterator[tuple[Center, Forwarder, list[float], list[Exchange]]]:
    """A center without its HTTP server, and a forwarder reading `now[0]` as the time; every hop-2 attempt
    lands in the list of exchanges."""
    store = CenterStore(settings.data_dir / DB_FILE)
    await store.open()
    center = Center(settings, store, settings.data_dir / FILES_DIR)
    await asyncio.to_thread(center.open)
    now = [START]
    attempts: list[Exchange] = []

    async def seen(ex: Exchange) -> None:
        attempts.append(ex)

    try:
        async with aiohttp.ClientSession() as session:
            yield center, Forwarder(center, session, url=province_endpoint(settings), observers=[seen],
                                    clock=lambda: now[0]), now, attempts
    finally:
        await center.files.close()
        await store.close()


@contextmanager
def refused(port: int) -> Iterator[None]:
    """The province's port bound but not listening: every connection to it is refused, and no other test's
    server (pytest-xdist runs two workers) can take the port and answer in the province's place."""
    with socket.socket() as sock:  # no SO_REUSEADDR: nobody else can bind the port meanwhile
        sock.bind(("127.0.0.1", port))
        yield


async def receive(center: Center, settings: Any, ns: range, per_message: int = 2) -> list[str]:
    indexes = []
    items = list(ns)
    for k in range(0, len(items), per_message):
        recs = [record(settings, n, PDF, b64(instance(n=n))) for n in items[k:k + per_message]]
        body = await center.receive(message(settings, recs, seq=items[k] + 1))
        assert all(a["succFlag"] == "1" for a in body["data"]), body
        indexes += [r["hiImgIndx"] for r in recs]
    return indexes


async def run_for(fw: Forwarder, now: list[float], seconds: float, tick: float = 1.0) -> None:
    """Step the forwarder once per `tick` of fake time."""
    end = now[0] + seconds
    while now[0] < end:
        await fw.step()
        now[0] += tick


async def test_a_ten_minute_outage_is_probed_not_hammered_and_drains_by_itself(make_settings: Any) -> None:
    # The default backoff (0.2 s doubling up to 10 s): the old 8-attempt budget was spent in ~11–23 s.
    settings = make_settings(retry_base_s=0.2, retry_cap_s=10.0, send_timeout_s=2.0)
    province = FakeProvince(settings)
    async with center_on_a_clock(settings) as (center, fw, now, attempts):
        with refused(settings.province_port):
            indexes = await receive(center, settings, range(40), per_message=2)  # 20 messages
            await fw.step()  # batched, and a first wave tried
            summary = await center.summary()
            assert summary["batches"].get("sending", 0) >= 2, summary
            for minute in range(10):  # exams keep arriving during the outage
                indexes += await receive(center, settings, range(100 + 2 * minute, 102 + 2 * minute))
                await run_for(fw, now, 60)
        s = await center.summary()
        assert s["forwarded"] == 0 and s["forwardFailed"]["total"] == 0 and s["forwardSending"] == len(indexes)
        assert s["oldestUndelivered"]["examId"] and s["oldestUndelivered"]["state"] == "sending"
        # One probe per backoff (mean 5 s at the cap): about 120 in ten minutes, where every batch retrying on
        # its own would have made several hundred.
        assert all(a.error == "connection" for a in attempts)
        assert 30 <= len(attempts) <= 250, len(attempts)
        await province.start(settings.province_port)
        back = now[0]
        try:
            while (await center.summary())["forwardSending"] and now[0] - back < 60:
                await fw.step()
                now[0] += 1.0
            s = await center.summary()
            assert s["forwarded"] == len(indexes) and s["oldestUndelivered"] is None
            assert now[0] - back <= settings.retry_cap_s + 10  # within the cap, plus a step per wave of 4
            assert sorted(province.stored) == sorted(indexes) and set(province.stored.values()) == {1}
            assert len(province.requests) == len(set(province.requests))  # each batch delivered once
        finally:
            await province.stop()


async def test_an_outage_past_the_horizon_expires_every_batch_even_the_untried(make_settings: Any) -> None:
    settings = make_settings(retry_base_s=0.2, retry_cap_s=10.0, send_timeout_s=2.0)
    async with center_on_a_clock(settings) as (center, fw, now, attempts):
        with refused(settings.province_port):
            indexes = await receive(center, settings, range(200, 212), per_message=2)
            await fw.step()
            for _ in range(25):  # a day and an hour, stepped hourly: one probe an hour
                now[0] += 3600
                await fw.step()
        s = await center.summary()
        assert s["forwardFailed"] == {"total": len(indexes), "byReason": {"expired": len(indexes)}}
        assert s["forwardSending"] == 0 and s["batches"] == {"failed": s["batches"]["failed"]}
        assert len(attempts) < 40
        view = await center.exam_status(indexes[-1])
        assert view["forward"]["state"] == "failed" and view["forward"]["reason"] == "expired"
        assert "24 小时内" in view["forward"]["message"]


async def test_a_full_disk_is_logged_once_while_the_forwarder_waits_it_out(
        make_settings: Any, caplog: Any, monkeypatch: Any) -> None:
    """A storage failure under the outbox is one warning when it starts and one line when it ends, not a
    traceback every second; forwarding resumes by itself."""
    import errno
    import logging

    settings = make_settings(retry_base_s=0.01, retry_cap_s=0.05, send_timeout_s=2.0)
    province = FakeProvince(settings)
    await province.start(settings.province_port)
    try:
        async with center_on_a_clock(settings) as (center, fw, now, attempts):
            indexes = await receive(center, settings, range(300, 302))
            real_step = fw.step
            calls = {"n": 0}

            async def full_disk_step() -> bool:
                calls["n"] += 1
                if calls["n"] <= 3:
                    raise OSError(errno.ENOSPC, "No space left on device")
                return await real_step()

            monkeypatch.setattr(fw, "step", full_disk_step)
            monkeypatch.setattr("sandbox.center.forwarder.asyncio.sleep", _no_sleep)
            caplog.set_level(logging.INFO, logger="sandbox.center.forwarder")
            task = asyncio.create_task(fw.run())
            try:
                for _ in range(400):  # until delivered, and the step that delivered has returned (and said so)
                    back = any("存储已恢复" in r.getMessage() for r in caplog.records)
                    if len(province.stored) >= len(indexes) and back:
                        break
                    await _yield()
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            assert calls["n"] > 3
            assert sorted(province.stored) == sorted(indexes)
            lines = [r for r in caplog.records if r.name == "sandbox.center.forwarder"]
            down = [r for r in lines if "磁盘已满" in r.getMessage()]
            assert len(down) == 1 and down[0].levelno == logging.WARNING and down[0].exc_info is None
            assert sum("存储已恢复" in r.getMessage() for r in lines) == 1
            assert not any(r.exc_info for r in lines)
    finally:
        await province.stop()


_real_sleep = asyncio.sleep


async def _no_sleep(delay: float, *args: Any) -> Any:
    return await _real_sleep(0)


async def _yield() -> None:
    await _real_sleep(0.01)
