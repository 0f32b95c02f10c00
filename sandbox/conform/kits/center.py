"""The center kit: `sandbox conform center --url http://…/mie/api/mie/saveExamRpotImgInfo`.

The kit plays both neighbours of the center under test. As the hospitals it sends hop-1 messages (as
`--as-code/--as-key`, by default the sandbox's first configured hospital) whose report PDF and DICOM it serves from
its own server; as the province it receives the center's hop-2 forwards on the same server (the URL it prints must
be configured as the center's province address, and the server's host:port allowed for fetching files).

Each check sends what it needs itself; what several checks share (the valid exams and their forwards, the
province's faults) is done once, on first use, so `--only` works for any subset.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from sandbox.config import Institution, Settings
from sandbox.conform.kit import Kit, KitError, Options, Unreachable, check
from sandbox.conform.kits.center_cases import RULE_TITLES, Case, RuleClass, cases
from sandbox.conform.kits.center_media import DICOM_ACCEPT, page_text, sop_uids
from sandbox.conform.kits.center_peer import Fault, Forward, Peer, Served
from sandbox.conform.model import Exchange, Outcome, Role
from sandbox.conform.probe import Reply
from sandbox.spec.checksums import uscc_valid
from sandbox.spec.fields import DATA_MAX_CHARS, ENVELOPE_FIELDS, HOP1, HOP2
from sandbox.spec.formats import china_now, make_msgid, parse_msgid
from sandbox.synth.batching import envelope
from sandbox.synth.dataset import write_exam_files
from sandbox.synth.dicom import ImageSpec
from sandbox.synth.exams import Exam, ExamFactory
from sandbox.synth.urls import study_url
from sandbox.validate import data_length, validate_message

T = TypeVar("T")

# Small studies: the kit sends a dozen exams; the center under test fetches each.
KIT_IMAGES = ImageSpec(slices=2, matrix=64, xray_matrix=64, us_shape=(64, 64), us_images=1)
BACKLOG_PER_MESSAGE = 5  # exams per hop-1 message while the kit's province is down
PARALLEL = 4  # hop-1 messages of the per-field checks in flight at once
EVIDENCE_CASES = 8  # failing cases whose exchanges a check keeps (all are listed in its detail)
# The file fields of hop 1 and the links of hop 2 that stand in for them.
PDF, DCM = "examRpotPdfI", "imgInfoDcm"
FILE_WORDS = {PDF: ("PDF", "pdf", "报告"), DCM: ("DICOM", "dicom", "影像", "实例")}
HOP2_NAME = {"postcode": "poscode"}  # hop 1's spelling → hop 2's (ERRATA #4)


@dataclass
class Sent:
    """A hop-1 message the kit sent and the center's answer."""

    message: dict[str, Any]
    reply: Reply

    @property
    def answer(self) -> dict[str, Any] | None:
        value = self.reply.json
        return value if isinstance(value, dict) else None

    def entry(self, position: int) -> tuple[dict[str, Any] | None, str]:
        """The answer's entry for record `position` (0-based): by position when the answer has one entry per
        record, else by hiImgIndx, else the single summary entry (ERRATA #14); or why there is none."""
        answer = self.answer
        if answer is None:
            return None, self.reply.error or f"应答不是 JSON（HTTP {self.reply.status}）"
        data = answer.get("data")
        records = self.message.get("data") or []
        if not isinstance(data, list) or not data:
            return None, f"应答 code {answer.get('code')}，没有逐条结果（data 为空或不是列表）：{answer.get('message', '')}"
        entries = [e for e in data if isinstance(e, dict)]
        if len(entries) == len(data) == len(records):
            return entries[position], ""
        index = records[position].get("hiImgIndx") if position < len(records) else None
        for e in entries:
            if index and (e.get("hiImgIndx") or e.get("hiImgIdx")) == index:
                return e, ""
        if len(entries) == 1:
            return entries[0], "（汇总式应答，一条代表整批，勘误 E14）"
        return None, f"应答 data 有 {len(data)} 条，无法对应第 {position + 1} 条记录"


def flag_of(entry: dict[str, Any] | None) -> str:
    return "" if entry is None else str(entry.get("succFlag", "")).strip()


def message_of(entry: dict[str, Any] | None) -> str:
    return "" if entry is None else str(entry.get("message") or "")


def names(text: str, code: str, name: str) -> bool:
    return code in text or name in text


def same_value(a: Any, b: Any) -> bool:
    if a == b:
        return True
    try:
        return Decimal(str(a)) == Decimal(str(b))
    except InvalidOperation:
        return str(a).strip() == str(b).strip()


