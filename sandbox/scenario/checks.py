"""The checks a scenario can state about the chain (expectations, and conditions a `wait` step waits for).

Each check observes one value — a count, counts by status, a list of messages, a list of offenders — from
the roles' stores, the hospital's record of what it sent, and the journal. A comparison (`equals`,
`at_least`, `at_most`, `contains`, `not_contains`) decides; without one, a list of offenders must be empty
and a yes/no observation must be yes. Counts by status compare only the statuses the scenario names
(`equals: {"1": 8, "-1": 2}`), a status not observed counting as 0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sandbox.spec.messages import RESULTS

if TYPE_CHECKING:
    from sandbox.scenario.driver import Driver
    from sandbox.scenario.model import Check

Observe = Callable[["Driver", "Check"], Awaitable[Any]]
IDEMPOTENT = RESULTS["saved_idempotent"]


@dataclass(frozen=True, slots=True)
class CheckSpec:
    title: str  # Chinese: what is observed
    title_en: str
    observe: Observe
    params: frozenset[str] = frozenset()
    required: frozenset[str] = frozenset()
    default: str = "none"  # empty: a list that must be empty; true: must be yes; none: a comparison is required


# ---- observations ---------------------------------------------------------------------------------------

async def _hospital_messages(d: Driver, c: Check) -> int:
    return len(await d.hospital_store().sent_messages())


async def _hospital_flags(d: Driver, c: Check) -> dict[str, int]:
    rows = await d.hospital_store().answers()
    return dict(Counter(r["succ_flag"] if r["succ_flag"] is not None else "无应答" for r in rows))


async def _center_summary(d: Driver) -> dict[str, Any]:
    summary: dict[str, Any] = await d.sandbox.state("center").summary()
    return summary


async def _center_received(d: Driver, c: Check) -> int:
    return int((await _center_summary(d))["received"])


async def _center_answers(d: Driver, c: Check) -> dict[str, int]:
    return {k: v for k, v in (await _center_summary(d))["answers"].items() if v}


async def _center_rejected(d: Driver, c: Check) -> dict[str, int]:
    return dict((await _center_summary(d))["rejected"]["byReason"])


async def _center_stored(d: Driver, c: Check) -> int:
    return int((await _center_summary(d))["stored"])


async def _center_forward(d: Driver, c: Check) -> dict[str, int]:
    s = await _center_summary(d)
    out = {"pending": s["forwardPending"], "sending": s["forwardSending"], "held": s["forwardHeld"]["total"],
           "done": s["forwarded"], "failed": s["forwardFailed"]["total"]}
    return {k: v for k, v in out.items() if v}


async def _center_failed_reasons(d: Driver, c: Check) -> dict[str, int]:
    return dict((await _center_summary(d))["forwardFailed"]["byReason"])


async def _center_idle(d: Driver, c: Check) -> bool:
    s = await _center_summary(d)
    return not s["forwardPending"] and not s["forwardSending"]


async def _province_indexes(d: Driver, c: Check) -> int:
    count: int = await d.sandbox.state("province").indexes.count()
    return count


def _journal_filters(c: Check) -> dict[str, Any]:
    return {k: getattr(c, k) for k in ("hop", "outcome", "side", "fault", "transport") if getattr(c, k) is not None}


async def _journal_exchanges(d: Driver, c: Check) -> int:
    return await d.journal().count(**_journal_filters(c))


async def _journal_outcomes(d: Driver, c: Check) -> dict[str, int]:
    stats = await d.journal().stats()
    if c.hop is not None:
        return dict(stats["exchanges"].get(str(c.hop), {}))
    total: Counter[str] = Counter()
    for lane in stats["exchanges"].values():
        total.update(lane)
    return dict(total)


async def _retries(d: Driver, c: Check) -> int:
    """Attempts beyond the first of each message (same msgid), as recorded on the hop(s)."""
    attempts: Counter[tuple[int, str]] = Counter()
    filters = {"hop": c.hop} if c.hop is not None else {}
    async for e in d.journal().entries(**filters):
        if e["msgid"]:
            attempts[(e["hop"], e["msgid"])] += 1
    return sum(n - 1 for n in attempts.values())


async def _envelope_codes(d: Driver, c: Check) -> list[int]:
    codes: set[int] = set()
    filters = {"hop": c.hop} if c.hop is not None else {}
    async for e in d.journal().entries(outcome="rejected", **filters):
        if e["code"] is not None:
            codes.add(int(e["code"]))
    return sorted(codes)


async def _record_answers(d: Driver, c: Check) -> list[dict[str, Any]]:
    index = c.index or d.exam_index(c.hospital, c.exam)
    return await d.journal().answers_for(index, c.hop)


async def _record_messages(d: Driver, c: Check) -> list[str]:
    return [a["message"] or "" for a in await _record_answers(d, c)]


async def _record_flags(d: Driver, c: Check) -> list[str]:
    return [a["succFlag"] for a in await _record_answers(d, c)]


async def _nothing_lost(d: Driver, c: Check) -> list[str]:
    """Exams the center stored that are neither indexed at the province nor failed or held with a reason."""
    center = d.sandbox.state("center")
    rows = await center.store.db.fetchall(
        "SELECT e.hiImgIndx, o.state, o.message, o.reason FROM exams e LEFT JOIN outbox o ON o.exam_id = e.exam_id")
    indexed: set[str] | None = None
    if d.sandbox.running("province"):
        province = d.sandbox.state("province")
        indexed = {r[0] for r in await province.indexes.db.fetchall("SELECT hiImgIndx FROM img_index")}
    lost = []
    for index, state, message, reason in rows:
        if state in ("failed", "held") and (reason or message):
            continue
        if state == "done" and (indexed is None or index in indexed):
            continue
        lost.append(f"{index}（{state or '未入转发队列'}）")
    return lost


async def _no_index_stored_twice(d: Driver, c: Check) -> list[str]:
    """Indexes saved afresh (not as an identical resend, not as a replayed answer) by two different messages."""
    offenders = []
    for hop in ((c.hop,) if c.hop is not None else (1, 2)):
        saved: dict[str, set[str]] = {}
        for a in await d.journal().answer_rows(hop):
            if a["side"] != "server" or a["succFlag"] not in ("1", "0") or not a["hiImgIndx"]:
                continue
            if (a["message"] or "").startswith(IDEMPOTENT):
                continue
            saved.setdefault(a["hiImgIndx"], set()).add(a["msgid"])
        offenders += [f"第{hop}跳 {index}（{len(m)} 个报文）" for index, m in saved.items() if len(m) > 1]
    return offenders


async def _malformations(d: Driver, c: Check) -> list[str]:
    """Malformed records and messages whose answer is not what the catalogue says for the current mode."""
    return await d.malformation_mismatches()


CHECKS: dict[str, CheckSpec] = {
    "hospital.messages": CheckSpec("医疗机构发送的报文数", "messages the hospital sent", _hospital_messages),
    "hospital.flags": CheckSpec("医疗机构收到的逐条 succFlag", "succFlags the hospital received, per record", _hospital_flags),
    "center.received": CheckSpec("共享中心应答的记录数", "records the sharing center answered", _center_received),
    "center.answers": CheckSpec("共享中心逐条应答的 succFlag", "the sharing center's succFlag per record", _center_answers),
    "center.rejected": CheckSpec("共享中心拒收（-1）的原因", "why the sharing center refused records (-1)", _center_rejected),
    "center.stored": CheckSpec("共享中心保存的检查数", "exams the sharing center stored", _center_stored),
    "center.forward": CheckSpec("共享中心转发状态", "the sharing center's forwarding states", _center_forward),
    "center.failed_reasons": CheckSpec("共享中心转发失败的原因", "why the sharing center failed to forward", _center_failed_reasons),
    "center.idle": CheckSpec("共享中心转发队列已清空", "the sharing center's outbox is empty", _center_idle, default="true"),
    "province.indexes": CheckSpec("省级模块保存的索引数", "indexes the provincial module stored", _province_indexes),
    "journal.exchanges": CheckSpec("日志中的交互次数", "exchanges in the journal", _journal_exchanges,
                                   frozenset({"hop", "outcome", "side", "fault", "transport"})),
    "journal.outcomes": CheckSpec("日志中各结果的交互次数", "exchanges in the journal per outcome", _journal_outcomes, frozenset({"hop"})),
    "retries": CheckSpec("重试次数（同一报文ID的重复发送）", "retries (the same msgid sent again)", _retries, frozenset({"hop"})),
    "envelope.codes": CheckSpec("整批拒收的报文 code", "codes of messages refused whole", _envelope_codes, frozenset({"hop"})),
    "record.messages": CheckSpec("一条记录收到的应答信息", "the messages one record was answered", _record_messages,
                                 frozenset({"hop", "exam", "hospital", "index"})),
    "record.flags": CheckSpec("一条记录收到的 succFlag", "the succFlags one record was answered", _record_flags, frozenset({"hop", "exam", "hospital", "index"})),
    "nothing_lost": CheckSpec("没有丢失：共享中心接收的检查均已在省级建索引或标记失败并说明原因", "nothing lost: every exam the center took is indexed or failed with a reason", _nothing_lost,
                              default="empty"),
    "no_index_stored_twice": CheckSpec("没有索引被保存两次", "no index stored twice", _no_index_stored_twice, frozenset({"hop"}),
                                       default="empty"),
    "malformations": CheckSpec("每种错误数据都得到目录规定的应答", "every malformation got the answer the catalogue states", _malformations, default="empty"),
}


# ---- comparing -------------------------------------------------------------------------------------------

def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list | dict):
        return float(len(value))
    return None


def _equal(observed: Any, expected: Any) -> bool:
    if isinstance(expected, dict) and isinstance(observed, dict):
        return all(observed.get(str(k), 0) == v or str(observed.get(str(k), 0)) == str(v) for k, v in expected.items())
    if isinstance(expected, list) and isinstance(observed, list):
        return [str(x) for x in observed] == [str(x) for x in expected]
    if isinstance(expected, bool) or isinstance(observed, bool):
        return bool(observed) is bool(expected)
    if isinstance(expected, int | float) and isinstance(observed, int | float):
        return float(observed) == float(expected)
    return str(observed) == str(expected)


def _contains(observed: Any, needle: Any) -> bool:
    if isinstance(observed, str):
        return str(needle) in observed
    if isinstance(observed, dict):
        return bool(observed.get(str(needle)))
    if isinstance(observed, list):
        return any(_contains(x, needle) if isinstance(x, str) else _equal(x, needle) for x in observed)
    return False


def judge(check: Check, observed: Any) -> bool:
    """Whether the observed value satisfies the check's comparison (or its natural default)."""
    if check.equals is not None:
        return _equal(observed, check.equals)
    if check.contains is not None:
        return _contains(observed, check.contains)
    if check.not_contains is not None:
        return not _contains(observed, check.not_contains)
    if check.at_least is not None or check.at_most is not None:
        n = _as_number(observed)
        if n is None:
            return False
        return (check.at_least is None or n >= check.at_least) and (check.at_most is None or n <= check.at_most)
    default = CHECKS[check.check].default
    if default == "empty":
        return not observed
    return bool(observed)


