"""The hospital kit: `sandbox conform hospital` plays the sharing center for a HIS and grades what it sends.

Passive: `start` opens the session (`hospital_session.Session`: the kit's front door on `--listen`, the sandbox's
own center behind it) and prints the URL and the institution codes and keys the HIS may use. `run` waits until
the session ends (`--messages N` or Ctrl-C), then grades every message it received and yields one result per
requirement of `catalogue/hospital.yaml`, aggregated over all messages: pass when every message conformed, fail
naming the messages and records at fault with their exchanges, skip when nothing was sent that exercises it.

The fields are graded by the sandbox's one validator (`sandbox.validate`) in the kit's `--mode`; each of its
problem codes falls in one rule class (missing, length, dictionary, format, checksum, undefined field, duplicate)
or, when it is a reading of the document's examples, in the ERRATA class that names the row. Files are graded from
what the kit's center found when it fetched them (its status API, kept as evidence).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from sandbox.conform.kit import Kit, KitError, check
from sandbox.conform.kits.hospital_session import FAULTS, Seen, Session, SessionConfig, record_indexes
from sandbox.conform.model import Exchange, Outcome, Requirement, Result, Role
from sandbox.spec.fields import HOP1
from sandbox.spec.formats import CHINA_TIME
from sandbox.spec.messages import RESULTS
from sandbox.validate import Level, Problem, Report, validate_message

SHOWN = 5  # messages (and their exchanges) named in a result; the detail lists every problem
DEFAULT_STALL = 60.0
MSGID_AHEAD_S = 300  # a msgid time later than its receipt by more than this is implausible

# The validator's record problem codes by rule class (a code not named here is a format problem).
RECORD_CLASSES: dict[str, frozenset[str]] = {
    "H-HOP1-REQ": frozenset({"missing", "empty"}),
    "H-HOP1-LEN": frozenset({"too_long", "decimal_precision", "decimal_scale"}),
    "H-HOP1-DICT": frozenset({"not_dict_code", "external_code", "multi_separator"}),
    "H-HOP1-CHECKSUM": frozenset({"idcard_checksum", "uscc_checksum", "index_mismatch"}),
    "H-HOP1-UNDEFINED": frozenset({"unknown_field", "foreign_field", "duplicate_key"}),
    "H-DUP-BATCH": frozenset({"duplicate_in_batch"}),
}
RULE_WORDS = {"H-HOP1-REQ": "必填项", "H-HOP1-LEN": "长度", "H-HOP1-DICT": "字典代码", "H-HOP1-FORMAT": "类型与格式",
              "H-HOP1-CHECKSUM": "校验位", "H-HOP1-UNDEFINED": "未定义字段", "H-DUP-BATCH": "批内索引号重复",
              "H-ENV-HEAD": "报文头", "H-DATA": "data", "H-MSGID-FORMAT": "报文ID"}
# Envelope codes of the center's answer, by the requirement they break.
CENTER_CODES = {"H-ENV-URL": {1002}, "H-ENV-JSON": {1001, 1004, 1005, 1008}, "H-ENV-HEAD": {1010},
                "H-ENV-AUTH": {1020, 1021, 1022}, "H-DATA": {1003, 1030}, "H-MSGID-UNIQUE": {1040}}
# Why the center refused a record for its files (receipt reasons), and the reasons that are the kit's own limits.
FILE_REASONS = frozenset({"fetch", "file", "not_dicom", "not_pdf", "too_large", "quota", "not_pushed", "conflict"})
KIT_LIMITS = frozenset({"host_not_allowed"})


def erratum_of(p: Problem) -> int | None:
    """The ERRATA row a problem is a reading of. The strict validator reports the examples' blank infCode
    (`" "`, ERRATA #11) as an empty required field without the row; it is named here."""
    if p.erratum is None and p.record is None and p.field == "infCode" and p.code == "env_empty":
        return 11
    return p.erratum


def rule_class(p: Problem) -> str:
    """The requirement a validator problem belongs to."""
    code = p.code.removesuffix("_strict")
    if p.record is None and p.field == "msgid":
        return "H-MSGID-FORMAT"
    if erratum_of(p) is not None:
        return "H-ERRATA"
    if p.record is None:
        return "H-DATA" if code.startswith("env_data") else "H-ENV-HEAD"
    return next((rid for rid, codes in RECORD_CLASSES.items() if code in codes), "H-HOP1-FORMAT")


def where(seen: Seen, p: Problem) -> str:
    return f"报文 {seen.label} {p.text()}"


def same_body(a: Seen, b: Seen) -> bool:
    if a.message is not None and b.message is not None:
        return bool(a.message == b.message)
    return a.raw == b.raw


@dataclass
class FileView:
    """What the kit's center found about one record's files."""

    seen: Seen
    index: str
    exchange: Exchange
    pdf: str | None = None  # None: fine; else why not (Chinese)
    dicom: str | None = None
    disagree: str | None = None
    fetched: bool = True  # False: the center did not fetch (the record was refused for its fields)
    kit_limit: str = ""  # the kit could not fetch (host not allowed): a setting of the kit, not the HIS's fault


class HospitalKit(Kit):
    role: ClassVar[Role] = "hospital"
    check_cap: ClassVar[float] = 60.0

    # ---- session --------------------------------------------------------------------------------------

    def config(self) -> SessionConfig:
        o = self.options
        faults = [str(f) for f in o.extra.get("probe_retries") or ()]
        wrong = [f for f in faults if f not in FAULTS]
        if wrong:
            raise KitError(f"--probe-retries 只能是 {'、'.join(FAULTS)}，收到「{wrong[0]}」")
        return SessionConfig(
            listen_host=o.listen_host, listen_port=o.listen_port, public_host=o.public_host, mode=o.mode,
            enforce=o.enforce, institution=o.institution, key=o.key, faults=faults,
            stall=float(o.extra.get("stall") or DEFAULT_STALL), messages=o.messages, timeout=o.timeout,
            seed=o.seed, profile=o.profile, fetch_hosts=list(o.extra.get("fetch_hosts") or ()))

    async def start(self) -> None:
        if self.options.messages is not None and self.options.messages < 1:
            raise KitError(f"--messages 至少为 1，收到 {self.options.messages}")
        if self.options.institution and not self.options.key:
            raise KitError("给了 --institution 时还要给 --key：被测医疗机构的密钥")
        self.session = Session(self.config(), self.say)
        try:
            await self.session.__aenter__()
        except ValueError as exc:  # a setting the center refuses (an --allow-fetch-host entry)
            raise KitError(f"设置有误：{exc}") from exc
        except OSError as exc:
            raise KitError(f"无法在 {self.options.listen_host}:{self.options.listen_port} 监听："
                              f"{exc.strerror or exc}") from exc
        self.options.url = self.session.url  # the report names where the HIS was pointed
        self.reports: list[tuple[Seen, Report]] = []
        self.files: list[FileView] = []
        self.end_reason = ""
        self._announce()

    def _announce(self) -> None:
        c, s = self.session.config, self.session
        self.say(f"一致性测试 · 医疗机构：请把 HIS 的共享中心地址（saveExamRpotImgInfo）设为 {s.url}")
        self.say("接受的交易机构编号与密钥（infCode / key）：")
        for inst in s.accepted_institutions():
            self.say(f"  {inst.code}  key {inst.key}  {inst.name}")
        answer = ("按严格模式拒收不合格的记录（--enforce）" if c.enforce and c.mode == "strict"
                  else "与沙箱共享中心相同（宽松模式）")
        self.say(f"评判：{'严格' if c.mode == 'strict' else '宽松'}模式（{c.mode}）；应答：{answer}")
        hosts = "、".join(c.fetch_hosts) if c.fetch_hosts else "本机回环地址的任意端口"
        self.say(f"文件：本工具的共享中心从 {hosts} 取 PDF 与 DICOM（其他主机用 --allow-fetch-host 主机:端口 添加）")
        for n, fault in enumerate(c.faults, 1):
            what = "以 HTTP 503 应答" if fault == "5xx" else f"不应答（最多 {c.stall:g} 秒，等医疗机构超时）"
            self.say(f"重试探测：第 {n} 个新报文的第一次请求{what}，检查重发是否保持 msgid 与报文体")
        end = f"收到 {c.messages} 个报文后结束，或按 Ctrl-C 结束" if c.messages else "按 Ctrl-C 结束并生成报告"
        self.say(f"等待医疗机构发送……（{end}）")

    async def stop(self) -> None:
        session = getattr(self, "session", None)
        if session is not None:
            await session.__aexit__(None, None, None)

    async def run(self, reqs: list[Requirement]) -> AsyncIterator[Result]:
        self.end_reason = await self.session.collect()
        self.say(self.end_reason)
        await self._grade()
        for req in reqs:
            yield await self.run_check(req)

    # ---- grading ----------------------------------------------------------------------------------------

    @property
    def posts(self) -> list[Seen]:
        """Requests on the document's path and method."""
        return [s for s in self.session.seen if s.on_path]

    @property
    def answered(self) -> list[Seen]:
        """Messages the kit's center answered (not the kit's own fault answers)."""
        return [s for s in self.posts if s.fault is None and s.answer is not None]

    async def _grade(self) -> None:
        mode = self.options.mode
        graded: list[Seen] = []
        for s in self.posts:  # an identical resend (same msgid, same body) is graded once, as its first attempt
            if s.message is not None and not any(g.msgid == s.msgid and same_body(g, s) for g in graded):
                graded.append(s)
        self.reports = [(s, validate_message(s.message, hop=1, mode=mode, index_profile=self.options.profile))
                        for s in graded]
        views: dict[str, FileView] = {}
        for seen in self.answered:
            if seen.code not in (0, -1):
                continue
            for index in record_indexes(seen.message):
                reply = await self.probe.get(self.session.center_api(index))
                views[index] = file_view(seen, index, reply.exchange, reply.json, self.options.mode)
        self.files = list(views.values())

    def problems(self, rid: str) -> tuple[list[tuple[Seen, list[Problem]]], list[tuple[Seen, Problem]]]:
        """(messages with errors of class `rid`, each with its errors), (warnings of the class) over the session."""
        bad: list[tuple[Seen, list[Problem]]] = []
        notes: list[tuple[Seen, Problem]] = []
        for seen, report in self.reports:
            mine = [p for p in report.problems if rule_class(p) == rid]
            errors = [p for p in mine if p.level is Level.ERROR]
            if errors:
                bad.append((seen, errors))
            notes += [(seen, p) for p in mine if p.level is Level.WARNING]
        return bad, notes

    def center_refusals(self, rid: str) -> list[Seen]:
        """Messages the center refused whole with a code of `rid`. For the envelope rules the kit grades itself
        (header, data) a refusal counts only where the kit's grading found no error: with --enforce the center
        refuses what the kit already named (an ERRATA spelling, say), and one fault is reported once."""
        codes = CENTER_CODES.get(rid, set())
        refused = [s for s in self.answered if s.code in codes]
        if rid in ("H-ENV-HEAD", "H-DATA"):
            valid = {id(s) for s, report in self.reports if not report.errors}
            refused = [s for s in refused if id(s) in valid]
        return refused

    def _rule(self, rid: str, *, what: str = "") -> Outcome:
        """A requirement graded by the validator's problems of its class and the center's envelope codes."""
        if not self.reports:
            return Outcome.skip("没有收到可以解析的报文")
        bad, notes = self.problems(rid)
        refused = [s for s in self.center_refusals(rid) if s not in {b for b, _ in bad}]
        records = sum(len(r.records) for _, r in self.reports)
        if not bad and not refused:
            observed = f"{len(self.reports)} 个报文、{records} 条记录{what or '均符合'}"
            if notes:
                observed += f"（提示 {len(notes)} 处：{summarise_problems(notes)}）"
            return Outcome.passed(observed, detail="\n".join(where(s, p) for s, p in notes))
        lines = [where(s, p) for s, errors in bad for p in errors]
        lines += [f"报文 {s.label}：共享中心整批拒收 code {s.code}：{s.answer.get('message', '')}" for s in refused]
        flat = [(s, p) for s, errors in bad for p in errors]
        parts = []
        if flat:
            parts.append(summarise_problems(flat))
        if refused:
            parts.append("共享中心整批拒收 " + "、".join(f"{s.label} code {s.code}" for s in refused[:SHOWN]))
        messages = [s for s, _ in bad] + refused
        observed = f"{len(messages)} 个报文不符合（{RULE_WORDS.get(rid, '')}）：" + "；".join(parts)
        return Outcome.failed(observed, exchanges=[s.exchange for s in messages[:SHOWN]], detail="\n".join(lines))

    # ---- envelope ---------------------------------------------------------------------------------------

    @check("H-ENV-URL")
    async def env_url(self) -> Outcome:
        seen = self.session.seen
        if not seen:
            return Outcome.failed(f"会话中没有收到任何请求（{self.end_reason}）；请确认 HIS 的地址设为 {self.session.url}")
        stray = [s for s in seen if not s.on_path]
        wrong_type = [s for s in self.posts if s.content_type.split(";")[0].strip().lower() != "application/json"]
        wrong_type += [s for s in self.center_refusals("H-ENV-URL") if s not in wrong_type]
        if not stray and not wrong_type:
            return Outcome.passed(f"{len(seen)} 个请求都是 POST {HOP1.path}，Content-Type application/json")
        lines = [f"请求 #{s.n}：{s.method} {s.path}（应为 POST {HOP1.path}）" for s in stray]
        lines += [f"报文 {s.label}：Content-Type「{s.content_type or '无'}」（应为 application/json）" for s in wrong_type]
        return Outcome.failed("；".join(lines[:SHOWN]) + (f"；另有 {len(lines) - SHOWN} 项" if len(lines) > SHOWN else ""),
                              exchanges=[s.exchange for s in (stray + wrong_type)[:SHOWN]], detail="\n".join(lines))

    @check("H-ENV-JSON")
    async def env_json(self) -> Outcome:
        if not self.posts:
            return Outcome.skip("没有收到 POST 报文")
        bad = [s for s in self.posts if s.json_error]
        bad += [s for s in self.center_refusals("H-ENV-JSON") if s not in bad]
        if not bad:
            return Outcome.passed(f"{len(self.posts)} 个报文都是合法的 UTF-8 JSON 对象")
        lines = [f"报文 {s.label}：{s.json_error or s.answer.get('message', '')}" for s in bad]
        return Outcome.failed(f"{len(bad)} 个报文不是合法 JSON 对象：" + "；".join(lines[:SHOWN]),
                              exchanges=[s.exchange for s in bad[:SHOWN]], detail="\n".join(lines))

    @check("H-ENV-HEAD")
    async def env_head(self) -> Outcome:
        return self._rule("H-ENV-HEAD", what="的报文头均符合")

    @check("H-ENV-AUTH")
    async def env_auth(self) -> Outcome:
        if not self.answered:
            return Outcome.skip("共享中心没有应答任何报文")
        bad = self.center_refusals("H-ENV-AUTH")
        if not bad:
            codes = sorted({str(s.message.get("infCode", "")).strip() for s in self.answered
                            if isinstance(s.message, dict)} - {""})
            return Outcome.passed(f"{len(self.answered)} 个报文均通过鉴权（infCode {'、'.join(codes) or '取自 msgid'}）")
        lines = [f"报文 {s.label}：code {s.code} {s.answer.get('message', '')}" for s in bad]
        return Outcome.failed(f"{len(bad)} 个报文被拒：" + "；".join(lines[:SHOWN]),
                              exchanges=[s.exchange for s in bad[:SHOWN]], detail="\n".join(lines))

    @check("H-DATA")
    async def data(self) -> Outcome:
        return self._rule("H-DATA", what="的 data 均符合")

    # ---- msgid ------------------------------------------------------------------------------------------

    @check("H-MSGID-FORMAT")
    async def msgid_format(self) -> Outcome:
        return self._rule("H-MSGID-FORMAT", what="的报文ID 格式均正确")

    @check("H-MSGID-UNIQUE")
    async def msgid_unique(self) -> Outcome:
        by_msgid: dict[str, list[Seen]] = defaultdict(list)
        for s in self.posts:
            if s.msgid:
                by_msgid[s.msgid].append(s)
        if not by_msgid:
            return Outcome.skip("没有收到带 msgid 的报文")
        reused = [group for group in by_msgid.values() if any(not same_body(group[0], s) for s in group[1:])]
        refused = [s for s in self.center_refusals("H-MSGID-UNIQUE") if not any(s in g for g in reused)]
        if not reused and not refused:
            resent = sum(len(g) - 1 for g in by_msgid.values())
            extra = f"，其中 {resent} 次为原样重发" if resent else ""
            return Outcome.passed(f"{len(by_msgid)} 个 msgid 各对应一个报文{extra}")
        lines = [f"msgid {g[0].msgid} 用于 {len(g)} 个请求（#{'、#'.join(str(s.n) for s in g)}），报文体不同"
                 for g in reused]
        lines += [f"报文 {s.label}：共享中心答 code {s.code} {s.answer.get('message', '')}" for s in refused]
        exchanges = [s.exchange for g in reused for s in g][:SHOWN] + [s.exchange for s in refused][:SHOWN]
        return Outcome.failed("；".join(lines[:SHOWN]), exchanges=exchanges, detail="\n".join(lines))

    @check("H-MSGID-SEQ")
    async def msgid_seq(self) -> Outcome:
        firsts: dict[str, Seen] = {}
        for s in self.posts:
            if s.msgid and len(s.msgid) == 30 and s.msgid[12:].isdigit():
                firsts.setdefault(s.msgid, s)
        if not firsts:
            return Outcome.skip("没有格式正确的 msgid")
        lines: list[str] = []
        last: dict[tuple[str, str], Seen] = {}
        bad: list[Seen] = []
        for s in firsts.values():
            msgid = s.msgid or ""
            key = (msgid[:12], msgid[12:20])
            before = last.get(key)
            if before is not None and int(msgid[26:]) <= int((before.msgid or "")[26:]):
                lines.append(f"报文 {s.label} 的顺序号 {msgid[26:]} 不大于之前报文 {before.label} 的 {(before.msgid or '')[26:]}")
                bad.append(s)
            last[key] = s
            try:
                stamp = datetime.strptime(msgid[12:26], "%Y%m%d%H%M%S").replace(tzinfo=CHINA_TIME).timestamp()
            except ValueError:
                continue  # an invalid time is H-MSGID-FORMAT's
            if stamp > s.received + MSGID_AHEAD_S:
                lines.append(f"报文 {s.label} 的时间 {msgid[12:26]} 晚于收到时间 {int(stamp - s.received)} 秒")
                bad.append(s)
        if not lines:
            return Outcome.passed(f"{len(firsts)} 个报文的顺序号逐个递增，时间不晚于收到时间")
        return Outcome.failed("；".join(lines[:SHOWN]), exchanges=[s.exchange for s in bad[:SHOWN]],
                              detail="\n".join(lines))

    # ---- records ----------------------------------------------------------------------------------------

    @check("H-HOP1-REQ")
    async def hop1_required(self) -> Outcome:
        return self._rule("H-HOP1-REQ", what="的必填字段均齐全")

    @check("H-HOP1-LEN")
    async def hop1_length(self) -> Outcome:
        return self._rule("H-HOP1-LEN", what="的字段长度均不超限")

    @check("H-HOP1-DICT")
    async def hop1_dict(self) -> Outcome:
        return self._rule("H-HOP1-DICT", what="的字典字段均取字典代码")

    @check("H-HOP1-FORMAT")
    async def hop1_format(self) -> Outcome:
        return self._rule("H-HOP1-FORMAT", what="的字段类型与格式均正确")

    @check("H-HOP1-CHECKSUM")
    async def hop1_checksum(self) -> Outcome:
        return self._rule("H-HOP1-CHECKSUM", what="的校验位均正确，索引号与记录一致")

    @check("H-HOP1-UNDEFINED")
    async def hop1_undefined(self) -> Outcome:
        return self._rule("H-HOP1-UNDEFINED", what="只含表格定义的字段")

    @check("H-ERRATA")
    async def errata(self) -> Outcome:
        if not self.reports:
            return Outcome.skip("没有收到可以解析的报文")
        found = [(s, p) for s, r in self.reports for p in r.problems if rule_class(p) == "H-ERRATA"]
        if not found:
            return Outcome.passed(f"{len(self.reports)} 个报文没有使用文档示例的异写")
        rows = errata_rows(p for _, p in found)
        lines = [f"{where(s, p)}（ERRATA #{erratum_of(p)}）" for s, p in found]
        messages = list(dict.fromkeys(s for s, _ in found))
        if all(p.level is Level.WARNING for _, p in found):  # lenient: the examples' reading is accepted
            return Outcome.passed(f"宽松模式按文档示例的写法接受，逐项提示：{rows}", detail="\n".join(lines))
        return Outcome.failed(f"{len(messages)} 个报文使用文档示例的异写（严格模式不接受）：{rows}",
                              exchanges=[s.exchange for s in messages[:SHOWN]], detail="\n".join(lines))

    @check("H-DUP-BATCH")
    async def dup_batch(self) -> Outcome:
        return self._rule("H-DUP-BATCH", what="中索引号均不重复")

    @check("H-DUP-INDEX")
    async def dup_index(self) -> Outcome:
        first: dict[str, tuple[Seen, Any]] = {}
        clashes: list[tuple[str, Seen, Seen]] = []
        repeats = 0
        for s in self.posts:
            data = s.message.get("data") if isinstance(s.message, dict) else None
            if not isinstance(data, list):
                continue
            for rec in data:
                index = record_indexes({"data": [rec]})
                if not index:
                    continue
                earlier = first.get(index[0])
                if earlier is None:
                    first[index[0]] = (s, rec)
                elif earlier[0] is not s and earlier[0].msgid != s.msgid:
                    repeats += 1
                    if earlier[1] != rec:
                        clashes.append((index[0], earlier[0], s))
        refused = [(s, e) for s in self.answered for e in answer_entries(s)
                   if str(e.get("message", "")).startswith(RESULTS["duplicate_index"].split("{")[0])]
        if not first:
            return Outcome.skip("没有收到带索引号的记录")
        if not clashes and not refused:
            again = f"，其中 {repeats} 次以新报文再次发送同一记录" if repeats else ""
            return Outcome.passed(f"{len(first)} 个索引号各对应一条记录{again}")
        lines = [f"索引号 {i} 在报文 {a.label} 与 {b.label} 中内容不同" for i, a, b in clashes]
        lines += [f"报文 {s.label}：{e.get('message')}" for s, e in refused]
        shown = [a.exchange for _, a, _ in clashes] + [b.exchange for _, _, b in clashes] + [s.exchange for s, _ in refused]
        return Outcome.failed("；".join(lines[:SHOWN]), exchanges=distinct(shown)[:SHOWN * 2],
                              detail="\n".join(lines))

    @check("H-ANSWER-OK")
    async def answer_ok(self) -> Outcome:
        if not self.answered:
            return Outcome.skip("共享中心没有应答任何报文")
        lines: list[str] = []
        bad: list[Seen] = []
        records = 0
        for s in self.answered:
            if s.code not in (0, -1):
                lines.append(f"报文 {s.label}：整批拒收 code {s.code} {s.answer.get('message', '') if isinstance(s.answer, dict) else ''}")
                bad.append(s)
                continue
            for pos, e in enumerate(answer_entries(s), 1):
                records += 1
                if str(e.get("succFlag")) != "1":
                    lines.append(f"报文 {s.label} 第{pos}条 {e.get('hiImgIndx') or ''}：succFlag {e.get('succFlag')} {e.get('message', '')}")
                    if s not in bad:
                        bad.append(s)
        if not lines:
            return Outcome.passed(f"{len(self.answered)} 个报文、{records} 条记录均答 succFlag 1")
        return Outcome.failed(f"{len(lines)} 项未完整保存：" + "；".join(lines[:3]),
                              exchanges=[s.exchange for s in bad[:SHOWN]], detail="\n".join(lines))

    # ---- files ------------------------------------------------------------------------------------------

    def _files(self, attr: str, ok_text: str) -> Outcome:
        fetched = [v for v in self.files if v.fetched and not v.kit_limit]
        limited = [v for v in self.files if v.kit_limit]
        if not fetched:
            if limited:
                return Outcome.skip(f"本工具未能取文件：{limited[0].kit_limit}", [limited[0].exchange])
            return Outcome.skip("共享中心没有取任何记录的文件（记录因字段错误被拒，或没有收到报文）")
        bad = [v for v in fetched if getattr(v, attr)]
        if not bad:
            note = f"（另有 {len(limited)} 条因本工具的主机限制未取）" if limited else ""
            return Outcome.passed(f"{len(fetched)} 条记录{ok_text}{note}")
        lines = [f"报文 {v.seen.label} 索引号 {v.index}：{getattr(v, attr)}" for v in bad]
        exchanges = [x for v in bad[:SHOWN] for x in (v.seen.exchange, v.exchange)]
        return Outcome.failed(f"{len(bad)} 条记录不符合：" + "；".join(lines[:3]), exchanges=exchanges,
                              detail="\n".join(lines))

    @check("H-FILE-PDF")
    async def file_pdf(self) -> Outcome:
        return self._files("pdf", "的检查报告 PDF 均可下载且有效")

    @check("H-FILE-DICOM")
    async def file_dicom(self) -> Outcome:
        return self._files("dicom", "的影像均可下载，每个实例都是可读的 DICOM")

    @check("H-FILE-AGREE")
    async def file_agree(self) -> Outcome:
        return self._files("disagree", "的 DICOM 患者姓名、ID、检查日期、模态均与记录一致")

    # ---- retries ----------------------------------------------------------------------------------------

    def _retry(self, kind: str) -> Outcome:
        faulted = [s for s in self.posts if s.fault == kind]
        if not faulted:
            return Outcome.skip(f"本次没有探测（用 --probe-retries {kind} 让本工具对新报文的第一次请求"
                                f"{'应答 HTTP 503' if kind == '5xx' else '不应答'}）")
        lines: list[str] = []
        oks: list[str] = []
        evidence: list[Exchange] = []
        for s in faulted:
            resend = next((r for r in self.posts if r.n > s.n and resends(s, r)), None)
            if kind == "stall" and s.exchange.error == "":
                lines.append(f"报文 {s.label}：{s.fault_note}")
                evidence.append(s.exchange)
            if resend is None:
                lines.append(f"报文 {s.label}：{s.fault_note}，之后没有重发（会话结束前没有收到同一报文）")
                evidence.append(s.exchange)
            elif resend.msgid != s.msgid:
                lines.append(f"报文 {s.label}：{s.fault_note}；重发 #{resend.n} 换了新的 msgid {resend.msgid}"
                             f"（应仍为 {s.msgid}）")
                evidence += [s.exchange, resend.exchange]
            elif not same_body(s, resend):
                lines.append(f"报文 {s.label}：{s.fault_note}；重发 #{resend.n} 的 msgid 相同但报文体改变了")
                evidence += [s.exchange, resend.exchange]
            else:
                oks.append(f"报文 {s.label}：{s.fault_note}，第 #{resend.n} 个请求以同一 msgid、同一报文体重发")
        if lines:
            return Outcome.failed("；".join(lines[:3]), exchanges=distinct(evidence)[:SHOWN * 2], detail="\n".join(lines + oks))
        return Outcome.passed("；".join(oks), exchanges=[s.exchange for s in faulted[:SHOWN]])

    @check("H-RETRY-5XX")
    async def retry_5xx(self) -> Outcome:
        return self._retry("5xx")

    @check("H-RETRY-TIMEOUT")
    async def retry_timeout(self) -> Outcome:
        return self._retry("stall")


def distinct(exchanges: list[Exchange]) -> list[Exchange]:
    """Each exchange once, in order (a message can be evidence twice)."""
    return list({id(x): x for x in exchanges}.values())


def resends(first: Seen, later: Seen) -> bool:
    """`later` is a resend of `first`: the same msgid, or one of the same records under another."""
    return (bool(first.msgid) and later.msgid == first.msgid) or bool(
        set(record_indexes(first.message)) & set(record_indexes(later.message)))


def answer_entries(seen: Seen) -> list[dict[str, Any]]:
    data = seen.answer.get("data") if isinstance(seen.answer, dict) else None
    return [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []


def summarise_problems(found: list[tuple[Seen, Problem]]) -> str:
    """`certno（3 处）：…；examDate（1 处）：…` — each field once with its first problem."""
    by_field: dict[str, list[Problem]] = defaultdict(list)
    for _, p in found:
        by_field[p.field or "报文"].append(p)
    parts = [f"{name}（{len(ps)} 处）：{ps[0].message}" for name, ps in by_field.items()]
    return "；".join(parts[:SHOWN]) + (f"；另有 {len(parts) - SHOWN} 个字段" if len(parts) > SHOWN else "")


def errata_rows(problems: Iterable[Problem]) -> str:
    """`ERRATA #1（infno）、#2（hiImgIdx）…` in row order."""
    rows: dict[int, set[str]] = defaultdict(set)
    for p in problems:
        row = erratum_of(p)
        if row is not None:
            rows[row].add(p.field or "")
    return "、".join(f"ERRATA #{n}（{'、'.join(sorted(f for f in rows[n] if f)) or '报文'}）" for n in sorted(rows))


def file_view(seen: Seen, index: str, exchange: Exchange, view: Any, mode: str) -> FileView:
    """A record's files as the kit's center found them (its status API: stored, or the receipt of a refusal)."""
    out = FileView(seen, index, exchange)
    if not isinstance(view, dict) or "stored" not in view:
        out.fetched = False
        return out
    if view["stored"]:
        images = view.get("images") or {}
        failures = images.get("failures") or []
        limits = [f for f in failures if f.get("reason") in KIT_LIMITS]
        if limits:
            out.kit_limit = limits[0].get("message", "")
        pdf = [f for f in failures if f.get("source") == "examRpotPdfI" and f not in limits]
        if pdf:
            out.pdf = pdf[0].get("message", "")
        dicom = [f for f in failures if f.get("source") != "examRpotPdfI" and f not in limits]
        if dicom:
            out.dicom = f"{len(dicom)} 个实例或文件未能保存（共保存 {images.get('instances', 0)} 个）：" + \
                "；".join(str(f.get("message", "")) for f in dicom[:3])
        if images.get("disagreements"):
            out.disagree = "；".join(images["disagreements"])
        return out
    receipt = next((r for r in reversed(view.get("receipts") or []) if r.get("msgid") == seen.msgid), None)
    reason = (receipt or {}).get("reason")
    message = str((receipt or {}).get("message", ""))
    if reason in KIT_LIMITS:
        out.kit_limit = message
    elif reason == "disagreement":
        out.disagree = message
    elif reason in FILE_REASONS:
        out.dicom = message
    else:
        out.fetched = False  # refused for its fields (or a duplicate index): the files were not fetched
    return out


KIT = HospitalKit
