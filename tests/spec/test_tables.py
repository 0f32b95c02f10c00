"""The document's tables, as transcribed in sandbox.spec, checked against the document's own numbers."""

from __future__ import annotations

from sandbox.spec import ENVELOPE_FIELDS, HOP1, HOP1_FIELDS, HOP2, HOP2_FIELDS, OUTPUT_FIELDS, Kind
from sandbox.spec.dicts import EXAM_RSLT_CODE, EXAM_WAY, GEND, HOSP_LV, IMG_EXAM_TYPE, PSN_CERT_TYPE
from sandbox.spec.fields import DATA_MAX_CHARS

# 是否必填 = Y in the document's input tables.
HOP1_REQUIRED = {
    "hiImgIndx", "psnName", "psnCertType", "certno", "gend", "fixmedinsCode", "examAdmdvs", "imgExamType",
    "imgExamItem", "examDate", "examPart", "hospLv", "examRpotPdfI", "imgInfoDcm",
}
HOP2_REQUIRED = (HOP1_REQUIRED - {"examRpotPdfI", "imgInfoDcm"}) | {
    "stogInsUscc", "examRpotLinkUrl", "imgInfoLinkUrl", "imgDldLink",
}


def test_hop1_has_71_fields_numbered_in_document_order() -> None:
    assert len(HOP1_FIELDS) == 71
    assert [f.seq for f in HOP1_FIELDS] == list(range(1, 72))
    assert HOP1_FIELDS[0].code == "hiImgIndx" and HOP1_FIELDS[-1].code == "imgInfoDcm"


def test_hop2_has_73_fields_numbered_in_document_order() -> None:
    assert len(HOP2_FIELDS) == 73
    assert [f.seq for f in HOP2_FIELDS] == list(range(1, 74))
    assert [f.code for f in HOP2_FIELDS[68:]] == [
        "stogInsUscc", "hospLv", "examRpotLinkUrl", "imgInfoLinkUrl", "imgDldLink",
    ]


def test_required_sets_match_the_document() -> None:
    assert set(HOP1.required) == HOP1_REQUIRED
    assert set(HOP2.required) == HOP2_REQUIRED


def test_codes_are_unique_within_each_table() -> None:
    for fields in (HOP1_FIELDS, HOP2_FIELDS):
        codes = [f.code for f in fields]
        assert len(codes) == len(set(codes))


def test_hop_differences_follow_the_document() -> None:
    hop1, hop2 = HOP1.by_code, HOP2.by_code
    assert "postcode" in hop1 and "poscode" not in hop1  # ERRATA #4
    assert "poscode" in hop2 and "postcode" not in hop2
    assert (hop1["age"].precision, hop1["age"].scale, hop1["age"].doc_length) == (5, 1, "5")
    assert (hop2["age"].precision, hop2["age"].scale, hop2["age"].doc_length) == (4, 1, "4, 1")
    assert hop1["examRpotPdfI"].kind is Kind.FILE and hop1["examRpotPdfI"].length == 500
    assert not {"examRpotPdfI", "imgInfoDcm"} & set(hop2)
    assert not {"stogInsUscc", "examRpotLinkUrl", "imgInfoLinkUrl", "imgDldLink"} & set(hop1)
    shared = set(hop1) & set(hop2)
    assert len(shared) == 68
    for code in shared - {"age", "hospLv"}:
        a, b = hop1[code], hop2[code]
        assert (a.name, a.kind, a.length, a.required, a.seq) == (b.name, b.kind, b.length, b.required, b.seq), code


def test_field_lengths_and_types_match_the_document() -> None:
    f = HOP1.by_code
    expected = {
        "hiImgIndx": 100, "psnName": 50, "psnCertType": 6, "certno": 50, "gend": 6, "fixmedinsCode": 30,
        "fixmedinsName": 255, "examAdmdvs": 6, "imgExamType": 20, "examItemCode": 30, "imgExamItem": 100,
        "examPart": 500, "examWay": 50, "mrgStas": 3, "elecHlCardNo": 40, "prfs": 6, "postcode": 6, "iptNo": 30,
        "patnId": 64, "sympDscr": 500, "examInseqi": 500, "devRoom": 200, "imgDscr": 3000, "diagRslt": 3000,
        "hospLv": 6, "rpotCritVal": 500, "fmAddr": 500,
    }
    for code, length in expected.items():
        assert f[code].length == length, code
    for code in ("clncDiag", "illhis", "chfcomp", "algs"):
        assert f[code].kind is Kind.TEXT and f[code].length is None
    for code in ("examDate", "brdy"):
        assert f[code].kind is Kind.DATE
    for code in ("appyDate", "diagTime", "sympBegndate", "sympEnddate", "rpotDate", "chkDate", "sdryChkDate",
                 "rpotPubDate"):
        assert f[code].kind is Kind.DATETIME
    assert f["age"].kind is Kind.DECIMAL


def test_dictionary_flags_match_the_document() -> None:
    flagged = {f.code for f in HOP1_FIELDS if f.is_dict}
    assert flagged == {"psnCertType", "gend", "imgExamType", "examPart", "hospLv"}


def test_envelope_and_output_tables() -> None:
    assert [e.code for e in ENVELOPE_FIELDS] == ["infno", "msgid", "infTime", "infCode", "key", "data"]
    assert all(e.required for e in ENVELOPE_FIELDS)
    assert {e.code: e.length for e in ENVELOPE_FIELDS}["data"] == DATA_MAX_CHARS == 40000
    assert [(o.code, o.required) for o in OUTPUT_FIELDS] == [
        ("hiImgIndx", False), ("succFlag", True), ("message", False),
    ]


def test_transactions_carry_the_document_paths() -> None:
    assert HOP1.path == "/mie/api/mie/saveExamRpotImgInfo"
    assert HOP2.path == "/mie/api/mie/saveExamRpotImgIndx"


def test_dictionaries_hold_the_document_codes() -> None:
    assert dict(GEND) == {"0": "未知", "1": "男", "2": "女", "9": "未说明性别"}
    assert list(HOSP_LV) == [f"{i:02d}" for i in range(1, 15)]
    assert HOSP_LV["01"] == "三级特等" and HOSP_LV["14"] == "一级无等"
    assert list(IMG_EXAM_TYPE) == ["1", "2", "3", "4", "5", "9"]
    assert list(EXAM_WAY) == ["1", "2", "9"]
    assert dict(EXAM_RSLT_CODE) == {"1": "阴性", "2": "阳性", "3": "不确定"}
    for code in ("111", "113", "117", "414", "516", "553", "554", "990"):
        assert code in PSN_CERT_TYPE
    assert PSN_CERT_TYPE["111"] == "居民身份证"
