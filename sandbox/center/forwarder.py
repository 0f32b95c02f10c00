"""Hop 2: delivering the outbox to the province, durably and exactly once per index.

- An exam enters the outbox (`pending`) in the transaction that stores it: its `succFlag` 1 or 0 at hop 1
  promises that it will reach the province.
- The forwarder packs pending exams into batches under the 40000-character limit of `data`, each with
  its own msgid (center code + time + a per-day sequence kept in the database) and stores the exact
  message in the batch row, in the same transaction that moves the exams to `sending`.
- A batch is POSTed until it gets an answer, **by time, not by count**. Transient failures (timeouts,
  refused or dropped connections, HTTP 5xx, 408/425/429, answers that are not JSON, are cut short, or are not
  the document's envelope) are retried with capped exponential backoff and full jitter (`backoff_delay`,
  RNG seeded from settings.seed), never sooner than a `Retry-After` asks, until `forward_horizon_s` after the
  batch's first attempt; then its exams are `failed` with reason `expired`. Every delay is at most
  `retry_cap_s` (unless Retry-After asks for more), so once the province is back the outbox drains by itself
  within that, oldest batch first. Attempts, first/last attempt and the next are stored, so a restart
  continues where it stopped and resends the very same message — the province answers a repeated msgid from
  its replay log, so nothing is stored twice.
- Any other HTTP 4xx (404 from a misrouted URL, 401/403 from a gateway, 413 …) parks the batch as `held`
  with the status and body: resending the same bytes to the same place cannot help. POST /api/forward/retry
  requeues held and failed batches (optionally by reason), and so does a restart with another province URL.
- Answers are applied per record: `1` done, `0` done with the province's warning, `-1` failed with the
  province's message (reason `province_rejected`; final, never resent blindly). A whole-batch envelope with
  `code` other than 0/-1 fails the batch (`batch_rejected`, final). A summary-style answer (one entry with a
  null index) applies to every record of the batch.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Coroutine
from contextlib import suppress
from typing import Any

import aiohttp
import orjson

from sandbox.center.domain import Center, now_text
from sandbox.center.store import REQUEUE_REASONS, BatchUpdate, Outcome, dumps
from sandbox.common.client import Exchange, Observer, backoff_delay, post_message
from sandbox.common.storage import storage_problem
from sandbox.spec.fields import DATA_MAX_CHARS, HOP2
from sandbox.spec.formats import DATETIME_FORMAT, china_now, make_msgid
from sandbox.spec.messages import CENTER

log = logging.getLogger("sandbox.center.forwarder")

IDLE_WAIT_S = 60.0
UPDATE_EVERY_S = 0.25  # the outcomes of a wave's ended sends are stored at least this often
PENDING_PER_ROUND = 2000


class Forwarder:
    """The background task delivering the center's outbox to the province."""

    def __init__(self, center: Center, session: aiohttp.ClientSession, *, url: str,
                 observers: list[Observer] | None = None, max_inflight: int = 4,
                 clock: Callable[[], float] = time.time) -> None:
        self.center = center
        self.settings = center.settings
        self.session = session
        self.url = url
        self.observers = observers if observers is not None else []
        self.max_inflight = max_inflight
        self.clock = clock
        self.rng = random.Random(self.settings.seed)
        # While the province is down (a whole wave failed at the transport), only the oldest due batch is
        # tried, no sooner than this unix time: one probe per backoff instead of every batch on its own.
        self.hold_until = 0.0
        # The storage failure (disk full, read-only…) the forwarder is waiting out, said once, not every second.
        self.storage_down: str | None = None

    def step_failed(self, exc: Exception) -> None:
        problem = storage_problem(exc)
        if problem is None:
            log.exception(CENTER["fw_step_failed"])
        elif problem != self.storage_down:
            log.warning(CENTER["fw_storage_down"].format(problem=problem))
        self.storage_down = problem

    def step_succeeded(self) -> None:
        if self.storage_down is not None:
            log.info(CENTER["fw_storage_back"])
            self.storage_down = None

    async def run(self) -> None:
        """Forward until cancelled: woken by new exams, and by the clock for retries."""
        wake = self.center.wake
        await self.note_url()
        while True:
            wake.clear()
            try:
                busy = await self.step()
            except Exception as e:
                self.step_failed(e)
                await asyncio.sleep(1.0)
                continue  # try the step again a second later, whatever the outbox's timers say
            else:
                self.step_succeeded()
            if busy:
                await asyncio.sleep(0)
                continue
            due = await self.center.store.next_due()
            delay = IDLE_WAIT_S if due is None else min(IDLE_WAIT_S, max(due, self.hold_until) - self.clock())
            if delay > 0:
                with suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await wake.wait()

    async def note_url(self) -> None:
        """Remember the province URL; when it differs from the one the outbox was last sent to, the held and
        failed batches are sent again to the new one (the old answers said nothing about it)."""
        store = self.center.store
        old = await store.get_meta("province_url")
        if old is not None and old != self.url:
            count = await store.requeue(REQUEUE_REASONS, now_text(), self.clock())
            log.info(CENTER["fw_url_changed"].format(old=old, new=self.url, count=count))
        if old != self.url:
            await store.set_meta("province_url", self.url)

    async def step(self) -> bool:
        """Batch what is pending, end what is past the horizon, then send what is due; True when anything
        was done."""
        made = await self.make_batches()
        store = self.center.store
        now = self.clock()
        expired = await self.expire(now)
        if now < self.hold_until:
            return bool(made or expired)
        due = await store.due_batches(now, 1 if self.hold_until else self.max_inflight)
        if due:
            exams = await store.batches_exams([row["batch_id"] for row in due])
            updates = await self.send_wave([self.send(row["batch_id"], row["body"], row["attempts"],
                                                      exams.get(row["batch_id"], {}), row["since"]) for row in due])
            down = bool(updates) and all(u.state is None and u.outage for u in updates)
            self.hold_until = min(u.next_at or now for u in updates) if down else 0.0
        return bool(made or expired or due)

    async def expire(self, now: float) -> int:
        """End every batch still unsent `forward_horizon_s` after it was queued (those not tried during an
        outage included) as failed / expired."""
        store = self.center.store
        rows = await store.expired_batches(now - self.settings.forward_horizon_s)
        if not rows:
            return 0
        exams = await store.batches_exams([row["batch_id"] for row in rows])
        hours = f"{self.settings.forward_horizon_s / 3600:g}"
        updates = []
        for row in rows:
            text = CENTER["fw_expired"].format(hours=hours, attempts=row["attempts"],
                                               detail=row["last_error"] or CENTER["fw_never_tried"])
            updates.append(BatchUpdate(row["batch_id"], row["attempts"], now, state="failed", error=text,
                                       outcomes=[(e, "failed", None, text, "expired")
                                                 for e in exams.get(row["batch_id"], {}).values()]))
        await store.update_batches(updates, now_text(), attempted=False)
        return len(rows)

    async def send_wave(self, sends: list[Coroutine[Any, Any, BatchUpdate]]) -> list[BatchUpdate]:
        """Run a wave's sends together and store their outcomes: those that have ended, in one transaction,
        every UPDATE_EVERY_S at most (the center's database thread is shared with every hop-1 message being
        stored, and one slow batch must not keep the others' answers from the status pages). A batch whose
        attempt broke stays as it was, to be sent again; the first such error is raised once all are stored."""
        pending: set[asyncio.Task[BatchUpdate]] = {asyncio.ensure_future(s) for s in sends}
        errors: list[BaseException] = []
        ended: list[BatchUpdate] = []
        try:
            while pending:
                done, pending = await asyncio.wait(pending, timeout=UPDATE_EVERY_S)
                updates = []
                for task in done:
                    error = task.exception()
                    if error is None:
                        updates.append(task.result())
                    else:
                        errors.append(error)
                await self.center.store.update_batches(updates, now_text())
                ended.extend(updates)
        finally:
            for task in pending:  # cancelled (the center stops): the rest stay as they were
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if errors:
            raise errors[0]
        return ended

    # ---- batching ------------------------------------------------------------------------------

    async def make_batches(self) -> int:
        rows = await self.center.store.pending(PENDING_PER_ROUND)
        if not rows:
            return 0
        groups: list[list[str]] = []
        texts: list[list[str]] = []
        failed: list[tuple[str, str, str]] = []
        ids: list[str] = []
        parts: list[str] = []
        size = 2  # "[]"
        for row in rows:
            # Built from a validated hop-1 record; whatever the province still refuses comes back as its
            # own per-record -1 with its message.
            record = self.center.hop2_record(orjson.loads(row["record"]), row["exam_id"], row["study_uid"])
            text = dumps(record)  # compact JSON: how the 40000 limit of data is measured
            if len(text) + 2 > DATA_MAX_CHARS:
                failed.append((row["exam_id"], "too_large",
                               CENTER["fw_too_large"].format(length=len(text), limit=DATA_MAX_CHARS)))
                continue
            if ids and size + 1 + len(text) > DATA_MAX_CHARS:
                groups.append(ids)
                texts.append(parts)
                ids, parts, size = [], [], 2
            size += len(text) + (1 if ids else 0)
            ids.append(row["exam_id"])
            parts.append(text)
        if ids:
            groups.append(ids)
            texts.append(parts)
        when = china_now()
        center = self.settings.center
        head = {"infno": HOP2.infno, "infTime": when.strftime(DATETIME_FORMAT), "infCode": center.code,
                "key": center.key}

        def render(i: int, seq: int) -> tuple[str, str]:
            msgid = make_msgid(center.code, when, seq)
            envelope = dumps({**head, "msgid": msgid})
            return msgid, envelope[:-1] + ',"data":[' + ",".join(texts[i]) + "]}"

        made = await self.center.store.create_batches(when.strftime("%Y%m%d"), groups, render, failed, now_text(),
                                                      self.clock())
        return made or len(failed)

    # ---- sending -------------------------------------------------------------------------------

    async def send(self, batch_id: int, body: str, attempts: int, exams: dict[str, str],
                   since: float | None = None) -> BatchUpdate:
        """One attempt at one batch (whose records are `exams`, hiImgIndx → exam_id; queued at `since`, the
        start of its horizon, None for now), and what follows from its answer — for the caller to store."""
        settings = self.settings
        attempt = attempts + 1
        at = self.clock()
        # The stored text goes out as it is: the same bytes on every attempt, and no parsing to send it.
        ex = await post_message(self.session, self.url, body, timeout=settings.send_timeout_s, attempt=attempt)
        for observer in self.observers:
            await observer(ex)
        if not ex.transient and ex.status is not None and ex.status >= 400:
            detail = (dumps(ex.response) if ex.response is not None else ex.raw or "")[:500]
            text = CENTER["fw_held"].format(status=ex.status, detail=detail)
            return BatchUpdate(batch_id, attempt, at, state="held", error=text, status=ex.status,
                               response=_answer_text(ex), outcomes=[(e, "held", None, text, "http_rejected")
                                                                    for e in exams.values()])
        if not ex.transient and not _is_answer(ex.response):
            ex.error, ex.detail = "not_envelope", CENTER["fw_not_envelope"]
        if ex.transient:
            return self.retry_later(batch_id, attempt, at, since, ex, exams)
        outcomes = apply_answer(ex, body, exams)
        failed = all(o[1] == "failed" for o in outcomes)
        return BatchUpdate(batch_id, attempt, at, state="failed" if failed else "done", status=ex.status,
                           error=None if not failed else outcomes[0][3] if outcomes else None,
                           response=_answer_text(ex), outcomes=outcomes)

    def retry_later(self, batch_id: int, attempt: int, at: float, since: float | None, ex: Exchange,
                    exams: dict[str, str]) -> BatchUpdate:
        """A transient failure: the next attempt after the backoff (or the Retry-After asked for), or, past
        the horizon, the end of the batch as `expired`."""
        settings = self.settings
        deadline = (at if since is None else since) + settings.forward_horizon_s
        if at >= deadline:
            text = CENTER["fw_expired"].format(hours=f"{settings.forward_horizon_s / 3600:g}", attempts=attempt,
                                               detail=ex.detail or ex.error)
            return BatchUpdate(batch_id, attempt, at, state="failed", error=text, status=ex.status,
                               response=_answer_text(ex), outcomes=[(e, "failed", None, text, "expired")
                                                                    for e in exams.values()])
        next_at = at + backoff_delay(attempt, settings.retry_base_s, settings.retry_cap_s, self.rng)
        if ex.retry_after is not None:  # counted from the answer, which came a while after the attempt began
            next_at = max(next_at, self.clock() + ex.retry_after)
        # The province as a whole is away (not one batch it cannot take): connection, timeout, throttling,
        # a gateway's 502/503/504.
        outage = ex.error in ("connection", "timeout", "throttled") or ex.status in (502, 503, 504)
        return BatchUpdate(batch_id, attempt, at, error=f"{ex.error}：{ex.detail}", status=ex.status,
                           next_at=min(next_at, deadline), outage=outage)


