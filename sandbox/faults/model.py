"""What can go wrong, as data: the fault kinds a scenario (or the control API) can switch on at a role.

Faults at a receiving role shape its answers to a hop: the center answers hop 1 (from the hospital), the
province answers hop 2 (from the center). Faults at the hospital shape how it serves its files to the
center (hop 1's file download). A fault is active for the first `calls` matching calls (after `skip`), or
during a time `window` after it was loaded, or — with neither — until it is healed.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from sandbox.spec.fields import HOP1, HOP2

MODEL_CONFIG = ConfigDict(extra="forbid", str_strip_whitespace=True, validate_by_name=True,
                          validate_by_alias=True, frozen=True)

ROLES = ("hospital", "center", "province")
# The hop a role answers, and the path it answers it on.
ROLE_HOP: dict[str, int] = {"center": 1, "province": 2}
HOP_PATH: dict[int, str] = {1: HOP1.path, 2: HOP2.path}
# Paths of the hospital's file server (the center downloads hop-1 files from here).
HOSPITAL_FILE_PREFIXES = ("/files/", "/dicomweb/")

TRANSPORT_KINDS = ("http_error", "delay", "drop", "non_json", "truncated")
KINDS = ("reject_records", "reject_batch", *TRANSPORT_KINDS)
KIND_TITLES: dict[str, str] = {
    "reject_records": "按条拒收（succFlag 0/-1）",
    "reject_batch": "整批拒收",
    "http_error": "HTTP 错误（5xx、429、404 …）",
    "delay": "延迟应答",
    "drop": "断开连接",
    "non_json": "应答不是 JSON",
    "truncated": "应答被截断",
}


class Select(BaseModel):
    """Which records of a batch a `reject_records` fault hits: all conditions given must hold."""

    model_config = MODEL_CONFIG

    positions: tuple[Annotated[int, Field(ge=1)], ...] | None = None  # 1-based positions in `data`
    where: dict[str, str | tuple[str, ...]] | None = None  # field → value, or list of values
    probability: float | None = Field(default=None, ge=0.0, le=1.0)  # seeded per record

    @field_validator("where")
    @classmethod
    def _known_fields(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        known = set(HOP1.by_code) | set(HOP2.by_code)
        for key in v or {}:
            if key not in known:
                raise PydanticCustomError("unknown_field", "where 中的字段「{field}」不是接口文档定义的字段",
                                          {"field": key})
        return v


class Fault(BaseModel):
    """One fault at one role."""

    model_config = MODEL_CONFIG

    name: str = ""
    at: Literal["hospital", "center", "province"]
    hop: Literal[1, 2] | None = None
    kind: Literal["reject_records", "reject_batch", "http_error", "delay", "drop", "non_json", "truncated"]
    # reject_records / reject_batch
    flag: Literal["0", "-1"] = "-1"
    message: str = ""
    select: Select | None = None
    # http_error: any error status (5xx, a gateway's 429 or 404 …), optionally with a Retry-After (seconds)
    status: int = Field(default=503, ge=400, le=599)
    retry_after: int | None = Field(default=None, ge=0, le=86400)
    # delay; with drop/truncated: whether the role processes the message first ("after") or not ("before")
    seconds: float = Field(default=0.0, ge=0.0, le=600.0)
    when: Literal["before", "after"] = "before"
    body: str | None = None  # the non-JSON answer's text
    # when it is active
    calls: int | None = Field(default=None, ge=1)
    skip: int = Field(default=0, ge=0)
    window: tuple[float, float] | None = None
    probability: float | None = Field(default=None, ge=0.0, le=1.0)  # per call, seeded

    @field_validator("flag", mode="before")
    @classmethod
    def _flag_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) else v

    @model_validator(mode="after")
    def _consistent(self) -> Fault:
        if self.at == "hospital":
            if self.kind in ("reject_records", "reject_batch"):
                raise PydanticCustomError("fault_at_hospital",
                                          "医疗机构只提供文件下载，不能设置「{kind}」故障（可用：{kinds}）",
                                          {"kind": self.kind, "kinds": "、".join(TRANSPORT_KINDS)})
            if self.hop not in (None, 1):
                raise PydanticCustomError("fault_hop", "医疗机构的文件下载属于第一跳，hop 应为 1", {})
        elif self.hop is not None and self.hop != ROLE_HOP[self.at]:
            raise PydanticCustomError(
                "fault_hop", "{role} 接收的是第 {expected} 跳，hop 不能为 {hop}",
                {"role": self.at, "expected": ROLE_HOP[self.at], "hop": self.hop})
        if self.window is not None and not (0 <= self.window[0] < self.window[1]):
            raise PydanticCustomError("fault_window", "window 应为 [开始秒, 结束秒]，且 0 ≤ 开始 < 结束", {})
        if self.kind == "delay" and self.seconds <= 0:
            raise PydanticCustomError("fault_delay", "delay 故障需要 seconds（延迟秒数，大于 0）", {})
        if self.kind == "reject_records" and self.select is None:
            raise PydanticCustomError("fault_select", "reject_records 故障需要 select（positions / where / probability）",
                                      {})
        return self

    @property
    def label(self) -> str:
        return self.name or f"{self.at}:{self.kind}"

    @property
    def role_hop(self) -> int:
        return 1 if self.at == "hospital" else ROLE_HOP[self.at]

    def matches_path(self, path: str) -> bool:
        if self.at == "hospital":
            return path.startswith(HOSPITAL_FILE_PREFIXES)
        return path == HOP_PATH[ROLE_HOP[self.at]]

    def describe(self) -> str:
        """One Chinese line: what, where, for how long."""
        what = KIND_TITLES[self.kind]
        if self.kind == "reject_records":
            what += f" succFlag={self.flag}"
        elif self.kind == "http_error":
            what += f" {self.status}"
        elif self.kind == "delay":
            what += f" {self.seconds:g} 秒"
        if self.kind in ("delay", "drop", "truncated"):
            what += "（先处理后" + ("应答" if self.kind == "delay" else "断开") + "）" if self.when == "after" else ""
        span = []
        if self.skip:
            span.append(f"跳过前 {self.skip} 次")
        if self.calls is not None:
            span.append(f"前 {self.calls} 次调用")
        if self.window is not None:
            span.append(f"第 {self.window[0]:g}–{self.window[1]:g} 秒")
        if self.probability is not None:
            span.append(f"概率 {self.probability:g}")
        where = {"hospital": "医疗机构（文件下载）", "center": "共享中心（第一跳）", "province": "省级模块（第二跳）"}[self.at]
        return f"{where} {what}" + ("，" + "，".join(span) if span else "，直到恢复")
