"""The conformance catalogue and the results of a run.

A requirement is one row of `catalogue/<role>.yaml`. A check method of the role's kit returns an `Outcome`; the
runner pairs it with its requirement into a `Result`. Evidence is a list of `Exchange`s — the requests the kit made
or received and the answers — beside what was expected and what was observed, in Chinese (English alongside where
the kit has it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from sandbox.common.text import Text

Role = Literal["hospital", "center", "province"]
ROLES: tuple[Role, ...] = ("center", "province", "hospital")
Severity = Literal["required", "recommended"]
# pass ✓; fail ✗ (a required requirement not met); warn ⚠ (a recommended one not met);
# skip — (could not be checked: a precondition failed or the system sent nothing to grade); error ✗ (the check
# itself broke, counted as a failure).
Verdict = Literal["pass", "fail", "warn", "skip", "error"]
MARKS: dict[Verdict, str] = {"pass": "✓", "fail": "✗", "warn": "⚠", "skip": "—", "error": "✗"}
VERDICT_ZH: dict[Verdict, str] = {"pass": "通过", "fail": "不通过", "warn": "警告", "skip": "未检查", "error": "检查出错"}

CONFIG = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)
ID_RE = re.compile(r"^[A-Z]{1,3}(-[A-Z0-9]+)+$")



class Requirement(BaseModel):
    """One requirement of the catalogue: what a conforming system does, and where the document says so."""

    model_config = CONFIG
    id: str
    role: Role
    # Where it comes from: a section, table and field of the document ("§3.2 表2 hiImgIndx"), or an ERRATA row
    # ("ERRATA E7"). Several sources are joined with "; ".
    source: str = Field(min_length=1)
    severity: Severity = "required"
    tags: tuple[str, ...] = ()
    title: Text
    expected: Text

    @field_validator("id")
    @classmethod
    def _id_shape(cls, v: str) -> str:
        if not ID_RE.match(v):
            raise ValueError(f"编号「{v}」不符合格式（如 C-HOP1-REQ）")
        return v

    @field_validator("tags")
    @classmethod
    def _tags_shape(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for t in v:
            if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", t):
                raise ValueError(f"标签「{t}」只能含小写字母、数字和连字符")
        return v

    def matches(self, selector: str) -> bool:
        """`--only`/`--skip` select by id (exact or prefix ending in `-`, or `*` glob), or by tag."""
        if selector in self.tags or selector == self.id:
            return True
        if "*" in selector:
            return re.fullmatch(re.escape(selector).replace(r"\*", ".*"), self.id) is not None
        return selector.endswith("-") and self.id.startswith(selector)


class CatalogueError(ValueError):
    """A catalogue file that cannot be used; the message names the file, the entry and the key, in Chinese."""


_ENTRIES = TypeAdapter(list[Requirement])


@cache
def load_catalogue(role: Role) -> tuple[Requirement, ...]:
    """The requirements of `role`, in the file's order (which is also the order they run and are reported in)."""
    name = f"{role}.yaml"
    text = resources.files("sandbox.conform.catalogue").joinpath(name).read_text(encoding="utf-8")
    raw = yaml.safe_load(text) or []
    if not isinstance(raw, list):
        raise CatalogueError(f"{name}：顶层应为列表")
    for entry in raw:
        if isinstance(entry, dict):
            entry.setdefault("role", role)
    try:
        reqs = _ENTRIES.validate_python(raw)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise CatalogueError(f"{name}：第 {where} 项：{err['msg']}") from None
    seen: set[str] = set()
    for r in reqs:
        if r.role != role:
            raise CatalogueError(f"{name}：{r.id} 的 role 应为 {role}")
        if r.id in seen:
            raise CatalogueError(f"{name}：编号 {r.id} 重复")
        seen.add(r.id)
    return tuple(reqs)


def select(reqs: tuple[Requirement, ...], only: list[str] | None, skip: list[str] | None) -> list[Requirement]:
    """The requirements left after `--only` (any match keeps) and `--skip` (any match drops)."""
    out = [r for r in reqs if not only or any(r.matches(s) for s in only)]
    return [r for r in out if not skip or not any(r.matches(s) for s in skip)]


