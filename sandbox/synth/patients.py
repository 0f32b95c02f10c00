"""Synthetic patients (and staff) with Faker `zh_CN`.

Resident ID numbers follow GB 11643: 6-digit division of the holder's 户籍 + birth date + 3-digit order
number whose last digit is odd for men and even for women + a check character. A patient's `brdy`,
`gend` and `age` are read off the same birth date and sex, so they always agree with the number.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from sandbox.spec.checksums import id_check_char
from sandbox.synth.regions import HOME_REGION_SHARE, REGIONS, County, Region

if TYPE_CHECKING:
    from faker import Faker

# GB/T 2261.2 婚姻状况 and GB/T 2261.4 职业 (the codes HIS systems send in mrgStas and prfs).
MARITAL = {"10": "未婚", "20": "已婚", "30": "丧偶", "40": "离婚", "90": "未说明的婚姻状况"}
OCCUPATIONS = {
    "11": "国家公务员", "13": "专业技术人员", "17": "职员", "21": "企业管理人员", "24": "工人", "27": "农民",
    "31": "学生", "37": "现役军人", "51": "自由职业者", "54": "个体经营者", "70": "无业人员", "80": "退（离）休人员",
    "90": "其他",
}
_WORKING = (("27", 5), ("24", 3), ("17", 2), ("54", 2), ("13", 1.5), ("51", 1), ("21", 0.6), ("11", 0.5),
            ("70", 1), ("37", 0.1), ("90", 0.5))

# Age bands of people who get imaging exams, with their shares.
AGE_BANDS: tuple[tuple[int, int, float], ...] = ((0, 0, 0.01), (1, 14, 0.05), (15, 39, 0.22), (40, 59, 0.34),
                                                 (60, 79, 0.30), (80, 95, 0.08))

# Certificate types other than the resident ID, with their shares among all patients.
OTHER_CERTS: tuple[tuple[str, float], ...] = (("113", 0.006), ("414", 0.008), ("516", 0.005), ("511", 0.003),
                                              ("553", 0.002))
_FOREIGN = (("USA", "约翰·史密斯"), ("GBR", "大卫·布朗"), ("KOR", "金敏俊"), ("JPN", "佐藤健一"), ("DEU", "托马斯·穆勒"),
            ("FRA", "皮埃尔·马丁"))
_VILLAGES = ("新民", "红星", "金星", "团结", "光明", "胜利", "和平", "建设", "向阳", "永安", "太平", "长岭", "石龙", "柏林")


def weighted(rng: random.Random, pairs: tuple[tuple[str, float], ...] | list[tuple[str, float]]) -> str:
    """One key of (key, weight) pairs."""
    total = sum(w for _, w in pairs)
    x = rng.random() * total
    for key, w in pairs:
        x -= w
        if x < 0:
            return key
    return pairs[-1][0]


def resident_id(county: str, birth: date, male: bool, rng: random.Random) -> str:
    """An 18-character resident ID number (GB 11643) for a person born in `county`."""
    order = rng.randrange(0, 100) * 10 + rng.choice((1, 3, 5, 7, 9) if male else (0, 2, 4, 6, 8))
    first17 = f"{county}{birth:%Y%m%d}{order:03d}"
    return first17 + id_check_char(first17)


def age_on(birth: date, day: date) -> int:
    """Completed years of age on `day`."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def age_value(birth: date, day: date) -> int | float:
    """`age` as the document wants it (BigDecimal, one decimal): whole years, or tenths of a year under one."""
    years = age_on(birth, day)
    if years >= 1:
        return years
    return round((day - birth).days / 365.25, 1)


@dataclass(frozen=True, slots=True)
class Person:
    """A patient or a member of staff."""

    family: str
    given: str
    gend: str  # 1 男 2 女
    birth: date
    cert_type: str
    certno: str
    tel: str
    address: str
    county: str  # the 6-digit division of the address
    postcode: str
    marital: str
    occupation: str
    health_card: str  # elecHlCardNo

    @property
    def name(self) -> str:
        return self.family + self.given

    @property
    def male(self) -> bool:
        return self.gend == "1"


def _pick_county(rng: random.Random, home: Region) -> County:
    if rng.random() < HOME_REGION_SHARE:
        return rng.choice(home.counties)
    other = rng.choice([r for code, r in REGIONS.items() if code != home.code])
    return rng.choice(other.counties)


