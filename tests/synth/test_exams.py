from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from sandbox.config import Settings
from sandbox.spec.dicts import EXAM_RSLT_CODE, HOSP_LV, IMG_EXAM_TYPE
from sandbox.spec.fields import HOP1
from sandbox.spec.formats import parse_date, parse_datetime
from sandbox.spec.index_profiles import PROFILES
from sandbox.synth.catalogue import ITEMS
from sandbox.synth.dataset import build_messages
from sandbox.synth.exams import OPTIONAL_FIELDS, Exam, ExamFactory
from sandbox.validate import validate_message

MODALITY_TYPE = {"CT": "2", "MR": "3", "DX": "1", "CR": "1", "US": "4"}
# Words a report of each body region must contain, and words it must not.
REGION_WORDS = {
    "head": ("脑", "肺"), "chest": ("肺", "脑室"), "abdomen": ("肝", "肺纹理"), "lspine": ("椎", "肝脏"),
    "knee": ("关节", "肺"), "pelvis": ("髋", "肺"), "us_abdomen": ("肝", "脑"), "us_thyroid": ("甲状腺", "肝"),
    "us_gyn": ("子宫", "肺"),
}
DATE_CHAIN = ("diagTime", "appyDate", "examDate", "rpotDate", "chkDate", "sdryChkDate", "rpotPubDate")


def test_dates_follow_the_clinical_order(sample_exams: list[Exam]) -> None:
    for e in sample_exams:
        t = e.times
        assert t.symp_begin <= t.diag <= t.appy <= t.exam <= t.rpot <= t.chk <= t.sdry <= t.pub
        if t.symp_end is not None:
            assert t.symp_begin <= t.symp_end <= t.exam
        rec = e.record("http://h")
        assert parse_date(rec["examDate"]) == t.exam.date()
        present = [rec[f] for f in DATE_CHAIN if f in rec]
        stamps = [(v + " 00:00:00" if len(v) == 10 else v) for v in present]
        # examDate carries only the day: compare it by day with its neighbours.
        for a, b in zip(stamps, stamps[1:], strict=False):
            assert a[:10] <= b[:10], (a, b)
        assert all(parse_datetime(s) is not None for s in stamps)


def test_records_are_consistent_with_their_modality_and_body_part(sample_exams: list[Exam]) -> None:
    for e in sample_exams:
        rec = e.record("http://h")
        item = e.items[0]
        assert rec["imgExamType"] == MODALITY_TYPE[item.modality] and rec["imgExamType"] in IMG_EXAM_TYPE
        assert rec["examPart"].split(" ")[0].startswith(item.modality if item.modality != "US" else "US")
        assert rec["hospLv"] in HOSP_LV
        must, never = REGION_WORDS[item.phantom if item.modality != "US" else item.key]
        single = len(e.items) == 1
        if "imgDscr" in rec:
            assert must in rec["imgDscr"], (item.key, rec["imgDscr"])
            assert never not in rec["imgDscr"] or not single, (item.key, rec["imgDscr"])
        if "examDevType" in rec:
            assert rec["examDevType"] == {"CT": "CT", "MR": "MR", "DX": "DR", "CR": "CR", "US": "彩超"}[item.modality]
        if "examWay" in rec:
            assert rec["examWay"] in ("1", "1 2", "9")
            assert (rec["examWay"] == "1 2") == e.enhanced
            assert ("增强" in rec["imgExamItem"]) == e.enhanced
        if "examRsltCode" in rec:
            assert rec["examRsltCode"] in EXAM_RSLT_CODE
            assert (rec["examRsltCode"] == "1") == (e.finding is None)
            if "diagRslt" in rec and single:
                assert ("未见明显异常" in rec["diagRslt"]) == (e.finding is None)
        if e.patient.gend == "1":
            assert item.sex != "2"


def test_every_catalogue_item_and_modality_occurs(sample_exams: list[Exam]) -> None:
    keys = Counter(e.items[0].key for e in sample_exams)
    assert set(keys) == {i.key for i in ITEMS}
    assert any(len(e.items) > 1 for e in sample_exams)  # 多项目 exams: names joined, codes space-separated
    multi = next(e for e in sample_exams if len(e.items) > 1).record("http://h")
    assert "，" in multi["imgExamItem"] and " " in multi["examPart"]


