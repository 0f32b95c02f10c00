"""Institutions: hospitals and the sharing center of a region, and each hospital's staff and devices.

- 定点医药机构代码: `H` + 6-digit 医保区划 + 5-digit order number (e.g. H51080200001), 12 characters.
- 统一社会信用代码 (GB 32100): registration authority + type (`12` 事业单位, as public hospitals are) +
  6-digit division + 9-character 组织机构代码 (GB 11714, with its own check character) + check character.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from sandbox.config import Institution
from sandbox.spec.checksums import uscc_check_char
from sandbox.synth.catalogue import DEVICE_MODELS, EXAM_DEPT, FLEET, ROOM_NAMES, DeviceModel
from sandbox.synth.patients import Person, make_person
from sandbox.synth.regions import DEFAULT_REGION, REGIONS, Region, region_of

_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def org_code_check(body8: str) -> str:
    """GB 11714 check character of an 8-character 组织机构代码 body."""
    total = sum(_ORG_CHARS.index(c) * w for c, w in zip(body8, _ORG_WEIGHTS, strict=True))
    c = 11 - total % 11
    return "X" if c == 10 else "0" if c == 11 else str(c)


def make_uscc(admdvs: str, rng: random.Random, kind: str = "12") -> str:
    """A USCC with correct GB 11714 and GB 32100 check characters; `12` = 事业单位 (public hospitals)."""
    body = f"{rng.randrange(10**8):08d}"
    first17 = f"{kind}{admdvs}{body}{org_code_check(body)}"
    return first17 + uscc_check_char(first17)


def fixmedins_code(admdvs: str, order: int, prefix: str = "H") -> str:
    """定点医药机构代码: letter + 6-digit division + 5-digit order (12 characters)."""
    return f"{prefix}{admdvs}{order:05d}"


def _key(seed: int | str, code: str) -> str:
    return hashlib.sha256(f"{seed}:key:{code}".encode()).hexdigest()[:20].upper()


def synth_hospitals(region_code: str = DEFAULT_REGION, count: int = 3, seed: int | str = 0) -> tuple[Institution, ...]:
    """`count` hospitals of a region: the city's general hospital (三级甲等) and county hospitals (二级)."""
    region = REGIONS[region_code]
    rng = random.Random(f"{seed}:hospitals:{region_code}")
    out = []
    for i in range(count):
        if i == 0:
            county = region.counties[0]
            name, lv = f"{region.name}第一人民医院" if region.name != region.province else "第一人民医院", "02"
        else:
            county = region.counties[(i - 1) % len(region.counties)]
            kind = ("人民医院", "中医医院", "妇幼保健院")[(i - 1) // len(region.counties) % 3]
            name, lv = f"{region.name}{county.name}{kind}", rng.choice(("05", "05", "06", "13"))
        code = fixmedins_code(county.code, i + 1)
        out.append(Institution(code=code, name=name, key=_key(seed, code), role="hospital",
                               uscc=make_uscc(county.code, rng), admdvs=county.code, hosp_lv=lv))
    return tuple(out)


def synth_center(region_code: str = DEFAULT_REGION, seed: int | str = 0) -> Institution:
    """The region's 地方影像云数据共享中心 (a 事业单位 too)."""
    region = REGIONS[region_code]
    rng = random.Random(f"{seed}:center:{region_code}")
    code = fixmedins_code(region_code, 1, prefix="C")
    return Institution(code=code, name=f"{region.name}地方影像云数据共享中心", key=_key(seed, code), role="center",
                       uscc=make_uscc(region_code, rng), admdvs=region_code, hosp_lv="11")


@dataclass(frozen=True, slots=True)
class Staff:
    code: str  # 医生代码 in the HIS
    person: Person
    title: str  # 主任医师 …

    @property
    def name(self) -> str:
        return self.person.name

    @property
    def idcard(self) -> str:
        return self.person.certno


@dataclass(frozen=True, slots=True)
class Device:
    code: str  # 成像设备代码 (examInseqi)
    model: DeviceModel
    room: str
    serial: str
    ae_title: str


@dataclass(frozen=True, slots=True)
class Workforce:
    """Who works in a hospital's imaging departments and who orders exams there."""

    radiologists: tuple[Staff, ...]  # write reports
    chiefs: tuple[Staff, ...]  # review reports (审核, 二审)
    technicians: tuple[Staff, ...]
    sonographers: tuple[Staff, ...]  # perform and report ultrasound
    clinicians: tuple[Staff, ...]  # order exams
    devices: dict[str, tuple[Device, ...]]

    def reporters(self, modality: str) -> tuple[Staff, ...]:
        return self.sonographers if modality == "US" else self.radiologists


_TITLES_JUNIOR = ("住院医师", "主治医师")
_TITLES_SENIOR = ("副主任医师", "主任医师")


@lru_cache(maxsize=64)
def workforce(inst: Institution, seed: int | str) -> Workforce:
    """A hospital's staff and devices; the same for the same institution and seed."""
    rng = random.Random(f"{seed}:workforce:{inst.code}")
    from faker import Faker  # imported by the first factory made, not with the module

    fake = Faker("zh_CN")
    fake.seed_instance(f"{seed}:workforce:{inst.code}")
    region: Region = region_of(inst.admdvs)
    today = date(2025, 10, 1)
    counter = iter(range(1, 10_000))

    def staff(n: int, titles: tuple[str, ...], prefix: str) -> tuple[Staff, ...]:
        out = []
        for _ in range(n):
            p = make_person(fake, rng, region, today, min_age=24, max_age=60, other_certs=False)
            out.append(Staff(f"{prefix}{inst.code[1:7]}{next(counter):04d}", p, rng.choice(titles)))
        return tuple(out)

    level = inst.hosp_lv in ("01", "02", "03", "04", "12") and "3" or inst.hosp_lv in ("05", "06", "07", "13") and "2" or "1"
    devices: dict[str, tuple[Device, ...]] = {}
    for modality, n in FLEET[level].items():
        models = [m for m in DEVICE_MODELS if m.modality == modality]
        devs = []
        for k in range(1, n + 1):
            model = rng.choice(models)
            code = f"{inst.code}{modality}{k:02d}"
            devs.append(Device(code, model, ROOM_NAMES[modality].format(n=k), f"{rng.randrange(10**6):06d}",
                               f"{modality}{k:02d}_{inst.code[-5:]}"[:16]))
        devices[modality] = tuple(devs)
    size = 2 if level == "3" else 1
    return Workforce(
        radiologists=staff(4 * size, _TITLES_JUNIOR + _TITLES_SENIOR[:1], "D"),
        chiefs=staff(2 * size, _TITLES_SENIOR, "D"),
        technicians=staff(4 * size, ("技师", "主管技师"), "T"),
        sonographers=staff(3 * size, _TITLES_JUNIOR + _TITLES_SENIOR, "D"),
        clinicians=staff(12 * size, _TITLES_JUNIOR + _TITLES_SENIOR, "D"),
        devices=devices,
    )


def exam_department(modality: str) -> str:
    return EXAM_DEPT[modality]