class CenterKit(Kit):
    role: ClassVar[Role] = "center"

    def __init__(self, options: Options, say: Callable[[str], None] = print) -> None:
        super().__init__(options, say)
        defaults = Settings()
        self.hospital = self._sender(defaults)
        self.uscc = options.institution or defaults.center.uscc
        stamp = china_now().strftime("%Y%m%d%H%M%S")
        # New exams on every run (a rerun against the same center must not meet its own earlier indexes).
        self.factory = ExamFactory(self.hospital, self.uscc, f"{options.seed}-{stamp}", index_profile=options.profile)
        self.peer: Peer | None = None
        self.root: Path | None = None
        self._next_exam = 0
        self._seq = 0
        self._once: dict[str, asyncio.Task[Any]] = {}

    def _sender(self, defaults: Settings) -> Institution:
        first = defaults.hospitals[0]
        code = self.options.sender_code
        if code is None:
            inst = first
        else:
            inst = defaults.institution(code) or first.model_copy(update={"code": code, "name": f"{code} 医疗机构"})
        return inst.model_copy(update={"key": self.options.sender_key}) if self.options.sender_key else inst

    # ---- set-up --------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self.options.url is not None
        return self.options.url

    async def start(self) -> None:
        o = self.options
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise KitError(f"--url「{self.url}」不是 http(s) 地址")
        public = o.public_host or (o.listen_host if o.listen_host not in ("0.0.0.0", "::") else "127.0.0.1")
        self.root = Path(tempfile.mkdtemp(prefix="conform-center-"))
        self.peer = Peer(o.listen_host, o.listen_port, public, stall_cap=o.wait + o.timeout)
        try:
            await self.peer.start()
        except OSError as e:
            await self.stop()
            raise KitError(f"本工具无法在 {o.listen_host}:{o.listen_port} 上监听：{e}") from None
        reply = await self.probe.post(self.url, {})
        if reply.status is None:
            await self.stop()
            raise Unreachable(f"{self.url} 没有应答：{reply.error}")
        peer = self.peer
        self.say(f"本工具扮演省级模块：请把被测共享中心的第二跳地址配置为 {peer.province_url}")
        key = "（--as-key 给出的密钥）" if o.sender_key else f"key {self.hospital.key}"
        self.say(f"本工具扮演医疗机构 {self.hospital.code}（{key}）发送第一跳：被测共享中心须登记此机构")
        self.say(f"本工具从 {peer.base} 提供报告 PDF 与 DICOM：被测共享中心须允许从 {peer.public_host}:{peer.port} "
                 "下载（如沙箱的 allowed_fetch_hosts）")

    async def stop(self) -> None:
        for task in self._once.values():
            task.cancel()
        await asyncio.gather(*self._once.values(), return_exceptions=True)
        if self.peer is not None:
            await self.peer.stop()
        if self.root is not None:
            await asyncio.to_thread(shutil.rmtree, self.root, True)

    async def once(self, name: str, make: Callable[[], Awaitable[T]]) -> T:
        """Run a step several checks share once; later callers get its result."""
        if name not in self._once:
            self._once[name] = asyncio.ensure_future(make())
        result: T = await asyncio.shield(self._once[name])
        return result

    # ---- building and sending ------------------------------------------------------------------

    async def exam(self) -> tuple[Exam, dict[str, Any]]:
        """A new exam whose files the kit serves, and its hop-1 record."""
        assert self.peer is not None and self.root is not None
        exam = self.factory.exam(self._next_exam)
        self._next_exam += 1
        entry = await asyncio.to_thread(write_exam_files, exam, self.root, dicom=True, pdf=True, spec=KIT_IMAGES,
                                        embedded_font=False)
        served = Served(self.root / entry["report"]["path"],
                        {d["sopInstanceUID"]: self.root / d["path"] for d in entry["dicom"]})
        self.peer.exams[exam.exam_id] = served
        self.peer.studies[exam.study_uid] = served
        record = exam.record(self.peer.base)
        return exam, record

    def message(self, records: list[dict[str, Any]], **head: Any) -> dict[str, Any]:
        self._seq += 1
        msg = envelope(records, self.hospital, china_now(), self._seq)
        msg.update(head)
        return msg

    async def send(self, message: Any, timeout: float | None = None) -> Sent:
        reply = await self.probe.post(self.url, message, timeout=timeout)
        return Sent(message if isinstance(message, dict) else {}, reply)

    async def forwarded(self, indexes: list[str], wait: float | None = None) -> list[Forward]:
        """Wait until every index has reached the kit's province (answered), bounded by `--wait`; the forwards
        that carried them."""
        assert self.peer is not None
        peer = self.peer
        await peer.wait_for(lambda: all(any(f.answered not in ("", "http-503", "stall") for f in peer.carrying(i))
                                        for i in indexes), self.options.wait if wait is None else wait)
        return [f for f in peer.forwards if set(f.indexes) & set(indexes)]

    # ---- shared steps ----------------------------------------------------------------------------

    async def _valid(self) -> ValidRun:
        made = [await self.exam() for _ in range(2)]
        records = [record for _, record in made]
        return ValidRun([exam for exam, _ in made], records, await self.send(self.message(records)))

    async def valid(self) -> ValidRun:
        return await self.once("valid", self._valid)

    async def valid_forwarded(self) -> ValidRun:
        run = await self.valid()

        async def wait() -> list[Forward]:
            return await self.forwarded([r["hiImgIndx"] for r in run.records])

        run.forwards = await self.once("valid-forwarded", wait)
        return run

    def hop2_of(self, run: ValidRun, position: int) -> tuple[dict[str, Any] | None, Forward | None]:
        index = run.records[position]["hiImgIndx"]
        for f in run.forwards:
            for rec, key in zip(f.records, f.indexes, strict=True):
                if key == index:
                    return rec, f
        return None, None

    async def sentinel(self) -> tuple[Sent, bool]:
        """A new valid exam sent now and waited for at the province: once it arrives, what the center queued
        before it has had its turn (a blind resend would have come before it)."""
        _, record = await self.exam()
        sent = await self.send(self.message([record]))
        forwards = await self.forwarded([record["hiImgIndx"]])
        return sent, bool(forwards)

    # ---- envelope --------------------------------------------------------------------------------

    @check("C-URL")
    async def check_url(self) -> Outcome:
        path = urlsplit(self.url).path
        run = await self.valid()
        reply = run.sent.reply
        answer = run.sent.answer
        problems = []
        if not path.rstrip("/").endswith(HOP1.path):
            problems.append(f"地址路径为「{path}」，文档为「{HOP1.path}」")
        if answer is None:
            problems.append(f"合法报文的应答不是 JSON 对象（HTTP {reply.status}）{reply.error}")
        else:
            missing = [k for k in ("code", "type", "message", "data") if k not in answer]
            if missing:
                problems.append(f"应答缺少 {'、'.join(missing)}")
        if problems:
            return Outcome.failed("；".join(problems), [reply.exchange])
        return Outcome.passed(f"POST {path} 应答 HTTP {reply.status}，含 code/type/message/data", [reply.exchange])

    async def _refused(self, label: str, body: Any, expect_field: str | None = None,
                       erratum: int | None = None) -> tuple[bool, str, Exchange]:
        """Send one broken envelope; refused means a JSON answer with a non-zero code. Under --mode lenient a
        break the document's example itself makes (`erratum`) may also be accepted."""
        reply = await self.probe.post(self.url, body)
        answer = reply.json
        if reply.status is None:
            return False, f"{label}：没有应答（{reply.error}）", reply.exchange
        if not isinstance(answer, dict) or "code" not in answer:
            return False, f"{label}：应答不是含 code 的 JSON（HTTP {reply.status}）", reply.exchange
        code = answer.get("code")
        text = str(answer.get("message", ""))
        if code in (0, "0"):
            if erratum is not None and self.options.mode == "lenient":
                return True, f"{label}：应答 code 0（宽松：文档示例即如此，勘误 E{erratum}，接受）", reply.exchange
            return False, f"{label}：应答 code 0（未拒收）", reply.exchange
        named = "" if expect_field is None or expect_field in text else f"，但 message 未点名 {expect_field}"
        return True, f"{label}：code {code}「{text[:80]}」{named}", reply.exchange

    async def _envelope_cases(self, cases_: Sequence[tuple[str, Any, str | None]]) -> Outcome:
        results = []
        for label, body, f in cases_:
            erratum = None
            if f is not None and isinstance(body, dict):  # does the document's own example break it too?
                soft = [p for p in validate_message(body, hop=1, mode="lenient", index_profile=self.options.profile)
                        .warnings if p.record is None and p.field == f]
                erratum = next((p.erratum for p in soft if p.erratum), None)
            results.append(await self._refused(label, body, f, erratum))
        bad = [r for r in results if not r[0]]
        lines = "\n".join(r[1] for r in results)
        if bad:
            return Outcome.failed(f"{len(bad)}/{len(results)} 种错误未以非 0 的 code 拒收：" + "；".join(r[1] for r in bad),
                                  [r[2] for r in bad], lines)
        return Outcome.passed(f"{len(results)} 种错误均以非 0 的 code 拒收", [r[2] for r in results[:3]], lines)

    async def template(self) -> dict[str, Any]:
        """The record the envelope and per-field checks break: a valid exam of the kit that is never sent whole
        (so a center that wrongly stores a broken copy does not meet it again in another check)."""
        async def make() -> dict[str, Any]:
            return (await self.exam())[1]
        return dict(await self.once("template", make))

    @check("C-ENV-JSON")
    async def check_env_json(self) -> Outcome:
        msg = json.dumps(self.message([await self.template()]), ensure_ascii=False).encode("utf-8")
        return await self._envelope_cases([
            ("不完整的 JSON", msg[: len(msg) // 2], None),
            ("JSON 不是对象（数组）", b"[]", None),
            ("不是 UTF-8 编码（GBK）", msg.decode("utf-8").encode("gbk", errors="replace"), None),
        ])

    @check("C-ENV-CTYPE")
    async def check_env_content_type(self) -> Outcome:
        # a valid exam, so that a center ignoring the type answers code 0 rather than refusing the record
        _, record = await self.exam()
        body = json.dumps(self.message([record]), ensure_ascii=False).encode("utf-8")
        reply = await self.probe.post(self.url, body, headers={"Content-Type": "text/plain; charset=utf-8"})
        answer = reply.json
        code = answer.get("code") if isinstance(answer, dict) else None
        if reply.status is not None and (reply.status == 415 or code not in (None, 0, "0")):
            return Outcome.passed(f"Content-Type text/plain：HTTP {reply.status}，code {code}", [reply.exchange])
        return Outcome.failed(f"Content-Type text/plain 的报文：HTTP {reply.status}，code {code}（期望拒收）"
                              f"{reply.error}", [reply.exchange])

    @check("C-ENV-HEAD")
    async def check_env_head(self) -> Outcome:
        base = self.message([await self.template()])
        out = []
        for f in ENVELOPE_FIELDS:
            msg = self.message(base["data"])
            msg.pop(f.code)
            out.append((f"缺少 {f.code}（{f.name}）", msg, f.code))
        return await self._envelope_cases(out)

    @check("C-ENV-INFNO")
    async def check_env_infno(self) -> Outcome:
        rec = await self.template()
        return await self._envelope_cases([
            (f"infno 为第二跳的 {HOP2.infno}", self.message([rec], infno=HOP2.infno), "infno"),
            ("infno 未定义", self.message([rec], infno="saveSomethingElse"), "infno"),
        ])

    @check("C-ENV-CODE")
    async def check_env_code(self) -> Outcome:
        code = "H99999999999" if self.hospital.code != "H99999999999" else "H99999999998"
        msg = self.message([await self.template()], infCode=code)
        msg["msgid"] = make_msgid(code, china_now(), self._seq)
        return await self._envelope_cases([(f"infCode 为未登记的 {code}", msg, "infCode")])

    @check("C-ENV-KEY")
    async def check_env_key(self) -> Outcome:
        # valid exams: refused by their key alone, and never to be forwarded
        made = [(await self.exam())[1] for _ in range(2)]
        outcome = await self._envelope_cases([
            ("key 错误", self.message([made[0]], key=self.hospital.key + "X"), None),
            ("key 为空", self.message([made[1]], key=""), None),
        ])
        if not outcome.ok:
            return outcome
        assert self.peer is not None
        _, arrived = await self.sentinel()
        leaked = [f for r in made for f in self.peer.carrying(r["hiImgIndx"])]
        if leaked:
            return Outcome.failed(f"密钥不符的报文虽应答非 0 的 code，其检查仍被转发到省级模块（{len(leaked)} 份）",
                                  outcome.exchanges + [f.exchange for f in leaked], outcome.detail)
        outcome.observed += ("；之后一条合法检查已转发，密钥不符的检查没有被转发" if arrived
                             else "（之后的合法检查未在等待时间内转发，无从确认密钥不符的检查未被保存）")
        return outcome

    @check("C-ENV-MSGID")
    async def check_env_msgid(self) -> Outcome:
        rec = await self.template()
        now = china_now().strftime("%Y%m%d%H%M%S")
        return await self._envelope_cases([
            ("msgid 太短（不是 12+14+4 位）", self.message([rec], msgid="12345"), "msgid"),
            ("msgid 的时间部分不是时间", self.message([rec], msgid=f"{self.hospital.code[:12]}{'9' * 14}0001"), "msgid"),
            ("msgid 超过 50 个字符", self.message([rec], msgid=f"{self.hospital.code[:12]}{now}" + "1" * 30), "msgid"),
        ])

    @check("C-ENV-DATA")
    async def check_env_data(self) -> Outcome:
        rec = await self.template()
        copies = DATA_MAX_CHARS // max(data_length([rec]), 1) + 1
        big = [dict(rec, hiImgIndx=f"{rec['hiImgIndx']}{n}") for n in range(copies)]
        return await self._envelope_cases([
            ("data 为空数组", self.message([]), "data"),
            ("data 是数字", self.message([], data=12345), "data"),
            (f"data 超过 {DATA_MAX_CHARS} 个字符（{data_length(big)}）", self.message(big), "data"),
        ])

    @check("C-ENV-REPLAY")
    async def check_env_replay(self) -> Outcome:
        run = await self.valid()
        # the accepted message's msgid with one more (valid) exam: taken as a new message, it would be code 0
        _, extra = await self.exam()
        again = dict(run.sent.message, data=[*run.records, extra])
        return await self._envelope_cases([(f"已接收报文的 msgid {again['msgid']} 带上另一条检查", again, "msgid")])

    # ---- the hop-1 table ---------------------------------------------------------------------------

    async def _grade_cases(self, rule: RuleClass) -> Outcome:
        template = await self.template()
        made, notes = cases(rule, template, self.options.profile)
        if not made:
            return Outcome.skip(f"表中没有「{RULE_TITLES[rule]}」可检查的字段")
        limit = asyncio.Semaphore(PARALLEL)

        async def one(case: Case) -> tuple[Case, Sent]:
            async with limit:
                return case, await self.send(self.message([case.record]))

        results = await asyncio.gather(*(one(c) for c in made))
        failing: list[tuple[Case, Sent, str]] = []
        lines: list[str] = []
        lenient = self.options.mode == "lenient"
        for case, sent in results:
            entry, why = sent.entry(0)
            flag, text = flag_of(entry), message_of(entry)
            named = names(text, case.field, case.name)
            soft = not case.document_rule and lenient
            erratum = f"，勘误 E{case.erratum}" if case.erratum else ""
            if entry is None:
                verdict, ok = why, False
            elif flag == "-1" and named:
                verdict, ok = "succFlag -1，点名该字段", True
            elif soft:
                verdict, ok = (f"succFlag {flag}（宽松：文档未规定{erratum}，接受）"
                               + ("，点名该字段" if named else "")), True
            elif flag == "-1":
                verdict, ok = f"succFlag -1，但 message 未点名 {case.field}：「{text[:100]}」", False
            else:
                verdict, ok = f"succFlag {flag or '（无）'}（期望 -1）：「{text[:100]}」", False
            if not case.document_rule and not soft:
                verdict += f"（此规则文档未直接规定{erratum}，严格模式按 -1 判）"
            line = f"{case.label} 发送 {case.sent()} → {verdict}{why if entry is not None else ''}"
            lines.append(("✓ " if ok else "✗ ") + line)
            if not ok:
                failing.append((case, sent, line))
        detail = "\n".join(lines + notes)
        if failing:
            fields = "、".join(c.field for c, _, _ in failing)
            return Outcome.failed(f"{len(failing)}/{len(made)} 个字段未按「{RULE_TITLES[rule]}」拒收并点名：{fields}",
                                  [s.reply.exchange for _, s, _ in failing[:EVIDENCE_CASES]], detail)
        return Outcome.passed(f"{len(made)} 个字段的「{RULE_TITLES[rule]}」均应答 -1 并点名字段",
                              [results[0][1].reply.exchange], detail)

    @check("C-HOP1-REQ")
    async def check_required(self) -> Outcome:
        return await self._grade_cases("required")

    @check("C-HOP1-LEN")
    async def check_length(self) -> Outcome:
        return await self._grade_cases("length")

    @check("C-HOP1-DICT")
    async def check_dictionary(self) -> Outcome:
        return await self._grade_cases("dictionary")

    @check("C-HOP1-FMT")
    async def check_format(self) -> Outcome:
        return await self._grade_cases("format")

    @check("C-HOP1-SUM")
    async def check_checksum(self) -> Outcome:
        return await self._grade_cases("checksum")

    # ---- a valid exam, forwarded -----------------------------------------------------------------

    @check("C-HOP1-OK")
    async def check_valid(self) -> Outcome:
        run = await self.valid()
        answer = run.sent.answer
        ex = [run.sent.reply.exchange]
        if answer is None:
            return Outcome.failed(f"应答不是 JSON（HTTP {run.sent.reply.status}）{run.sent.reply.error}", ex)
        if answer.get("code") not in (0, "0"):
            return Outcome.failed(f"合法的 {len(run.records)} 条检查被整批拒收：code {answer.get('code')}「{answer.get('message')}」", ex)
        bad = []
        for pos in range(len(run.records)):
            entry, why = run.sent.entry(pos)
            if flag_of(entry) != "1":
                bad.append(f"第{pos + 1}条 succFlag {flag_of(entry) or '（无）'}「{message_of(entry)[:200]}」{why}")
        if bad:
            return Outcome.failed("合法记录未应答 1：" + "；".join(bad), ex)
        return Outcome.passed(f"{len(run.records)} 条合法检查：code 0，每条 succFlag 1", ex)

    @check("C-HOP2-FWD")
    async def check_forward(self) -> Outcome:
        run = await self.valid_forwarded()
        if not self._accepted(run):
            return Outcome.skip("合法检查未被接收（见 C-HOP1-OK），无从检查转发", [run.sent.reply.exchange])
        problems: list[str] = []
        exchanges = [f.exchange for f in run.forwards]
        for pos, record in enumerate(run.records):
            hop2, forward = self.hop2_of(run, pos)
            index = record["hiImgIndx"]
            if hop2 is None or forward is None:
                problems.append(f"第{pos + 1}条 {index}：{self.options.wait:g} 秒内未转发到省级模块")
                continue
            report = validate_message({**forward.message, "data": [hop2]}, hop=2, mode=self.options.mode,
                                      index_profile=self.options.profile)
            problems += [f"{index}：{p.text()}" for p in report.errors if p.record is not None]
            for spec in HOP1.fields:
                if spec.code in (PDF, DCM) or spec.code not in record:
                    continue
                code2 = HOP2_NAME.get(spec.code, spec.code)
                if not same_value(record[spec.code], hop2.get(code2)):
                    problems.append(f"{index}：{code2}（{spec.name}）第一跳为「{record[spec.code]}」，第二跳为「{hop2.get(code2)}」")
        if problems:
            return Outcome.failed(f"{len(problems)} 个问题：" + "；".join(problems[:5]), exchanges or [run.sent.reply.exchange],
                                  "\n".join(problems))
        return Outcome.passed(f"{len(run.records)} 条检查已转发，按第二跳表严格校验通过，字段值与第一跳一致", exchanges)

    def _accepted(self, run: ValidRun) -> bool:
        return all(flag_of(run.sent.entry(p)[0]) in ("1", "0") for p in range(len(run.records)))

    async def _forwarded_record(self, pos: int = 0) -> tuple[ValidRun, dict[str, Any] | None, Forward | None]:
        run = await self.valid_forwarded()
        hop2, forward = self.hop2_of(run, pos)
        return run, hop2, forward

    @check("C-HOP2-USCC")
    async def check_uscc(self) -> Outcome:
        run, hop2, forward = await self._forwarded_record()
        if hop2 is None or forward is None:
            return Outcome.skip("没有转发的记录（见 C-HOP2-FWD）")
        value = hop2.get("stogInsUscc")
        if self.options.institution:
            if value != self.options.institution:
                return Outcome.failed(f"stogInsUscc 为「{value}」，期望 --institution 给出的「{self.options.institution}」",
                                      [forward.exchange])
            return Outcome.passed(f"stogInsUscc「{value}」与 --institution 一致", [forward.exchange])
        if not isinstance(value, str) or not uscc_valid(value):
            return Outcome.failed(f"stogInsUscc「{value}」不是校验位正确的统一社会信用代码", [forward.exchange])
        return Outcome.passed(f"stogInsUscc「{value}」校验位正确（未给 --institution，未比对机构）", [forward.exchange])

    @check("C-LINK-REPORT")
    async def check_report_link(self) -> Outcome:
        run, hop2, forward = await self._forwarded_record()
        if hop2 is None:
            return Outcome.skip("没有转发的记录（见 C-HOP2-FWD）")
        record = run.records[0]
        reply = await self.probe.get(str(hop2.get("examRpotLinkUrl")), headers={"Accept": "text/html"})
        kind = reply.headers.get("Content-Type", "")
        if reply.status != 200 or "html" not in kind:
            return Outcome.failed(f"报告链接应答 HTTP {reply.status}，类型「{kind}」{reply.error}（期望 200 的 HTML 页面）",
                                  [reply.exchange])
        text = page_text(reply.text)
        shown = [c for c in ("psnName", "imgExamItem", "examDate", "diagRslt", "hiImgIndx")
                 if str(record.get(c, "")) and str(record[c])[:30] in text]
        if len(shown) < 2:
            return Outcome.failed(f"报告页面未显示本次检查（只找到 {shown or '无'}；期望患者姓名、检查项目、日期、诊断结果中至少两项）",
                                  [reply.exchange])
        return Outcome.passed(f"报告页面 HTML，显示 {'、'.join(shown)}", [reply.exchange])

    @check("C-LINK-VIEWER")
    async def check_viewer_link(self) -> Outcome:
        run, hop2, forward = await self._forwarded_record()
        if hop2 is None:
            return Outcome.skip("没有转发的记录（见 C-HOP2-FWD）")
        exam = run.exams[0]
        link = str(hop2.get("imgInfoLinkUrl"))
        reply = await self.probe.get(link, headers={"Accept": "text/html"})
        kind = reply.headers.get("Content-Type", "")
        if reply.status != 200 or "html" not in kind:
            return Outcome.failed(f"影像链接应答 HTTP {reply.status}，类型「{kind}」{reply.error}（期望 200 的 HTML 页面）",
                                  [reply.exchange])
        served = self.peer.studies[exam.study_uid] if self.peer else None
        uids = [exam.study_uid, exam.exam_id, *(served.instances if served else ())]
        if not any(u in reply.text or u in link for u in uids):
            return Outcome.failed("影像页面及其地址中找不到本次检查（StudyInstanceUID、SOP Instance UID 均未出现）",
                                  [reply.exchange])
        return Outcome.passed("影像页面 HTML，指向本次检查的影像", [reply.exchange])

    @check("C-LINK-DLD")
    async def check_download_link(self) -> Outcome:
        run, hop2, forward = await self._forwarded_record()
        if hop2 is None or self.peer is None:
            return Outcome.skip("没有转发的记录（见 C-HOP2-FWD）")
        served = set(self.peer.studies[run.exams[0].study_uid].instances)
        reply = await self.probe.get(str(hop2.get("imgDldLink")), headers={"Accept": DICOM_ACCEPT},
                                     timeout=self.options.timeout + self.options.wait)
        kind = reply.headers.get("Content-Type", "")
        if reply.status != 200:
            return Outcome.failed(f"下载地址应答 HTTP {reply.status}{reply.error}", [reply.exchange])
        try:
            got, bad = sop_uids(kind, reply.body)
        except Exception as e:  # noqa: BLE001 - whatever the body is, the verdict is "not DICOM"
            return Outcome.failed(f"下载内容（{kind}）无法解析：{type(e).__name__} {e}", [reply.exchange])
        problems = list(bad)
        if got - served:
            problems.append(f"多出 {len(got - served)} 个本工具未提供的实例：{'、'.join(sorted(got - served)[:3])}")
        if served - got:
            problems.append(f"缺少 {len(served - got)} 个本工具提供的实例：{'、'.join(sorted(served - got)[:3])}")
        if problems:
            return Outcome.failed("；".join(problems), [reply.exchange])
        return Outcome.passed(f"下载地址（{kind.split(';')[0]}）返回的正是本工具提供的 {len(served)} 个 SOP 实例",
                              [reply.exchange])

    # ---- resends and duplicates ------------------------------------------------------------------

    @check("C-HOP1-IDEM")
    async def check_idempotent(self) -> Outcome:
        run = await self.valid_forwarded()
        if not self._accepted(run) or not run.forwards:
            return Outcome.skip("合法检查未被接收或未转发（见 C-HOP1-OK、C-HOP2-FWD）")
        assert self.peer is not None
        again = await self.send(run.sent.message)
        renamed = await self.send(self.message(run.records))
        _, arrived = await self.sentinel()
        exchanges = [again.reply.exchange, renamed.reply.exchange]
        problems = []
        for label, sent in (("同一 msgid 原样重发", again), ("新 msgid 重发相同记录", renamed)):
            for pos in range(len(run.records)):
                entry, why = sent.entry(pos)
                if flag_of(entry) not in ("1", "0"):
                    problems.append(f"{label}：第{pos + 1}条 succFlag {flag_of(entry) or '（无）'}「{message_of(entry)[:120]}」{why}")
        if not arrived:
            return Outcome.skip("重发之后的新检查未在等待时间内转发，无法判断是否重复转发", exchanges)
        for record in run.records:
            carried = self.peer.carrying(record["hiImgIndx"])
            answered = [f for f in carried if f.answered not in ("http-503", "stall")]
            msgids = {f.msgid for f in answered}
            if len(msgids) > 1:
                problems.append(f"{record['hiImgIndx']} 被转发了 {len(msgids)} 次（不同 msgid），相同记录应只保存一次")
                exchanges += [f.exchange for f in answered]
        if problems:
            return Outcome.failed("；".join(problems[:4]), exchanges, "\n".join(problems))
        return Outcome.passed("原样重发与新 msgid 重发均应答成功，未重复转发", exchanges)

    @check("C-HOP1-DUP")
    async def check_duplicate(self) -> Outcome:
        run = await self.valid()
        if not self._accepted(run):
            return Outcome.skip("合法检查未被接收（见 C-HOP1-OK），无从检查重复", [run.sent.reply.exchange])
        first = run.records[0]
        changed = dict(first, imgDscr=str(first.get("imgDscr", "")) + "（内容已改）", diagRslt="另一份诊断结果")
        later = await self.send(self.message([changed]))
        _, twin = await self.exam()
        twin_changed = dict(twin, diagRslt="同批中内容不同的同一索引号")
        inside = await self.send(self.message([twin, twin_changed]))
        problems = []
        entry, why = later.entry(0)
        if flag_of(entry) != "-1" or not names(message_of(entry), "hiImgIndx", "索引"):
            problems.append(f"已保存的索引号以不同内容再次上传：succFlag {flag_of(entry) or '（无）'}「{message_of(entry)[:120]}」"
                            f"{why}（期望 -1 并点名 hiImgIndx）")
        flags = [flag_of(inside.entry(p)[0]) for p in range(2)]
        if "-1" not in flags:
            problems.append(f"同一批中两条不同记录使用同一索引号：succFlag {flags}（期望至少一条 -1）")
        exchanges = [later.reply.exchange, inside.reply.exchange]
        if problems:
            return Outcome.failed("；".join(problems), exchanges)
        return Outcome.passed(f"重复索引号被拒收（跨报文 -1 点名 hiImgIndx；同一批 {flags}）", exchanges)

    # ---- the province's faults ---------------------------------------------------------------------

    async def _fault_run(self, fault: Fault) -> FaultRun:
        """Send one exam whose first forward meets `fault`, and wait for what the center does."""
        assert self.peer is not None
        _, record = await self.exam()
        index = record["hiImgIndx"]
        self.peer.faults[index] = fault
        sent = await self.send(self.message([record]))
        run = FaultRun(fault, index, sent)
        if flag_of(sent.entry(0)[0]) not in ("1", "0") or not (await self.valid_forwarded()).forwards:
            return run  # not accepted, or this center forwards nothing at all: no fault to meet
        peer = self.peer
        if not await peer.wait_for(lambda: peer.carrying(index), self.options.wait):
            return run
        if fault in ("http-503", "stall"):
            # the resend: a second forward carrying the index (the center's own timeout and backoff decide when)
            await peer.wait_for(lambda: len(peer.carrying(index)) >= 2, self.options.wait + self.options.timeout)
        else:
            _, run.sentinel = await self.sentinel()
        run.forwards = peer.carrying(index)
        return run

    async def fault_run(self, fault: Fault) -> FaultRun:
        return await self.once(f"fault-{fault}", lambda: self._fault_run(fault))

    async def _grade_resend(self, fault: Fault, what: str) -> Outcome:
        run = await self.fault_run(fault)
        exchanges = [run.sent.reply.exchange] + [f.exchange for f in run.forwards]
        if flag_of(run.sent.entry(0)[0]) not in ("1", "0"):
            return Outcome.skip("合法检查未被接收（见 C-HOP1-OK）", exchanges)
        if not run.forwards:
            return Outcome.skip(f"{self.options.wait:g} 秒内未转发（见 C-HOP2-FWD），无从观察{what}后是否重发", exchanges)
        first = run.forwards[0]
        if len(run.forwards) < 2:
            return Outcome.failed(f"第一次转发{what}后，{self.options.wait + self.options.timeout:g} 秒内没有重发（期望同一 msgid、"
                                  "相同内容重发）", exchanges)
        again = run.forwards[1]
        problems = []
        if again.msgid != first.msgid:
            problems.append(f"重发换了 msgid：{first.msgid} → {again.msgid}（应原样重发同一 msgid）")
        if again.message != first.message:
            problems.append("重发的报文内容与第一次不同" + ("" if first.msgid != again.msgid else "（msgid 相同）"))
        if problems:
            return Outcome.failed("；".join(problems), exchanges)
        identical = "逐字节相同" if again.raw == first.raw else "JSON 内容相同"
        return Outcome.passed(f"{what}后以同一 msgid {first.msgid} 重发，报文{identical}", exchanges)

    @check("C-RETRY-5XX")
    async def check_retry_5xx(self) -> Outcome:
        return await self._grade_resend("http-503", "遇到 HTTP 503 ")

    @check("C-RETRY-TIMEOUT")
    async def check_retry_timeout(self) -> Outcome:
        return await self._grade_resend("stall", "遇到不应答（超时）")

    async def _grade_not_resent(self, fault: Fault, flag: str) -> Outcome:
        run = await self.fault_run(fault)
        exchanges = [run.sent.reply.exchange] + [f.exchange for f in run.forwards]
        if flag_of(run.sent.entry(0)[0]) not in ("1", "0"):
            return Outcome.skip("合法检查未被接收（见 C-HOP1-OK）", exchanges)
        if not run.forwards:
            return Outcome.skip(f"{self.options.wait:g} 秒内未转发（见 C-HOP2-FWD），无从观察省级模块应答 {flag} 后是否重发",
                                exchanges)
        if not run.sentinel:
            return Outcome.skip("之后发送的新检查未在等待时间内转发，无法判断是否盲目重发", exchanges)
        if len(run.forwards) > 1:
            return Outcome.failed(f"省级模块应答 succFlag {flag} 后，同一记录又被转发了 {len(run.forwards) - 1} 次",
                                  exchanges)
        return Outcome.passed(f"省级模块应答 succFlag {flag} 后未再转发该记录（之后的新检查已转发；"
                              "共享中心如何记录此结果不在文档接口中，无法从外部观察）", exchanges)

    @check("C-RETRY-REJECT")
    async def check_retry_reject(self) -> Outcome:
        return await self._grade_not_resent("reject", "-1")

    @check("C-RETRY-PARTIAL")
    async def check_retry_partial(self) -> Outcome:
        return await self._grade_not_resent("partial", "0")

    # ---- files -------------------------------------------------------------------------------------

    async def _grade_files(self, label: str, broken: list[tuple[str, str, dict[str, Any]]],
                           timeout: float | None = None, lenient_saves: bool = False) -> Outcome:
        """Send a good exam and the broken ones in one message; the good one must be `1`, each broken one
        -1 or 0 with its message naming the file (with `lenient_saves`, under --mode lenient also 1 whose
        message names the problem: saved with a warning)."""
        _, good = await self.exam()
        records = [good] + [r for _, _, r in broken]
        sent = await self.send(self.message(records), timeout=timeout)
        lines, ok = [], True
        entry, why = sent.entry(0)
        summary = bool(why) and "汇总" in why
        if not summary:
            fine = flag_of(entry) == "1"
            ok &= fine
            lines.append(f"{'✓' if fine else '✗'} 文件完好的第1条：succFlag {flag_of(entry) or '（无）'}{why}"
                         + ("" if fine else f"「{message_of(entry)[:120]}」（期望 1）"))
        for pos, (what, code, _) in enumerate(broken, 1):
            entry, why = sent.entry(pos)
            flag, text = flag_of(entry), message_of(entry)
            spec = next(f for f in HOP1.fields if f.code == code)
            named = names(text, code, spec.name) or any(w in text for w in FILE_WORDS[code])
            fine = named and (flag in ("-1", "0") or (flag == "1" and lenient_saves and self.options.mode == "lenient"))
            ok &= fine
            lines.append(f"{'✓' if fine else '✗'} 第{pos + 1}条（{what}）：succFlag {flag or '（无）'}「{text[:160]}」{why}"
                         + ("" if fine else f"（期望 -1 或 0，message 说明 {code} 的问题）"))
        exchanges = [sent.reply.exchange]
        if not ok:
            return Outcome.failed(f"{label}未报告在对应记录上：" + "；".join(x[2:] for x in lines if x.startswith("✗")),
                                  exchanges, "\n".join(lines))
        return Outcome.passed(f"{label}报告在对应记录上", exchanges, "\n".join(lines))

    async def _broken(self, kind: str, field: str) -> dict[str, Any]:
        assert self.peer is not None
        exam, record = await self.exam()
        name = f"{exam.exam_id}.pdf" if field == PDF else f"{exam.study_uid}.dcm"
        return dict(record, **{field: self.peer.broken_url(kind, name)})

    @check("C-FILE-404")
    async def check_file_404(self) -> Outcome:
        return await self._grade_files("文件不存在（HTTP 404）", [
            ("影像地址 404", DCM, await self._broken("missing", DCM)),
            ("报告 PDF 地址 404", PDF, await self._broken("missing", PDF))])

    @check("C-FILE-TIMEOUT")
    async def check_file_timeout(self) -> Outcome:
        return await self._grade_files("下载影像超时", [("影像地址不应答", DCM, await self._broken("stall", DCM))],
                                       timeout=self.options.timeout + self.options.wait)

    @check("C-FILE-CORRUPT")
    async def check_file_corrupt(self) -> Outcome:
        return await self._grade_files("影像文件损坏", [("影像地址返回的不是 DICOM", DCM, await self._broken("corrupt", DCM))])

    @check("C-FILE-MISMATCH")
    async def check_file_mismatch(self) -> Outcome:
        assert self.peer is not None
        other, _ = await self.exam()  # never sent: its study is another patient's
        _, record = await self.exam()
        record = dict(record, **{DCM: study_url(self.peer.base, other.study_uid)})
        return await self._grade_files("影像与记录不符（另一位患者的检查）", [("影像属于另一位患者", DCM, record)],
                                       lenient_saves=True)

    # ---- hop-2 messages as a whole ---------------------------------------------------------------

    async def backlog(self) -> tuple[int, bool]:
        """While the kit's province answers 503 to everything, upload more exams than one hop-2 message can
        carry; then let the province back and wait for all of them. (exams sent, all arrived)"""
        assert self.peer is not None
        peer = self.peer
        first = await self.exam()
        count = DATA_MAX_CHARS * 3 // 2 // max(data_length([first[1]]), 1) + 1
        made = [first] + [await self.exam() for _ in range(count - 1)]
        indexes = [r["hiImgIndx"] for _, r in made]
        peer.down = True
        try:
            for start in range(0, count, BACKLOG_PER_MESSAGE):
                await self.send(self.message([r for _, r in made[start:start + BACKLOG_PER_MESSAGE]]))
            # the center has met the outage (or never forwards): its next tries see the province back
            await peer.wait_for(lambda: any(f.answered == "http-503" and set(f.indexes) & set(indexes)
                                            for f in peer.forwards), self.options.wait)
        finally:
            peer.down = False
        arrived = await self.forwarded(indexes, self.options.wait + self.options.timeout)
        return count, all(any(f.answered not in ("http-503", "stall") for f in peer.carrying(i)) for i in indexes) \
            and bool(arrived)

    @check("C-HOP2-BATCH")
    async def check_batches(self) -> Outcome:
        run = await self.valid_forwarded()
        assert self.peer is not None
        if not run.forwards:
            return Outcome.skip("合法检查未转发（见 C-HOP2-FWD），无从检查第二跳报文")
        count, drained = await self.once("backlog", self.backlog)
        forwards = list(self.peer.forwards)
        problems: list[tuple[str, Forward]] = []
        seen: dict[str, Forward] = {}
        for f in forwards:
            m = f.message
            if not isinstance(m, dict):
                problems.append(("报文不是 JSON 对象", f))
                continue
            if m.get("infno") != HOP2.infno:
                problems.append((f"infno 为「{m.get('infno')}」，应为 {HOP2.infno}", f))
            size = data_length(m.get("data"))
            if size > DATA_MAX_CHARS:
                problems.append((f"data 有 {size} 个字符，超过 {DATA_MAX_CHARS}", f))
            msgid = f.msgid or ""
            parsed = parse_msgid(msgid)
            if parsed is None:
                problems.append((f"msgid「{msgid}」不是 机构编号(12)+yyyyMMddHHmmss(14)+顺序号(4)", f))
            elif not str(m.get("infCode", "")).startswith(parsed[0]):
                problems.append((f"msgid 的机构编号「{parsed[0]}」与 infCode「{m.get('infCode')}」不符", f))
            if self.options.key and m.get("key") != self.options.key:
                problems.append(("key 与 --key 给出的不同", f))
            report = validate_message(dict(m, data=[{}]), hop=2, mode=self.options.mode)
            problems += [(p.text(), f) for p in report.errors if p.record is None and p.field != "data"]
            earlier = seen.setdefault(msgid, f)
            if earlier is not f and earlier.message != m:
                problems.append((f"msgid {msgid} 用于两份不同的报文", f))
        sizes = [data_length(f.message.get("data")) for f in forwards if isinstance(f.message, dict)]
        observed = (f"省级模块暂停期间积压 {count} 条检查（超过一份报文的容量）后恢复，"
                    + ("全部送达" if drained else f"{self.options.wait + self.options.timeout:g} 秒内未全部送达")
                    + f"；共收到 {len(forwards)} 份第二跳报文（{len(seen)} 个 msgid），data 最大 {max(sizes, default=0)} 个字符")
        if not drained:
            problems.append(("积压的检查在省级模块恢复后未全部转发", forwards[-1]))
        if problems:
            return Outcome.failed(f"{observed}；{len(problems)} 个问题：" + "；".join(p for p, _ in problems[:4]),
                                  [f.exchange for _, f in problems[:EVIDENCE_CASES]],
                                  "\n".join(f"{f.msgid}: {p}" for p, f in problems))
        return Outcome.passed(observed + "，msgid 与报文头均合规", [forwards[0].exchange])


@dataclass
class ValidRun:
    """The valid exams sent once and shared by several checks."""

    exams: list[Exam]
    records: list[dict[str, Any]]
    sent: Sent
    forwards: list[Forward] = field(default_factory=list)


@dataclass
class FaultRun:
    fault: Fault
    index: str
    sent: Sent
    forwards: list[Forward] = field(default_factory=list)
    sentinel: bool = False



KIT = CenterKit
