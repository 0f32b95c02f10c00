"""The upload-quality report (上传质量报告): per institution and per exam date, what was sent, indexed, failed
and why, what was on time, and the price-cut exposure. Computed from the journal (every exchange of both
hops, whoever sent it) and, when the center runs here, its outbox (what is still waiting to be forwarded).
No HTTP here.

Definitions (the README repeats them for trainers):

- An exam is one `hiImgIndx`. Its institution is the record's `fixmedinsCode` (the envelope's `infCode`
  when the record has none); its day is the record's `examDate`.
- *Sent*: the exam was in at least one hop-1 message recorded in the journal (any attempt, any answer).
- *Indexed*: the province answered `succFlag` 1 or 0 for it on hop 2 (the index is stored).
- *Failed*: not indexed, and the last word on it was a refusal or a fault: refused by the center (-1), its
  hop-1 message refused whole (envelope `code`), no answer from the center (transport fault), the center
  gave up forwarding it, or the province refused it (-1, or the whole hop-2 message). Each failed exam has
  one reason — the furthest stage it reached — and the fields its answer names (`top error fields`).
- *In progress*: neither (stored at the center, waiting for or being forwarded to the province).
- *On time*: indexed within `quality_on_time_hours` (a setting, default 24) of the report's publication
  `rpotPubDate` (the end of `examDate` when absent). The time the index reached the province is read on the
  hospital's clock: the `infTime` of the first hop-1 message that carried the exam, plus the time the
  journal measured from that message to the province's answer. The on-time share is over exams sent.
- *Radiology* (放射检查): `imgExamType` 1 X线, 2 CT or 3 MRI — the items of the NHSA's 放射检查类 price
  guideline that 川医保办发〔2025〕15号 cuts by 5 yuan when the 数字影像处理和上传存储服务 is not provided.
  Ultrasound (4), nuclear medicine (5) and other (9) are priced under other guidelines.
- *Price-cut exposure*: 5 yuan × radiology exams sent and not indexed (failed or still in progress).
"""

from __future__ import annotations

import asyncio
import csv
import io
import statistics
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sandbox.config import Settings
from sandbox.dashboard.records import (
    field_name,
    fields_named,
    message_records,
    parse_datetime,
    parse_json,
    record_answers,
    record_index,
    response_message,
    stripped,
)
from sandbox.journal.mask import mask_message
from sandbox.journal.store import Journal
from sandbox.spec.dicts import IMG_EXAM_TYPE
from sandbox.spec.messages import (
    DASHBOARD,
    FORWARD_REASONS,
    FORWARD_REASONS_EN,
    QUALITY_COLUMNS,
    REASONS_EN,
    TRANSPORT_TITLES,
    TRANSPORT_TITLES_EN,
)

RADIOLOGY_TYPES = frozenset({"1", "2", "3"})
PRICE_CUT_YUAN = 5
PAGE = 500  # journal entries read per query while catching up
TOP_FIELDS = 5
LINK_FIELDS = ("examRpotLinkUrl", "imgInfoLinkUrl", "imgDldLink")

# How far an exam got on a hop; the best answer it ever got wins (a -1 corrected and resent becomes 1).
RANK = {"none": 0, "transport": 1, "envelope": 2, "rejected": 3, "saved": 4}


@dataclass(slots=True)
class Stage:
    """An exam's best answer on one hop."""

    state: str = "none"  # none | transport | envelope | rejected | saved
    flag: str | None = None
    message: str = ""
    code: int | None = None
    transport: str | None = None
    seq: int = 0

    def offer(self, other: Stage) -> None:
        if RANK[other.state] >= RANK[self.state]:
            self.state, self.flag, self.message = other.state, other.flag, other.message
            self.code, self.transport, self.seq = other.code, other.transport, other.seq


@dataclass(slots=True)
class Exam:
    """What the journal says about one exam."""

    index: str
    institution: str
    institution_name: str
    day: str
    types: frozenset[str]
    reference: datetime | None  # rpotPubDate, else the end of examDate
    first_seen: float | None = None  # journal time of the first hop-1 message carrying it
    declared: datetime | None = None  # that message's infTime (the hospital's clock)
    hop1: Stage = field(default_factory=Stage)
    hop2: Stage = field(default_factory=Stage)
    indexed_at: float | None = None  # journal time of the province's first 1/0 answer
    links: dict[str, str] = field(default_factory=dict)
    seqs: list[int] = field(default_factory=list)  # exchanges that carried it (both hops)
    shown: str = ""  # the index with the patient's identity number masked (the exam list shows this)

    @property
    def indexed(self) -> bool:
        return self.hop2.state == "saved"

    @property
    def radiology(self) -> bool:
        return bool(self.types & RADIOLOGY_TYPES)

    def delay_hours(self) -> float | None:
        """Hours from the report's publication to the index reaching the province (hospital's clock)."""
        if self.indexed_at is None or self.reference is None:
            return None
        if self.declared is not None and self.first_seen is not None:
            arrived = self.declared + timedelta(seconds=self.indexed_at - self.first_seen)
        else:
            arrived = datetime.fromtimestamp(self.indexed_at)
        return (arrived - self.reference).total_seconds() / 3600


