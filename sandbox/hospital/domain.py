"""The hospital (医疗机构及检查检验机构): makes exams with their files, and sends hop 1 to a sharing center.

No HTTP server code here; `routes.py` serves the files this module registers. Sending goes through
`sandbox.common.client.post_with_retry`: transient failures (timeout, connection error, 5xx, non-JSON)
are retried with the same message and msgid; every attempt and every record's answer is stored.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from sandbox.common.client import Exchange, Observer, post_with_retry
from sandbox.config import Institution, Settings
from sandbox.hospital.errors import HospitalError
from sandbox.hospital.store import HospitalStore
from sandbox.spec.fields import HOP1
from sandbox.spec.formats import china_now
from sandbox.synth.batching import batches, envelope
from sandbox.synth.exams import BASE_DATE, Exam, ExamFactory
from sandbox.synth.images import DEFAULT_IMAGES, ImageSpec
from sandbox.validate import data_length

log = logging.getLogger("sandbox.hospital")

NO_ANSWER = "无应答"  # summary key for records that got no succFlag (transport failure or refused envelope)
# Per-record messages of the sender itself (not from the center).
SEND_MESSAGES = {
    "transport": "未获应答：{detail}（已尝试 {attempts} 次）",
    "refused": "报文被拒绝（code {code}）：{message}",
    "no_entry": "应答中没有本条记录的结果",
    "not_sent": "未发送：共享中心不可达",
}


def center_endpoint(url: str) -> str:
    """The hop-1 endpoint from a center URL: a bare base (`http://host:port`) gets the document's path."""
    parts = urlsplit(url)
    if parts.path in ("", "/"):
        return url.rstrip("/") + HOP1.path
    return url


@dataclass(slots=True)
class RecordAnswer:
    """What the center said about one record (flag None: no succFlag came back)."""

    position: int
    exam_id: str | None
    index: str
    flag: str | None
    message: str


@dataclass(slots=True)
class BatchResult:
    msgid: str
    message: dict[str, Any] = field(repr=False)
    exchanges: list[Exchange] = field(default_factory=list, repr=False)
    code: int | None = None
    envelope_message: str = ""
    answers: list[RecordAnswer] = field(default_factory=list)
    sent: bool = True

    @property
    def attempts(self) -> int:
        return len(self.exchanges)

    @property
    def last(self) -> Exchange | None:
        return self.exchanges[-1] if self.exchanges else None

    @property
    def answered(self) -> bool:
        return self.last is not None and self.last.ok


@dataclass(slots=True)
class SendReport:
    """The outcome of one send: every batch, attempt and record answer."""

    url: str
    batches: list[BatchResult] = field(default_factory=list)

    @property
    def answers(self) -> list[RecordAnswer]:
        return [a for b in self.batches for a in b.answers]

    @property
    def records(self) -> int:
        return len(self.answers)

    @property
    def attempts(self) -> int:
        return sum(b.attempts for b in self.batches)

    @property
    def retries(self) -> int:
        return sum(max(0, b.attempts - 1) for b in self.batches)

    def flag_counts(self) -> Counter[str]:
        """Records per succFlag ("1", "0", "-1", or 无应答)."""
        return Counter(a.flag if a.flag is not None else NO_ANSWER for a in self.answers)

    def message_counts(self) -> Counter[tuple[str, str]]:
        """Distinct (succFlag, message) pairs with their record counts."""
        return Counter((a.flag if a.flag is not None else NO_ANSWER, a.message) for a in self.answers)

    @property
    def all_ok(self) -> bool:
        return bool(self.answers) and all(a.flag == "1" for a in self.answers)

    @property
    def unreachable(self) -> bool:
        """True when no batch got any answer because the center could not be reached."""
        tried = [b for b in self.batches if b.exchanges]
        return bool(tried) and all(b.last is not None and b.last.error in ("connection", "timeout") for b in tried)


