"""Valid hop-2 records and messages from a configured sharing center: for tests, the benchmark and demos.

Field names and rules come from sandbox.spec; the values are plausible and pass strict validation."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sandbox.config import Institution, Settings
from sandbox.spec.checksums import id_check_char
from sandbox.spec.fields import HOP2
from sandbox.spec.formats import make_msgid
from sandbox.spec.index_profiles import PROFILES, parts_for

BASE_DAY = datetime(2025, 3, 1, 8, 0, 0)


def certno(n: int) -> str:
    """A resident ID with a correct GB 11643 check digit, distinct per n."""
    first17 = f"510802{1950 + n % 60:04d}{1 + n % 12:02d}{1 + n % 28:02d}{n % 1000:03d}"
    return first17 + id_check_char(first17)


DOCTOR = certno(777)


def record(settings: Settings, n: int = 0, center: Institution | None = None, **overrides: Any) -> dict[str, Any]:
    """A hop-2 record of exam n that passes strict validation: no warning, flag 1 at the province."""
    hospital = settings.hospitals[n % len(settings.hospitals)]
    center = center or settings.center
    cert = certno(n)
    exam_time = BASE_DAY + timedelta(days=n % 300, minutes=n)
    exam_part = "A0101" + f"{n % 10000:04d}"
    index = PROFILES[settings.index_profile].build(parts_for(
        PROFILES[settings.index_profile], cert_type="111", certno=cert,
        exam_time=exam_time.strftime("%Y%m%d%H%M%S"), inst_code=hospital.code, exam_part=exam_part,
        stog_uscc=center.uscc))
    base = f"http://127.0.0.1:{settings.center_port}"
    rec: dict[str, Any] = {
        "hiImgIndx": index, "psnName": "李丽", "psnCertType": "111", "certno": cert, "gend": "2",
        "fixmedinsCode": hospital.code, "fixmedinsName": hospital.name, "examAdmdvs": hospital.admdvs,
        "imgExamType": "2", "examItemCode": "CT001", "imgExamItem": "胸部平扫",
        "examDate": exam_time.strftime("%Y-%m-%d"), "examPart": exam_part, "examWay": "1",
        "examDeptName": "放射科", "examDrCode": "D370796363", "examDrName": "李医生", "clncDiag": "咳嗽待查",
        "appyNo": f"A{n:08d}", "appyDeptName": "呼吸内科", "appyDate": "2025-02-28 10:00:00",
        "bilgDrCode": "D370693652", "bilgDrName": "王医师", "disecode": "R05.x00",
        "diagTime": "2025-02-28 09:30:00", "brdy": "1990-01-01", "age": 35, "tel": "13800000000",
        "fmAddr": "四川省广元市利州区东坝街道1号", "mrgStas": "20", "elecHlCardNo": "E123456789012345678",
        "prfs": "17", "poscode": "628000", "iptNo": "I123456789", "wardareaCode": "A12345",
        "wardareaName": "呼吸内科病区", "patnId": f"P{n:010d}", "illhis": "既往体健。", "chfcomp": "咳嗽一周",
        "algs": "无", "sympBegndate": "2025-02-20 08:00:00", "sympEnddate": "2025-02-27 08:00:00",
        "sympDscr": "持续性干咳", "examInseqi": "CT-01", "devRoom": "CT1室", "devName": "CT Scanner",
        "examDevType": "CT", "examTecnName": "张技师", "examTecnIdcard": DOCTOR,
        "imgDscr": "双肺纹理清晰，未见明显实质性病变。纵隔居中，心影不大。", "diagRslt": "胸部CT平扫未见明显异常。",
        "rpotNo": f"R{n:08d}", "rpotMedinsCode": hospital.code, "rpotDrIdcard": DOCTOR, "rpotDrName": "赵医生",
        "chkMedinsCode": hospital.code, "chkDrIdcard": DOCTOR, "chkDrName": "钱医生",
        "rpotDate": "2025-03-01 12:00:00", "chkDate": "2025-03-01 13:00:00", "examRsltCode": "1",
        "rpotAdv": "随诊", "rpotPubDate": "2025-03-01 14:00:00", "stogInsUscc": center.uscc,
        "hospLv": hospital.hosp_lv,
        "examRpotLinkUrl": f"{base}/report/{n}", "imgInfoLinkUrl": f"{base}/viewer/{n}",
        "imgDldLink": f"{base}/dicomweb/studies/1.2.156.{n}",
    }
    assert set(rec) <= set(HOP2.by_code)
    rec.update(overrides)
    return rec


def message(settings: Settings, records: list[dict[str, Any]], seq: int = 1, center: Institution | None = None,
            **overrides: Any) -> dict[str, Any]:
    """A saveExamRpotImgIndx message from a center (the first configured one by default), with its key."""
    center = center or settings.center
    msg: dict[str, Any] = {
        "infno": HOP2.infno,
        "msgid": make_msgid(center.code, BASE_DAY + timedelta(seconds=seq // 10000), seq),
        "infTime": "2025-03-01 08:00:00",
        "infCode": center.code,
        "key": center.key,
        "data": records,
    }
    msg.update(overrides)
    return msg