@dataclass(frozen=True, slots=True)
class Verdict:
    """An exam's status in the report: indexed, in progress or failed (with its reason and fields)."""

    status: str  # indexed | in_progress | failed
    reason: str = ""
    fields: tuple[str, ...] = ()
    detail: str = ""
    reason_en: str = ""


def _failed(key: str, fields: tuple[str, ...] = (), detail: str = "", *, transport: str | None = None,
            forward: str | None = None, code: Any = None) -> Verdict:
    """A failure with its reason in Chinese and in English, from the same key and values."""
    zh: dict[str, Any] = {"code": code}
    en: dict[str, Any] = {"code": code}
    if transport is not None:
        zh["transport"] = TRANSPORT_TITLES.get(transport, transport)
        en["transport"] = TRANSPORT_TITLES_EN.get(transport, transport)
    if forward is not None:
        zh["reason"] = FORWARD_REASONS.get(forward, forward)
        en["reason"] = FORWARD_REASONS_EN.get(forward, forward)
    return Verdict("failed", DASHBOARD[key].format(**zh), fields, detail, REASONS_EN[key].format(**en))


ForwardStates = dict[str, tuple[str, str | None, str | None]]  # hiImgIndx → (outbox state, reason, message)


def judge(exam: Exam, outbox: ForwardStates) -> Verdict:
    """Where an exam stands, from its two stages and (when known) the center's outbox."""
    if exam.indexed:
        return Verdict("indexed")
    h1, h2 = exam.hop1, exam.hop2
    if h1.state != "saved":
        if h1.state == "none":
            return Verdict("in_progress")
        if h1.state == "transport":
            return _failed("reason_hop1_transport", transport=h1.transport or "")
        if h1.state == "envelope":
            return _failed("reason_hop1_envelope", tuple(fields_named(h1.message, envelope=True)), h1.message,
                           code=h1.code)
        return _failed("reason_hop1_rejected", tuple(fields_named(h1.message)), h1.message)
    state, reason, message = outbox.get(exam.index, (None, None, None))
    if state in ("pending", "sending"):
        return Verdict("in_progress")
    if h2.state == "rejected":
        return _failed("reason_hop2_rejected", tuple(fields_named(h2.message)), h2.message)
    if h2.state == "envelope":
        return _failed("reason_hop2_envelope", tuple(fields_named(h2.message, envelope=True)), h2.message,
                       code=h2.code)
    if state in ("failed", "held"):  # held: parked after a 4xx, until an operator sends it again
        text = message or ""
        return _failed("reason_hop2_center", tuple(fields_named(text)), text, forward=reason or "")
    if h2.state == "transport":
        return _failed("reason_hop2_transport", transport=h2.transport or "")
    return Verdict("in_progress")


def _stage(entry: dict[str, Any], answer: Any) -> Stage:
    outcome = entry["outcome"]
    seq = int(entry["seq"])
    if outcome in ("transport", "aborted"):
        return Stage("transport", transport=entry.get("transport"), seq=seq)
    if outcome == "rejected":
        return Stage("envelope", code=entry.get("code"), message=response_message(entry.get("response")), seq=seq)
    if answer is None:
        return Stage("none", seq=seq)
    if answer.flag in ("1", "0"):
        return Stage("saved", flag=answer.flag, message=answer.message, seq=seq)
    return Stage("rejected", flag=answer.flag, message=answer.message, seq=seq)


