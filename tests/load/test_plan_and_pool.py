"""The parts of `sandbox load` that decide what is sent and served, without Locust: users' slots, exam
numbers and msgids never collide across users and workers; pooled studies carry each exam's identity
under UIDs of its own and read as DICOM with dcmtk."""

from __future__ import annotations

import io
import shutil
import subprocess
import tomllib
from datetime import datetime
from email.parser import BytesParser
from pathlib import Path

import pydicom
import pytest

from sandbox.cli import main
from sandbox.config import Settings
from sandbox.load.plan import (
    LAP_EXAMS,
    MsgidClock,
    PlanError,
    Slot,
    UserPlan,
    judge,
    load_hospitals,
    parse_range,
)
from sandbox.load.pool import UID_WIDTH, FilePool, fixed_uid
from sandbox.spec.formats import parse_msgid
from sandbox.synth.dicom import ImageSpec
from sandbox.synth.exams import ExamFactory

TINY = ImageSpec(slices=2, matrix=32, xray_matrix=32, us_shape=(32, 48), us_images=1)


def test_slots_of_every_user_of_every_worker_are_distinct_and_share_hospitals_only_as_laps() -> None:
    hospitals = load_hospitals(Settings(), 4, "510800", 7)
    slots = [Slot.of(w, 3, local, hospitals) for w in range(3) for local in range(5)]
    assert sorted(s.number for s in slots) == list(range(15))
    assert len({(s.hospital.code, s.lap) for s in slots}) == 15
    assert {s.hospital.code for s in slots} == {h.code for h in hospitals}


def test_a_worker_beyond_the_expected_count_is_refused_in_chinese() -> None:
    hospitals = load_hospitals(Settings(), 2, "510800", 7)
    with pytest.raises(PlanError, match="超出预期的负载机数 2"):
        Slot.of(2, 2, 0, hospitals)


def test_users_sharing_a_hospital_send_distinct_exams_and_msgids_in_the_same_second() -> None:
    settings = Settings()
    hospitals = load_hospitals(settings, 1, "510800", 7)
    second = datetime(2026, 3, 2, 14, 30, 5)
    plans = [UserPlan.create(Slot.of(0, 1, local, hospitals), settings, 7, ("CT", "MR", "DX", "CR", "US"), (3, 3))
             for local in range(3)]
    for plan in plans:
        plan.clock = MsgidClock(plan.slot.lap, now=lambda: second)
    indexes, msgids = [], []
    for plan in plans:
        exams = plan.exams()
        assert [e.n for e in exams] == [plan.slot.lap * LAP_EXAMS + k for k in range(3)]
        indexes += [e.index for e in exams]
        for message in plan.messages([e.record("http://127.0.0.1:1") for e in exams]):
            msgids.append(message["msgid"])
            assert message["infCode"] == hospitals[0].code and message["key"] == hospitals[0].key
    assert len(set(indexes)) == 9
    assert len(set(msgids)) == 3
    assert [parse_msgid(m)[2] for m in msgids] == [0, 100, 200]  # type: ignore[index]


def test_the_hundred_and_first_message_of_a_second_waits_for_the_next_second() -> None:
    now = [datetime(2026, 3, 2, 14, 30, 5)]
    waited: list[float] = []

    def sleep(s: float) -> None:
        waited.append(s)
        now[0] = datetime(2026, 3, 2, 14, 30, 6)

    clock = MsgidClock(2, now=lambda: now[0], sleep=sleep)
    seqs = [clock.next() for _ in range(101)]
    assert [s for _, s in seqs[:100]] == list(range(200, 300))
    assert seqs[100] == (datetime(2026, 3, 2, 14, 30, 6), 200) and waited


def test_records_range_and_modalities_shape_the_messages() -> None:
    settings = Settings()
    slot = Slot.of(0, 1, 0, settings.hospitals)
    plan = UserPlan.create(slot, settings, 3, ("US",), parse_range("2-4", "--records"))
    sizes = []
    for _ in range(10):
        exams = plan.exams()
        sizes.append(len(exams))
        assert {e.modality for e in exams} == {"US"}
    assert set(sizes) <= {2, 3, 4} and len(set(sizes)) > 1
    with pytest.raises(PlanError, match="--records"):
        parse_range("0", "--records")


@pytest.fixture(scope="module")
def pool() -> FilePool:
    settings = Settings()
    factory = ExamFactory(settings.hospitals[0], settings.center.uscc, "5:pool", index_profile=settings.index_profile)
    return FilePool(factory, 3, ("CT", "DX", "US"), TINY)


def _parts(content_type: str, body: bytes) -> list[bytes]:
    message = BytesParser().parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    return [part.get_payload(decode=True) for part in message.get_payload()]  # type: ignore[union-attr, misc]


