"""The province kit: the kit plays a sharing center and sends saveExamRpotImgIndx messages to the province under
test, grading each answer against the document (hop-2 table, envelope table, output table) and its ERRATA.

Every record the kit sends is new to the province (the run's seed joins `--seed` and the run's start), so a second
run against the same province meets none of the first run's indexes.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from sandbox.api import _apply
from sandbox.config import Institution, Settings
from sandbox.conform.kit import Kit, Unreachable, check
from sandbox.conform.kits.province_probes import CLASS_ZH, Probe, RecordSource, RuleClass
from sandbox.conform.model import Exchange, Outcome, Role
from sandbox.conform.probe import Reply
from sandbox.spec.fields import DATA_MAX_CHARS, ENVELOPE_FIELDS, HOP2, OUTPUT_FIELDS, FieldSpec, Kind
from sandbox.spec.formats import china_now
from sandbox.spec.variants import FIELD_VARIANTS, INFNO_VARIANTS
from sandbox.synth.batching import batches, envelope
from sandbox.validate import data_length

FLAGS = ("1", "0", "-1")
WRONG_KEY = "CONFORM-KIT-WRONG-KEY-0000"  # no registered institution's key
BLANK_INFCODE_FIELD = "infCode"
NO_COUNT_LIMIT = f"文档只规定 data 不超过 {DATA_MAX_CHARS} 字符，没有规定每批的记录条数上限，所以只按字符数检查。"  # ERRATA E11: the examples send infCode blank
MESSAGE_LIMIT = next(f.length for f in OUTPUT_FIELDS if f.code == "message")  # 返回信息 String(3000)


def _index_of(entry: dict[str, Any]) -> Any:
    """An answer entry's index, under the table's key or the example's (ERRATA E2)."""
    return entry["hiImgIndx"] if "hiImgIndx" in entry else entry.get("hiImgIdx")


def _named(message: str, names: tuple[str, ...]) -> bool:
    return any(n and n in message for n in names)


def _cut(text: Any, limit: int = 120) -> str:
    s = str(text)
    return s if len(s) <= limit else s[:limit] + "…"


@dataclass
class Answer:
    """An answer to one batch, read against the records sent: per record (the output table read per record, as
    ERRATA E14 reads it), one summary entry (the document's example), or unreadable (`problem`)."""

    reply: Reply
    style: Literal["per-record", "summary", "none"] = "none"
    entries: list[dict[str, Any]] = field(default_factory=list)
    problem: str = ""

    @property
    def code(self) -> Any:
        body = self.reply.json
        return body.get("code") if isinstance(body, dict) else None

    @property
    def message(self) -> str:
        body = self.reply.json
        return str(body.get("message", "")) if isinstance(body, dict) else ""

    def flag(self, i: int) -> str:
        return str(self.entries[i].get("succFlag"))

    def text(self, i: int) -> str:
        return str(self.entries[i].get("message") or "")


def read_answer(reply: Reply, count: int) -> Answer:
    """Read `reply` as the answer to a batch of `count` records."""
    if reply.status is None:
        return Answer(reply, problem=f"没有应答：{reply.error}")
    body = reply.json
    if not isinstance(body, dict):
        return Answer(reply, problem=f"HTTP {reply.status}，应答不是 JSON 对象：{_cut(reply.text)}")
    data = body.get("data")
    if not isinstance(data, list) or not data:
        return Answer(reply, problem=f"整批未处理：code {body.get('code')!r}，message「{_cut(body.get('message'))}」")
    if not all(isinstance(e, dict) for e in data):
        return Answer(reply, problem="data 中有不是对象的条目")
    if len(data) == 1 and count > 1 and _index_of(data[0]) is None:
        return Answer(reply, "summary", data)
    if len(data) == count:
        return Answer(reply, "per-record", data)
    return Answer(reply, problem=f"请求 {count} 条记录，应答 data 有 {len(data)} 条，无法逐条对应")


def batch_flag(flags: list[str]) -> str:
    """The batch's succFlag as the output table defines it: -1 all failed, 0 some failed, 1 success."""
    if all(f == "-1" for f in flags):
        return "-1"
    return "1" if all(f == "1" for f in flags) else "0"