class Tracker:
    """Every exam the journal has seen, kept up to date by reading only the entries recorded since."""

    def __init__(self, journal: Journal, settings: Callable[[], Settings]) -> None:
        self.journal = journal
        self.settings = settings
        self.exams: dict[str, Exam] = {}
        self.after = 0
        self.generation = journal.generation
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        """Read the entries recorded since the last refresh (all of them after a journal reset)."""
        async with self._lock:
            if self.generation != self.journal.generation or self.after > self.journal.last_seq:
                self.exams.clear()
                self.after = 0
                self.generation = self.journal.generation
            while True:
                page = await self.journal.page(after=self.after, limit=PAGE, bodies=True)
                for entry in page:
                    self._add(entry)
                if page:
                    self.after = int(page[-1]["seq"])
                if len(page) < PAGE:
                    return

    def _add(self, entry: dict[str, Any]) -> None:
        hop = entry["hop"]
        message = parse_json(entry.get("request"))
        records = message_records(message)
        if not records:
            return
        envelope = stripped(message) if isinstance(message, dict) else {}
        got = record_answers(records, entry.get("response")) if entry["outcome"] not in ("transport", "rejected", "aborted") \
            else [None] * len(records)
        settings = self.settings()
        for pos, (record, answer) in enumerate(zip(records, got, strict=True), 1):
            rec = stripped(record) if isinstance(record, dict) else {}
            index = record_index(rec) or DASHBOARD["no_index"].format(position=pos, msgid=entry.get("msgid") or "")
            exam = self.exams.get(index)
            if exam is None:
                exam = self.exams[index] = _exam(index, rec, envelope, settings)
            if hop == 1 and exam.first_seen is None:
                exam.first_seen = float(entry["started"])
                exam.declared = parse_datetime(envelope.get("infTime"))
            if not exam.seqs or exam.seqs[-1] != entry["seq"]:
                exam.seqs.append(int(entry["seq"]))
            stage = _stage(entry, answer)
            if hop == 1:
                exam.hop1.offer(stage)
            else:
                exam.hop2.offer(stage)
                for code in LINK_FIELDS:
                    value = rec.get(code)
                    if isinstance(value, str) and value.strip():
                        exam.links[code] = value.strip()
                if stage.state == "saved" and exam.indexed_at is None:
                    exam.indexed_at = float(entry["started"]) + float(entry.get("duration_ms") or 0) / 1000

    # ---- the report ----------------------------------------------------------------------------------------

    def report(self, outbox: ForwardStates) -> dict[str, Any]:
        """Rows per institution and exam date, a total per institution and an overall total."""
        hours = self.settings().quality_on_time_hours
        groups: dict[tuple[str, str], list[tuple[Exam, Verdict]]] = {}
        names: dict[str, str] = {}
        for exam in self.exams.values():
            groups.setdefault((exam.institution, exam.day), []).append((exam, judge(exam, outbox)))
            names.setdefault(exam.institution, exam.institution_name)
        rows = []
        by_inst: dict[str, list[tuple[Exam, Verdict]]] = {}
        for (inst, day), items in sorted(groups.items()):
            rows.append(_row(inst, names[inst], day, items, hours))
            by_inst.setdefault(inst, []).extend(items)
        institutions = [_row(inst, names[inst], DASHBOARD["total"], items, hours)
                        for inst, items in sorted(by_inst.items())]
        everything = [pair for items in by_inst.values() for pair in items]
        total = _row(DASHBOARD["all_institutions"], "", DASHBOARD["total"], everything, hours)
        return {
            "onTimeHours": hours,
            "priceCutYuan": PRICE_CUT_YUAN,
            "radiologyTypes": sorted(RADIOLOGY_TYPES),
            "columns": [{"key": k, "zh": zh, "en": en} for k, zh, en in QUALITY_COLUMNS],
            "rows": rows,
            "institutions": institutions,
            "total": total,
        }

    def exam_list(self, outbox: ForwardStates, offset: int, limit: int,
                  status: str | None = None) -> tuple[int, list[dict[str, Any]]]:
        """Exams, most recently sent first, with their status and (when known) their three links."""
        chosen = []
        for exam in reversed(self.exams.values()):
            verdict = judge(exam, outbox)
            if status is None or verdict.status == status:
                chosen.append((exam, verdict))
        page = chosen[offset:offset + limit]
        return len(chosen), [exam_view(e, v) for e, v in page]


def _exam(index: str, rec: dict[str, Any], envelope: dict[str, Any], settings: Settings) -> Exam:
    code = rec.get("fixmedinsCode") or envelope.get("infCode") or ""
    code = str(code).strip()
    inst = settings.institution(code)
    name = inst.name if inst is not None else str(rec.get("fixmedinsName") or "").strip()
    types = frozenset(str(rec.get("imgExamType") or "").split())
    day = str(rec.get("examDate") or "").strip()
    reference = parse_datetime(rec.get("rpotPubDate")) or parse_datetime(day)
    day = day or DASHBOARD["no_day"]
    seen: dict[str, str] = {}
    mask_message({"data": [rec]}, seen)
    shown = index
    for original in sorted(seen, key=len, reverse=True):
        shown = shown.replace(original, seen[original])
    return Exam(index, code, name, day, types, reference, shown=shown)