def test_a_pooled_study_carries_the_exams_identity_under_its_own_uids(pool: FilePool, tmp_path: Path) -> None:
    settings = Settings()
    factory = ExamFactory(settings.hospitals[1], settings.center.uscc, 11, index_profile=settings.index_profile)
    exams = [e for e in factory.exams(30) if e.modality in ("CT", "DX", "US")][:4]
    seen: set[str] = set()
    files = []
    for k, exam in enumerate(exams):
        study = fixed_uid("test", k)
        assert len(study) == UID_WIDTH
        served = pool.serve(exam, k, study)
        assert pool.by_study(study) is served and pool.by_exam(exam.exam_id) is served
        content_type, body = served.study()
        parts = _parts(content_type, body)
        assert len(parts) == len(served.pooled.instances)
        for j, part in enumerate(parts):
            ds = pydicom.dcmread(io.BytesIO(part))
            p = exam.patient
            assert str(ds.PatientName) == (f"{p.family}^{p.given}" if p.given else p.family)
            assert ds.PatientID in (exam.patient_id, p.certno)
            assert ds.AccessionNumber == exam.accession
            assert ds.StudyDate == f"{exam.times.exam:%Y%m%d}"
            assert ds.Modality == exam.modality
            assert ds.StudyInstanceUID == study
            assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
            seen.add(ds.SOPInstanceUID)
            path = tmp_path / f"{k}-{j}.dcm"
            path.write_bytes(part)
            files.append(path)
    assert len(seen) == len(files)  # every instance of every exam has its own SOP Instance UID
    assert pool.pdf_bytes and all(n > 1000 for n in pool.pdf_bytes)
    dcmdump = shutil.which("dcmdump")
    if dcmdump is None:
        pytest.skip("dcmdump not installed: Debian package dcmtk is missing (make sysdeps installs it)")
    proc = subprocess.run([dcmdump, "-q", "+U8", *map(str, files)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "E:" not in proc.stderr, proc.stderr
    assert exams[0].patient.family in proc.stdout


def test_print_config_is_a_configuration_a_sandbox_center_loads(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["load", "--target", "http://127.0.0.1:9", "--users", "3", "--seed", "9", "--file-host",
                 "10.1.2.3", "--file-port-base", "9300", "--workers", "2", "--print-config"]) == 0
    values = tomllib.loads(capsys.readouterr().out)
    settings = Settings(**values)
    assert [h.code for h in settings.hospitals] == [h.code for h in load_hospitals(Settings(), 3, "510800", "9")]
    assert settings.allowed_fetch_hosts == ("10.1.2.3:9300", "10.1.2.3:9301")


@pytest.mark.parametrize(("args", "says"), [
    (["--run-time", "5x"], "--run-time 应写作"),
    (["--records", "0"], "--records 应为正整数或范围"),
    (["--modalities", "CT,XA"], "不认识：XA"),
    (["--target", "ftp://x"], "--target 应为 http(s)://"),
])
def test_bad_options_get_one_chinese_line(args: list[str], says: str, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sandbox.commands.load.run_locust", lambda *a: pytest.fail("must not start Locust"))
    argv = ["load", *args] if "--target" in args else ["load", "--target", "http://127.0.0.1:9", *args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("sandbox load: ") and says in err and "Traceback" not in err


def test_without_locust_installed_it_says_so_in_chinese(capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sandbox.commands.load.locust_missing", lambda: True)
    assert main(["load", "--target", "http://127.0.0.1:9"]) == 2
    assert "未安装 Locust" in capsys.readouterr().err


def _message(n: int) -> dict[str, object]:
    settings = Settings()
    plan = UserPlan.create(Slot.of(0, 1, 0, settings.hospitals), settings, 4, ("CT", "MR", "DX", "CR", "US"), (n, n))
    return plan.messages([e.record("http://127.0.0.1:1") for e in plan.exams()])[0]


def test_every_answer_is_judged_per_record_and_failures_are_counted_by_kind() -> None:
    message = _message(3)
    idx = [r["hiImgIndx"] for r in message["data"]]  # type: ignore[index, union-attr]
    body = {"code": 0, "type": "success", "message": "", "data": [
        {"hiImgIndx": idx[0], "succFlag": 1, "message": "保存数据成功"},
        {"hiImgIndx": idx[1], "succFlag": 0, "message": "已保存，但报告 PDF 未保存：内容不是 PDF"},
        {"hiImgIndx": idx[2], "succFlag": -1, "message": "索引号重复：已有内容不同的记录"}]}
    v = judge(message, 200, body)
    assert v.flags == {"1": 1, "0": 1, "-1": 1}
    assert v.acknowledged == idx[:2]
    assert v.kinds == {"succFlag 0：已保存": 1, "succFlag -1：索引号重复": 1}
    assert v.failure is not None and "索引号重复" in v.failure

    ok = judge(message, 200, {"code": 0, "message": "", "data": [
        {"hiImgIndx": i, "succFlag": 1, "message": "保存数据成功"} for i in idx]})
    assert ok.failure is None and ok.kinds == {} and ok.acknowledged == idx

    refused = judge(message, 200, {"code": 1021, "type": "error", "message": "密钥不符：infCode H1 的 key 不正确", "data": []})
    assert refused.kinds == {"报文被拒 code 1021：密钥不符": 3} and refused.acknowledged == []
    assert refused.flags == {"无应答": 3}

    gateway = judge(message, 502, None)
    assert gateway.kinds == {"无应答：HTTP 502": 3}
    down = judge(message, 0, None, "ConnectionRefusedError")
    assert down.kinds == {"无应答：连接失败 ConnectionRefusedError": 3} and down.failure
