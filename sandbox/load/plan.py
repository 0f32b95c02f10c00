"""Who each Locust user is and what it sends: pure Python, no Locust or gevent here (tests import it).

A user is a hospital. Users are numbered across the whole run without a coordinator: user `local` of
worker `worker` (of `workers` workers) takes slot `local * workers + worker`, and slot s plays hospital
s mod H. When there are more users than hospitals, the users sharing a hospital are its laps
(lap = s // H), and their sequence spaces are split so nothing they send can collide:

- exams: lap L sends exam numbers L·LAP_EXAMS, L·LAP_EXAMS + 1, … of its hospital (the generator gives
  exam n its own time slot, so each hiImgIndx is new);
- msgids (institution code + second + 4-digit sequence): lap L uses sequences L·100 … L·100 + 99 within
  each second, at most 100 messages a second per user.

All data derives from the run's seed: the same seed, users and workers give the same exams.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sandbox.common.client import Exchange
from sandbox.config import Institution, Settings
from sandbox.hospital.domain import read_answers
from sandbox.spec.fields import HOP1
from sandbox.spec.formats import china_now
from sandbox.synth.batching import batches, envelope
from sandbox.synth.exams import Exam, ExamFactory
from sandbox.synth.institutions import synth_hospitals
from sandbox.synth.urls import report_url, study_url

LAP_EXAMS = 100_000  # exam numbers per user of a hospital (about 660 calendar days of 5-minute slots)
MAX_LAPS = 100  # users per hospital: the msgid sequence has 4 digits, 100 per user and second
MODALITIES = ("CT", "MR", "DX", "CR", "US")


# Options that shape what users send, the same for `sandbox load --NAME` and Locust's `--sandbox-NAME` (which
# `sandbox load` passes on to the master and every worker): (name, type, default, help).
DATA_OPTIONS: tuple[tuple[str, type, Any, str], ...] = (
    ("region", str, "510800", "生成的医疗机构所在医保区划（默认广元 510800）"),
    ("records", str, "10", "每个报文的记录数，如 10 或 5-20（默认 10；超过 40000 字符时拆成多个报文）"),
    ("modalities", str, ",".join(MODALITIES), "影像类型，逗号分隔（按生成器的比例混合）"),
    ("pool", int, 8, "每个负载进程预先生成的检查数（文件池，默认 8，每种影像类型至少 1 个）"),
    ("slices", int, 20, "CT/MR 每序列层数（默认 20）"),
    ("matrix", int, 256, "CT/MR 图像矩阵（默认 256）"),
    ("think", float, 0.0, "每个用户两个报文之间的等待秒数（默认 0：收到应答即发下一个）"),
)


def add_data_options(parser: Any, prefix: str = "") -> None:
    """DATA_OPTIONS on an argparse (or Locust) parser, as `--{prefix}{name}`."""
    for name, kind, default, text in DATA_OPTIONS:
        parser.add_argument(f"--{prefix}{name}", type=kind, default=default, help=text)


class PlanError(ValueError):
    """A setting the load cannot run with (message in Chinese, naming the option)."""


def load_hospitals(settings: Settings, count: int | None, region: str, seed: int | str) -> tuple[Institution, ...]:
    """The hospitals the users play: `count` generated ones (deterministic from seed and region), or the
    configuration's hospitals when count is None."""
    if count is None:
        if not settings.hospitals:
            raise PlanError("配置中没有医疗机构（role = \"hospital\"），请用 --hospitals N 生成")
        return settings.hospitals
    if count < 1:
        raise PlanError("--hospitals 至少为 1")
    return synth_hospitals(region, count, seed=f"{seed}:load")


def parse_range(text: str, option: str) -> tuple[int, int]:
    """"10" → (10, 10); "5-20" → (5, 20)."""
    lo, _, hi = text.partition("-")
    try:
        a, b = int(lo), int(hi or lo)
    except ValueError:
        raise PlanError(f"{option} 应为正整数或范围，如 10 或 5-20，而不是「{text}」") from None
    if a < 1 or b < a:
        raise PlanError(f"{option} 应为正整数或范围，如 10 或 5-20，而不是「{text}」")
    return a, b


def parse_modalities(text: str) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(m.strip().upper() for m in text.split(",") if m.strip()))
    unknown = [m for m in chosen if m not in MODALITIES]
    if not chosen or unknown:
        raise PlanError(f"--modalities 只能是 {','.join(MODALITIES)} 中的若干个（逗号分隔），"
                        f"不认识：{'、'.join(unknown) or '（空）'}")
    return chosen


@dataclass(frozen=True, slots=True)
class Slot:
    """A user's place in the run."""

    number: int  # across all workers
    hospital: Institution
    lap: int  # how many users before this one play the same hospital

    @classmethod
    def of(cls, worker: int, workers: int, local: int, hospitals: tuple[Institution, ...]) -> Slot:
        if not 0 <= worker < workers:
            raise PlanError(f"负载机编号 {worker} 超出预期的负载机数 {workers}（--expect-workers）："
                            f"多出的负载机会与其他负载机发送相同的检查，请按实际台数设置 --expect-workers")
        number = local * workers + worker
        lap = number // len(hospitals)
        if lap >= MAX_LAPS:
            raise PlanError(f"用户数超过医疗机构数的 {MAX_LAPS} 倍，报文ID 顺序号不够分配：请用 --hospitals 增加医疗机构")
        return cls(number, hospitals[number % len(hospitals)], lap)