def test_optional_fields_are_filled_often_but_not_always(sample_exams: list[Exam]) -> None:
    counts: Counter[str] = Counter()
    for e in sample_exams:
        counts.update(e.record("http://h").keys())
    n = len(sample_exams)
    for spec in HOP1.fields:
        if spec.required:
            assert counts[spec.code] == n, spec.code
        else:
            assert spec.code in OPTIONAL_FIELDS
            assert 0 < counts[spec.code] < n, (spec.code, counts[spec.code])
    assert counts["fixmedinsName"] / n > 0.9
    assert counts["rpotCritVal"] / n < 0.05
    assert 0.1 < counts["sdryChkDrName"] / n < 0.3


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_indexes_are_unique_over_ten_thousand_exams(profile: str, settings: Settings) -> None:
    seen: set[str] = set()
    total = 0
    for h in settings.hospitals:
        factory = ExamFactory(h, settings.center.uscc, 2025, index_profile=profile)
        for n in range(5000):
            exam = factory.exam(n)
            assert PROFILES[profile].parse(exam.index) is not None
            seen.add(exam.index)
            total += 1
    assert total == 10_000 and len(seen) == total


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_generated_message_validates_in_strict_mode(profile: str, settings: Settings) -> None:
    for h in settings.hospitals:
        factory = ExamFactory(h, settings.center.uscc, 8, index_profile=profile)
        items = [(e, e.record("http://127.0.0.1:8700")) for e in factory.exams(300)]
        messages = build_messages(h, items)
        assert len(messages) > 1
        for msg in messages:
            report = validate_message(msg, 1, "strict", profile)
            assert report.valid, [p.text() for p in report.errors][:5]
            assert not report.warnings, [p.text() for p in report.warnings][:5]


def test_exam_n_is_the_same_however_many_are_generated(make_factory: Callable[..., ExamFactory]) -> None:
    a = make_factory(seed=5).exams(30)
    b = make_factory(seed=5).exams(10, offset=20)
    assert [e.record("http://h") for e in a[20:]] == [e.record("http://h") for e in b]
    assert make_factory(seed=5).exam(7).record("http://h") == a[7].record("http://h")


def test_another_seed_gives_other_exams(make_factory: Callable[..., ExamFactory]) -> None:
    a = [e.record("http://h") for e in make_factory(seed=5).exams(20)]
    b = [e.record("http://h") for e in make_factory(seed=6).exams(20)]
    assert not {r["certno"] for r in a} & {r["certno"] for r in b}
    assert {r["hiImgIndx"] for r in a}.isdisjoint({r["hiImgIndx"] for r in b})


def test_file_links_point_at_the_hospitals_own_urls(make_factory: Callable[..., ExamFactory]) -> None:
    exam = make_factory().exam(0)
    rec = exam.record("http://10.1.2.3:8700/")
    assert rec["examRpotPdfI"] == f"http://10.1.2.3:8700/files/{exam.exam_id}/report.pdf"
    assert rec["imgInfoDcm"] == f"http://10.1.2.3:8700/dicomweb/studies/{exam.study_uid}"
    assert len(rec["imgInfoDcm"]) <= 500


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_uscc_in_every_index_has_a_correct_check_character(profile: str, settings: Settings) -> None:
    from sandbox.spec.checksums import uscc_valid

    factory = ExamFactory(settings.hospitals[1], settings.center.uscc, 3, index_profile=profile)
    for exam in factory.exams(300):
        parts = PROFILES[profile].parse(exam.record("http://h")["hiImgIndx"])
        assert parts is not None and uscc_valid(parts["stog_uscc"]) and parts["stog_uscc"] == settings.center.uscc


def test_visit_type_department_and_clinical_diagnosis_agree(sample_exams: list[Exam]) -> None:
    visits = Counter(e.visit for e in sample_exams)
    assert set(visits) == {"门诊", "住院", "急诊", "体检"}
    for e in sample_exams:
        assert (e.ordering_dept == "体检中心") == (e.visit == "体检")
        assert (e.indication.icd == "Z00.000") == (e.visit == "体检")
        assert (e.visit == "急诊") == (e.ordering_dept == "急诊科")
        assert bool(e.inpatient_no) == (e.visit == "住院") and bool(e.ward) == (e.visit == "住院")