class ProvinceKit(Kit):
    role: ClassVar[Role] = "province"

    async def start(self) -> None:
        o = self.options
        settings = Settings()
        center = settings.center
        code = o.sender_code or center.code
        key = o.sender_key or center.key
        uscc = o.sender_uscc or center.uscc
        self.probe.hide(key)
        self.sender = Institution(code=code, name="一致性测试工具（共享中心）", key=key, role="center", uscc=uscc)
        host = o.public_host or o.listen_host
        self.run_seed = f"{o.seed}-{time.time_ns()}"
        self.source = RecordSource(settings.hospitals[0], uscc, self.run_seed, o.profile, f"http://{host}")
        self._seq = 0
        assert o.url is not None
        self.url = o.url
        self.say(f"本工具扮演地方影像云数据共享中心：infCode {code}，key {key}（证据中显示为 ***），统一社会信用代码（stogInsUscc）{uscc}；"
                 f"被测省级模块须登记这一机构及密钥。数据种子 {self.run_seed}")
        # A msgid is code + second + 4-digit sequence: starting on a fresh second, this run's msgids cannot
        # meet those of a run that ended just before (the sequence restarts at 1).
        await asyncio.sleep(1 - time.time() % 1)
        self.first = await self.probe.post(self.url, {})
        if self.first.status is None:
            raise Unreachable(f"{self.url}：{self.first.error}")

    # ---- sending --------------------------------------------------------------------------------

    def message(self, records: list[dict[str, Any]], **changes: Any) -> dict[str, Any]:
        """A hop-2 message of the kit's center; `changes` set envelope fields (a value None removes one)."""
        self._seq += 1
        return _apply(envelope(records, self.sender, china_now(), self._seq, infno=HOP2.infno), changes)

    async def send(self, msg: Any) -> Reply:
        return await self.probe.post(self.url, msg)

    async def send_records(self, records: list[dict[str, Any]]) -> tuple[Answer, dict[str, Any]]:
        msg = self.message(records)
        reply = await self.send(msg)
        return read_answer(reply, len(records)), msg

    # ---- grading helpers ------------------------------------------------------------------------

    def _strict(self) -> bool:
        return self.options.mode == "strict"

    async def grade_probes(self, probes: list[Probe], must_refuse: bool) -> tuple[list[str], list[str], list[Exchange]]:
        """Send the probes (in batches within the data limit); (fault lines, pass lines, exchanges).

        `must_refuse`: the record must be answered -1 naming the field; otherwise (a rule the document leaves to
        another standard or to an ERRATA row, graded leniently) accepting it with a message naming the field
        is the other acceptable reading."""
        faults: list[str] = []
        passes: list[str] = []
        exchanges: list[Exchange] = []
        records = [p.record for p in probes]
        start = 0
        for batch in batches(records):
            group = probes[start:start + len(batch)]
            start += len(batch)
            answer, _ = await self.send_records(batch)
            exchanges.append(answer.reply.exchange)
            if answer.style == "none":
                faults.extend(f"{p.describe()}：{answer.problem}" for p in group)
                continue
            if answer.style == "summary":
                text, flag = answer.text(0), answer.flag(0)
                want = "-1" if must_refuse else None
                if want is not None and flag != want:
                    faults.append(f"汇总应答（勘误 E14）succFlag 为 {flag}，本批 {len(group)} 条记录均有错误，"
                                  f"应为 -1（全部数据失败）")
                for p in group:
                    (passes if _named(text, p.names()) else faults).append(
                        f"{p.describe()}：汇总应答的 message {'点名了' if _named(text, p.names()) else '没有点名'}该字段")
                continue
            for i, p in enumerate(group):
                flag, text = answer.flag(i), answer.text(i)
                named = _named(text, p.names())
                if flag == "-1" and named:
                    passes.append(f"{p.describe()}：-1，「{_cut(text, 60)}」")
                elif not must_refuse and flag in ("1", "0") and named:
                    passes.append(f"{p.describe()}：{flag}，按宽松读法接受并提示「{_cut(text, 60)}」")
                elif flag == "-1":
                    faults.append(f"{p.describe()}：-1，但 message 没有点名该字段：「{_cut(text)}」")
                else:
                    faults.append(f"{p.describe()}：succFlag {flag}（应为 -1），message「{_cut(text)}」")
        return faults, passes, exchanges

    async def rule_class(self, classes: tuple[RuleClass, ...], own: bool) -> Outcome:
        """Grade rule classes: `own` True the document's own rules (-1 whatever the reading), False the rules it
        leaves to other standards or ERRATA (graded by --mode)."""
        probes = [p for cls in classes for p in self.source.probes(cls) if p.own_rule is own]
        what = "、".join(CLASS_ZH[c] for c in classes)
        if not probes:
            return Outcome.skip(f"文档第二跳表格中没有适用「{what}」的字段")
        must = own or self._strict()
        faults, passes, exchanges = await self.grade_probes(probes, must)
        fields = "、".join(p.field for p in probes)
        detail_lines = [f"共 {len(probes)} 个字段（{fields}），每个字段一条只错这一处的记录："]
        detail_lines += [f"✗ {f}" for f in faults] + [f"✓ {p}" for p in passes]
        detail = "\n".join(detail_lines)
        if own:
            reading = "应拒收（-1）并点名字段"
        else:
            reading = ("严格读法（--mode strict）：应拒收（-1）并点名字段" if must
                       else "宽松读法（--mode lenient）：拒收或接受，并点名字段")
        if faults:
            return Outcome.failed(f"{len(faults)}/{len(probes)} 个字段不符合「{reading}」：{_cut(faults[0], 160)}",
                                  exchanges, detail)
        return Outcome.passed(f"{len(probes)} 个字段的{what}均符合「{reading}」", exchanges, detail)

    def envelope_refused(self, reply: Reply, names: tuple[str, ...]) -> str:
        """Why `reply` is not a whole-message refusal naming one of `names` ("" when it is)."""
        if reply.status is None:
            return f"没有应答：{reply.error}"
        body = reply.json
        if not isinstance(body, dict):
            return f"HTTP {reply.status}，应答不是 JSON 对象：{_cut(reply.text)}"
        code, message = body.get("code"), str(body.get("message") or "")
        if not isinstance(code, int) or code == 0:
            return f"code {code!r}（应为非 0 的整数），message「{_cut(message)}」"
        if names and not _named(message, names):
            return f"code {code}，但 message 没有点名 {' / '.join(names)}：「{_cut(message)}」"
        if not message:
            return f"code {code}，message 为空"
        return ""

    @staticmethod
    def blank_infcode_taken(reply: Reply) -> bool:
        """ERRATA E11's other reading: a message without infCode taken from the msgid's first 12 characters,
        answered with the substitution named."""
        body = reply.json
        return isinstance(body, dict) and body.get("code") in (0, -1) and isinstance(body.get("data"), list) \
            and _named(json.dumps(body, ensure_ascii=False), (BLANK_INFCODE_FIELD,))

    # ---- checks ---------------------------------------------------------------------------------

    @check("P-URL")
    async def url_answers(self) -> Outcome:
        reply = self.first
        body = reply.json
        path = urlsplit(self.url).path
        where = "文档路径" if path == HOP2.path else f"路径 {path}（文档为 {HOP2.path}）"
        if not isinstance(body, dict) or "code" not in body:
            return Outcome.failed(f"{where} 的 POST 应答 HTTP {reply.status}，不是带 code 的 JSON：{_cut(reply.text)}",
                                  [reply.exchange])
        return Outcome.passed(f"{where} 应答 HTTP {reply.status}，JSON code {body.get('code')!r}", [reply.exchange])

    @check("P-ENV-JSON")
    async def bad_json(self) -> Outcome:
        reply = await self.send(b'{"infno": "saveExamRpotImgIndx", "data": [')
        why = self.envelope_refused(reply, ())
        if why:
            return Outcome.failed(f"不是合法 JSON 的请求：{why}", [reply.exchange])
        return Outcome.passed(f"code {reply.json['code']}，「{_cut(reply.json.get('message'), 60)}」", [reply.exchange])

    @check("P-ENV-FIELDS")
    async def envelope_fields(self) -> Outcome:
        cases: list[tuple[str, tuple[str, ...], dict[str, Any]]] = []
        for f in ENVELOPE_FIELDS:
            cases.append((f"缺少 {f.code}", (f.code, f.name), {f.code: None}))
        cases.append(("infno 不是本接口的交易编号", ("infno", "交易编号"), {"infno": "saveExamRpotImgXxxx"}))
        cases.append(("msgid 不是 12+14+4 位", ("msgid", "报文ID", "报文 ID"), {"msgid": "12345"}))
        for f in ENVELOPE_FIELDS:
            if f.kind is Kind.DATETIME:
                cases.append((f"{f.code} 不是 yyyy-MM-dd HH:mm:ss", (f.code, f.name), {f.code: "2025/10/08 08:00"}))
        cases.append(("data 为空数组", ("data", "交易输入"), {"data": []}))
        faults: list[str] = []
        passes: list[str] = []
        exchanges: list[Exchange] = []
        for label, names, change in cases:
            reply = await self.send(self.message([self.source.record()], **change))
            exchanges.append(reply.exchange)
            why = self.envelope_refused(reply, names)
            if why and change == {BLANK_INFCODE_FIELD: None} and self.blank_infcode_taken(reply):
                passes.append(f"{label}：按报文ID前 12 位识别发送方并在应答中点名 infCode（勘误 E11 的读法）")
                continue
            (faults if why else passes).append(f"{label}：{why or '整批拒收并点名'}")
        detail = "\n".join([f"✗ {f}" for f in faults] + [f"✓ {p}" for p in passes])
        if faults:
            return Outcome.failed(f"{len(faults)}/{len(cases)} 种报文头错误未按要求拒收：{_cut(faults[0], 160)}",
                                  exchanges, detail)
        return Outcome.passed(f"{len(cases)} 种报文头错误均整批拒收（code 非 0）并点名字段", exchanges, detail)

    async def _auth(self, label: str, names: tuple[str, ...], **change: Any) -> Outcome:
        reply = await self.send(self.message([self.source.record()], **change))
        why = self.envelope_refused(reply, names)
        if why:
            return Outcome.failed(f"{label}：{why}", [reply.exchange])
        return Outcome.passed(f"{label}：code {reply.json['code']}，「{_cut(reply.json.get('message'), 60)}」",
                              [reply.exchange])

    @check("P-AUTH-INFCODE")
    async def unknown_infcode(self) -> Outcome:
        code = "C99999999999"
        return await self._auth(f"未登记的 infCode {code}", ("infCode", "交易机构", code), infCode=code,
                                msgid=code + self.message([])["msgid"][12:])

    @check("P-AUTH-KEY")
    async def wrong_key(self) -> Outcome:
        return await self._auth("错误的 key", ("key", "密钥"), key=WRONG_KEY)

    @check("P-HOP2-VALID")
    async def valid_batch(self) -> Outcome:
        records = self.source.records(3)
        answer, _ = await self.send_records(records)
        ex = [answer.reply.exchange]
        if answer.style == "none":
            return Outcome.failed(f"3 条合规记录：{answer.problem}", ex)
        if answer.style == "summary":
            if answer.flag(0) != "1":
                return Outcome.failed(f"3 条合规记录，汇总应答 succFlag {answer.flag(0)}（应为 1）：「{_cut(answer.text(0))}」", ex)
            return Outcome.passed("3 条合规记录，汇总应答（勘误 E14）succFlag 1", ex)
        wrong = [f"第{i + 1}条 {_cut(_index_of(e), 30)}：succFlag {answer.flag(i)}「{_cut(answer.text(i), 80)}」"
                 for i, e in enumerate(answer.entries) if answer.flag(i) != "1"]
        if wrong:
            return Outcome.failed(f"3 条合规记录未全部保存：{'；'.join(wrong)}", ex)
        return Outcome.passed("3 条合规记录逐条 succFlag 1", ex)

    @check("P-HOP2-REQ")
    async def missing_required(self) -> Outcome:
        return await self.rule_class(("required",), True)

    @check("P-HOP2-LEN")
    async def too_long(self) -> Outcome:
        return await self.rule_class(("length",), True)

    @check("P-HOP2-DICT")
    async def not_dict_code(self) -> Outcome:
        return await self.rule_class(("dictionary",), True)

    @check("P-HOP2-FORMAT")
    async def bad_format(self) -> Outcome:
        return await self.rule_class(("format",), True)

    @check("P-HOP2-CHECKSUM")
    async def bad_checksum(self) -> Outcome:
        return await self.rule_class(("checksum",), False)

    @check("P-HOP2-OPEN")
    async def open_rules(self) -> Outcome:
        return await self.rule_class(("required", "length", "dictionary", "format"), False)

    @check("P-ERRATA-SPELLING")
    async def errata_spellings(self) -> Outcome:
        must = self._strict()
        faults: list[str] = []
        passes: list[str] = []
        exchanges: list[Exchange] = []
        cases: list[tuple[str, tuple[str, ...], dict[str, Any]]] = []
        for wrong, v in FIELD_VARIANTS[2].items():
            record = self.source.record_with(v.right)
            if record is not None:
                renamed = {(wrong if k == v.right else k): val for k, val in record.items()}
                cases.append((f"勘误 E{v.erratum}：{v.right} 写作 {wrong}", (wrong, v.right), renamed))
        decimal = next(f for f in HOP2.fields if f.kind is Kind.DECIMAL)
        stamp = next(f for f in HOP2.fields if f.kind is Kind.DATETIME)
        spelled: tuple[tuple[FieldSpec, int, Callable[[Any], str], str], ...] = (
            (decimal, 7, str, "以字符串传送"), (stamp, 10, lambda v: str(v)[:10], "只有日期"))
        for f, erratum, respell, how in spelled:
            record = self.source.record_with(f.code)
            if record is not None:
                value = respell(record[f.code])
                cases.append((f"勘误 E{erratum}：{f.code} {how}「{value}」", (f.code, f.name), {**record, f.code: value}))
        for label, names, record in cases:
            answer, _ = await self.send_records([record])
            exchanges.append(answer.reply.exchange)
            if answer.style == "none":
                faults.append(f"{label}：{answer.problem}")
                continue
            flag, text = answer.flag(0), answer.text(0) + " " + answer.message
            named = _named(text, names)
            if flag == "-1" and named:
                passes.append(f"{label}：拒收并点名")
            elif not must and flag in ("1", "0") and named:
                passes.append(f"{label}：接受并提示（{_cut(answer.text(0), 60)}）")
            else:
                faults.append(f"{label}：succFlag {flag}，{'点名了' if named else '没有点名'}该字段：「{_cut(text)}」")
        heads = [(f"勘误 E{v.erratum}：infno 写作 {wrong}", ("infno", "交易编号"), {"infno": wrong})
                 for wrong, v in INFNO_VARIANTS.items()]
        heads.append(("勘误 E11：infCode 为空白", (BLANK_INFCODE_FIELD, "交易机构编号"), {BLANK_INFCODE_FIELD: " "}))
        for label, names, change in heads:
            reply = await self.send(self.message([self.source.record()], **change))
            exchanges.append(reply.exchange)
            why = self.envelope_refused(reply, names)
            body = reply.json if isinstance(reply.json, dict) else {}
            if not why:
                passes.append(f"{label}：整批拒收并点名")
            elif not must and body.get("code") in (0, -1) and _named(json.dumps(body, ensure_ascii=False), names):
                passes.append(f"{label}：接受并提示")
            else:
                faults.append(f"{label}：{why}")
        reading = "严格读法：应拒收并点名" if must else "宽松读法：拒收或接受，并点名异写"
        detail = "\n".join([f"✗ {f}" for f in faults] + [f"✓ {p}" for p in passes])
        if faults:
            return Outcome.failed(f"{len(faults)}/{len(faults) + len(passes)} 种文档示例写法不符合{reading}："
                                  f"{_cut(faults[0], 160)}", exchanges, detail)
        return Outcome.passed(f"{len(passes)} 种文档示例写法均符合{reading}", exchanges, detail)

    @check("P-ANSWER-SHAPE")
    async def answer_shape(self) -> Outcome:
        bad = self.source.probes("required")[:3]
        batches_sent = [("全部合规", self.source.records(2), "1"),
                        ("一条合规一条有错", [self.source.record(), bad[0].record], "0"),
                        ("全部有错", [p.record for p in bad[1:]], "-1")]
        faults, notes, exchanges = [], [], []
        for label, records, want in batches_sent:
            answer, _ = await self.send_records(records)
            exchanges.append(answer.reply.exchange)
            body = answer.reply.json
            if not isinstance(body, dict):
                faults.append(f"{label}：应答不是 JSON 对象")
                continue
            for key, kind in (("code", int), ("type", str), ("message", str), ("data", list)):
                if key not in body:
                    faults.append(f"{label}：应答缺少 {key}")
                elif not isinstance(body[key], kind) or isinstance(body[key], bool):
                    faults.append(f"{label}：{key} 的类型应为 {kind.__name__}，实际为 {type(body[key]).__name__}")
            if answer.style == "none":
                faults.append(f"{label}：{answer.problem}")
                continue
            for i, entry in enumerate(answer.entries):
                where = f"{label} data[{i}]"
                if "hiImgIndx" not in entry:
                    if "hiImgIdx" in entry and not self._strict():
                        notes.append(f"{where}：键写作 hiImgIdx（勘误 E2，宽松读法接受）")
                    else:
                        faults.append(f"{where}：缺少 hiImgIndx" + ("（写作 hiImgIdx，勘误 E2）" if "hiImgIdx" in entry else ""))
                flag = entry.get("succFlag")
                if not isinstance(flag, str) or flag not in FLAGS:
                    faults.append(f"{where}：succFlag {flag!r} 应为字符串 \"1\"、\"0\" 或 \"-1\"（输出表 String(6)）")
                msg = entry.get("message")
                if msg is not None and (not isinstance(msg, str) or len(msg) > MESSAGE_LIMIT):
                    faults.append(f"{where}：message 应为不超过 {MESSAGE_LIMIT} 字符的字符串")
                if flag == "-1" and not msg:
                    faults.append(f"{where}：succFlag -1 但没有返回信息 message（输出表：交易失败状态下返回错误信息）")
            if answer.style == "summary":
                notes.append(f"{label}：汇总应答（勘误 E14）")
                if answer.flag(0) != want:
                    faults.append(f"{label}：汇总应答 succFlag {answer.flag(0)}，按输出表应为 {want}"
                                  "（-1 全部数据失败，0 部分数据失败，1 成功）")
            elif [str(e.get("succFlag")) for e in answer.entries] and batch_flag(
                    [answer.flag(i) for i in range(len(answer.entries))]) != want:
                faults.append(f"{label}：逐条 succFlag {'、'.join(answer.flag(i) for i in range(len(answer.entries)))}"
                              f" 不符合这一批的实际（应汇总为 {want}）")
        detail = "\n".join([f"✗ {f}" for f in faults] + [f"· {n}" for n in notes])
        if faults:
            return Outcome.failed(f"{len(faults)} 处不符合输出表：{_cut(faults[0], 160)}", exchanges, detail)
        style = "汇总应答（勘误 E14）" if any("汇总" in n for n in notes) else "逐条应答"
        return Outcome.passed(f"3 种批次的应答均为 code/type/message/data[hiImgIndx, succFlag, message]，{style}",
                              exchanges, detail)

    @check("P-ANSWER-ORDER")
    async def answer_order(self) -> Outcome:
        bad = self.source.probes("required")[1:3]
        records = [self.source.record(), bad[0].record, self.source.record(), bad[1].record]
        want = ["1", "-1", "1", "-1"]
        answer, _ = await self.send_records(records)
        ex = [answer.reply.exchange]
        if answer.style == "summary":
            return Outcome.skip("省级模块以汇总应答（勘误 E14），没有逐条应答可对应", ex)
        if answer.style == "none":
            return Outcome.failed(answer.problem, ex)
        faults = []
        for i, (rec, flag) in enumerate(zip(records, want, strict=True)):
            got_index, got_flag = _index_of(answer.entries[i]), answer.flag(i)
            if got_index != rec.get("hiImgIndx"):
                faults.append(f"data[{i}] 的 hiImgIndx 为 {_cut(got_index, 40)}，请求第 {i + 1} 条为 "
                              f"{_cut(rec.get('hiImgIndx'), 40)}")
            if got_flag != flag:
                faults.append(f"data[{i}] succFlag {got_flag}，应为 {flag}")
        if faults:
            return Outcome.failed(f"逐条应答与请求不对应：{'；'.join(faults[:3])}", ex, "\n".join(faults))
        return Outcome.passed("4 条记录（合规、缺必填、合规、缺必填）逐条应答，顺序与索引号一致，1/-1/1/-1", ex)

    @check("P-DUP-BATCH")
    async def duplicate_in_batch(self) -> Outcome:
        first = self.source.record()
        second = self.source.record() | {"hiImgIndx": first["hiImgIndx"]}
        answer, _ = await self.send_records([first, second])
        ex = [answer.reply.exchange]
        if answer.style == "none":
            return Outcome.failed(answer.problem, ex)
        if answer.style == "summary":
            if answer.flag(0) == "1":
                return Outcome.failed("同一批两条记录索引号相同，汇总应答 succFlag 1（两条都保存了）", ex)
            return Outcome.passed(f"汇总应答 succFlag {answer.flag(0)}：「{_cut(answer.text(0), 60)}」", ex)
        flags = [answer.flag(0), answer.flag(1)]
        shown = "、".join(flags)
        if "-1" not in flags:
            return Outcome.failed(f"同一批两条记录索引号相同，逐条 succFlag {shown}：重复的索引号被保存了两次", ex)
        if answer.flag(1) == "-1" and not answer.text(1):
            return Outcome.failed("第二条 -1 但没有返回信息", ex)
        return Outcome.passed(f"逐条 succFlag {shown}：「{_cut(answer.text(1) or answer.text(0), 60)}」", ex)

    @check("P-DUP-STORED")
    async def duplicate_across_batches(self) -> Outcome:
        first = self.source.record()
        a1, _ = await self.send_records([first])
        ex = [a1.reply.exchange]
        if a1.style == "none" or a1.flag(0) != "1":
            return Outcome.skip(f"第一条记录未被接受（{a1.problem or a1.flag(0)}），无法检查跨批重复", ex)
        other = self.source.record() | {"hiImgIndx": first["hiImgIndx"]}
        a2, _ = await self.send_records([other])
        ex.append(a2.reply.exchange)
        if a2.style == "none":
            why = self.envelope_refused(a2.reply, ())
            if not why:
                return Outcome.passed(f"整批拒收：code {a2.code}「{_cut(a2.message, 60)}」", ex)
            return Outcome.failed(a2.problem, ex)
        if a2.flag(0) != "-1":
            return Outcome.failed(f"已保存的索引号用于另一条不同记录，succFlag {a2.flag(0)}（应为 -1 拒收）："
                                  f"「{_cut(a2.text(0))}」", ex)
        return Outcome.passed(f"另一批中相同索引号、内容不同的记录被拒收：「{_cut(a2.text(0), 60)}」", ex)

    @check("P-RESEND")
    async def identical_resend(self) -> Outcome:
        msg = self.message(self.source.records(2))
        replies = [await self.send(msg) for _ in range(3)]
        ex = [r.exchange for r in replies]
        answers = [read_answer(r, 2) for r in replies]
        if answers[0].style == "none" or any(answers[0].flag(i) != "1" for i in range(len(answers[0].entries))):
            return Outcome.skip(f"首次发送未被全部接受（{answers[0].problem or '有记录不是 1'}），无法检查重发", ex)

        def shape(a: Answer) -> Any:
            return (a.code, [(_index_of(e), str(e.get("succFlag"))) for e in a.entries]) if a.style != "none" \
                else (a.code, a.problem)

        first = shape(answers[0])
        differ = [i for i, a in enumerate(answers[1:], 2) if shape(a) != first]
        if differ:
            return Outcome.failed(f"同一 msgid、同一报文重发，第 {differ[0]} 次应答与首次不同："
                                  f"{_cut(shape(answers[differ[0] - 1]), 160)}（首次 {_cut(first, 120)}）", ex)
        return Outcome.passed("同一报文发送 3 次，应答一致（code 与逐条索引号、succFlag 相同）；文档没有查询接口，"
                              "是否只保存一次无法从外部再核对", ex)

    @check("P-MSGID-REPLAY")
    async def msgid_replay(self) -> Outcome:
        first_records = self.source.records(1)
        msg = self.message(first_records)
        a1 = read_answer(await self.send(msg), 1)
        ex = [a1.reply.exchange]
        if a1.style == "none" or a1.flag(0) != "1":
            return Outcome.skip(f"首次发送未被接受（{a1.problem or a1.flag(0)}），无法检查 msgid 重用", ex)
        second_records = self.source.records(1)
        reply = await self.send({**msg, "data": second_records})
        ex.append(reply.exchange)
        if not self.envelope_refused(reply, ("msgid", "报文ID", "报文 ID")):
            return Outcome.passed(f"读法一：同一 msgid、内容不同的报文整批拒收并点名 msgid（code {reply.json['code']}）",
                                  ex)
        a2 = read_answer(reply, 1)
        if a2.style == "per-record":
            got = _index_of(a2.entries[0])
            if got == first_records[0]["hiImgIndx"]:
                return Outcome.failed("同一 msgid、内容不同的报文被当作重发，原样返回了首次应答：新记录没有处理却得到了应答",
                                      ex)
            if got == second_records[0]["hiImgIndx"] and a2.flag(0) in ("1", "0", "-1") and a2.text(0):
                return Outcome.passed(f"读法二：按新报文逐条处理，新记录 succFlag {a2.flag(0)}", ex)
        if a2.style == "summary":
            return Outcome.skip("汇总应答（勘误 E14）无法区分是重放首次应答还是处理了新记录", ex)
        return Outcome.failed(f"同一 msgid、内容不同：既未整批拒收并点名 msgid，也未按新报文逐条应答："
                              f"{a2.problem or _cut(a2.reply.text)}", ex)

    @check("P-BATCH-LIMIT")
    async def batch_limit(self) -> Outcome:
        records: list[dict[str, Any]] = []
        while True:
            record = self.source.record()
            if data_length([*records, record]) > DATA_MAX_CHARS:
                break
            records.append(record)
        within = records
        ex = []
        answer, _ = await self.send_records(within)
        ex.append(answer.reply.exchange)
        n, size = len(within), data_length(within)
        faults = []
        if answer.style == "none":
            faults.append(f"{n} 条、data {size} 字符（未超过 {DATA_MAX_CHARS}）：{answer.problem}")
        elif any(answer.flag(i) != "1" for i in range(len(answer.entries))):
            faults.append(f"{n} 条、data {size} 字符（未超过 {DATA_MAX_CHARS}）：没有全部保存")
        # A fresh batch of the same size plus one record: over the limit.
        over = [*self.source.records(n), self.source.record()]
        while data_length(over) <= DATA_MAX_CHARS:
            over.append(self.source.record())
        reply = await self.send(self.message(over))
        ex.append(reply.exchange)
        why = self.envelope_refused(reply, ("data", "交易输入", str(DATA_MAX_CHARS)))
        if why:
            faults.append(f"{len(over)} 条、data {data_length(over)} 字符（超过 {DATA_MAX_CHARS}）：{why}")
        if faults:
            return Outcome.failed("；".join(faults), ex, NO_COUNT_LIMIT)
        return Outcome.passed(f"{n} 条（{size} 字符）全部保存；{len(over)} 条（{data_length(over)} 字符）整批拒收并点名 data",
                              ex, NO_COUNT_LIMIT)


KIT = ProvinceKit
