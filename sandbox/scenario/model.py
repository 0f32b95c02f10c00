"""The scenario file format (YAML), as pydantic models. A wrong scenario is reported in Chinese, naming the key.

A scenario says: the seed and settings; the faults loaded at the start; the steps (send, resend, wait,
restart/stop/start a role, heal or add a fault, change settings, sleep, requeue); and the expectations on
the end state, each a named check with parameters and one comparison. See `scenarios/*.yaml`.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from sandbox.common.text import Text
from sandbox.config import Settings
from sandbox.faults.model import Fault
from sandbox.scenario.checks import CHECKS
from sandbox.scenario.malform import CATALOGUE
from sandbox.spec.fields import HOP1

CONFIG = ConfigDict(extra="forbid", str_strip_whitespace=True, validate_by_name=True, validate_by_alias=True,
                    frozen=True)
ROLE_NAMES = ("hospital", "center", "province")
# Settings a scenario may change; ports, host and the data folder belong to whoever runs it.
RUNNER_OWNED = frozenset({"host", "hospital_port", "center_port", "province_port", "dicom_port", "dashboard_port", "data_dir",
                          "center_url", "province_url", "public_base_url", "seed"})
SETTABLE = tuple(k for k in Settings.model_fields if k not in RUNNER_OWNED)



class Duplicate(BaseModel):
    """Within one batch: the record at `position` takes the hiImgIndx of the record at `index_of`."""

    model_config = CONFIG
    position: int = Field(ge=1)
    index_of: int = Field(ge=1)


class Malform(BaseModel):
    """Break records of a batch (or its envelope) with a named malformation of the catalogue."""

    model_config = CONFIG
    kind: str
    positions: tuple[int, ...] = (1,)

    @field_validator("kind")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in CATALOGUE:
            raise PydanticCustomError("unknown_malformation", "未知的数据错误类型「{kind}」，可选：{choices}",
                                      {"kind": v, "choices": "、".join(CATALOGUE)})
        return v


class SendStep(BaseModel):
    """The hospital generates `count` exams and sends them (hop 1), breaking them as asked."""

    model_config = CONFIG
    count: int = Field(default=10, ge=1, le=100_000)
    hospital: str | None = None  # institution code; the first hospital of the settings by default
    # the hospital's exam to start from, 1-based like every position in a scenario file (default: the next new one)
    start: int | None = Field(default=None, ge=1)
    batch: int | None = Field(default=None, ge=1)  # at most this many records per message
    overrides: dict[str, Any] = Field(default_factory=dict)  # field → value, on every record
    malform: tuple[Malform, ...] | Literal["records", "envelopes", "errata"] = ()
    duplicates: tuple[Duplicate, ...] = ()
    envelope: dict[str, Any] = Field(default_factory=dict)  # envelope field → value, on every message
    files: bool = True  # generate and serve the DICOM study and report PDF
    # After each hop-1 answer, wait until the center has forwarded what it stored (idle: deterministic), only
    # batched it (batched: forwarding overlaps the next message), or not at all (none: as a hospital sends).
    settle: Literal["idle", "batched", "none"] = "idle"

    @field_validator("overrides")
    @classmethod
    def _fields(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key in v:
            if key not in HOP1.by_code:
                raise PydanticCustomError("unknown_field", "overrides 中的字段「{field}」不是第一跳的字段", {"field": key})
        return v


class ResendStep(BaseModel):
    """Send an earlier message again unchanged: same msgid, same body (`last`, or its 1-based number)."""

    model_config = CONFIG
    message: int | Literal["last"] = "last"


class Check(BaseModel):
    """A named observation of the end state (or of the state while waiting) and one comparison."""

    model_config = CONFIG
    check: str
    label: str | None = None
    # parameters of the check
    hop: Literal[1, 2] | None = None
    exam: int | None = Field(default=None, ge=1)  # the hospital's n-th exam, 1-based
    hospital: str | None = None
    index: str | None = None
    outcome: str | None = None
    side: Literal["server", "client"] | None = None
    fault: str | None = None
    transport: str | None = None
    # the comparison (at most one; none means the check's natural default)
    equals: Any = None
    at_least: float | None = None
    at_most: float | None = None
    contains: Any = None
    not_contains: Any = None

    @model_validator(mode="after")
    def _known(self) -> Check:
        spec = CHECKS.get(self.check)
        if spec is None:
            raise PydanticCustomError("unknown_check", "未知的检查项「{check}」，可选：{choices}",
                                      {"check": self.check, "choices": "、".join(CHECKS)})
        given = {k for k in ("hop", "exam", "hospital", "index", "outcome", "side", "fault", "transport")
                 if getattr(self, k) is not None}
        extra = given - spec.params
        if extra:
            raise PydanticCustomError(
                "check_param", "检查项「{check}」不接受参数 {params}（可用参数：{allowed}）",
                {"check": self.check, "params": "、".join(sorted(extra)),
                 "allowed": "、".join(sorted(spec.params)) or "无"})
        missing = spec.required - given
        if missing:
            raise PydanticCustomError("check_param_missing", "检查项「{check}」需要参数 {params}",
                                      {"check": self.check, "params": "、".join(sorted(missing))})
        compared = [k for k in ("equals", "at_least", "at_most", "contains", "not_contains")
                    if getattr(self, k) is not None]
        if len(compared) > 1 and set(compared) != {"at_least", "at_most"}:
            raise PydanticCustomError("check_compare", "检查项「{check}」只能有一个比较（{given}）",
                                      {"check": self.check, "given": "、".join(compared)})
        if not compared and spec.default == "none":
            raise PydanticCustomError(
                "check_compare_missing", "检查项「{check}」需要一个比较：equals、at_least、at_most、contains 或 not_contains",
                {"check": self.check})
        return self


class WaitStep(Check):
    """Wait until a check holds, at most `timeout` seconds (the scenario fails when it never does)."""

    timeout: float = Field(default=10.0, gt=0, le=600)


class Step(BaseModel):
    """One step: exactly one action, with an optional label shown in the journal and the report."""

    model_config = CONFIG
    label: str | None = None
    send: SendStep | None = None
    resend: ResendStep | None = None
    wait: WaitStep | None = None
    restart: Literal["hospital", "center", "province"] | None = None
    stop: Literal["hospital", "center", "province"] | None = None
    start: Literal["hospital", "center", "province"] | None = None
    heal: str | None = None  # a fault's name, or "all"
    fault: Fault | None = None
    configure: dict[str, Any] | None = None
    sleep: float | None = Field(default=None, ge=0, le=600)
    requeue: bool | None = None  # the center sends its held and failed batches again (POST /api/forward/retry)

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        actions = [k for k in ACTIONS if getattr(self, k) is not None]
        if len(actions) != 1:
            raise PydanticCustomError(
                "step_action", "每一步必须恰好有一个动作（{actions}），实际为：{given}",
                {"actions": "、".join(ACTIONS), "given": "、".join(actions) or "无"})
        if self.configure is not None:
            _check_settings(self.configure)
        return self

    @property
    def action(self) -> str:
        return next(k for k in ACTIONS if getattr(self, k) is not None)


ACTIONS = ("send", "resend", "wait", "restart", "stop", "start", "heal", "fault", "configure", "sleep", "requeue")


def _check_settings(values: dict[str, Any]) -> None:
    for key in values:
        if key not in SETTABLE:
            raise PydanticCustomError("unknown_setting", "settings 中的「{key}」不能由场景设置（可用：{allowed}）",
                                      {"key": key, "allowed": "、".join(SETTABLE)})


class Scenario(BaseModel):
    """A scripted run of the whole chain and what must be true at its end."""

    model_config = CONFIG
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: Text
    description: Text
    seed: int = 20251231
    settings: dict[str, Any] = Field(default_factory=dict)
    faults: tuple[Fault, ...] = ()
    steps: tuple[Step, ...] = Field(min_length=1)
    expect: tuple[Check, ...] = Field(min_length=1)
    tags: tuple[str, ...] = ()

    @field_validator("settings")
    @classmethod
    def _settings(cls, v: dict[str, Any]) -> dict[str, Any]:
        _check_settings(v)
        return v

    @model_validator(mode="after")
    def _fault_names(self) -> Scenario:
        names = [f.name for f in self.faults if f.name] + [s.fault.name for s in self.steps if s.fault and s.fault.name]
        for step in self.steps:
            if step.heal is not None and step.heal != "all" and step.heal not in names:
                raise PydanticCustomError("unknown_fault", "heal 指定的故障「{name}」未在 faults 或步骤中定义（已定义：{names}）",
                                          {"name": step.heal, "names": "、".join(names) or "无"})
        return self


# ---- loading, with Chinese errors ---------------------------------------------------------------------

# pydantic's built-in error types, in Chinese. {key} is the last key of the location.
ERROR_TEMPLATES: dict[str, str] = {
    "extra_forbidden": "未知的键「{key}」{allowed}",
    "missing": "缺少必填的键「{key}」",
    "literal_error": "取值「{input}」无效，可选：{expected}",
    "int_parsing": "应为整数，实际为「{input}」",
    "int_type": "应为整数，实际为「{input}」",
    "int_from_float": "应为整数，实际为「{input}」",
    "float_parsing": "应为数字，实际为「{input}」",
    "float_type": "应为数字，实际为「{input}」",
    "bool_parsing": "应为 true 或 false，实际为「{input}」",
    "bool_type": "应为 true 或 false，实际为「{input}」",
    "string_type": "应为文字，实际为「{input}」",
    "string_too_short": "不能为空",
    "string_pattern_mismatch": "「{input}」格式不对（只能用小写字母、数字和连字符）",
    "dict_type": "应为键值表（key: value），实际为「{input}」",
    "model_type": "应为键值表（key: value），实际为「{input}」",
    "list_type": "应为列表，实际为「{input}」",
    "tuple_type": "应为列表，实际为「{input}」",
    "too_short": "至少需要 {min_length} 项",
    "greater_than_equal": "应不小于 {ge}，实际为 {input}",
    "greater_than": "应大于 {gt}，实际为 {input}",
    "less_than_equal": "应不大于 {le}，实际为 {input}",
    "less_than": "应小于 {lt}，实际为 {input}",
    "value_error": "{msg}",
    "union_tag_invalid": "取值「{input}」无效",
}


class ScenarioError(Exception):
    """A scenario file that cannot be used; the text lists every problem in Chinese."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"场景文件 {source} 有 {len(problems)} 处错误：\n{lines}")


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part + 1}]"
        elif part in ("function-after", "function-before") or str(part).startswith(("literal[", "tagged-union")):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out or "（顶层）"


