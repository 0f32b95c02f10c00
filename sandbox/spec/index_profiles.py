"""医保影像云索引号 (hiImgIndx) profiles.

The document says only "由国家局制定编码规则". ERRATA names two real readings; each is a profile that
can build, parse and validate an index. The active profile is a setting (`index_profile`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Segment:
    key: str
    title: str
    length: int
    pattern: str


@dataclass(frozen=True, slots=True)
class IndexProfile:
    name: str
    title: str
    segments: tuple[Segment, ...]
    example: str

    @property
    def regex(self) -> re.Pattern[str]:
        return _compiled(self)

    @property
    def length(self) -> int:
        return sum(s.length for s in self.segments) + len(self.segments) - 1

    def build(self, parts: dict[str, str]) -> str:
        """Join parts (keyed by segment key) into an index; raises ValueError naming a bad part."""
        out = []
        for seg in self.segments:
            value = parts[seg.key]
            if not re.fullmatch(seg.pattern, value):
                raise ValueError(f"{seg.title}({seg.key}) 应为 {seg.length} 位，实际为「{value}」")
            out.append(value)
        return "-".join(out)

    def parse(self, value: str) -> dict[str, str] | None:
        """Split an index into its parts, or None when it does not follow this profile."""
        m = self.regex.match(value)
        return m.groupdict() if m else None

    def describe(self) -> str:
        return "-".join(f"{s.title}({s.length})" for s in self.segments)


_CACHE: dict[str, re.Pattern[str]] = {}


def _compiled(profile: IndexProfile) -> re.Pattern[str]:
    if profile.name not in _CACHE:
        body = "-".join(f"(?P<{s.key}>{s.pattern})" for s in profile.segments)
        _CACHE[profile.name] = re.compile(f"^{body}$")
    return _CACHE[profile.name]


_TIME14 = r"\d{4}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])([01]\d|2[0-3])[0-5]\d[0-5]\d"
_TIME12 = r"\d{4}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])([01]\d|2[0-3])[0-5]\d"


def _nocap(p: str) -> str:
    return p.replace("(", "(?:")


DOC_EXAMPLE = IndexProfile(
    name="doc-example",
    title="文档示例六段式：证件类型-证件号码-检查时间-机构代码-检查部位-存储机构信用代码",
    segments=(
        Segment("cert_type", "证件类型", 3, r"\d{3}"),
        Segment("certno", "证件号码", 18, r"[0-9A-Z]{18}"),
        Segment("exam_time", "检查时间yyyyMMddHHmmss", 14, _nocap(_TIME14)),
        Segment("inst_code", "机构代码", 12, r"[0-9A-Z]{12}"),
        Segment("exam_part", "检查部位代码", 9, r"[0-9A-Z]{9}"),
        Segment("stog_uscc", "存储机构统一社会信用代码", 18, r"[0-9A-Z]{18}"),
    ),
    example="111-100200300040506000-20241122143055-000000000000-000000000-123502004266007980",
)

NHSA_2025_DRAFT = IndexProfile(
    name="nhsa-2025-draft",
    title="国家局2025年征求意见稿五段式：人员管理码-检查时间-检查部位-医保医用设备代码-存储机构信用代码",
    segments=(
        Segment("psn_code", "人员管理码", 26, r"[0-9A-Z]{26}"),
        Segment("exam_time", "检查时间yyyyMMddHHmm", 12, _nocap(_TIME12)),
        Segment("exam_part", "检查部位代码", 9, r"[0-9A-Z]{9}"),
        Segment("device_code", "医保医用设备代码", 13, r"[0-9A-Z]{13}"),
        Segment("stog_uscc", "存储机构统一社会信用代码", 18, r"[0-9A-Z]{18}"),
    ),
    example="10000000000000000708463177-202411221430-000000000-0000000000000-123502004266007916",
)

PROFILES: dict[str, IndexProfile] = {p.name: p for p in (DOC_EXAMPLE, NHSA_2025_DRAFT)}
DEFAULT_PROFILE = DOC_EXAMPLE.name


def psn_code(cert_type: str, certno: str) -> str:
    """A stable 26-digit 人员管理码 stand-in derived from the certificate (the real one is issued nationally)."""
    digest = hashlib.sha256(f"{cert_type}:{certno}".encode()).hexdigest()
    return "1" + str(int(digest, 16))[:25].rjust(25, "0")


def parts_for(
    profile: IndexProfile,
    *,
    cert_type: str,
    certno: str,
    exam_time: str,
    inst_code: str,
    exam_part: str,
    stog_uscc: str,
    device_code: str = "0000000000000",
) -> dict[str, str]:
    """The parts a profile needs, from an exam's values. `exam_time` is yyyyMMddHHmmss."""
    if profile is NHSA_2025_DRAFT:
        return {
            "psn_code": psn_code(cert_type, certno),
            "exam_time": exam_time[:12],
            "exam_part": exam_part,
            "device_code": device_code,
            "stog_uscc": stog_uscc,
        }
    return {
        "cert_type": cert_type,
        "certno": certno.upper().rjust(18, "0")[-18:],
        "exam_time": exam_time,
        "inst_code": inst_code,
        "exam_part": exam_part,
        "stog_uscc": stog_uscc,
    }