@dataclass
class Exchange:
    """One HTTP (or DICOM) exchange the kit made or received, as evidence. Bodies are kept as text, cut at
    `Exchange.LIMIT` characters with the cut said."""

    LIMIT = 4000
    direction: Literal["sent", "received"]  # "sent": the kit asked the system; "received": the system asked the kit
    method: str
    url: str
    at: str  # China time, ISO 8601 with +08:00
    request_body: str = ""
    status: int | None = None
    response_body: str = ""
    error: str = ""  # a connection error or timeout, in Chinese
    seconds: float = 0.0

    @staticmethod
    def clip(text: str) -> str:
        if len(text) <= Exchange.LIMIT:
            return text
        return text[: Exchange.LIMIT] + f"\n…（共 {len(text)} 个字符，已截断）"

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("direction", "method", "url", "at", "request_body", "status",
                                              "response_body", "error", "seconds")}


@dataclass
class Outcome:
    """What a check method returns. `observed` says what the system did, in Chinese, short enough for a table cell;
    `detail` may add lines. A check that could not be made returns `Outcome.skipped(why)`."""

    ok: bool
    observed: str
    exchanges: list[Exchange] = field(default_factory=list)
    detail: str = ""
    skipped: bool = False

    @classmethod
    def passed(cls, observed: str, exchanges: list[Exchange] | None = None, detail: str = "") -> Outcome:
        return cls(True, observed, list(exchanges or ()), detail)

    @classmethod
    def failed(cls, observed: str, exchanges: list[Exchange] | None = None, detail: str = "") -> Outcome:
        return cls(False, observed, list(exchanges or ()), detail)

    @classmethod
    def skip(cls, why: str, exchanges: list[Exchange] | None = None) -> Outcome:
        return cls(False, why, list(exchanges or ()), skipped=True)


@dataclass
class Result:
    requirement: Requirement
    verdict: Verdict
    observed: str
    exchanges: list[Exchange] = field(default_factory=list)
    detail: str = ""
    seconds: float = 0.0

    @property
    def mark(self) -> str:
        return MARKS[self.verdict]

    @property
    def blocking(self) -> bool:
        """A result that makes the run fail (exit 1): a required requirement failed, or any check broke."""
        return self.verdict == "error" or (self.verdict == "fail" and self.requirement.severity == "required")

    @classmethod
    def of(cls, req: Requirement, outcome: Outcome, seconds: float) -> Result:
        if outcome.skipped:
            verdict: Verdict = "skip"
        elif outcome.ok:
            verdict = "pass"
        else:
            verdict = "fail" if req.severity == "required" else "warn"
        return cls(req, verdict, outcome.observed, outcome.exchanges, outcome.detail, seconds)

    def to_json(self) -> dict[str, Any]:
        r = self.requirement
        return {"id": r.id, "source": r.source, "severity": r.severity, "tags": list(r.tags),
                "title": r.title.model_dump(), "expected": r.expected.model_dump(), "verdict": self.verdict,
                "observed": self.observed, "detail": self.detail, "seconds": round(self.seconds, 3),
                "exchanges": [e.to_json() for e in self.exchanges]}


@dataclass
class Report:
    """A whole run: what was tested, with which options, when, and every result in catalogue order."""

    role: Role
    target: str
    started: str  # China time, ISO 8601 with +08:00
    seconds: float
    options: dict[str, Any]
    results: list[Result]

    @property
    def passed(self) -> bool:
        return not any(r.blocking for r in self.results)

    def counts(self) -> dict[Verdict, int]:
        out: dict[Verdict, int] = {"pass": 0, "fail": 0, "warn": 0, "skip": 0, "error": 0}
        for r in self.results:
            out[r.verdict] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {"role": self.role, "target": self.target, "started": self.started, "seconds": round(self.seconds, 3),
                "options": self.options, "passed": self.passed, "counts": self.counts(),
                "results": [r.to_json() for r in self.results]}
