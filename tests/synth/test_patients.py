from __future__ import annotations

import re
from collections import Counter
from datetime import date

from sandbox.spec.checksums import id_valid
from sandbox.spec.dicts import PSN_CERT_TYPE
from sandbox.synth.exams import Exam
from sandbox.synth.patients import age_on
from sandbox.synth.regions import REGIONS, county_of

ID_FIELDS = ("examTecnIdcard", "rpotDrIdcard", "chkDrIdcard", "sdryChkDrIdcard")
CERT_PATTERNS = {
    "117": r"[NOPQ]51\d{7}",
    "414": r"E\d{8}",
    "516": r"[HM]\d{10}",
    "511": r"\d{8}",
    "553": r"[A-Z]{3}51\d{10}",
}


def test_every_resident_id_in_every_record_has_a_correct_check_digit(sample_exams: list[Exam]) -> None:
    checked = 0
    for exam in sample_exams:
        rec = exam.record("http://h")
        if rec["psnCertType"] in ("111", "113"):
            assert id_valid(rec["certno"]), rec["certno"]
            checked += 1
        for f in ID_FIELDS:
            if f in rec:
                assert id_valid(rec[f]), (f, rec[f])
                checked += 1
    assert checked > 4000


def test_id_birth_date_and_sex_digit_agree_with_brdy_gend_and_age(sample_exams: list[Exam]) -> None:
    for exam in sample_exams:
        p = exam.patient
        exam_day = exam.times.exam.date()
        if p.cert_type in ("111", "113"):
            assert p.certno[6:14] == p.birth.strftime("%Y%m%d")
            assert int(p.certno[16]) % 2 == (1 if p.gend == "1" else 0)
        rec = exam.record("http://h")
        assert rec["gend"] in ("1", "2")
        if "brdy" in rec:
            assert rec["brdy"] == p.birth.isoformat()
            age = rec["age"]
            years = age_on(p.birth, exam_day)
            if years >= 1:
                assert age == years and isinstance(age, int)
            else:
                assert 0 <= age < 1 and round(age, 1) == age


def test_age_counts_completed_years_on_the_exam_day() -> None:
    assert age_on(date(1990, 6, 15), date(2025, 6, 14)) == 34
    assert age_on(date(1990, 6, 15), date(2025, 6, 15)) == 35


def test_a_small_share_of_patients_carry_other_certificates_with_plausible_numbers(
    sample_exams: list[Exam],
) -> None:
    types = Counter(e.patient.cert_type for e in sample_exams)
    assert types["111"] / len(sample_exams) > 0.9
    others = {t for t in types if t not in ("111", "113")}
    assert len(others) >= 3
    assert set(types) <= set(PSN_CERT_TYPE)
    for e in sample_exams:
        pattern = CERT_PATTERNS.get(e.patient.cert_type)
        if pattern:
            assert re.fullmatch(pattern, e.patient.certno), (e.patient.cert_type, e.patient.certno)


def test_patients_live_mostly_in_the_hospitals_region_with_matching_postcode_and_address(
    sample_exams: list[Exam],
) -> None:
    home = 0
    for e in sample_exams:
        p = e.patient
        county = county_of(p.county)
        assert county.code == p.county and p.postcode == county.postcode
        assert county.name in p.address
        if p.county[:4] == e.hospital.admdvs[:4]:
            home += 1
            assert p.address.startswith("四川省广元市")
        if p.cert_type in ("111", "113"):
            assert p.certno[:6] == p.county  # 户籍 division of the ID = address division
    assert 0.75 < home / len(sample_exams) < 0.95
    assert all(p in REGIONS for p in {e.patient.county[:4] + "00" for e in sample_exams} - {"500100"})


def test_phone_marital_status_and_occupation_look_like_his_values(sample_exams: list[Exam]) -> None:
    for e in sample_exams:
        p = e.patient
        assert re.fullmatch(r"1[3-9]\d{9}", p.tel)
        assert p.marital in ("10", "20", "30", "40", "90")
        assert re.fullmatch(r"\d{2}", p.occupation)
        if age_on(p.birth, e.times.exam.date()) < 18:
            assert p.marital == "10"
