"""Synthetic imaging exams: one typed `Exam` per (seed, hospital, n), and its hop-1 record as a plain dict.

Exam n of a seed is the same however many exams are generated: every random choice comes from sources
seeded with (seed, hospital, n, purpose). Times are laid on a fixed calendar (exam n takes the n-th
5-minute slot from `base_date`, 150 slots a day), so they never depend on the clock and the exam time
in the index is unique per hospital and seed.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sandbox.config import Institution
from sandbox.spec.fields import HOP1
from sandbox.spec.formats import format_date, format_datetime
from sandbox.spec.index_profiles import PROFILES, parts_for
from sandbox.synth.catalogue import (
    COMBINATION_SHARE,
    COMBINATIONS,
    ITEM_BY_KEY,
    ITEMS,
    ORDERING_DEPTS,
    VISITS,
    WARDS,
    Item,
)
from sandbox.synth.institutions import Device, Staff, Workforce, exam_department, workforce
from sandbox.synth.patients import Person, age_value, make_person, weighted
from sandbox.synth.regions import region_of
from sandbox.synth.texts import (
    ALLERGIES,
    HISTORIES,
    INDICATIONS,
    ITEM_REGION,
    NORMAL_ADVICE,
    NORMAL_SHARE,
    REPORTS,
    Finding,
    Indication,
)
from sandbox.synth.urls import report_url, study_url

BASE_DATE = date(2025, 10, 8)  # first exam day; fixed so that output never depends on the clock
DAY_START = time(7, 30)
SLOT = timedelta(minutes=5)
SLOTS_PER_DAY = 150

# DICOM UIDs under 2.25 (ISO/IEC 9834-8: the decimal of a UUID, no registered root needed). The UUIDs are
# name-based (version 5) on the seed and the exam, so the same seed gives the same UIDs.
UID_NAMESPACE = uuid.UUID("6f1c2a4e-93d5-5b8e-9a47-2c0b51080000")


def make_uid(*parts: object) -> str:
    """A reproducible DICOM UID from its parts (seed, institution, exam, purpose …)."""
    return "2.25." + str(uuid.uuid5(UID_NAMESPACE, ":".join(map(str, parts))).int)

# How often an optional field is filled. Fields in one group are filled together.
FILL_GROUPS: tuple[tuple[tuple[str, ...], float], ...] = (
    (("fixmedinsName",), 0.97),
    (("examItemCode",), 0.9),
    (("examWay",), 0.9),
    (("examDeptName",), 0.95),
    (("examDrCode", "examDrName"), 0.85),
    (("clncDiag",), 0.9),
    (("appyNo",), 0.92),
    (("appyDeptName",), 0.9),
    (("appyDate",), 0.85),
    (("bilgDrCode", "bilgDrName"), 0.85),
    (("disecode",), 0.75),
    (("diagTime",), 0.6),
    (("brdy", "age"), 0.95),
    (("tel",), 0.85),
    (("fmAddr",), 0.75),
    (("mrgStas",), 0.6),
    (("elecHlCardNo",), 0.3),
    (("prfs",), 0.5),
    (("postcode",), 0.5),
    (("wardareaCode", "wardareaName"), 0.9),  # inpatients only
    (("iptNo",), 1.0),  # inpatients only
    (("patnId",), 0.95),
    (("illhis",), 0.5),
    (("chfcomp",), 0.7),
    (("algs",), 0.5),
    (("sympBegndate",), 0.4),
    (("sympEnddate",), 0.3),  # only when symptoms have ended
    (("sympDscr",), 0.5),
    (("examInseqi", "devRoom"), 0.7),
    (("devName", "examDevType"), 0.75),
    (("examTecnName",), 0.8),
    (("examTecnIdcard",), 0.6),
    (("imgDscr", "diagRslt"), 0.97),
    (("rpotNo",), 0.95),
    (("rpotMedinsCode", "chkMedinsCode"), 0.8),
    (("rpotDrIdcard", "chkDrIdcard"), 0.7),
    (("rpotDrName",), 0.95),
    (("chkDrName",), 0.9),
    (("sdryChkMedinsCode", "sdryChkDrIdcard", "sdryChkDrName", "sdryChkDate"), 0.2),
    (("rpotDate",), 0.95),
    (("chkDate",), 0.9),
    (("examRsltCode",), 0.85),
    (("rpotAdv",), 0.7),  # only when there is advice
    (("rpotPubDate",), 0.9),
    (("rpotCritVal",), 0.95),  # only for critical findings
)
OPTIONAL_FIELDS = frozenset(f for group, _ in FILL_GROUPS for f in group)

# Minutes from the start of an exam to its report, and from report to review, per modality.
_REPORT_DELAY = {"CT": (20, 240), "MR": (30, 360), "DX": (10, 120), "CR": (10, 120), "US": (3, 20)}
_CHECK_DELAY = {"CT": (5, 180), "MR": (10, 240), "DX": (5, 120), "CR": (5, 120), "US": (2, 60)}


@dataclass(frozen=True, slots=True)
class ExamTimes:
    diag: datetime  # 诊断时间 (clinical diagnosis written before the request)
    appy: datetime  # 申请日期
    exam: datetime  # start of the exam (examDate is its date; the index carries the time)
    rpot: datetime  # 报告日期
    chk: datetime  # 审核日期
    sdry: datetime  # 二审日期
    pub: datetime  # 出具报告日期
    symp_begin: datetime
    symp_end: datetime | None


@dataclass(slots=True)
class Exam:
    """One imaging exam of one patient at one hospital, with everything its record, DICOM and PDF need."""

    n: int
    seed: int | str
    exam_id: str
    hospital: Institution
    stog_uscc: str
    patient: Person
    items: tuple[Item, ...]
    enhanced: bool
    visit: str
    indication: Indication
    finding: Finding | None
    device: Device
    technician: Staff
    reporter: Staff
    checker: Staff
    second_checker: Staff
    clinician: Staff
    ordering_dept: str
    ward: tuple[str, str] | None
    times: ExamTimes
    accession: str
    patient_id: str
    inpatient_no: str
    report_no: str
    history: str
    allergy: str
    findings: str
    impression: str
    advice: str
    result: str
    critical: str
    study_uid: str
    index: str
    filled: frozenset[str] = field(default_factory=frozenset)

    @property
    def modality(self) -> str:
        return self.items[0].modality

    @property
    def img_exam_type(self) -> str:
        return self.items[0].img_exam_type

    @property
    def item_names(self) -> tuple[str, ...]:
        return tuple(i.enhanced_name if self.enhanced and i.enhanced_name else i.name for i in self.items)

    @property
    def item_name(self) -> str:
        return "，".join(self.item_names)

    @property
    def item_code(self) -> str:
        return " ".join(i.enhanced_code if self.enhanced and i.enhanced_code else i.item_code for i in self.items)

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(i.enhanced_part if self.enhanced and i.enhanced_part else i.part for i in self.items)

    @property
    def way(self) -> str:
        if self.modality in ("CT", "MR"):
            return "1 2" if self.enhanced else "1"
        return "9"

    @property
    def age(self) -> int | float:
        return age_value(self.patient.birth, self.times.exam.date())

    def record(self, base_url: str) -> dict[str, Any]:
        """The hop-1 record (`data` entry), with file links under the hospital's `base_url`."""
        p, t, h = self.patient, self.times, self.hospital
        values: dict[str, Any] = {
            "hiImgIndx": self.index,
            "psnName": p.name,
            "psnCertType": p.cert_type,
            "certno": p.certno,
            "gend": p.gend,
            "fixmedinsCode": h.code,
            "fixmedinsName": h.name,
            "examAdmdvs": h.admdvs,
            "imgExamType": self.img_exam_type,
            "examItemCode": self.item_code,
            "imgExamItem": self.item_name,
            "examDate": format_date(t.exam.date()),
            "examPart": " ".join(self.parts),
            "examWay": self.way,
            "examDeptName": exam_department(self.modality),
            "examDrCode": self.reporter.code,
            "examDrName": self.reporter.name,
            "clncDiag": self.indication.diagnosis,
            "appyNo": self.accession,
            "appyDeptName": self.ordering_dept,
            "appyDate": format_datetime(t.appy),
            "bilgDrCode": self.clinician.code,
            "bilgDrName": self.clinician.name,
            "disecode": self.indication.icd,
            "diagTime": format_datetime(t.diag),
            "brdy": format_date(p.birth),
            "age": self.age,
            "tel": p.tel,
            "fmAddr": p.address,
            "mrgStas": p.marital,
            "elecHlCardNo": p.health_card,
            "prfs": p.occupation,
            "postcode": p.postcode,
            "iptNo": self.inpatient_no,
            "wardareaCode": self.ward[0] if self.ward else "",
            "wardareaName": self.ward[1] if self.ward else "",
            "patnId": self.patient_id,
            "illhis": self.history,
            "chfcomp": self.indication.complaint,
            "algs": self.allergy,
            "sympBegndate": format_datetime(t.symp_begin),
            "sympEnddate": format_datetime(t.symp_end) if t.symp_end else "",
            "sympDscr": self.indication.symptom,
            "examInseqi": self.device.code,
            "devRoom": self.device.room,
            "devName": self.device.model.title,
            "examDevType": self.device.model.dev_type,
            "examTecnName": self.technician.name,
            "examTecnIdcard": self.technician.idcard,
            "imgDscr": self.findings,
            "diagRslt": self.impression,
            "rpotNo": self.report_no,
            "rpotMedinsCode": h.code,
            "rpotDrIdcard": self.reporter.idcard,
            "rpotDrName": self.reporter.name,
            "chkMedinsCode": h.code,
            "chkDrIdcard": self.checker.idcard,
            "chkDrName": self.checker.name,
            "sdryChkMedinsCode": h.code,
            "sdryChkDrIdcard": self.second_checker.idcard,
            "sdryChkDrName": self.second_checker.name,
            "rpotDate": format_datetime(t.rpot),
            "chkDate": format_datetime(t.chk),
            "sdryChkDate": format_datetime(t.sdry),
            "examRsltCode": self.result,
            "rpotAdv": self.advice,
            "rpotPubDate": format_datetime(t.pub),
            "rpotCritVal": self.critical,
            "hospLv": h.hosp_lv,
            "examRpotPdfI": report_url(base_url, self.exam_id),
            "imgInfoDcm": study_url(base_url, self.study_uid),
        }
        out: dict[str, Any] = {}
        for spec in HOP1.fields:  # the document's order; a field the builder lacks is a bug (KeyError)
            value = values[spec.code]
            if spec.required or (spec.code in self.filled and value not in ("", None)):
                out[spec.code] = value
        return out