class MsgidClock:
    """Msgid time and sequence for one user: its own 100 sequences in every second (see the module)."""

    def __init__(self, lap: int, now: Callable[[], datetime] = china_now,
                 sleep: Callable[[float], Any] = time.sleep) -> None:
        self.base = lap * 100
        self.now = now
        self.sleep = sleep
        self.second: datetime | None = None
        self.used = 0

    def next(self) -> tuple[datetime, int]:
        while True:
            when = self.now().replace(microsecond=0)
            if when != self.second:
                self.second, self.used = when, 0
            if self.used < 100:
                self.used += 1
                return when, self.base + self.used - 1
            self.sleep(0.05)  # a hundred messages this second already: wait for the next one


@dataclass(slots=True)
class UserPlan:
    """The exams and messages of one user: record counts drawn from its own random stream, exams of the
    chosen modalities in its lap's number range."""

    slot: Slot
    factory: ExamFactory
    modalities: tuple[str, ...]
    records: tuple[int, int]
    rng: random.Random
    clock: MsgidClock
    next_n: int = 0
    made: int = 0
    skipped: int = field(default=0)

    @classmethod
    def create(cls, slot: Slot, settings: Settings, seed: int | str, modalities: tuple[str, ...],
               records: tuple[int, int]) -> UserPlan:
        factory = ExamFactory(slot.hospital, settings.center.uscc, seed, index_profile=settings.index_profile)
        return cls(slot, factory, modalities, records, random.Random(f"{seed}:load-user:{slot.number}"),
                   MsgidClock(slot.lap), next_n=slot.lap * LAP_EXAMS)

    def exams(self) -> list[Exam]:
        """The exams of the next message (how many: drawn from the records range)."""
        want = self.rng.randint(*self.records)
        out: list[Exam] = []
        while len(out) < want:
            if self.made >= LAP_EXAMS:
                raise PlanError(f"一个用户最多发送 {LAP_EXAMS} 个检查，请增加 --users 或 --hospitals")
            exam = self.factory.exam(self.next_n)
            self.next_n += 1
            self.made += 1
            if exam.modality in self.modalities:
                out.append(exam)
            else:
                self.skipped += 1
        return out

    def messages(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Hop-1 envelopes around the records (more than one when they exceed 40000 characters)."""
        out = []
        for batch in batches(records):
            when, seq = self.clock.next()
            out.append(envelope(batch, self.slot.hospital, when, seq))
        return out


def record_for(exam: Exam, base_url: str, study_uid: str) -> dict[str, Any]:
    """The exam's hop-1 record with file links on this worker's file server (the study under its load UID)."""
    record = exam.record(base_url)
    record["examRpotPdfI"] = report_url(base_url, exam.exam_id)
    record["imgInfoDcm"] = study_url(base_url, study_uid)
    return record


NO_ANSWER = "无应答"


def _head(message: str) -> str:
    """A message up to its first colon, comma or bracket: the reason's name, without the values."""
    for mark in ("：", "，", "（", "「", ":"):
        message = message.split(mark, 1)[0]
    return message.strip()[:40]


@dataclass(slots=True)
class Verdict:
    """One hop-1 answer judged: per-record flags, failure kinds, the exams acknowledged (succFlag 1 or 0), and
    the text Locust records as the request's failure (None: every record answered 1)."""

    flags: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    acknowledged: list[str] = field(default_factory=list)
    failure: str | None = None


def judge(message: dict[str, Any], status: int, body: Any, transport: str = "") -> Verdict:
    """Check an answer as the hospital does (`read_answers`: envelope code, then each record's succFlag)."""
    batch = message["data"]
    ex = Exchange(url=HOP1.path, request=message, status=status or None)
    if not status:
        ex.error, ex.detail = "connection", f"连接失败 {transport}".strip()
    elif isinstance(body, dict) and "code" in body:
        ex.response = body
    else:
        ex.error, ex.detail = "non_json", f"HTTP {status}，应答不是报文"
    code, envelope_message, answers = read_answers(ex, batch, {})
    v = Verdict()
    for a in answers:
        v.flags[a.flag if a.flag is not None else NO_ANSWER] += 1
        if a.flag in ("1", "0"):
            v.acknowledged.append(a.index)
        if not ex.ok:
            v.kinds[f"{NO_ANSWER}：{_head(ex.detail)}"] += 1
        elif a.flag is None:
            v.kinds[f"报文被拒 code {code}：{_head(envelope_message)}"] += 1
        elif a.flag != "1":
            v.kinds[f"succFlag {a.flag}：{_head(a.message)}"] += 1
    if v.kinds:
        v.failure = "；".join(f"{k} ×{n}" for k, n in v.kinds.most_common(3))
    return v
