"""What a scenario does to the chain, step by step, and what it remembers for the checks.

Sending is the emulated hospital's: exams come from its generator (with their files written and served),
clean batches go out through `Hospital.send`. A batch the scenario breaks (field overrides, malformations,
duplicated indexes, envelope changes) is built from the same clean records and posted the same way —
`post_with_retry` with the hospital's session and retry settings, the same msgid sequence, the answers
stored in the hospital's store — so the hospital's record of what it sent stays complete.

Lockstep: after each hop-1 answer the driver waits until the center has forwarded what it stored before the
next message goes out (a send step's `settle`), so hop-2 batches follow hop-1 batches one for one, faults
counted by call meet the same messages, and the same scenario and seed give the same journal.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sandbox.app import Sandbox
from sandbox.common.client import Exchange, post_with_retry
from sandbox.config import Institution
from sandbox.hospital.domain import BatchResult, Hospital, read_answers
from sandbox.hospital.store import HospitalStore
from sandbox.journal.store import Journal
from sandbox.scenario.malform import (
    CATALOGUE,
    ENVELOPE_MALFORMATIONS,
    ERRATA_MALFORMATIONS,
    RECORD_MALFORMATIONS,
)
from sandbox.scenario.model import ResendStep, SendStep
from sandbox.spec.formats import china_now
from sandbox.synth.batching import batches, envelope
from sandbox.synth.exams import Exam
from sandbox.validate import Mode, data_length

SETTLE_TIMEOUT_S = 5.0
SETTLE_POLL_S = 0.005


class StepFailed(Exception):
    """A step that could not be carried out; the text is Chinese."""


@dataclass(slots=True)
class SentRecord:
    position: int
    exam: int | None  # the hospital's exam number
    index: str | None  # hiImgIndx as generated (before any malformation)
    malformation: str | None = None


@dataclass(slots=True)
class SentMessage:
    number: int
    hospital: str
    msgid: str
    message: dict[str, Any]
    records: list[SentRecord] = field(default_factory=list)
    malformation: str | None = None  # envelope malformation
    mode: Mode = Mode.LENIENT


class Driver:
    """Carries out send/resend steps against a Sandbox and keeps the log the checks read."""

    def __init__(self, sandbox: Sandbox, *, stream: str | None = None) -> None:
        self.sandbox = sandbox
        # A named stream (the demo's) draws its exams from its own seed, `<seed>:<stream>`: other patients,
        # other indexes than the scenarios' exams of the same seed.
        self.stream = stream
        self.now: Callable[[], datetime] = sandbox.hospital_options.get("now", china_now)
        self.next_exam: dict[str, int] = {}
        self.registered: set[tuple[str, int]] = set()
        self.indexes: dict[tuple[str, int], str] = {}
        self.sent: list[SentMessage] = []
        self._hospitals: dict[str, Hospital] = {}
        self._settle = "idle"

    # ---- access ----------------------------------------------------------------------------------------

    def journal(self) -> Journal:
        if self.sandbox.journal is None:
            raise StepFailed("本沙箱未开启日志")
        return self.sandbox.journal

    def hospital_store(self) -> HospitalStore:
        store: HospitalStore = self.sandbox.state("hospital").store
        return store

    def hospital(self, code: str | None = None) -> Hospital:
        """The emulated hospital for an institution code (the first configured hospital by default)."""
        main: Hospital = self.sandbox.state("hospital")
        seed = main.seed if self.stream is None else f"{main.seed}:{self.stream}"
        if self.stream is None and (code is None or code == main.institution.code):
            return main
        inst = main.institution if code is None else self.sandbox.settings.institution(code)
        if inst is None or inst.role != "hospital":
            known = "、".join(i.code for i in self.sandbox.settings.hospitals)
            raise StepFailed(f"医疗机构「{code}」不在配置中（已配置：{known}）")
        cached = self._hospitals.get(inst.code)
        if cached is None or cached.store is not main.store or cached.seed != seed:
            # Another hospital of the settings (or another seed stream): its own generator and msgid sequence,
            # the same file server.
            cached = Hospital(self.sandbox.settings, main.store, main.session, institution=inst,
                              seed=seed, base_url=main.base_url, root=main.root, image_spec=main.image_spec,
                              embedded_font=main.embedded_font, now=self.now)
            self._hospitals[inst.code] = cached
        return cached

    def exam_index(self, hospital: str | None, n: int | None) -> str:
        """The index of the hospital's n-th exam, 1-based as in scenario files (the first by default)."""
        code = hospital or self.hospital().institution.code
        index = self.indexes.get((code, (n or 1) - 1))
        if index is None:
            raise StepFailed(f"医疗机构「{code}」没有发送过第 {n or 1} 条检查")
        return index

    # ---- lockstep --------------------------------------------------------------------------------------

    async def settle(self, mode: str = "idle") -> None:
        """After a hop-1 answer: wait until the center (when it runs here) has forwarded what it stored
        (`idle`; only batched it while the province is stopped), has only batched it (`batched`), or not
        at all (`none`). At most SETTLE_TIMEOUT_S."""
        if mode == "none" or not self.sandbox.running("center"):
            return
        states = "('pending', 'sending')" if mode == "idle" and self.sandbox.running("province") else "('pending')"
        center = self.sandbox.state("center")
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while time.monotonic() < deadline:
            row = await center.store.db.fetchone(f"SELECT count(*) FROM outbox WHERE state IN {states}")
            if not row or not row[0]:
                return
            await asyncio.sleep(SETTLE_POLL_S)

    async def _observe(self, ex: Exchange) -> None:
        observer = self.sandbox.sender_observer("hospital")
        if observer is not None:
            await observer(ex)
        if ex.ok:
            await self.settle(self._settle)

    # ---- send ------------------------------------------------------------------------------------------

    async def _exams(self, hospital: Hospital, count: int, start: int | None, files: bool) -> list[Exam]:
        code = hospital.institution.code
        first = self.next_exam.get(code, 0) if start is None else start - 1  # start is 1-based
        exams = hospital.make_exams(count, first)
        for exam in exams:
            key = (code, exam.n)
            if key not in self.registered:
                await hospital.register(exam, files=files)
                self.registered.add(key)
            self.indexes[key] = exam.index
        self.next_exam[code] = max(self.next_exam.get(code, 0), first + count)
        return exams

    async def send(self, step: SendStep) -> list[SentMessage]:
        """Generate, shape and send the exams of a send step; returns the messages sent, in order."""
        hospital = self.hospital(step.hospital)
        mode = self.sandbox.settings.mode
        self._settle = step.settle
        record_plan, applied, separate = self._malformations(step)
        if step.malform in ("records", "errata"):
            count = len(record_plan)
        elif step.malform == "envelopes":
            count = 0
        else:
            count = step.count
        exams = await self._exams(hospital, count + len(separate), step.start, step.files)
        shaped = bool(step.overrides or step.malform or step.duplicates or step.envelope)
        if not shaped:
            return await self._send_clean(hospital, exams, step.batch, mode)
        records = hospital.records(exams)
        entries = [SentRecord(i + 1, e.n, e.index) for i, e in enumerate(exams)]
        if step.overrides:
            records = [{**r, **step.overrides} for r in records]
        main, main_entries = records[:count], entries[:count]
        for name, positions in record_plan:
            for pos in positions:
                if pos > len(main):
                    raise StepFailed(f"数据错误「{name}」的位置 {pos} 超出本次发送的 {len(main)} 条记录")
                rule = CATALOGUE[name]
                assert rule.break_record is not None
                main[pos - 1] = rule.break_record(main[pos - 1])
                main_entries[pos - 1].malformation = name
        for dup in step.duplicates:
            if max(dup.position, dup.index_of) > len(main):
                raise StepFailed(f"duplicates 的位置 {dup.position}/{dup.index_of} 超出本次发送的 {len(main)} 条记录")
            main[dup.position - 1] = {**main[dup.position - 1], "hiImgIndx": main[dup.index_of - 1]["hiImgIndx"]}
        out = []
        position = 0
        for chunk in (batches(main, max_records=step.batch) if main else ()):
            chunk_entries = main_entries[position:position + len(chunk)]
            for k, entry in enumerate(chunk_entries, 1):
                entry.position = k
            position += len(chunk)
            out.append(await self._post(hospital, chunk, chunk_entries, mode, breaks=applied,
                                        envelope_changes=step.envelope))
        for rec, entry, name in zip(records[count:], entries[count:], separate, strict=True):
            entry.position = 1
            out.append(await self._post(hospital, [rec], [entry], mode, breaks=(name,),
                                        envelope_changes=step.envelope))
        return out

    @staticmethod
    def _malformations(step: SendStep) -> tuple[list[tuple[str, tuple[int, ...]]], tuple[str, ...], tuple[str, ...]]:
        """(record malformations with their positions, envelope malformations applied to every message,
        envelope malformations each sent as a message of its own)."""
        if isinstance(step.malform, str):
            chosen = {"records": RECORD_MALFORMATIONS, "envelopes": ENVELOPE_MALFORMATIONS,
                      "errata": ERRATA_MALFORMATIONS}[step.malform]
            rec = [m for m in chosen if m.level == "record"]
            return ([(m.name, (i,)) for i, m in enumerate(rec, 1)], (),
                    tuple(m.name for m in chosen if m.level == "envelope"))
        record_plan = [(m.kind, m.positions) for m in step.malform if CATALOGUE[m.kind].level == "record"]
        applied = tuple(m.kind for m in step.malform if CATALOGUE[m.kind].level == "envelope")
        return record_plan, applied, ()

    async def _send_clean(self, hospital: Hospital, exams: list[Exam], batch: int | None,
                          mode: Mode) -> list[SentMessage]:
        report = await hospital.send(exams, observer=self._observe, max_records=batch)
        out = []
        position = 0
        for b in report.batches:
            n = len(b.answers)
            entries = [SentRecord(i + 1, e.n, e.index) for i, e in enumerate(exams[position:position + n])]
            position += n
            out.append(self._log(hospital, b.msgid, b.message, entries, None, mode))
        return out

    def _log(self, hospital: Hospital, msgid: str, message: dict[str, Any], entries: list[SentRecord],
             malformation: str | None, mode: Mode) -> SentMessage:
        sent = SentMessage(len(self.sent) + 1, hospital.institution.code, msgid, message, entries, malformation, mode)
        self.sent.append(sent)
        return sent

    async def _post(self, hospital: Hospital, records: list[Any], entries: list[SentRecord], mode: Mode, *,
                    breaks: tuple[str, ...], envelope_changes: dict[str, Any]) -> SentMessage:
        """One shaped message, sent and stored exactly as `Hospital.send` sends and stores a clean one."""
        inst: Institution = hospital.institution
        when = self.now()
        seq = await hospital.store.next_seq(inst.code, f"{when:%Y%m%d}")
        message = envelope(records, inst, when, seq)
        if envelope_changes:
            message = {**message, **envelope_changes}
        for name in breaks:
            rule = CATALOGUE[name]
            assert rule.break_message is not None
            message = rule.break_message(message)
        sent = self._log(hospital, str(message.get("msgid", "")), message, entries, breaks[-1] if breaks else None,
                         mode)
        await self._deliver(hospital, sent)
        return sent

    async def _deliver(self, hospital: Hospital, sent: SentMessage) -> None:
        s = self.sandbox.settings
        if hospital.session is None:
            raise StepFailed("医疗机构没有 HTTP 客户端，无法发送")
        result = BatchResult(msgid=sent.msgid, message=sent.message)

        async def observe(ex: Exchange) -> None:
            result.exchanges.append(ex)
            await self._observe(ex)

        last = await post_with_retry(
            hospital.session, hospital.center_url(), sent.message, timeout=s.send_timeout_s,
            max_attempts=s.retry_max_attempts, base=s.retry_base_s, cap=s.retry_cap_s,
            rng=random.Random(f"{hospital.seed}:retry:{sent.msgid}:{sent.number}"), observer=observe)
        clean = [{"hiImgIndx": r.index or ""} for r in sent.records]
        result.code, result.envelope_message, result.answers = read_answers(last, clean, {})
        _by_position(last, result.answers)
        data = sent.message.get("data")
        await hospital.store.save_sent(
            msgid=sent.msgid or f"#{sent.number}", inst_code=hospital.institution.code, url=hospital.center_url(),
            records=len(clean), data_chars=data_length(data) if data is not None else 0,
            attempts=[{"msgid": sent.msgid, "attempt": ex.attempt, "status": ex.status, "error": ex.error,
                       "detail": ex.detail, "duration": ex.duration} for ex in result.exchanges],
            status=last.status, error=last.error, code=result.code, message=result.envelope_message,
            answers=[{"msgid": sent.msgid or f"#{sent.number}", "position": a.position, "exam_id": a.exam_id or None,
                      "hi_img_indx": a.index, "succ_flag": a.flag, "message": a.message} for a in result.answers],
        )

    async def resend(self, step: ResendStep) -> SentMessage:
        """The same message again: same msgid, same body (an identical resend)."""
        if not self.sent:
            raise StepFailed("还没有发送过报文，无法重发")
        if step.message == "last":
            earlier = self.sent[-1]
        elif 1 <= step.message <= len(self.sent):
            earlier = self.sent[step.message - 1]
        else:
            raise StepFailed(f"没有第 {step.message} 个报文（已发送 {len(self.sent)} 个）")
        hospital = self.hospital(earlier.hospital)
        self._settle = "idle"
        again = self._log(hospital, earlier.msgid, earlier.message, earlier.records, earlier.malformation,
                          self.sandbox.settings.mode)
        await self._deliver(hospital, again)
        return again

    # ---- what the catalogue says -----------------------------------------------------------------------

    async def malformation_mismatches(self) -> list[str]:
        """Each malformed record or message whose answer differs from the catalogue's outcome for its mode."""
        store = self.hospital_store()
        sent = {m["msgid"]: m for m in await store.sent_messages()}
        answers: dict[tuple[str, int], dict[str, Any]] = {
            (a["msgid"], a["position"]): a for a in await store.answers()}
        out: list[str] = []
        for msg in self.sent:
            if msg.malformation is not None:
                rule = CATALOGUE[msg.malformation]
                row = sent.get(msg.msgid or f"#{msg.number}")
                code = row["code"] if row else None
                expected = rule.code(msg.mode) if rule.outcome(msg.mode) == "rejected" else 0
                if code != expected and not (expected == 0 and code == -1):
                    out.append(f"{rule.name}：应答 code 应为 {expected}，实际为 {code}")
                continue
            for rec in msg.records:
                if rec.malformation is None:
                    continue
                rule = CATALOGUE[rec.malformation]
                answer = answers.get((msg.msgid, rec.position))
                flag = answer["succ_flag"] if answer else None
                text = answer["message"] if answer else ""
                want = rule.outcome(msg.mode)
                ok_flag = {"rejected": ("-1",), "altered": ("0",), "normalised": ("1",), "noted": ("1", "0")}[want]
                named = rule.field is None or rule.field in text
                if flag not in ok_flag or not named:
                    why = f"succFlag 应为 {'/'.join(ok_flag)}，实际为 {flag}" if flag not in ok_flag else \
                        f"应答信息未提到字段 {rule.field}"
                    out.append(f"{rule.name}（第{rec.position}条）：{why}；应答：{text[:120]}")
        return out


def _by_position(ex: Exchange, answers: list[Any]) -> None:
    """A per-record answer with one entry per record is read by position: a batch that repeats an index (a
    scenario's duplicates) would otherwise give both records the same entry."""
    body = ex.response if ex.ok else None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list) or len(data) != len(answers) or len(data) < 2:
        return
    for answer, entry in zip(answers, data, strict=True):
        if isinstance(entry, dict) and "succFlag" in entry:
            answer.flag = str(entry["succFlag"])
            answer.message = entry.get("message") if isinstance(entry.get("message"), str) else ""