def _allowed_keys(loc: tuple[Any, ...]) -> str:
    """The keys the model at a location accepts (for "unknown key" errors)."""
    model: Any = Scenario
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return ""
        ann = field.annotation
        candidates = [ann, *getattr(ann, "__args__", ())]
        for c in list(candidates):
            candidates += list(getattr(c, "__args__", ()))
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return ""
    return "（可用的键：" + "、".join(model.model_fields) + "）"


def translate(exc: ValidationError) -> list[str]:
    """Each pydantic error as one Chinese line naming where it is."""
    out = []
    errors = exc.errors(include_url=False)
    for err in errors:
        loc = tuple(err["loc"])
        kind = err["type"]
        if kind == "too_short" and any(len(e["loc"]) > len(loc) and tuple(e["loc"][:len(loc)]) == loc
                                       for e in errors):
            continue  # a list whose items failed also counts as too short: the items' errors say why
        ctx = dict(err.get("ctx") or {})
        key = next((str(p) for p in reversed(loc) if not isinstance(p, int)), "")
        template = ERROR_TEMPLATES.get(kind)
        if template is None:
            text = err["msg"]  # our own PydanticCustomError messages are Chinese already
        else:
            values = {"key": key, "input": _short(err.get("input")), **ctx,
                      "allowed": _allowed_keys(loc) if kind == "extra_forbidden" else "",
                      "msg": str(ctx.get("error", err["msg"]))}
            text = template.format(**values)
        out.append(f"{_where(loc)}：{text}")
    return out


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "…"


def parse(text: str, source: str = "<文本>", *, toml: bool = False) -> Scenario:
    """A scenario from YAML (or TOML) text; raises ScenarioError with every problem in Chinese."""
    if toml:
        try:
            data: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError(source, [f"不是合法的 TOML：{exc}"]) from exc
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"第 {mark.line + 1} 行第 {mark.column + 1} 列" if mark is not None else ""
            raise ScenarioError(source, [f"不是合法的 YAML {where}：{getattr(exc, 'problem', exc)}"]) from exc
    if not isinstance(data, dict):
        raise ScenarioError(source, ["场景应为键值表（name、title、description、steps、expect …）"])
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(source, translate(exc)) from exc


def load(path: Path) -> Scenario:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ScenarioError(str(path), ["文件不存在"]) from exc
    except UnicodeDecodeError as exc:
        raise ScenarioError(str(path), ["文件不是 UTF-8 编码"]) from exc
    return parse(text, str(path), toml=path.suffix == ".toml")