def _is_answer(resp: Any) -> bool:
    """The document's envelope: a `code`, and for 0/-1 (the batch was processed) one entry or more in `data`."""
    if not isinstance(resp, dict) or "code" not in resp:
        return False
    return resp["code"] not in (0, -1) or (isinstance(resp.get("data"), list) and bool(resp["data"]))


def _answer_text(ex: Exchange) -> str | None:
    return dumps(ex.response) if ex.response is not None else ex.raw


def apply_answer(ex: Exchange, body: str, exams: dict[str, str]) -> list[Outcome]:
    """Each record's outcome from a non-transient answer to the batch `body` (the message sent), whose
    records are `exams` (hiImgIndx → exam_id)."""
    resp = ex.response
    assert isinstance(resp, dict)  # the caller has checked it is the envelope (_is_answer)
    entries = resp.get("data")
    code = resp.get("code")
    if code not in (0, -1) or not isinstance(entries, list):
        text = CENTER["fw_batch_rejected"].format(code=code, message=str(resp.get("message", ""))[:500])
        return [(e, "failed", None, text, "batch_rejected") for e in exams.values()]
    answers: dict[str, dict[str, Any]] = {}
    indexes = [_index(entry) for entry in entries]
    if len(entries) == 1 and len(exams) > 1 and indexes[0] is None:
        answers = {i: entries[0] for i in exams}  # the example's single summary entry
    else:
        # An answer without its hiImgIndx stands for the record at its position, when there is one answer
        # per record; only then is the batch's own order needed.
        order = _order(body) if None in indexes and len(entries) == len(exams) else None
        for pos, (entry, index) in enumerate(zip(entries, indexes, strict=True)):
            if index is None and order is not None:
                index = order[pos]
            if index is not None and isinstance(entry, dict):
                answers[index] = entry
    out: list[Outcome] = []
    for index, exam_id in exams.items():
        entry = answers.get(index)
        if entry is None:
            out.append((exam_id, "failed", None, CENTER["fw_no_answer"], "no_answer"))
            continue
        flag = str(entry.get("succFlag", ""))
        message = str(entry.get("message") or "")
        if flag in ("1", "0"):
            out.append((exam_id, "done", flag, message, None))
        elif flag == "-1":
            out.append((exam_id, "failed", flag, message, "province_rejected"))
        else:
            out.append((exam_id, "failed", flag or None, message or CENTER["fw_no_answer"], "bad_answer"))
    return out


def _order(body: str) -> list[str]:
    """The hiImgIndx of each record of a batch, in order."""
    return [str(r.get("hiImgIndx")) for r in orjson.loads(body)["data"]]


def _index(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return None
    value = entry.get("hiImgIndx", entry.get("hiImgIdx"))
    return value if isinstance(value, str) and value else None
