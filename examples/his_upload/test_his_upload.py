"""The HIS upload client's own tests, written against the sandbox's pytest plugin (fixtures `imgcloud`,
`imgcloud_center`, the marker `imgcloud_scenario`)."""

from __future__ import annotations

import pytest
from his_upload import Uploader

from sandbox.api import SyncSandbox


def uploader(sb: SyncSandbox) -> Uploader:
    hospital = sb.settings.hospitals[0]
    return Uploader(sb.urls.center or "", hospital.code, hospital.key, backoff=0.05)


def test_uploaded_exams_are_acknowledged_and_reach_the_province(imgcloud: SyncSandbox) -> None:
    records = imgcloud.messages.hop1(count=3)["data"]  # the HIS's exams: PDF and DICOM served by the sandbox
    outcomes = uploader(imgcloud).upload(records)
    assert [o.flag for o in outcomes] == ["1", "1", "1"], outcomes
    for o in outcomes:  # acknowledged means delivered: each index arrives at the province
        imgcloud.wait_until(lambda o=o: imgcloud.province.index(o.index))


def test_a_bad_record_is_reported_with_the_field_named(imgcloud_center: SyncSandbox) -> None:
    records = imgcloud_center.messages.hop1(count=2, overrides={"certno": "5108" * 15})["data"]
    outcomes = uploader(imgcloud_center).upload(records)
    assert {o.flag for o in outcomes} == {"-1"}
    assert all("certno(证件号码)" in o.message for o in outcomes)


def test_5xx_is_retried_with_the_same_msgid(imgcloud_center: SyncSandbox) -> None:
    imgcloud_center.fault(at="center", kind="http_error", status=503, calls=2)
    his = uploader(imgcloud_center)
    outcomes = his.upload(imgcloud_center.messages.hop1(count=2)["data"])
    assert [o.flag for o in outcomes] == ["1", "1"]
    assert len(his.sent_msgids) == 3 and len(set(his.sent_msgids)) == 1


@pytest.mark.imgcloud_scenario("center-unavailable")
def test_the_center_unavailable_scenario_stores_each_exam_once(imgcloud: SyncSandbox) -> None:
    # 502 twice, then the center stores the message but drops the connection before answering.
    his = uploader(imgcloud)
    outcomes = his.upload(imgcloud.messages.hop1(count=4)["data"])
    assert [o.flag for o in outcomes] == ["1"] * 4  # the resend is answered from the center's msgid log
    assert len(his.sent_msgids) == 4 and len(set(his.sent_msgids)) == 1
    assert imgcloud.center.summary()["stored"] == 4
