"""A record that passes strict validation, built from the document's example with correct values."""

from __future__ import annotations

import copy
from typing import Any

from sandbox.spec.checksums import id_check_char, uscc_check_char
from sandbox.spec.index_profiles import DOC_EXAMPLE

CERTNO = "51080219900101002" + id_check_char("51080219900101002")
DOCTOR_ID = "51080219800505003" + id_check_char("51080219800505003")
USCC = "12510800MB0L31003" + uscc_check_char("12510800MB0L31003")

_BASE: dict[str, Any] = {
    "psnName": "李丽", "psnCertType": "111", "certno": CERTNO, "gend": "2", "brdy": "1990-01-01", "age": 33.2,
    "tel": "13800000000", "fmAddr": "四川省广元市利州区东坝街道1号", "mrgStas": "20", "elecHlCardNo": "E123456789012345678",
    "prfs": "17", "iptNo": "I123456789", "wardareaCode": "A12345", "wardareaName": "神经内科病区",
    "patnId": "P1234567890123456789", "disecode": "I10.x00", "diagTime": "2023-04-01 09:30:00", "clncDiag": "高血压",
    "illhis": "既往体健。", "imgExamType": "3", "examWay": "1", "examItemCode": "MR001",
    "imgExamItem": "头颅核磁平扫", "examDate": "2023-04-02", "examPart": "A01010100", "examInseqi": "MR-01",
    "fixmedinsCode": "H51080200001", "fixmedinsName": "广元市第一人民医院", "hospLv": "02",
    "examDeptName": "放射科", "examDrCode": "D370796363", "examDrName": "李医生", "bilgDrCode": "D370693652",
    "bilgDrName": "王医师", "examAdmdvs": "510802",
    "imgDscr": "脑实质内未见异常信号。脑室系统未见异常。", "diagRslt": "头颅MRI平扫未见异常。",
    "appyNo": "A123456", "appyDeptName": "神经内科", "appyDate": "2023-04-01 10:00:00", "chfcomp": "头痛三天",
    "algs": "无", "sympBegndate": "2023-03-29 08:00:00", "sympEnddate": "2023-04-01 08:00:00", "sympDscr": "持续性头痛",
    "devRoom": "MR1室", "devName": "MR Scanner", "examDevType": "MR", "examTecnName": "张技师",
    "examTecnIdcard": DOCTOR_ID, "rpotNo": "R123456", "rpotMedinsCode": "H51080200001", "rpotDrIdcard": DOCTOR_ID,
    "rpotDrName": "赵医生", "chkMedinsCode": "H51080200001", "chkDrIdcard": DOCTOR_ID, "chkDrName": "钱医生",
    "sdryChkMedinsCode": "H51080200001", "sdryChkDrIdcard": DOCTOR_ID, "sdryChkDrName": "孙医生",
    "rpotDate": "2023-04-02 15:00:00", "chkDate": "2023-04-02 16:00:00", "sdryChkDate": "2023-04-02 17:00:00",
    "examRsltCode": "1", "rpotAdv": "随访", "rpotPubDate": "2023-04-02 17:30:00", "rpotCritVal": "无",
}


def index(n: int = 0) -> str:
    return DOC_EXAMPLE.build({
        "cert_type": "111", "certno": CERTNO, "exam_time": f"20230402{n // 3600 % 24:02d}{n // 60 % 60:02d}{n % 60:02d}",
        "inst_code": "H51080200001", "exam_part": "A01010100", "stog_uscc": USCC,
    })


def valid_record(hop: int, n: int = 0) -> dict[str, Any]:
    rec = copy.deepcopy(_BASE)
    rec["hiImgIndx"] = index(n)
    if hop == 1:
        rec["postcode"] = "628000"
        rec["examRpotPdfI"] = f"http://127.0.0.1:8700/files/{n}/report.pdf"
        rec["imgInfoDcm"] = f"http://127.0.0.1:8700/dicomweb/studies/1.2.826.0.1.3680043.8.498.{n + 1}"
    else:
        rec["poscode"] = "628000"
        rec["age"] = 33.2
        rec["stogInsUscc"] = USCC
        rec["examRpotLinkUrl"] = f"http://127.0.0.1:8701/report/{n}"
        rec["imgInfoLinkUrl"] = f"http://127.0.0.1:8701/viewer/{n}"
        rec["imgDldLink"] = f"http://127.0.0.1:8701/dicomweb/studies/1.2.826.0.1.3680043.8.498.{n + 1}"
    return rec


def message(hop: int, records: list[dict[str, Any]], **env: Any) -> dict[str, Any]:
    msg = {
        "infno": "saveExamRpotImgInfo" if hop == 1 else "saveExamRpotImgIndx",
        "msgid": "H51080200001202304021530000001" if hop == 1 else "C51080000001202304021530000001",
        "infTime": "2023-04-02 15:30:00",
        "infCode": "H51080200001" if hop == 1 else "C51080000001",
        "key": "GYSY2025KEY0001XQ" if hop == 1 else "GYYXY2025CENTERKEY",
        "data": records,
    }
    msg.update(env)
    return msg