def exam_view(exam: Exam, verdict: Verdict) -> dict[str, Any]:
    types = sorted(exam.types)
    return {
        "hiImgIndx": exam.index, "shown": exam.shown or exam.index, "institution": exam.institution,
        "institutionName": exam.institution_name, "day": exam.day, "imgExamType": " ".join(types),
        "imgExamTypeName": "、".join(IMG_EXAM_TYPE.get(t, t) for t in types), "radiology": exam.radiology,
        "status": verdict.status, "reason": verdict.reason, "reasonEn": verdict.reason_en, "fields": list(verdict.fields),
        "detail": verdict.detail, "hop1": _stage_view(exam.hop1), "hop2": _stage_view(exam.hop2),
        "delayHours": _round(exam.delay_hours()), "links": dict(exam.links), "seqs": exam.seqs[-10:],
    }


def _stage_view(stage: Stage) -> dict[str, Any]:
    return {"state": stage.state, "succFlag": stage.flag, "message": stage.message, "code": stage.code,
            "transport": stage.transport, "seq": stage.seq or None}


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _row(inst: str, name: str, day: str, items: list[tuple[Exam, Verdict]], hours: float) -> dict[str, Any]:
    sent = len(items)
    indexed = sum(1 for _, v in items if v.status == "indexed")
    failed = [v for _, v in items if v.status == "failed"]
    reasons = Counter(v.reason for v in failed)
    english = {v.reason: v.reason_en for v in failed}
    fields: Counter[str] = Counter()
    for v in failed:
        fields.update(set(v.fields) or {""})
    delays = [d for e, v in items if v.status == "indexed" and (d := e.delay_hours()) is not None]
    on_time = sum(1 for d in delays if d <= hours)
    radiology = [(e, v) for e, v in items if e.radiology]
    missing = sum(1 for _, v in radiology if v.status != "indexed")
    return {
        "institution": inst,
        "institutionName": name,
        "day": day,
        "sent": sent,
        "indexed": indexed,
        "inProgress": sent - indexed - len(failed),
        "failed": len(failed),
        "failedByReason": [{"reason": r, "reasonEn": english[r], "count": n} for r, n in reasons.most_common()],
        "topFields": [{"field": f, "name": field_name(f) if f else DASHBOARD["no_field"], "count": n}
                      for f, n in fields.most_common(TOP_FIELDS)],
        "onTime": on_time,
        "onTimeShare": round(on_time / sent, 4) if sent else None,
        "medianDelayHours": _round(statistics.median(delays)) if delays else None,
        "radiology": len(radiology),
        "radiologyNotIndexed": missing,
        "exposureYuan": missing * PRICE_CUT_YUAN,
    }


# ---- CSV ---------------------------------------------------------------------------------------------------

def _cell(key: str, value: Any, lang: str = "zh") -> str:
    if value is None:
        return ""
    if key == "failedByReason":
        if lang == "en":
            return "; ".join(f"{r['reasonEn']} ×{r['count']}" for r in value)
        return "；".join(f"{r['reason']} ×{r['count']}" for r in value)
    if key == "topFields":
        if lang == "en":  # the field codes are the document's own; their names are Chinese
            return "; ".join(f"{f['field'] or REASONS_EN['no_field']} ×{f['count']}" for f in value)
        return "；".join(f"{f['field'] or ''}{f['name'] and ' ' + f['name']} ×{f['count']}".strip() for f in value)
    if key == "onTimeShare":
        return f"{value * 100:.1f}%"
    return str(value)


def to_csv(report: dict[str, Any], lang: str = "zh") -> bytes:
    """The report as CSV: UTF-8 with a BOM (Excel then reads the Chinese right), one row per institution and
    day, then each institution's total, then the overall total."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    header = [en if lang == "en" else zh for _, zh, en in QUALITY_COLUMNS]
    writer.writerow(header)
    rows: Iterable[dict[str, Any]] = [*report["rows"], *report["institutions"], report["total"]]
    for row in rows:
        writer.writerow([_cell(key, row.get(key), lang) for key, _, _ in QUALITY_COLUMNS])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


OutboxReader = Callable[[], Awaitable[ForwardStates]]
