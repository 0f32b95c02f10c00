"""Hop 1 with its files: fetched by URL, inline, or pushed; partial failures, disagreements, refusals."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from sandbox.config import Settings
from sandbox.typedefs import CENTER
from tests.center.helpers import (
    HOP1_PATH,
    FileServer,
    answers,
    b64,
    instance,
    message,
    multipart,
    pdf,
    record,
    study,
    study_uid_for,
    zip_of,
)


async def send(center: TestClient, msg: dict[str, Any]) -> dict[str, Any]:
    resp = await center.post(HOP1_PATH, json=msg)
    assert resp.status == 200
    body: dict[str, Any] = await resp.json()
    return body


async def status(center: TestClient, key: str) -> dict[str, Any]:
    resp = await center.get(f"/api/exams/{key}")
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def test_exam_with_pdf_and_multipart_study_by_url_is_stored(center: TestClient, files: FileServer,
                                                                  settings: Settings) -> None:
    ctype, body = multipart(study(1, 3))
    rec = record(settings, 1, files.add("/r1.pdf", pdf(), "application/pdf"), files.add("/s1", body, ctype))
    reply = await send(center, message(settings, [rec]))
    assert reply["code"] == 0, reply
    assert answers(reply)[0] == {"hiImgIndx": rec["hiImgIndx"], "succFlag": "1", "message": "保存数据成功"}
    st = await status(center, rec["hiImgIndx"])
    assert st["succFlag"] == "1"
    assert st["report"]["pdf"] is True
    assert st["images"]["instances"] == 3
    assert st["images"]["studyInstanceUID"] == study_uid_for(1)
    assert st["links"]["imgDldLink"].endswith(f"/dicomweb/studies/{study_uid_for(1)}")
    assert st["forward"]["state"] in ("pending", "sending")


async def test_single_instance_zip_and_chunked_answers_are_all_accepted(center: TestClient, files: FileServer,
                                                                        settings: Settings) -> None:
    recs = [
        record(settings, 2, files.add("/r2.pdf", pdf(), "application/pdf"),
               files.add("/s2.dcm", instance(n=2), "application/dicom")),
        record(settings, 3, files.add("/r3.pdf", pdf(), "application/pdf", chunked=True),
               files.add("/s3.zip", zip_of({f"DICOM/IM{i}": d for i, d in enumerate(study(3, 4))} |
                                           {"README.txt": b"viewer notes"}), "application/zip")),
        record(settings, 4, files.add("/r4.pdf", pdf(), "application/octet-stream"),
               files.add("/s4", instance(n=4), "application/octet-stream", chunked=True)),
    ]
    reply = await send(center, message(settings, recs))
    assert [a["succFlag"] for a in answers(reply)] == ["1", "1", "1"], reply
    assert (await status(center, recs[1]["hiImgIndx"]))["images"]["instances"] == 4


async def test_inline_base64_files_are_accepted_in_lenient_mode(center: TestClient, settings: Settings) -> None:
    rec = record(settings, 5, b64(pdf(), "application/pdf"), b64(instance(n=5)))
    reply = await send(center, message(settings, [rec]))
    assert answers(reply)[0]["succFlag"] == "1", reply
    st = await status(center, rec["hiImgIndx"])
    assert st["images"]["instances"] == 1 and st["report"]["pdf"]


async def test_study_with_some_bad_instances_is_stored_with_flag_0_naming_them(
        center: TestClient, files: FileServer, settings: Settings) -> None:
    good = study(6, 3)
    truncated = instance(n=6, number=9)[:-200]
    ctype, body = multipart([good[0], b"this is not dicom at all" * 10, good[1], truncated, good[2]])
    rec = record(settings, 6, files.add("/r6.pdf", pdf(), "application/pdf"), files.add("/s6", body, ctype))
    answer = answers(await send(center, message(settings, [rec])))[0]
    assert answer["succFlag"] == "0"
    assert "2/5 个实例未保存" in answer["message"]
    assert "第 2 部分" in answer["message"] and "不是 DICOM 文件" in answer["message"]
    assert "第 4 部分" in answer["message"] and "像素数据不完整" in answer["message"]
    st = await status(center, rec["hiImgIndx"])
    assert st["images"]["instances"] == 3
    assert [f["source"] for f in st["images"]["failures"]] == ["第 2 部分", "第 4 部分"]


async def test_disagreeing_dicom_is_reported(center: TestClient, files: FileServer, settings: Settings) -> None:
    bad = instance(n=7, patient_name="WANG^WU", patient_id="X999", study_date="20200101", modality="MR")
    rec = record(settings, 7, files.add("/r7.pdf", pdf(), "application/pdf"), files.add("/s7.dcm", bad))
    answer = answers(await send(center, message(settings, [rec])))[0]
    assert answer["succFlag"] == "1"  # everything sent was saved: the disagreement is named as 提示
    msg = answer["message"]
    assert msg.startswith("保存数据成功（提示：影像与记录不一致")
    assert "PatientName「WANG^WU」与 psnName「李丽」不符" in msg
    assert "PatientID「X999」" in msg
    assert "StudyDate「20200101」" in msg
    assert "Modality「MR」与 imgExamType「2」" in msg
    assert len((await status(center, rec["hiImgIndx"]))["images"]["disagreements"]) == 4


async def test_url_on_a_host_not_allowed_is_refused_without_fetching(center: TestClient, files: FileServer,
                                                                     settings: Settings) -> None:
    rec = record(settings, 8, "http://files.example.org/r8.pdf", "http://10.9.8.7:8080/study/8")
    answer = answers(await send(center, message(settings, [rec])))[0]
    assert answer["succFlag"] == "-1"
    assert "主机 10.9.8.7:8080 不在允许取文件的主机与端口列表" in answer["message"]
    st = await status(center, rec["hiImgIndx"])
    assert st["stored"] is False and st["receipts"][0]["reason"] == "host_not_allowed"
    summary = await (await center.get("/api/summary")).json()
    assert summary["rejected"]["byReason"] == {"host_not_allowed": 1}


async def test_pdf_on_a_host_not_allowed_leaves_the_exam_stored_with_flag_0(center: TestClient, files: FileServer,
                                                                            settings: Settings) -> None:
    rec = record(settings, 9, "http://files.example.org/r9.pdf", files.add("/s9.dcm", instance(n=9)))
    answer = answers(await send(center, message(settings, [rec])))[0]
    assert answer["succFlag"] == "0"
    assert "检查报告 PDF（examRpotPdfI）未保存" in answer["message"] and "files.example.org" in answer["message"]


async def test_oversize_file_is_refused(aiohttp_client: Any, files: FileServer, make_settings: Any) -> None:
    settings = make_settings(fetch_max_bytes=4096, retry_base_s=0.01)
    from sandbox.center import create_app

    center = await aiohttp_client(create_app(settings))
    big = instance(n=10, size=128)  # 32 KiB of pixels
    rec = record(settings, 10, files.add("/r10.pdf", pdf(), "application/pdf"),
                 files.add("/s10.dcm", big, "application/dicom", chunked=True))
    answer = answers(await send(center, message(settings, [rec])))[0]
    assert answer["succFlag"] == "-1"
    assert "文件超过上限 4096 字节" in answer["message"]
    rec2 = record(settings, 11, files.add("/r11.pdf", pdf(), "application/pdf"), files.add("/s11.dcm", big))
    answer2 = answers(await send(center, message(settings, [rec2], seq=2)))[0]
    assert answer2["succFlag"] == "-1" and "文件超过上限" in answer2["message"]


async def test_non_dicom_bytes_are_refused(center: TestClient, files: FileServer, settings: Settings) -> None:
    rec = record(settings, 12, files.add("/r12.pdf", pdf(), "application/pdf"),
                 files.add("/s12.dcm", b"<html>PACS login</html>", "text/html"))
    answer = answers(await send(center, message(settings, [rec])))[0]
    assert answer["succFlag"] == "-1"
    assert "不是 DICOM 文件" in answer["message"] and "HTML" in answer["message"]
    assert "<html>" not in answer["message"]  # described, never echoed


async def test_pdf_that_is_not_a_pdf_is_named(center: TestClient, files: FileServer, settings: Settings) -> None:
    rec = record(settings, 13, files.add("/r13.pdf", b"GIF89a....", "application/pdf"),
                 files.add("/s13.dcm", instance(n=13)))
    answer = answers(await send(center, message(settings, [rec])))[0]
    assert answer["succFlag"] == "0" and "不是 PDF 文件" in answer["message"]


async def test_unreachable_file_server_and_http_errors_are_named(center: TestClient, files: FileServer,
                                                                 settings: Settings) -> None:
    rec = record(settings, 14, files.add("/r14.pdf", b"", status=500), "http://127.0.0.1:9/nothing-listens")
    answer = answers(await send(center, message(settings, [rec])))[0]
    assert answer["succFlag"] == "-1"
    assert "无法连接" in answer["message"]


async def test_slow_file_server_times_out(aiohttp_client: Any, files: FileServer, make_settings: Any) -> None:
    from sandbox.center import create_app

    settings = make_settings(fetch_timeout_s=0.3)
    center = await aiohttp_client(create_app(settings))
    rec = record(settings, 15, files.add("/r15.pdf", pdf(), "application/pdf"),
                 files.add("/s15.dcm", instance(n=15), delay=2.0))
    answer = answers(await send(center, message(settings, [rec])))[0]
    assert answer["succFlag"] == "-1" and "0.3 秒内未取完文件" in answer["message"]


async def test_identical_resend_is_answered_without_fetching_again(center: TestClient, files: FileServer,
                                                                   settings: Settings) -> None:
    rec = record(settings, 16, files.add("/r16.pdf", pdf(), "application/pdf"), files.add("/s16.dcm", instance(n=16)))
    assert answers(await send(center, message(settings, [rec], seq=1)))[0]["succFlag"] == "1"
    again = answers(await send(center, message(settings, [rec], seq=2)))[0]
    assert again["succFlag"] == "1" and "未重复保存" in again["message"]
    assert files.blobs["/s16.dcm"].hits == 1
    changed = dict(rec, diagRslt="改过的诊断")
    third = answers(await send(center, message(settings, [changed], seq=3)))[0]
    assert third["succFlag"] == "-1" and "索引号重复" in third["message"]


async def test_rejected_record_leaves_no_files_behind(center: TestClient, files: FileServer,
                                                      settings: Settings) -> None:
    rec = record(settings, 17, files.add("/r17.pdf", pdf(), "application/pdf"),
                 files.add("/s17.dcm", b"not dicom", "application/dicom"))
    assert answers(await send(center, message(settings, [rec])))[0]["succFlag"] == "-1"
    root = center.server.app[CENTER].root
    assert not [p for p in root.rglob("*") if p.is_file() and p.suffix in (".pdf", ".dcm", ".zip", ".part")]



async def test_redirects_are_followed_only_to_allowed_hosts(center: TestClient, files: FileServer,
                                                            settings: Settings) -> None:
    target = files.add("/real/s60.dcm", instance(n=60), "application/dicom")
    rec = record(settings, 60, files.add("/r60.pdf", pdf(), "application/pdf"),
                 files.add("/moved/s60", b"", status=302, headers={"Location": "/real/s60.dcm"}))
    assert answers(await send(center, message(settings, [rec])))[0]["succFlag"] == "1"
    assert files.blobs["/real/s60.dcm"].hits == 1 and target
    away = record(settings, 61, files.add("/r61.pdf", pdf(), "application/pdf"),
                  files.add("/away", b"", status=307, headers={"Location": "http://10.1.2.3/s61.dcm"}))
    answer = answers(await send(center, message(settings, [away], seq=2)))[0]
    assert answer["succFlag"] == "-1" and "主机 10.1.2.3:80 不在允许取文件的主机与端口列表" in answer["message"]


async def test_large_bodies_are_streamed_to_disk_and_split_there(center: TestClient, files: FileServer,
                                                                  settings: Settings) -> None:
    center.server.app[CENTER].files.fetcher.spill_bytes = 4096  # every body below spills to a file
    ctype, body = multipart(study(62, 3))
    recs = [
        record(settings, 62, files.add("/r62.pdf", pdf(), "application/pdf"), files.add("/s62", body, ctype)),
        record(settings, 63, files.add("/r63.pdf", pdf(), "application/pdf"),
               files.add("/s63.zip", zip_of({f"{i}.dcm": d for i, d in enumerate(study(63, 2))}), "application/zip")),
        record(settings, 64, files.add("/r64.pdf", pdf(), "application/pdf"),
               files.add("/s64.dcm", instance(n=64, size=64), "application/dicom", chunked=True)),
    ]
    reply = answers(await send(center, message(settings, recs)))
    assert [a["succFlag"] for a in reply] == ["1", "1", "1"], reply
    counts = [(await status(center, r["hiImgIndx"]))["images"]["instances"] for r in recs]
    assert counts == [3, 2, 1]
    assert not list((center.server.app[CENTER].root / "tmp").iterdir())  # no temporary file left


async def test_strict_mode_refuses_disagreeing_images(aiohttp_client: Any, files: FileServer,
                                                      make_settings: Any) -> None:
    from sandbox.center import create_app

    settings = make_settings(mode="strict")
    center = await aiohttp_client(create_app(settings))
    bad = instance(n=65, patient_id="OTHER-ID")
    rec = record(settings, 65, files.add("/r65.pdf", pdf(), "application/pdf"), files.add("/s65.dcm", bad))
    answer = answers(await send(center, message(settings, [rec])))[0]
    assert answer["succFlag"] == "-1" and "PatientID「OTHER-ID」" in answer["message"]
    summary = await (await center.get("/api/summary")).json()
    assert summary["rejected"]["byReason"] == {"disagreement": 1} and summary["stored"] == 0
