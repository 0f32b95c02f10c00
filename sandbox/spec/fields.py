"""The document's tables, transcribed once.

Hop 1 (`saveExamRpotImgInfo`, 71 fields) is written out row by row as the document prints it; hop 2
(`saveExamRpotImgIndx`, 73 fields) is derived from it by the document's own differences (see
`_hop2_rows`). Every other part of the sandbox reads field names, lengths and rules from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    """Normalised data type of a field (the document's 类型 column)."""

    STRING = "String"
    TEXT = "TEXT"
    DATE = "Date"
    DATETIME = "datetime"
    DECIMAL = "BigDecimal"
    FILE = "File"  # hop-1 files: the document gives no type (ERRATA #6)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One row of an input table."""

    seq: int
    code: str
    name: str
    kind: Kind
    length: int | None
    is_dict: bool
    required: bool
    note: str = ""
    doc_type: str = ""  # the type exactly as printed
    doc_length: str = ""  # the length exactly as printed ("5", "4, 1", "")
    precision: int | None = None  # BigDecimal total digits
    scale: int | None = None  # BigDecimal digits after the point
    rule: str | None = None  # name of a semantic rule in sandbox.validate.rules
    dictionary: str | None = None  # name of a dictionary in sandbox.spec.dicts
    multi: bool = False  # several values separated by one space ("2 3")


# seq | code | name | type | length | dict | required | note
# Transcribed from 二、(五) 输入 of the document. Notes are abridged only where they repeat a standard's title.
_HOP1_TABLE = """
1|hiImgIndx|医保影像云索引号|String|100|N|Y|由国家局制定编码规则，医疗机构及检查检验机构编制并上传索引号，实现每个影像检查结果的索引全国唯一。
2|psnName|人员姓名|String|50|N|Y|
3|psnCertType|人员证件类型|String|6|Y|Y|采用《公安信息代码第156部分：常用证件代码》(GA/T 2000.156—2016)中常用证件代码
4|certno|证件号码|String|50|N|Y|
5|gend|性别|String|6|Y|Y|数据字典，详见字典【性别 gend】
6|fixmedinsCode|定点医药机构代码|String|30|N|Y|
7|fixmedinsName|定点医药机构名称|String|255|N|N|
8|examAdmdvs|检查医保区划代码|String|6|N|Y|医疗机构所属医保区划
9|imgExamType|影像检查类型代码|String|20|Y|Y|数据字典，详见字典【影像检查类型 img_exam_type】，多检查类别时，中间用“ ”间隔开，如 2 3
10|examItemCode|检查项目代码|String|30|N|N|检查项目代码，按本院实际代码传（多项目参照上面用“ ”隔开）
11|imgExamItem|检查项目名称|String|100|N|Y|按实际项目名称，如胸部平扫，多项目按胸部平扫，腹部平扫
12|examDate|检查日期|Date||N|Y|yyyy-MM-dd
13|examPart|检查部位代码|String|500|Y|Y|采用《卫生健康信息数据元值域代码第8部分：临床辅助检查》(WS/T 364.8-2023)中常用放射诊断检查技术编码，由9位大写英文字母和阿拉伯数字组成。
14|examWay|检查方式|String|50|N|N|1-平扫；2-增强；9-其它；多个用“ ”隔开。
15|examDeptName|检查科室|String|50|N|N|
16|examDrCode|检查医生代码|String|50|N|N|
17|examDrName|检查医生姓名|String|50|N|N|
18|clncDiag|临床诊断|TEXT||N|N|
19|appyNo|申请单号|String|50|N|N|
20|appyDeptName|申请科室名称|String|50|N|N|
21|appyDate|申请日期|datetime||N|N|
22|bilgDrCode|开单医师代码|String|50|N|N|
23|bilgDrName|开单医师姓名|String|50|N|N|
24|disecode|疾病编码|String|50|N|N|
25|diagTime|诊断时间|datetime||N|N|
26|brdy|出生日期|Date||N|N|yyyy-MM-dd
27|age|年龄|BigDecimal|5|N|N|长度5，保留小数点后1位。
28|tel|联系电话|String|50|N|N|
29|fmAddr|家庭住址|String|500|N|N|
30|mrgStas|婚姻状态|String|3|N|N|
31|elecHlCardNo|电子健康卡号|String|40|N|N|
32|prfs|职业|String|6|N|N|
33|postcode|邮政编码|String|6|N|N|
34|iptNo|住院号|String|30|N|N|
35|wardareaCode|病区编码|String|40|N|N|
36|wardareaName|病区名称|String|50|N|N|
37|patnId|病人ID|String|64|N|N|
38|illhis|病史|TEXT||N|N|
39|chfcomp|主诉|TEXT||N|N|
40|algs|过敏史|TEXT||N|N|
41|sympBegndate|症状开始日期|datetime||N|N|
42|sympEnddate|症状终止日期|datetime||N|N|
43|sympDscr|症状描述|string|500|N|N|对患者症状的详细描述
44|examInseqi|成像设备代码|String|500|N|N|
45|devRoom|设备房间|String|200|N|N|
46|devName|设备名称|String|200|N|N|
47|examDevType|设备类型|String|50|N|N|
48|examTecnName|检查技师姓名|String|50|N|N|
49|examTecnIdcard|检查技师身份证号|String|50|N|N|
50|imgDscr|影像描述|String|3000|N|N|影像描述，如报告未写，则为空。
51|diagRslt|诊断结果|String|3000|N|N|诊断结果，如报告未写，则为空。
52|rpotNo|报告编号|String|50|N|N|
53|rpotMedinsCode|报告医疗机构代码|String|30|N|N|
54|rpotDrIdcard|报告医师身份证号|String|50|N|N|
55|rpotDrName|报告医师姓名|String|50|N|N|
56|chkMedinsCode|审核医疗机构代码|String|30|N|N|
57|chkDrIdcard|审核医师身份证号|String|50|N|N|
58|chkDrName|审核医师姓名|String|50|N|N|
59|sdryChkMedinsCode|二审医疗机构代码|String|30|N|N|
60|sdryChkDrIdcard|二审医师身份证号|String|50|N|N|
61|sdryChkDrName|二审医师姓名|String|50|N|N|
62|rpotDate|报告日期|datetime||N|N|
63|chkDate|审核日期|datetime||N|N|
64|sdryChkDate|二审日期|datetime||N|N|
65|examRsltCode|检查结果代码|String|50|N|N|(1-阴性; 2-阳性; 3-不确定)
66|rpotAdv|报告建议|String|500|N|N|
67|rpotPubDate|出具报告日期|datetime||N|N|
68|rpotCritVal|报告临界值|String|500|N|N|
69|hospLv|检查医院等级|String|6|Y|Y|数据字典，详见字典【医院等级 hosp_lv】
70|examRpotPdfI|检查报告pdf文件||500|N|Y|检查报告的pdf格式文件
71|imgInfoDcm|影像资料||500|N|Y|符合DICOM标准的影像图像信息
"""

# Hop 2 rows that differ from or are missing in hop 1 (三、(五) 输入).
_HOP2_ONLY = """
69|stogInsUscc|存储机构统一社会信用代码|String|50|N|Y|地方影像云数据共享中心的统一社会信用代码
71|examRpotLinkUrl|检查报告访问链接|String|500|N|Y|检查报告访问链接，要求在医保专网内使用浏览器即可打开检查报告展示页面
72|imgInfoLinkUrl|影像资料访问链接|String|500|N|Y|影像资料访问链接，要求在医保专网内使用浏览器即可打开影像资料展示页面
73|imgDldLink|影像图片下载服务地址|String|500|N|Y|影像图片下载地址，要求在医保专网内访问，该服务地址需提供本次检查dicom协议的影像图片下载能力，用于影像云数据共享中心缓存使用。
"""

# Semantic rules and dictionaries attached to fields by code (sandbox.validate applies them).
_RULES: dict[str, dict[str, object]] = {
    "hiImgIndx": {"rule": "hi_img_indx"},
    "psnCertType": {"rule": "dict_external", "dictionary": "psn_cert_type"},
    "certno": {"rule": "certno"},
    "gend": {"rule": "dict", "dictionary": "gend"},
    "fixmedinsCode": {"rule": "fixmedins_code"},
    "examAdmdvs": {"rule": "admdvs"},
    "imgExamType": {"rule": "dict", "dictionary": "img_exam_type", "multi": True},
    "examItemCode": {"multi": True},
    "examPart": {"rule": "exam_part", "multi": True},
    "examWay": {"rule": "dict_erratum", "dictionary": "exam_way", "multi": True},
    "examRsltCode": {"rule": "dict_erratum", "dictionary": "exam_rslt_code"},
    "hospLv": {"rule": "dict", "dictionary": "hosp_lv"},
    "postcode": {"rule": "postcode"},
    "poscode": {"rule": "postcode"},
    "examTecnIdcard": {"rule": "idcard"},
    "rpotDrIdcard": {"rule": "idcard"},
    "chkDrIdcard": {"rule": "idcard"},
    "sdryChkDrIdcard": {"rule": "idcard"},
    "stogInsUscc": {"rule": "uscc"},
    "examRpotPdfI": {"rule": "file_pdf"},
    "imgInfoDcm": {"rule": "file_dicom"},
    "examRpotLinkUrl": {"rule": "url"},
    "imgInfoLinkUrl": {"rule": "url"},
    "imgDldLink": {"rule": "url"},
}

_KINDS = {
    "String": Kind.STRING,
    "string": Kind.STRING,
    "TEXT": Kind.TEXT,
    "Date": Kind.DATE,
    "datetime": Kind.DATETIME,
    "BigDecimal": Kind.DECIMAL,
    "": Kind.FILE,
}


def _parse(table: str) -> list[FieldSpec]:
    rows = []
    for line in table.strip().splitlines():
        seq, code, name, doc_type, length, is_dict, required, note = line.split("|")
        extra: dict[str, object] = dict(_RULES.get(code, {}))
        rows.append(
            FieldSpec(
                seq=int(seq),
                code=code,
                name=name,
                kind=_KINDS[doc_type],
                length=int(length) if length.isdigit() else None,
                is_dict=is_dict == "Y",
                required=required == "Y",
                note=note,
                doc_type=doc_type,
                doc_length=length,
                **extra,  # type: ignore[arg-type]
            )
        )
    return rows


def _with(spec: FieldSpec, **changes: object) -> FieldSpec:
    from dataclasses import replace

    return replace(spec, **changes)  # type: ignore[arg-type]


def _hop1_rows() -> list[FieldSpec]:
    rows = _parse(_HOP1_TABLE)
    # 27 age: "长度 5，保留小数点后 1 位" -> precision 5, scale 1.
    return [_with(r, length=None, precision=5, scale=1) if r.code == "age" else r for r in rows]


def _hop2_rows() -> list[FieldSpec]:
    """Hop 2 = hop 1 without the two files, with the document's hop-2 differences."""
    base = [r for r in _hop1_rows() if r.code not in ("examRpotPdfI", "imgInfoDcm")]
    out: list[FieldSpec] = []
    for r in base:
        if r.code == "postcode":  # hop-2 table spells it poscode (ERRATA #4)
            r = _with(r, code="poscode")
        elif r.code == "age":  # hop-2 table: "4, 1"
            r = _with(r, doc_length="4, 1", precision=4, scale=1, note="")
        elif r.code == "hospLv":
            r = _with(r, seq=70)
        out.append(r)
    extra = _parse(_HOP2_ONLY)
    by_seq = {r.seq: r for r in extra}
    result = [r for r in out if r.seq < 69] + [by_seq[69]] + [r for r in out if r.code == "hospLv"]
    result += [by_seq[71], by_seq[72], by_seq[73]]
    return result


HOP1_FIELDS: tuple[FieldSpec, ...] = tuple(_hop1_rows())
HOP2_FIELDS: tuple[FieldSpec, ...] = tuple(_hop2_rows())


@dataclass(frozen=True, slots=True)
class EnvelopeField:
    """One row of the 交易输入参数定义 table."""

    seq: int
    code: str
    name: str
    kind: Kind
    length: int | None
    required: bool
    note: str = ""


ENVELOPE_FIELDS: tuple[EnvelopeField, ...] = (
    EnvelopeField(1, "infno", "交易编号", Kind.STRING, 50, True, "上传接口对应编号"),
    EnvelopeField(2, "msgid", "发送方报文ID", Kind.STRING, 50, True,
                  "交易机构编号(12)+时间(14)+顺序号(4)，时间格式：yyyyMMddHHmmss"),
    EnvelopeField(3, "infTime", "交易时间", Kind.DATETIME, None, True),
    EnvelopeField(4, "infCode", "交易机构编号", Kind.STRING, 30, True),
    EnvelopeField(5, "key", "密钥值", Kind.STRING, 50, True),
    EnvelopeField(6, "data", "交易输入", Kind.STRING, 40000, True),
)

DATA_MAX_CHARS = 40000


@dataclass(frozen=True, slots=True)
class OutputField:
    """One row of a (六) 输出 table."""

    seq: int
    code: str
    name: str
    length: int
    required: bool
    note: str = ""


OUTPUT_FIELDS: tuple[OutputField, ...] = (
    OutputField(1, "hiImgIndx", "医保影像云索引号", 100, False),
    OutputField(2, "succFlag", "成功标志", 6, True, "【-1】失败（全部数据失败）【0】失败（部分数据失败）【1】成功"),
    OutputField(3, "message", "返回信息", 3000, False, "交易失败状态下，业务返回错误信息。"),
)


@dataclass(frozen=True, slots=True)
class Transaction:
    """One of the document's two transactions."""

    hop: int
    infno: str
    path: str
    title: str
    sender: str
    receiver: str
    fields: tuple[FieldSpec, ...] = field(repr=False)
    infcode_note: str = ""

    @property
    def by_code(self) -> dict[str, FieldSpec]:
        return {f.code: f for f in self.fields}

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(f.code for f in self.fields if f.required)


URL_PREFIX = "/mie/api/mie/"

HOP1 = Transaction(
    hop=1,
    infno="saveExamRpotImgInfo",
    path=URL_PREFIX + "saveExamRpotImgInfo",
    title="医疗机构及检查检验机构数据上传服务",
    sender="医疗机构及检查检验机构",
    receiver="地方影像云数据共享中心",
    fields=HOP1_FIELDS,
    infcode_note="医疗机构代码或检查检验机构编号",
)
HOP2 = Transaction(
    hop=2,
    infno="saveExamRpotImgIndx",
    path=URL_PREFIX + "saveExamRpotImgIndx",
    title="地方影像云数据共享中心数据上传服务",
    sender="地方影像云数据共享中心",
    receiver="医保影像云索引共享模块",
    fields=HOP2_FIELDS,
    infcode_note="地方影像云数据共享中心编号",
)
TRANSACTIONS: dict[int, Transaction] = {1: HOP1, 2: HOP2}