def exam_id_for(seed: int | str, inst_code: str, n: int) -> str:
    """The hospital's own id for exam n (URL-safe, never taken from input)."""
    return "E" + hashlib.sha256(f"{seed}:exam:{inst_code}:{n}".encode()).hexdigest()[:19]


def study_uid_for(seed: int | str, inst_code: str, n: int) -> str:
    return make_uid(seed, inst_code, n, "study")


def _between(rng: random.Random, start: datetime, lo_min: int, hi_min: int) -> datetime:
    return start + timedelta(minutes=rng.randint(lo_min, hi_min), seconds=rng.randint(0, 59))


class ExamFactory:
    """Makes exam n of one hospital for one seed."""

    def __init__(
        self,
        hospital: Institution,
        stog_uscc: str,
        seed: int | str,
        *,
        index_profile: str,
        base_date: date = BASE_DATE,
        not_after: Callable[[], datetime] | None = None,
    ) -> None:
        self.hospital = hospital
        # A live clock (China time): an exam whose calendar slot would end after it (a demo dated today) is
        # moved back as a whole, so its report is published no later than now and every time keeps its order.
        self.not_after = not_after
        self.stog_uscc = stog_uscc
        self.seed = seed
        self.profile = PROFILES[index_profile]
        self.base_date = base_date
        self.region = region_of(hospital.admdvs)
        self.staff: Workforce = workforce(hospital, seed)
        from faker import Faker  # imported by the first factory made, not with the module

        self._fake = Faker("zh_CN")
        self._items = [(i.key, i.weight) for i in ITEMS]

    def exam_time(self, n: int, rng: random.Random) -> datetime:
        day = self.base_date + timedelta(days=n // SLOTS_PER_DAY)
        start = datetime.combine(day, DAY_START) + SLOT * (n % SLOTS_PER_DAY)
        return start + timedelta(seconds=rng.randrange(int(SLOT.total_seconds())))

    def exams(self, count: int, offset: int = 0) -> list[Exam]:
        return [self.exam(n) for n in range(offset, offset + count)]

    def exam(self, n: int) -> Exam:
        """Exam n (0-based) of this hospital and seed (moved back when it would end after `not_after`)."""
        exam = self._exam(n, timedelta(0))
        if self.not_after is not None:
            late = exam.times.pub - self.not_after()
            if late > timedelta(0):
                # the same draws from the same seeds: every interval is kept, the exam just happens earlier
                exam = self._exam(n, -late)
        return exam

    def _exam(self, n: int, shift: timedelta) -> Exam:
        tag = f"{self.seed}:{self.hospital.code}:{n}"
        rng = random.Random(f"{tag}:exam")
        fake = self._fake
        fake.seed_instance(f"{tag}:faker")

        first = ITEM_BY_KEY[weighted(rng, self._items)]
        items: tuple[Item, ...] = (first,)
        if rng.random() < COMBINATION_SHARE:
            combo = next((c for c in COMBINATIONS if c[0] == first.key), None)
            if combo:
                items = (first, ITEM_BY_KEY[combo[1]])
        enhanced = first.enhanced_share > 0 and rng.random() < first.enhanced_share
        visit = weighted(rng, VISITS)
        if first.modality in ("CT", "MR") and enhanced and visit == "体检":
            visit = "门诊"
        exam_at = self.exam_time(n, rng) + shift
        patient = make_person(fake, random.Random(f"{tag}:patient"), self.region, exam_at.date(),
                              sex=first.sex, min_age=max(i.min_age for i in items),
                              max_age=70 if first.sex else 95)

        indications = INDICATIONS[ITEM_REGION[first.key]]
        indication = rng.choice(indications)
        checkup = next((i for i in indications if i.icd == "Z00.000"), None)
        if visit == "体检":  # health check-ups order only what a check-up includes
            if checkup is None:
                visit = "门诊"
            else:
                indication = checkup
        elif indication is checkup:
            indication = indications[0]
        texts = REPORTS[first.key]
        finding: Finding | None = None
        if rng.random() >= NORMAL_SHARE[visit]:
            finding = texts.abnormal[int(weighted(rng, [(str(k), f.weight) for k, f in enumerate(texts.abnormal)]))]
        findings, impression, advice, result, critical = self._report(items, enhanced, finding, rng)

        staff = self.staff
        device = rng.choice(staff.devices[first.modality])
        reporters = staff.reporters(first.modality)
        reporter = rng.choice(reporters)
        checker = rng.choice([s for s in staff.chiefs if s is not reporter] or list(staff.chiefs))
        second = rng.choice([s for s in staff.chiefs if s is not checker] or list(staff.chiefs))
        technician = reporter if first.modality == "US" else rng.choice(staff.technicians)
        clinician = rng.choice(staff.clinicians)
        dept = rng.choice([d for d in ORDERING_DEPTS[first.key] if d not in ("体检中心", "急诊科")])
        if visit == "急诊":
            dept = "急诊科"
        elif visit == "体检":
            dept = "体检中心"
        ward = None
        inpatient_no = ""
        if visit == "住院":
            ward = (f"{WARDS[dept]}{rng.randint(1, 2)}", f"{dept}{rng.choice(('一', '二'))}病区")
            inpatient_no = f"ZY{exam_at:%y}{rng.randrange(10**6):06d}"

        times = self._times(first.modality, visit, exam_at, indication, rng)
        exam_id = exam_id_for(self.seed, self.hospital.code, n)
        accession = f"{first.modality}{exam_at:%Y%m%d}{n % 100000:05d}"
        certno = patient.certno
        parts = items[0].enhanced_part if enhanced and items[0].enhanced_part else items[0].part
        index = self.profile.build(parts_for(
            self.profile, cert_type=patient.cert_type, certno=certno, exam_time=f"{exam_at:%Y%m%d%H%M%S}",
            inst_code=self.hospital.code, exam_part=parts, stog_uscc=self.stog_uscc,
        ))

        filled: set[str] = set()
        fill_rng = random.Random(f"{tag}:fill")
        for group, rate in FILL_GROUPS:
            if fill_rng.random() < rate:
                filled.update(group)
        if times.symp_end is None:
            filled.discard("sympEnddate")
        return Exam(
            n=n,
            seed=self.seed,
            exam_id=exam_id,
            hospital=self.hospital,
            stog_uscc=self.stog_uscc,
            patient=patient,
            items=items,
            enhanced=enhanced,
            visit=visit,
            indication=indication,
            finding=finding,
            device=device,
            technician=technician,
            reporter=reporter,
            checker=checker,
            second_checker=second,
            clinician=clinician,
            ordering_dept=dept,
            ward=ward,
            times=times,
            accession=accession,
            patient_id=f"P{self.hospital.code[1:7]}{int(hashlib.sha256(certno.encode()).hexdigest()[:12], 16) % 10**10:010d}",
            inpatient_no=inpatient_no,
            report_no=f"R{exam_at:%Y%m%d}{first.modality}{n % 100000:05d}",
            history=weighted(rng, HISTORIES),
            allergy=weighted(rng, ALLERGIES),
            findings=findings,
            impression=impression,
            advice=advice,
            result=result,
            critical=critical,
            study_uid=study_uid_for(self.seed, self.hospital.code, n),
            index=index,
            filled=frozenset(filled),
        )

    @staticmethod
    def _report(
        items: tuple[Item, ...], enhanced: bool, finding: Finding | None, rng: random.Random
    ) -> tuple[str, str, str, str, str]:
        """(findings, impression, advice, examRsltCode, critical value) for the exam's items."""
        findings, impressions = [], []
        advice, result, critical = rng.choice(NORMAL_ADVICE), "1", ""
        for k, item in enumerate(items):
            texts = REPORTS[item.key]
            f = finding if k == 0 else None
            sentences = [f.text if f and slot == f.slot else text for slot, text in texts.normal]
            name = item.enhanced_name if enhanced and item.enhanced_name else item.name
            if enhanced and texts.enhanced and not f:
                sentences.append(texts.enhanced)
            body = "".join(sentences)
            findings.append(f"{name}：{body}" if len(items) > 1 else body)
            impressions.append(f.impression if f else f"{name}未见明显异常。")
            if f:
                advice, result, critical = f.advice, f.result, f.critical
        return "\n".join(findings), "".join(impressions), advice, result, critical

    @staticmethod
    def _times(modality: str, visit: str, exam_at: datetime, ind: Indication, rng: random.Random) -> ExamTimes:
        if visit == "急诊":
            appy = exam_at - timedelta(minutes=rng.randint(10, 90))
        elif visit == "住院":
            appy = exam_at - timedelta(hours=rng.randint(2, 48))
        elif visit == "体检":
            appy = exam_at - timedelta(minutes=rng.randint(30, 120))
        else:  # outpatients are seen in clinic hours, the same day or a few days before
            days = rng.choice((0, 0, 0, 1, 2, 3))
            clinic = time(rng.randint(8, 16), rng.randint(0, 59), rng.randint(0, 59))
            appy = datetime.combine(exam_at.date() - timedelta(days=days), clinic)
            if appy > exam_at - timedelta(minutes=15):
                appy = datetime.combine(exam_at.date() - timedelta(days=1), clinic)
        diag = appy - timedelta(minutes=rng.randint(1, 30), seconds=rng.randint(0, 59))
        lo, hi = ind.onset_days
        symp_begin = datetime.combine(appy.date() - timedelta(days=rng.randint(lo, hi)), time(rng.randint(6, 22)))
        if symp_begin > diag:
            symp_begin = diag - timedelta(hours=rng.randint(1, 3))
        symp_end = None
        if rng.random() < 0.25:
            symp_end = symp_begin + (diag - symp_begin) * rng.random()
            symp_end = symp_end.replace(microsecond=0)
        rpot = _between(rng, exam_at, *_REPORT_DELAY[modality])
        chk = _between(rng, rpot, *_CHECK_DELAY[modality])
        sdry = _between(rng, chk, 10, 600)
        pub = _between(rng, max(chk, sdry), 1, 60)
        return ExamTimes(diag, appy, exam_at, rpot, chk, sdry, pub, symp_begin, symp_end)
