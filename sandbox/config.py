"""Settings: one typed, frozen object built from defaults, an optional TOML file and command-line flags.

Nothing reads the environment at import time; `load_settings` is called once by the CLI.
"""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sandbox.common.jsondepth import DEFAULT_DEPTH
from sandbox.spec.checksums import uscc_check_char
from sandbox.spec.index_profiles import DEFAULT_PROFILE, PROFILES
from sandbox.validate import Mode


def _uscc(first17: str) -> str:
    return first17 + uscc_check_char(first17)


class Institution(BaseModel):
    """An institution known to the receivers: its code (infCode), shared secret (key) and identity."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(min_length=1, max_length=30)
    name: str
    key: str = Field(min_length=1, max_length=50)
    role: Literal["hospital", "center"] = "hospital"
    uscc: str = ""
    admdvs: str = "510800"
    hosp_lv: str = "02"


def default_institutions() -> tuple[Institution, ...]:
    """Guangyuan (广元, 510800): two hospitals and the regional sharing center."""
    return (
        Institution(code="H51080200001", name="广元市第一人民医院", key="GYSY2025KEY0001XQ", role="hospital",
                    uscc=_uscc("12510800450721001"), admdvs="510802", hosp_lv="02"),
        Institution(code="H51081100002", name="广元市昭化区人民医院", key="ZHQR2025KEY0002PL", role="hospital",
                    uscc=_uscc("12510811450722002"), admdvs="510811", hosp_lv="05"),
        Institution(code="C51080000001", name="广元市地方影像云数据共享中心", key="GYYXY2025CENTERKEY", role="center",
                    uscc=_uscc("12510800MB0L31003"), admdvs="510800", hosp_lv="11"),
    )


def _check_ae_title(value: str, setting: str) -> str:
    """An AE title (PS3.5 AE VR): 1-16 printable ASCII characters, no backslash, not only spaces."""
    ae = value.strip()
    if not ae or len(ae) > 16 or not ae.isascii() or not ae.isprintable() or "\\" in ae:
        raise ValueError(f"{setting} 中的 AE 标题「{value}」应为 1-16 个可打印 ASCII 字符（不含反斜杠）")
    return ae


def _split_address(address: str, ae_title: str) -> tuple[str, int]:
    """("host", port) of "host:port" (IPv6 as "[::1]:port")."""
    host, sep, port = address.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"dicom_destinations 中 {ae_title} 的地址「{address}」应为 主机:端口，例如 127.0.0.1:11113")
    return host, int(port)


class Settings(BaseModel):
    """Everything configurable. Defaults work with no file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    hospital_port: int = 8700
    center_port: int = 8701
    province_port: int = 8702
    dicom_port: int = 11112
    dashboard_port: int = 8703  # the trainer's dashboard (sandbox.dashboard)
    dicom_ae_title: str = "IMGCLOUD"
    # Calling AE titles the DICOM SCP accepts associations from; empty: any.
    dicom_calling_aets: tuple[str, ...] = ()
    # AE title -> "host:port" of the DICOM peers the SCP opens associations to: C-MOVE destinations, and
    # Storage Commitment SCUs whose association closed before their N-EVENT-REPORT.
    # In TOML a table (`[dicom_destinations]` / `STORESCP = "127.0.0.1:11113"`); on the command line
    # `AE=host:port`. Kept as sorted (AE title, "host:port") pairs so that Settings stays hashable.
    dicom_destinations: tuple[tuple[str, str], ...] = ()
    # A different instance arriving under a stored SOP Instance UID (C-STORE, STOW-RS, hop 1): keep-first
    # keeps the stored one and refuses the newcomer; replace stores the newcomer in its place. Logged either way.
    instance_conflict: Literal["keep-first", "replace"] = "keep-first"
    data_dir: Path = Path("data")
    seed: int = 20251231
    # First day of synthetic exams. None keeps the fixed day of sandbox.synth (2025-10-08) so output never
    # depends on the clock; `serve --demo` sets today so the quality report's on-time share means something.
    exam_base_date: date | None = None

    mode: Mode = Mode.LENIENT
    # per-record: one data entry per record (ERRATA reading); summary: the example's single entry.
    response_style: Literal["per-record", "summary"] = "per-record"
    index_profile: str = DEFAULT_PROFILE
    institutions: tuple[Institution, ...] = Field(default_factory=default_institutions)

    # Where the emulated roles send; None means "the emulated peer in this process".
    center_url: str | None = None
    province_url: str | None = None
    public_base_url: str | None = None  # base of the links the center puts in hop 2

    # NORMAL survives a process crash (WAL); FULL also survives power loss, at the cost of an fsync per commit.
    db_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    max_body_bytes: int = 4 * 1024 * 1024
    # Receivers (every role, the dashboard, the control plane): a request's headers must arrive within this
    # many seconds of the connection opening (or of the previous answer on a kept-alive connection), and its
    # body within as many again once the headers are in; a slower client gets HTTP 408 and is disconnected.
    request_timeout_s: float = Field(default=30.0, gt=0)
    # Connections one client address may hold open at once on one port; more are answered 503 and closed.
    max_connections_per_client: int = Field(default=256, ge=1)
    # JSON nested deeper than this (arrays and objects) is refused whole (envelope code 1005).
    max_json_depth: int = Field(default=DEFAULT_DEPTH, ge=2)
    # Where the center may fetch files: `host:port` entries (`host:*` any port, `*.example.org:443` a domain
    # and its subdomains; a host without a port means 80 and 443). Empty (the default) means the emulated
    # hospital's file server: the loopback names on hospital_port. The sandbox's own other ports are never
    # fetched, whatever the list says (sandbox.center.fetch).
    allowed_fetch_hosts: tuple[str, ...] = ()
    fetch_timeout_s: float = 10.0
    fetch_max_bytes: int = 256 * 1024 * 1024
    # Bounds of what a hop-1 message may make the center keep (sandbox.center.files): all files of one
    # message, all files of one institution (kept since the last reset), archives (members, bytes after
    # unpacking, ratio of a member's unpacked to packed size) and parallel fetches of one message per origin.
    quota_message_bytes: int = Field(default=1024 * 1024 * 1024, gt=0)
    quota_institution_bytes: int = Field(default=20 * 1024 * 1024 * 1024, gt=0)
    archive_max_members: int = Field(default=5000, gt=0)
    archive_max_bytes: int = Field(default=1024 * 1024 * 1024, gt=0)
    archive_max_ratio: float = Field(default=200.0, gt=1)
    fetch_per_message: int = Field(default=8, gt=0)

    # Security of the control plane and pages (sandbox.common.csrf, sandbox.common.cors). Listening on an
    # address other than loopback needs allow_remote (`--allow-remote`); the control token is then required
    # (generated at start when not set) as the X-Sandbox-Token header.
    allow_remote: bool = False
    control_token: str | None = None
    server_names: tuple[str, ...] = ()  # more DNS names the sandbox answers to (Host and Origin checks)
    # Browser origins allowed to read DICOMweb and pages across origins; `*` in a port means any port.
    # Empty (the default): the sandbox's own origins and viewers on http://localhost:* and http://127.0.0.1:*.
    cors_origins: tuple[str, ...] = ()
    send_timeout_s: float = 10.0
    # Attempts per message of the hospital's sender (`sandbox send`, the demo, scenario steps).
    retry_max_attempts: int = Field(default=8, ge=1)
    # Backoff between attempts (both senders): uniform(0, min(retry_cap_s, retry_base_s * 2**(n-1))).
    retry_base_s: float = Field(default=0.2, gt=0)
    retry_cap_s: float = Field(default=10.0, gt=0)
    # The center's outbox retries a batch by time, not by count: transient failures (connection, timeout, 5xx,
    # 408/425/429, answers that are not the document's envelope) are retried until this long after its first
    # attempt (default one day, the on-time window), then the batch is failed / expired.
    forward_horizon_s: float = Field(default=86400.0, gt=0)
    # Upload-quality report: an exam is on time when its index reached the province within this many hours
    # of its report's publication (rpotPubDate; the end of examDate when absent).
    quality_on_time_hours: float = Field(default=24.0, gt=0)

    @field_validator("index_profile")
    @classmethod
    def _known_profile(cls, v: str) -> str:
        if v not in PROFILES:
            raise ValueError(f"未知的索引号规则 {v}，可选：{', '.join(PROFILES)}")
        return v

    @field_validator("dicom_ae_title")
    @classmethod
    def _ae_title(cls, v: str) -> str:
        return _check_ae_title(v, "dicom_ae_title")

    @field_validator("dicom_calling_aets")
    @classmethod
    def _calling_aets(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_check_ae_title(ae, "dicom_calling_aets") for ae in v)

    @field_validator("dicom_destinations", mode="before")
    @classmethod
    def _destinations(cls, v: Any) -> tuple[tuple[str, str], ...]:
        if isinstance(v, dict):
            pairs = list(v.items())
        else:
            pairs = []
            for item in v:
                if isinstance(item, str):
                    ae, sep, address = item.partition("=")
                    if not sep:
                        raise ValueError(f"dicom_destinations 的「{item}」应写作 AE标题=主机:端口")
                    pairs.append((ae, address))
                else:
                    pairs.append(tuple(item))
        out = {}
        for ae, address in pairs:
            _split_address(str(address), str(ae))
            out[_check_ae_title(str(ae), "dicom_destinations")] = str(address).strip()
        return tuple(sorted(out.items()))

    def dicom_destination(self, ae_title: str) -> tuple[str, int] | None:
        """(host, port) of a configured DICOM peer, by AE title; None when unknown."""
        address = dict(self.dicom_destinations).get(ae_title.strip())
        return _split_address(address, ae_title) if address is not None else None
    @field_validator("allowed_fetch_hosts")
    @classmethod
    def _fetch_entries(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        from sandbox.center.allowlist import parse_entry  # the center's rule; imported when settings are made

        for entry in v:
            parse_entry(entry)
        return v

    @model_validator(mode="after")
    def _unique_codes(self) -> Settings:
        codes = [i.code for i in self.institutions]
        if len(codes) != len(set(codes)):
            raise ValueError("institutions 中的机构编号 code 重复")
        return self

    def institution(self, code: str) -> Institution | None:
        return next((i for i in self.institutions if i.code == code), None)

    @property
    def hospitals(self) -> tuple[Institution, ...]:
        return tuple(i for i in self.institutions if i.role == "hospital")

    @property
    def center(self) -> Institution:
        return next(i for i in self.institutions if i.role == "center")

    def url(self, port: int) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{port}"


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Defaults ← TOML file ← overrides (flags). Unknown keys are errors, in Chinese, naming the key."""
    values: dict[str, Any] = {}
    if path is not None:
        with path.open("rb") as fh:
            values.update(tomllib.load(fh))
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings.model_validate(values)
