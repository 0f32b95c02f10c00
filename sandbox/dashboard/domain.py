"""What the trainer's dashboard shows of a running sandbox, without HTTP: the live feed (journal entries fanned
out to every open page in small batches), the counters per role, one exchange record by record with each
rejected field and its Chinese error, the scenario run, and the upload-quality report.

Live updates come from one journal subscription. Each page gets `entries` events (summaries, no bodies) as
they are recorded and a `state` event (counters, outbox depth, retries, the scenario run) whenever it
changes — computed once for all pages, at most every TICK_S. A page that cannot keep up is told to `resync`
(re-read its window) instead of silently missing entries; a journal reset is announced as `reset`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from sandbox.app import ROLE_TITLES, ROLES, SandboxError
from sandbox.control.domain import ControlPlane, scenarios
from sandbox.dashboard.quality import ForwardStates, Tracker, judge, to_csv
from sandbox.dashboard.records import (
    field_name,
    fields_named,
    message_records,
    parse_json,
    record_answers,
    record_index,
    response_message,
)
from sandbox.journal.entry import OUTCOMES
from sandbox.journal.mask import learn_all, mask_message, mask_text, scrub
from sandbox.scenario.checks import expectation_text
from sandbox.scenario.runner import describe_step
from sandbox.spec.fields import URL_PREFIX
from sandbox.spec.messages import DASHBOARD
from sandbox.validate import validate_message

if TYPE_CHECKING:
    from sandbox.app import Sandbox
    from sandbox.journal.store import Journal

log = logging.getLogger("sandbox.dashboard")

# Fields of a journal summary a page needs to draw one arrow.
SLIM = ("seq", "started", "duration_ms", "hop", "from_role", "to_role", "side", "status", "msgid", "infcode",
        "records", "outcome", "code", "n_ok", "n_partial", "n_failed", "transport", "attempt", "fault", "step",
        "scenario")
TICK_S = 0.4  # how often the shared state is recomputed while something changes
IDLE_TICK_S = 2.0  # and while nothing does (the outbox and retries move without journal entries)
BATCH_S = 0.05  # entries recorded within this time go to the pages in one event
CLIENT_QUEUE = 400  # events waiting for one page before it is told to resync
PAGE_MAX = 1000
FLAGS = ("1", "0", "-1")
# A hop-1 message whose latest attempt failed in transport counts as "retrying" for this long after it.
RETRY_GRACE_S = 1.0
# What each role's head links to: the control plane's state (the hospital has no page of its own), the
# center's home page, the province's index list.
ROLE_PAGES = {"hospital": "/_sandbox/", "center": "/", "province": URL_PREFIX + "index"}


class DashboardError(Exception):
    """A request the dashboard refuses; `status` is the HTTP status, the text is Chinese."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


def slim(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: summary.get(k) for k in SLIM}


def _event(name: str, data: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


@dataclass(slots=True, eq=False)
class Client:
    """One open page's queue of server-sent events."""

    queue: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(CLIENT_QUEUE))
    behind: bool = False

    def close(self) -> None:
        """End the stream: whatever waits is dropped, the handler sees None next."""
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)

    def put(self, event: bytes) -> None:
        if self.behind:
            return
        if self.queue.full():
            # Too slow: drop what waits and ask the page to re-read its window.
            while not self.queue.empty():
                self.queue.get_nowait()
            self.behind = True
            self.queue.put_nowait(_event("resync", {}))
            return
        self.queue.put_nowait(event)

    async def get(self, timeout: float) -> bytes | None:
        """The next event (None: the dashboard is closing); b"" when nothing came within `timeout`."""
        try:
            event = await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return b""
        if event is not None and event.startswith(b"event: resync"):
            self.behind = False
        return event