def _address(fake: Faker, rng: random.Random, county: County) -> str:
    region = next(r for r in REGIONS.values() if county in r.counties)
    town = rng.choice(county.towns)
    head = f"{region.province}{region.name if region.name != region.province else ''}{county.name}{town}"
    if town.endswith("街道"):
        street = fake.street_name()
        return f"{head}{street}{rng.randint(1, 300)}号{rng.randint(1, 6)}栋{rng.randint(1, 4)}单元{rng.randint(1, 18)}0{rng.randint(1, 4)}室"
    return f"{head}{rng.choice(_VILLAGES)}村{rng.randint(1, 12)}组{rng.randint(1, 80)}号"


def _mobile(rng: random.Random) -> str:
    prefix = rng.choice(("133", "135", "136", "138", "139", "150", "151", "152", "157", "158", "159", "177",
                         "180", "181", "182", "183", "187", "188", "189", "191", "199"))
    return prefix + f"{rng.randrange(10**8):08d}"


def _other_cert(cert_type: str, birth: date, rng: random.Random, nationality: str = "USA") -> str:
    if cert_type == "414":  # 普通护照: E + 8 digits
        return "E" + f"{rng.randrange(10**8):08d}"
    if cert_type == "516":  # 港澳居民来往内地通行证: H/M + 8 digits + 2-digit issue count
        return rng.choice("HM") + f"{rng.randrange(10**8):08d}" + f"{rng.randint(0, 3):02d}"
    if cert_type == "511":  # 台湾居民来往大陆通行证: 8 digits
        return f"{rng.randrange(10**8):08d}"
    if cert_type == "553":  # 外国人永久居留身份证 (15-character form): nationality + 51 + yymmdd + order
        return nationality + "51" + f"{birth:%y%m%d}" + f"{rng.randrange(10**4):04d}"
    if cert_type == "117":  # 出生医学证明: letter + 9 digits
        return rng.choice("NOPQ") + "51" + f"{rng.randrange(10**7):07d}"
    raise ValueError(cert_type)


def make_person(
    fake: Faker,
    rng: random.Random,
    home: Region,
    on: date,
    *,
    sex: str = "",
    min_age: int = 0,
    max_age: int = 95,
    other_certs: bool = True,
) -> Person:
    """A person living mostly in `home`, aged `min_age`–`max_age` on `on`, with consistent ID, sex and birth."""
    bands = [(lo, hi, w) for lo, hi, w in AGE_BANDS if hi >= min_age and lo <= max_age]
    lo, hi, _ = bands[int(weighted(rng, [(str(i), w) for i, (_, _, w) in enumerate(bands)]))]
    years = rng.randint(max(lo, min_age), min(hi, max_age))
    birth = on - timedelta(days=int(years * 365.25) + rng.randint(1, 364))
    if age_on(birth, on) < min_age:
        birth = birth.replace(year=birth.year - 1)
    gend = sex or ("1" if rng.random() < 0.5 else "2")
    male = gend == "1"
    family = fake.last_name()
    given = fake.first_name_male() if male else fake.first_name_female()
    county = _pick_county(rng, home)
    age = age_on(birth, on)

    cert_type = "111"
    certno = resident_id(county.code, birth, male, rng)
    nationality = ""
    if other_certs:
        if age < 1 and rng.random() < 0.6:
            cert_type = "117"
        elif age < 16 and rng.random() < 0.3:
            cert_type = "113"  # 户口簿 carries the same resident ID number
        else:
            x = rng.random()
            for code, share in OTHER_CERTS:
                if code == "113":
                    continue
                if x < share:
                    cert_type = code
                    if code == "553":
                        nationality, family = rng.choice(_FOREIGN)
                        given = ""
                    break
                x -= share
        if cert_type not in ("111", "113"):
            certno = _other_cert(cert_type, birth, rng, nationality)

    if age < 20:
        marital = "10"
    elif age >= 75 and rng.random() < 0.3:
        marital = "30"
    else:
        marital = weighted(rng, (("20", 0.82), ("10", 0.08 if age > 35 else 0.4), ("40", 0.05), ("90", 0.03)))
    if age < 6:
        occupation = "90"
    elif age < 19:
        occupation = "31"
    elif age >= 60 and rng.random() < 0.6:
        occupation = "80" if rng.random() < 0.4 else "27"
    else:
        occupation = weighted(rng, _WORKING)
    card = hashlib.sha256(f"ehc:{certno}".encode()).hexdigest()[:32].upper()
    return Person(
        family=family,
        given=given,
        gend=gend,
        birth=birth,
        cert_type=cert_type,
        certno=certno,
        tel=_mobile(rng),
        address=_address(fake, rng, county),
        county=county.code,
        postcode=county.postcode,
        marital=marital,
        occupation=occupation,
        health_card=card,
    )