# What an expectation line says around the values, per language.
_EXPECT_WORDS = {"zh": ("（", "）", "包含", "不包含", "在 {lo}–{hi} 之间"),
                 "en": (" (", ")", "contains", "does not contain", "between {lo} and {hi}")}


def expectation_text(check: Check, lang: str = "zh") -> str:
    """The check and its comparison, as one line in Chinese (or English: the check's own title, not the
    scenario's Chinese label)."""
    spec = CHECKS[check.check]
    params = [f"{k}={getattr(check, k)}" for k in ("hop", "hospital", "exam", "index", "outcome", "side", "fault",
                                                   "transport") if getattr(check, k) is not None]
    opening, closing, contains, not_contains, between = _EXPECT_WORDS[lang]
    head = spec.title_en if lang == "en" else check.label or spec.title
    head += f"{opening}{check.check}{' ' + ' '.join(params) if params else ''}{closing}"
    if check.equals is not None:
        return f"{head} = {show(check.equals)}"
    if check.contains is not None:
        return f"{head} {contains} {show(check.contains)}"
    if check.not_contains is not None:
        return f"{head} {not_contains} {show(check.not_contains)}"
    if check.at_least is not None and check.at_most is not None:
        return f"{head} " + between.format(lo=f"{check.at_least:g}", hi=f"{check.at_most:g}")
    if check.at_least is not None:
        return f"{head} ≥ {check.at_least:g}"
    if check.at_most is not None:
        return f"{head} ≤ {check.at_most:g}"
    return head


def show(value: Any, limit: int = 300) -> str:
    """An observed value as a reader wants to see it."""
    if isinstance(value, bool):
        text = "是" if value else "否"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
    elif isinstance(value, list):
        text = "[" + "；".join(str(v) for v in value) + "]" if value else "[]（无）"
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