class Dashboard:
    """The dashboard's view of one Sandbox."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.journal: Journal | None = sandbox.journal
        self.tracker = Tracker(self.journal, lambda: self.sandbox.settings) if self.journal is not None else None
        self.clients: set[Client] = set()
        self._dirty = asyncio.Event()
        self._last_state = b""
        self._generation = self.journal.generation if self.journal is not None else 0
        # (hop, msgid) → (attempts seen, latest outcome, when): hop-1 retries in progress.
        self._attempts: dict[tuple[int, str], tuple[int, str, float]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._queue: asyncio.Queue[dict[str, Any]] | None = None

    # ---- life cycle ----------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.journal is not None:
            self._queue = self.journal.subscribe(maxsize=20_000)
            self._tasks.append(asyncio.create_task(self._pump(), name="dashboard-pump"))
        self._tasks.append(asyncio.create_task(self._tick(), name="dashboard-tick"))

    async def close(self) -> None:
        """Stop the feed and end every open event stream."""
        for client in list(self.clients):
            client.close()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.journal is not None and self._queue is not None:
            self.journal.unsubscribe(self._queue)
            self._queue = None

    def join(self) -> Client:
        client = Client()
        self.clients.add(client)
        self._dirty.set()
        return client

    def leave(self, client: Client) -> None:
        self.clients.discard(client)

    def _broadcast(self, event: bytes) -> None:
        for client in list(self.clients):
            client.put(event)

    # ---- the feed ------------------------------------------------------------------------------------------

    async def _pump(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            batch = [await queue.get()]
            await asyncio.sleep(BATCH_S)
            while not queue.empty() and len(batch) < 2000:
                batch.append(queue.get_nowait())
            now = time.time()
            for e in batch:
                if e.get("msgid"):
                    key = (int(e["hop"]), str(e["msgid"]))
                    n = self._attempts.get(key, (0, "", 0.0))[0]
                    self._attempts[key] = (n + 1, str(e["outcome"]), now)
            if len(self._attempts) > 20_000:
                self._attempts = dict(sorted(self._attempts.items(), key=lambda kv: kv[1][2])[-5000:])
            if self.clients:
                self._broadcast(_event("entries", [slim(e) for e in batch]))
            self._dirty.set()

    async def _tick(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), IDLE_TICK_S)
            self._dirty.clear()
            if self.clients:
                try:
                    await self.push_state()
                except Exception:  # a store closing under a restart: the next tick tries again
                    log.exception("dashboard state not computed")
            await asyncio.sleep(TICK_S)

    async def push_state(self, force: bool = False) -> None:
        """Send the state to every page when it changed (and a reset notice when the journal was reset)."""
        generation = self.journal.generation if self.journal is not None else 0
        if generation != self._generation:
            self._generation = generation
            self._attempts.clear()
            self._broadcast(_event("reset", {"generation": generation}))
            force = True
        state = orjson.dumps(await self.state())
        if force or state != self._last_state:
            self._last_state = state
            self._broadcast(b"event: state\ndata: " + state + b"\n\n")

    # ---- state: counters, outbox, retries, the scenario run ------------------------------------------------

    async def state(self) -> dict[str, Any]:
        sb = self.sandbox
        s = sb.settings
        journal = self.journal
        stats: dict[str, Any] = {"exchanges": {}, "records": {}}
        if journal is not None:
            stats = await journal.stats()

        def outcomes(hop: int) -> dict[str, int]:
            lane = stats["exchanges"].get(str(hop), {})
            return {o: int(lane.get(o, 0)) for o in OUTCOMES}

        def flags(hop: int) -> dict[str, int]:
            got = stats["records"].get(str(hop), {})
            return {f: int(got.get(f, 0)) for f in FLAGS}

        hop1, hop2 = outcomes(1), outcomes(2)
        center: dict[str, Any] = {"records": flags(1), "messages": hop1, "outbox": None, "depth": None,
                                  "retrying": self._retrying(2), "retryingRecords": None, "maxAttempt": None}
        center.update(await self._center_counters())
        province: dict[str, Any] = {"records": flags(2), "messages": hop2, "indexes": None}
        province["indexes"] = await self._guard(lambda: sb.state("province").indexes.count(), "province")
        roles = {role: {"title": ROLE_TITLES[role], "url": sb.url(role), "page": sb.url(role) + ROLE_PAGES[role],
                        "inProcess": role in sb.roles, "running": sb.running(role)} for role in ROLES}
        return {
            "generation": journal.generation if journal is not None else 0,
            "total": journal.last_seq if journal is not None else 0,
            "journal": journal is not None,
            "roles": roles,
            "counters": {
                "hospital": {"messages": sum(hop1.values()), "outcomes": hop1, "records": flags(1),
                             "retrying": self._retrying(1)},
                "center": center,
                "province": province,
            },
            "faults": [{"name": f["name"], "description": f["description"], "applied": f["applied"],
                        "exhausted": f["exhausted"]} for f in sb.faults.state()],
            "settings": {"mode": str(s.mode), "seed": s.seed, "responseStyle": s.response_style,
                         "indexProfile": s.index_profile, "onTimeHours": s.quality_on_time_hours},
            "run": self.run_view(),
        }

    async def _guard(self, read: Callable[[], Awaitable[Any]], role: str) -> Any:
        """A role's counter, or None while the role is stopped or restarting."""
        if not self.sandbox.running(role):
            return None
        try:
            return await read()
        except (SandboxError, sqlite3.Error, ValueError, AttributeError, OSError, RuntimeError):
            return None  # closed between the check and the read (a restart): left out of this tick

    async def _center_counters(self) -> dict[str, Any]:
        async def read() -> dict[str, Any]:
            center = self.sandbox.state("center")
            summary = await center.summary()
            row = await center.store.db.fetchone(
                "SELECT count(*), coalesce(sum(records), 0), coalesce(max(attempts), 0) FROM batches"
                " WHERE state='sending' AND attempts > 0")
            outbox = {"pending": summary["forwardPending"], "sending": summary["forwardSending"],
                      "held": summary["forwardHeld"]["total"], "done": summary["forwarded"],
                      "failed": summary["forwardFailed"]["total"],
                      "expired": summary["forwardFailed"]["byReason"].get("expired", 0)}
            oldest = summary["oldestUndelivered"]
            return {"outbox": outbox, "depth": outbox["pending"] + outbox["sending"] + outbox["held"],
                    "oldestAgeSeconds": oldest["ageSeconds"] if oldest else None,
                    "retrying": int(row[0]) if row else 0, "retryingRecords": int(row[1]) if row else 0,
                    "maxAttempt": int(row[2]) if row else 0, "stored": summary["stored"]}

        got = await self._guard(read, "center")
        return got or {}

    def _retrying(self, hop: int) -> int:
        """Messages of a hop whose latest attempt failed in transport, recently enough to be retried (the
        hospital's sender gives up after retry_max_attempts; the center's outbox retries by time)."""
        s = self.sandbox.settings
        window = s.send_timeout_s + s.retry_cap_s + RETRY_GRACE_S
        limit = s.retry_max_attempts if hop == 1 else float("inf")
        now = time.time()
        return sum(1 for (h, _), (n, outcome, at) in self._attempts.items()
                   if h == hop and outcome == "transport" and n < limit and now - at <= window)

    def run_view(self) -> dict[str, Any] | None:
        """The scenario loaded through the control plane: its steps as they run, its expectations at the end."""
        control = self.sandbox.control
        scenario = self.sandbox.scenario
        run = control.run if control is not None else None
        if scenario is None:
            return None
        done = run["steps"] if run else []
        state = run["state"] if run else "loaded"
        steps = []
        for i, step in enumerate(scenario.steps):
            label = f"{i + 1}. {step.label or describe_step(step)}"
            label_en = f"{i + 1}. {describe_step(step, 'en')}"
            if i < len(done):
                d = done[i]
                steps.append({"label": label, "labelEn": label_en, "state": "error" if "error" in d else "done",
                              "seconds": d.get("seconds"), "error": d.get("error")})
            else:
                running = state == "running" and i == len(done)
                steps.append({"label": label, "labelEn": label_en, "state": "running" if running else "pending"})
        judged = run["expectations"] if run else []
        expectations = [{"ok": e["ok"], "text": e["expectation"], "textEn": e.get("expectationEn"),
                         "observed": e["observed"]} for e in judged]
        expectations += [{"ok": None, "text": expectation_text(c), "textEn": expectation_text(c, "en"),
                          "observed": None}
                         for c in scenario.expect[len(judged):]]  # not judged yet (judged at the end)
        return {"name": scenario.name, "title": scenario.title.model_dump(),
                "description": scenario.description.model_dump(), "state": state, "steps": steps,
                "expectations": expectations}

    # ---- control ------------------------------------------------------------------------------------------

    def control(self) -> ControlPlane:
        sb = self.sandbox
        if sb.control is None:
            sb.control = ControlPlane(sb)
        control: ControlPlane = sb.control
        return control

    @staticmethod
    def scenarios() -> list[dict[str, Any]]:
        return scenarios()

    async def start_scenario(self, name: str, reset: bool = True) -> str:
        """Run a library scenario in the background (after emptying everything, unless asked not to)."""
        message = await self.control().load_scenario(name, run=True, reset=reset)
        await self.push_state(force=True)
        return message

    async def reset(self) -> str:
        message = await self.control().reset()
        await self.push_state(force=True)
        return message

    # ---- the message list and one message ------------------------------------------------------------------

    def _journal(self) -> Journal:
        if self.journal is None:
            raise DashboardError(404, DASHBOARD["no_journal"])
        return self.journal

    async def exchanges(self, offset: int, limit: int, **filters: Any) -> dict[str, Any]:
        journal = self._journal()
        limit = max(0, min(limit, PAGE_MAX))
        items = await journal.page(offset=offset, limit=limit, **filters) if limit else []
        total = await journal.count(**filters)
        return {"total": total, "lastSeq": journal.last_seq, "generation": journal.generation,
                "offset": offset, "items": [slim(e) for e in items]}

    async def exchange(self, seq: int, mask: bool = True) -> dict[str, Any]:
        """One exchange: its request and response, and record by record the answer, each problem (validator
        errors and warnings by field, and the fields the answer's message names) and the exam's links."""
        journal = self._journal()
        entry = await journal.get(seq)
        if entry is None:
            raise DashboardError(404, DASHBOARD["not_found"].format(seq=seq))
        s = self.sandbox.settings
        hop = int(entry["hop"])
        message = parse_json(entry["request"])
        records = message_records(message)
        report = validate_message(message, hop, s.mode, s.index_profile) if isinstance(message, dict) else None
        refused = entry["outcome"] in ("transport", "rejected", "aborted")
        got = [None] * len(records) if refused else record_answers(records, entry["response"])
        envelope_problems = [p.as_dict() for p in report.envelope_problems] if report else []
        answer_text = response_message(entry["response"])
        if entry["outcome"] == "rejected":
            for code in fields_named(answer_text, envelope=True) or [""]:
                envelope_problems.append(_answer_problem(code, "error", answer_text))
        indexes = [record_index(r) for r in records]
        links = await self.links([i for i in indexes if i])
        out_records = []
        for pos, (record, answer) in enumerate(zip(records, got, strict=True), 1):
            problems: list[dict[str, Any]] = []
            if report is not None and pos <= len(report.records):
                result = report.records[pos - 1]
                problems = [p.as_dict() for p in result.errors + result.warnings]
            flag = answer.flag if answer else None
            if answer is not None and flag in ("-1", "0"):
                named = {p["field"] for p in problems if p["level"] == "error"}
                level = "error" if flag == "-1" else "warning"
                codes = [c for c in fields_named(answer.message) if c not in named]
                if not codes and not named:
                    codes = [""]
                problems += [_answer_problem(c, level, answer.message) for c in codes]
            index = indexes[pos - 1]
            out_records.append({
                "position": pos, "hiImgIndx": index, "succFlag": flag,
                "message": answer.message if answer else None,
                "keys": [k.strip() for k in record] if isinstance(record, dict) else [],
                "problems": problems, "links": links.get(index or "", {}),
            })
        request: Any = message if message is not None else entry["request"]
        data_was_string = False
        if isinstance(message, dict):
            request = dict(message)
            for key in message:
                if isinstance(key, str) and key.strip() == "data" and isinstance(message[key], str) and records:
                    request[key] = records  # shown expanded; the note says it was sent as a string
                    data_was_string = True
        response: Any = parse_json(entry["response"])
        if response is None:
            response = entry["response"]
        view = {
            "entry": {k: entry.get(k) for k in (*SLIM, "url", "infno", "extra")},
            "request": request, "response": response, "dataWasString": data_was_string,
            "envelopeProblems": envelope_problems, "records": out_records, "answerMessage": answer_text,
            "masked": mask,
        }
        return _masked(view) if mask else view

    async def links(self, indexes: list[str]) -> dict[str, dict[str, str]]:
        """The three links (report page, image page, DICOM download) of exams, from the hop-2 messages they
        travelled in or, before that, from the center that stores them."""
        out: dict[str, dict[str, str]] = {}
        if self.tracker is not None:
            await self.tracker.refresh()
            for index in indexes:
                exam = self.tracker.exams.get(index)
                if exam is not None and exam.links:
                    out[index] = dict(exam.links)
        missing = [i for i in indexes if i not in out]
        if missing and self.sandbox.running("center"):
            async def read() -> None:
                center = self.sandbox.state("center")
                for index in missing:
                    row = await center.store.exam(index)
                    if row is not None and row["hiImgIndx"] == index:
                        out[index] = center.links(row["exam_id"], row["study_uid"])
            await self._guard(read, "center")
        for value in out.values():
            dld = value.get("imgDldLink")
            if dld:
                value["imgDldZip"] = dld + ("&" if "?" in dld else "?") + "accept=application/zip"
        return out

    # ---- exams and the quality report ----------------------------------------------------------------------

    async def _outbox(self) -> ForwardStates:
        async def read() -> ForwardStates:
            center = self.sandbox.state("center")
            rows = await center.store.db.fetchall(
                "SELECT e.hiImgIndx, o.state, o.reason, o.message FROM outbox o JOIN exams e ON e.exam_id = o.exam_id"
                " WHERE o.state != 'done'")
            return {r[0]: (r[1], r[2], r[3]) for r in rows}

        got = await self._guard(read, "center")
        return got or {}

    def _tracker(self) -> Tracker:
        if self.tracker is None:
            raise DashboardError(404, DASHBOARD["no_journal"])
        return self.tracker

    async def quality(self) -> dict[str, Any]:
        tracker = self._tracker()
        await tracker.refresh()
        report = tracker.report(await self._outbox())
        report["generation"] = tracker.generation
        report["journalSeq"] = tracker.after
        return report

    async def quality_csv(self, lang: str = "zh") -> bytes:
        return to_csv(await self.quality(), lang)

    async def exams(self, offset: int, limit: int, status: str | None = None) -> dict[str, Any]:
        tracker = self._tracker()
        await tracker.refresh()
        outbox = await self._outbox()
        total, items = tracker.exam_list(outbox, offset, max(0, min(limit, PAGE_MAX)), status)
        missing = [e["hiImgIndx"] for e in items if not e["links"]]
        if missing:
            found = await self.links(missing)
            for e in items:
                e["links"] = e["links"] or found.get(e["hiImgIndx"], {})
        for e in items:
            dld = e["links"].get("imgDldLink")
            if dld and "imgDldZip" not in e["links"]:
                e["links"]["imgDldZip"] = dld + ("&" if "?" in dld else "?") + "accept=application/zip"
        return {"total": total, "offset": offset, "items": items}

    async def exam_verdicts(self) -> dict[str, str]:
        """hiImgIndx → indexed | in_progress | failed (tests and the exam list's filters)."""
        tracker = self._tracker()
        await tracker.refresh()
        outbox = await self._outbox()
        return {i: judge(e, outbox).status for i, e in tracker.exams.items()}


def _answer_problem(code: str, level: str, message: str) -> dict[str, Any]:
    """A problem read from an answer's message (the receiver's own words, naming the field when it can)."""
    return {"level": level, "code": "answer", "record": None, "field": code or None,
            "fieldName": field_name(code) if code else None, "erratum": None, "message": message,
            "text": message, "source": "answer"}


def _masked(view: dict[str, Any]) -> dict[str, Any]:
    """The view with personal data masked (个人信息脱敏) wherever it occurs: request, response, messages
    (sandbox.journal.mask: by value, including what the center's messages quote from the images)."""
    seen: dict[str, str] = {}
    request = view["request"]
    if isinstance(request, dict):
        request = mask_message(request, seen)
    elif isinstance(request, str):  # not JSON, or nested too deep to be shown as a tree
        request = mask_text(request, seen)
        view = {**view, "request": request}
    try:
        learn_all(view, seen)
    except RecursionError:  # a tree too deep to walk: its personal fields were masked as text above
        pass
    if not seen:
        return view
    out = dict(view)
    out["request"] = scrub(request, seen)
    for key in ("response", "envelopeProblems", "records", "answerMessage", "entry"):
        out[key] = scrub(view[key], seen)
    return out