def read_answers(ex: Exchange, records: list[dict[str, Any]], exam_ids: dict[str, str]) -> tuple[
        int | None, str, list[RecordAnswer]]:
    """(envelope code, envelope message, one answer per record) from the center's response.

    Per-record data is matched by position when there is one entry per record and none names another
    record's index, else by index (hiImgIndx, or the example's hiImgIdx); a single entry with a null index
    (the document's example style) answers for the whole batch.
    """
    indexes = [str(r.get("hiImgIndx", "")) for r in records]

    def answer(pos: int, flag: Any, message: Any) -> RecordAnswer:
        idx = indexes[pos]
        return RecordAnswer(pos + 1, exam_ids.get(idx), idx, None if flag is None else str(flag),
                            message if isinstance(message, str) else "")

    if not ex.ok or not isinstance(ex.response, dict):
        msg = SEND_MESSAGES["transport"].format(detail=ex.detail or ex.error, attempts=ex.attempt)
        return None, str(ex.detail), [answer(i, None, msg) for i in range(len(records))]
    body: dict[str, Any] = ex.response
    code: int | None = body["code"] if isinstance(body.get("code"), int) else None
    env_message: str = body["message"] if isinstance(body.get("message"), str) else ""
    data = body.get("data")
    entries = [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []
    if not entries:
        msg = SEND_MESSAGES["refused"].format(code=code, message=env_message)
        return code, env_message, [answer(i, None, msg) for i in range(len(records))]

    def entry_index(d: dict[str, Any]) -> Any:
        return d.get("hiImgIndx", d.get("hiImgIdx"))

    if len(entries) == 1 and entry_index(entries[0]) is None and len(records) >= 1:
        one = entries[0]
        return code, env_message, [answer(i, one.get("succFlag"), one.get("message")) for i in range(len(records))]
    given = [entry_index(d) for d in entries]
    if len(entries) == len(records) and all(g is None or str(g) == indexes[i] for i, g in enumerate(given)):
        chosen: list[dict[str, Any] | None] = list(entries)  # one per record, in order (repeated indexes too)
    else:
        # Out of order or some missing: each record takes the first unused entry naming its index; an entry
        # without an index answers for the record at its own position, never for another record.
        by_index: dict[str, deque[dict[str, Any]]] = {}
        for d, g in zip(entries, given, strict=True):
            if g is not None:
                by_index.setdefault(str(g), deque()).append(d)
        chosen = []
        for i in range(len(records)):
            queue = by_index.get(indexes[i])
            chosen.append(queue.popleft() if queue else
                          entries[i] if i < len(entries) and given[i] is None else None)
    out = []
    for i, e in enumerate(chosen):
        if e is None:
            out.append(answer(i, None, SEND_MESSAGES["no_entry"]))
        else:
            out.append(answer(i, e.get("succFlag"), e.get("message")))
    return code, env_message, out


def _write_exam_files(exam: Exam, root: Path, **kw: Any) -> dict[str, Any]:
    """`write_exam_files`, imported here in the worker thread: pydicom, numpy and reportlab load on first use
    without holding up the event loop."""
    from sandbox.synth.dataset import write_exam_files

    return write_exam_files(exam, root, **kw)


class Hospital:
    """One hospital of the settings: its exam factory, file store and sender."""

    def __init__(
        self,
        settings: Settings,
        store: HospitalStore,
        session: aiohttp.ClientSession | None,
        *,
        institution: Institution | None = None,
        seed: int | str | None = None,
        base_url: str | None = None,
        root: Path | None = None,
        image_spec: ImageSpec = DEFAULT_IMAGES,
        embedded_font: bool = True,
        now: Callable[[], datetime] = china_now,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        if institution is None:
            if not settings.hospitals:
                raise HospitalError("no_hospital", code="")
            institution = settings.hospitals[0]
        self.settings = settings
        self.store = store
        self.session = session
        self.institution = institution
        self.seed = settings.seed if seed is None else seed
        self.base_url = (base_url or settings.url(settings.hospital_port)).rstrip("/")
        self.root = root or settings.data_dir / "hospital"
        self.image_spec = image_spec
        self.embedded_font = embedded_font
        # Exams dated on a chosen day (a demo's today) never end after the hospital's clock; the fixed default
        # calendar stays independent of the clock.
        self.factory = ExamFactory(institution, settings.center.uscc, self.seed, index_profile=settings.index_profile,
                                   base_date=settings.exam_base_date or BASE_DATE,
                                   not_after=now if settings.exam_base_date is not None else None)
        self._now = now
        self._sleep = sleep
        self._send_lock = asyncio.Lock()
        # register_soon's exams until written, and the tasks writing them
        self._unwritten: dict[str, Exam] = {}
        self._writing: dict[str, asyncio.Task[None]] = {}

    # ---- exams and files --------------------------------------------------------------------------

    def make_exams(self, count: int, seed_offset: int = 0) -> list[Exam]:
        """Exams seed_offset … seed_offset+count-1 of this hospital, without writing files."""
        return self.factory.exams(count, seed_offset)

    async def generate_exams(self, count: int, seed_offset: int = 0, *, files: bool = True) -> list[Exam]:
        """Make exams and (by default) write and register their DICOM studies and reports for serving."""
        exams = self.make_exams(count, seed_offset)
        for exam in exams:
            await self.register(exam, files=files)
        return exams

    async def register(self, exam: Exam, *, files: bool = True) -> None:
        """Write an exam's files (in a worker thread) and register them so the routes can serve them."""
        entry = await asyncio.to_thread(_write_exam_files, exam, self.root, dicom=files, pdf=files,
                                        spec=self.image_spec, embedded_font=self.embedded_font)
        instances = [
            {"sop_uid": d["sopInstanceUID"], "study_uid": exam.study_uid, "series_uid": d["seriesInstanceUID"],
             "exam_id": exam.exam_id, "series_no": d["seriesNumber"], "instance_no": d["instanceNumber"],
             "sop_class": d["sopClassUID"], "path": d["path"], "size": d["size"]}
            for d in entry["dicom"]
        ]
        await self.store.save_exam(
            exam_id=exam.exam_id, inst_code=exam.hospital.code, seed=str(exam.seed), n=exam.n, index=exam.index,
            study_uid=exam.study_uid, report_path=entry["report"]["path"] if entry["report"] else None,
            record=exam.record(self.base_url), instances=instances,
        )

    def register_soon(self, exam: Exam) -> asyncio.Task[None]:
        """`register` in the background. Until it is done, every file lookup waits for it: a request for the
        exam's files made meanwhile is answered once they are written, exactly as if it came later. If writing
        fails (a full disk), the next file lookup writes them again."""
        self._unwritten[exam.exam_id] = exam
        return self._start_writing(exam)

    def _start_writing(self, exam: Exam) -> asyncio.Task[None]:
        task = asyncio.create_task(self.register(exam), name=f"register-{exam.exam_id}")
        self._writing[exam.exam_id] = task
        task.add_done_callback(functools.partial(self._registered, exam.exam_id))
        return task

    def _registered(self, exam_id: str, task: asyncio.Task[None]) -> None:
        self._writing.pop(exam_id, None)
        if task.cancelled():
            return
        if task.exception() is None:
            self._unwritten.pop(exam_id, None)
        else:
            log.error("检查 %s 的文件未能写入（下次请求其文件时重写）：%s", exam_id, task.exception())

    async def _written(self) -> None:
        """Wait for the registrations `register_soon` started; one that failed is started again first."""
        for exam_id, exam in list(self._unwritten.items()):
            if exam_id not in self._writing:
                self._start_writing(exam)
        if self._writing:
            await asyncio.wait(set(self._writing.values()))

    def records(self, exams: list[Exam]) -> list[dict[str, Any]]:
        return [e.record(self.base_url) for e in exams]

    async def report_file(self, exam_id: str) -> Path:
        await self._written()
        rel = await self.store.report_path(exam_id)
        if rel is None:
            raise HospitalError("unknown_exam", exam_id=exam_id)
        return self._existing(rel)

    async def study_files(self, study: str, series: str | None = None, instance: str | None = None) -> list[
            tuple[Path, int, dict[str, Any]]]:
        """(path, size, row) of the instances of a study, a series or one instance; raises when unknown."""
        await self._written()
        rows = await self.store.instances(study, series, instance)
        if not rows:
            if await self.store.exam_by_study(study) is None:
                raise HospitalError("unknown_study", study=study)
            if instance is not None:
                raise HospitalError("unknown_instance", instance=instance, series=series)
            raise HospitalError("unknown_series", series=series, study=study)
        return [(self._existing(r["path"]), int(r["size"]), r) for r in rows]

    async def exam_files(self, exam_id: str) -> list[tuple[Path, str]]:
        """(path, name in a zip) of an exam's DICOM files."""
        await self._written()
        rows = await self.store.instances_of_exam(exam_id)
        if not rows:
            raise HospitalError("unknown_exam", exam_id=exam_id)
        return [(self._existing(r["path"]), Path(r["path"]).relative_to(Path("files") / exam_id).as_posix())
                for r in rows]

    def _existing(self, rel: str) -> Path:
        path = self.root / rel
        if not path.is_file():
            raise HospitalError("file_missing", name=Path(rel).name)
        return path

    # ---- sending ------------------------------------------------------------------------------------

    def center_url(self, url: str | None = None) -> str:
        base = url or self.settings.center_url or self.settings.url(self.settings.center_port)
        return center_endpoint(base)

    async def send(
        self,
        exams: list[Exam],
        center_url: str | None = None,
        *,
        observer: Observer | None = None,
        max_records: int | None = None,
    ) -> SendReport:
        """Send the exams' records to a center in batches under the 40000-character limit."""
        if self.session is None:
            raise RuntimeError("hospital has no HTTP client session")
        url = self.center_url(center_url)
        report = SendReport(url)
        records = self.records(exams)
        exam_ids = {e.index: e.exam_id for e in exams}
        async with self._send_lock:
            for batch in batches(records, max_records=max_records):
                if report.batches and report.unreachable:
                    msg = SEND_MESSAGES["not_sent"]
                    report.batches.append(BatchResult(
                        msgid="", message={}, sent=False,
                        answers=[RecordAnswer(i + 1, exam_ids.get(r["hiImgIndx"]), r["hiImgIndx"], None, msg)
                                 for i, r in enumerate(batch)]))
                    continue
                when = self._now()
                seq = await self.store.next_seq(self.institution.code, f"{when:%Y%m%d}")
                await self._post(envelope(batch, self.institution, when, seq), batch, url, report, exam_ids,
                                 observer)
        return report

    async def resend(self, messages: list[dict[str, Any]], center_url: str | None = None) -> SendReport:
        """Send earlier messages again exactly as they were (same msgid, same body): a receiver answers an
        identical resend with its first answer and stores nothing twice."""
        if self.session is None:
            raise RuntimeError("hospital has no HTTP client session")
        url = self.center_url(center_url)
        report = SendReport(url)
        async with self._send_lock:
            for message in messages:
                batch = [r for r in message.get("data") or [] if isinstance(r, dict)]
                await self._post(message, batch, url, report, {}, None)
        return report

    async def _post(self, message: dict[str, Any], batch: list[dict[str, Any]], url: str, report: SendReport,
                    exam_ids: dict[str, str], observer: Observer | None) -> None:
        s = self.settings
        assert self.session is not None
        result = BatchResult(msgid=message["msgid"], message=message)

        async def observe(ex: Exchange) -> None:
            result.exchanges.append(ex)
            if observer is not None:
                await observer(ex)

        last = await post_with_retry(
            self.session, url, message, timeout=s.send_timeout_s, max_attempts=s.retry_max_attempts,
            base=s.retry_base_s, cap=s.retry_cap_s, rng=random.Random(f"{self.seed}:retry:{result.msgid}"),
            observer=observe, sleep=self._sleep,
        )
        result.code, result.envelope_message, result.answers = read_answers(last, batch, exam_ids)
        report.batches.append(result)
        await self._save(result, url, batch)

    async def _save(self, result: BatchResult, url: str, batch: list[dict[str, Any]]) -> None:
        last = result.last
        await self.store.save_sent(
            msgid=result.msgid, inst_code=self.institution.code, url=url, records=len(batch),
            data_chars=data_length(batch),
            attempts=[{"msgid": result.msgid, "attempt": ex.attempt, "status": ex.status, "error": ex.error,
                       "detail": ex.detail, "duration": ex.duration} for ex in result.exchanges],
            status=last.status if last else None, error=last.error if last else None, code=result.code,
            message=result.envelope_message,
            answers=[{"msgid": result.msgid, "position": a.position, "exam_id": a.exam_id, "hi_img_indx": a.index,
                      "succ_flag": a.flag, "message": a.message} for a in result.answers],
        )

