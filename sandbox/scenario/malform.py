"""The catalogue of malformed hop-1 data, as data: name → how a clean record or message is broken → what the
receiver must report for it, in each mode.

The hospital's generator produces clean records; a scenario names malformations and this module breaks the
records (or the envelope around them). Each entry states the validator's problem code and the field it must
be reported on, and the outcome per mode:

- `rejected`: the record is answered `-1` (or, for an envelope malformation, the whole message is refused
  with the envelope code named in `envelope_code`);
- `altered`: saved, answered `0`: a value the sender sent was dropped (an undefined field, a field of the other
  hop); the message names it;
- `normalised`: saved in full, answered `1`, the message names the field as a 提示 (lenient reading of an
  ERRATA spelling: renamed, coerced, completed);
- `noted`: saved (`1` or `0`), the message names the field as a 提示 (a checksum the document's own example
  fails, a rule the document leaves to other standards);
- `accepted`: the message is accepted (envelope malformations the lenient mode reads as the examples do).

ERRATA variants reuse sandbox.spec.variants, so a spelling named there is the spelling sent here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from sandbox.spec.checksums import id_check_char
from sandbox.spec.fields import DATA_MAX_CHARS
from sandbox.spec.variants import FIELD_VARIANTS, INFNO_VARIANTS
from sandbox.validate import Mode

Record = dict[str, Any]
Message = dict[str, Any]
OUTCOMES = ("rejected", "altered", "normalised", "noted", "accepted")


@dataclass(frozen=True, slots=True)
class Malformation:
    """One way of breaking hop-1 data, and what the receiver must say about it."""

    name: str
    title: str  # Chinese, one line
    level: str  # record | envelope
    problem: str  # the validator's problem code (sandbox.spec.messages.PROBLEMS)
    field: str | None
    lenient: str  # one of OUTCOMES
    strict: str
    erratum: int | None = None
    envelope_code: int | None = None  # for envelope malformations refused whole
    envelope_code_strict: int | None = None
    break_record: Callable[[Record], Any] | None = None
    break_message: Callable[[Message], Message] | None = None

    def outcome(self, mode: Mode) -> str:
        return self.strict if mode is Mode.STRICT else self.lenient

    def code(self, mode: Mode) -> int | None:
        if mode is Mode.STRICT and self.envelope_code_strict is not None:
            return self.envelope_code_strict
        return self.envelope_code


def _set(field: str, value: Any) -> Callable[[Record], Record]:
    def apply(rec: Record) -> Record:
        return {**rec, field: value}

    return apply


def _drop(field: str) -> Callable[[Record], Record]:
    def apply(rec: Record) -> Record:
        return {k: v for k, v in rec.items() if k != field}

    return apply


def _rename(right: str, wrong: str) -> Callable[[Record], Record]:
    """Spell a field as the document's example does (keeps the position of the key)."""

    def apply(rec: Record) -> Record:
        out: Record = {}
        for k, v in rec.items():
            out[wrong if k == right else k] = v
        if right not in rec:
            out[wrong] = _VARIANT_VALUES.get(right, "E123456789012345678")
        return out

    return apply


_VARIANT_VALUES = {"elecHlCardNo": "E510800201900012345", "postcode": "628000"}


def _variant(erratum: int, wrong: str) -> tuple[str, str]:
    v = FIELD_VARIANTS[1][wrong]
    assert v.erratum == erratum
    return v.right, v.wrong


def _bad_check_digit(rec: Record) -> Record:
    certno = str(rec.get("certno", ""))
    if len(certno) != 18:
        return rec
    right = id_check_char(certno[:17])
    wrong = "0" if right != "0" else "1"
    return {**rec, "certno": certno[:17] + wrong}


def _files_as_links(rec: Record) -> Record:
    """The examples' shape: no hop-1 files, hop 2's links naming where they are (ERRATA #6)."""
    out = {k: v for k, v in rec.items() if k not in ("examRpotPdfI", "imgInfoDcm")}
    out["examRpotLinkUrl"] = rec.get("examRpotPdfI", "")
    out["imgInfoLinkUrl"] = rec.get("imgInfoDcm", "")
    out["imgDldLink"] = rec.get("imgInfoDcm", "")
    return out


def _foreign_uscc(rec: Record) -> Record:
    return {**rec, "stogInsUsc": "91310106575864243X"}


def _msg(**changes: Any) -> Callable[[Message], Message]:
    def apply(msg: Message) -> Message:
        return {**msg, **changes}

    return apply


def _unknown_institution(msg: Message) -> Message:
    code = "H99999999999"
    return {**msg, "infCode": code, "msgid": code + str(msg["msgid"])[12:]}


def _blank_infcode(msg: Message) -> Message:
    return {**msg, "infCode": " "}


def _data_as_string(msg: Message) -> Message:
    return {**msg, "data": orjson.dumps(msg["data"]).decode()}


def _oversize(msg: Message) -> Message:
    """Copies of the batch's records until `data` passes the 40000-character limit."""
    data = list(msg["data"])
    base = list(data) or [{}]
    size = len(orjson.dumps(data).decode())
    k = 0
    while size <= DATA_MAX_CHARS:
        data.append(base[k % len(base)])
        size = len(orjson.dumps(data).decode())
        k += 1
    return {**msg, "data": data}


def _drop_key(key: str) -> Callable[[Message], Message]:
    def apply(msg: Message) -> Message:
        return {k: v for k, v in msg.items() if k != key}

    return apply


_HI_RIGHT, _HI_WRONG = _variant(2, "hiImgIdx")
_CARD_RIGHT, _CARD_WRONG = _variant(3, "elecHiCardNo")
_POST_RIGHT, _POST_WRONG = _variant(4, "poscode")
_INFNO_VARIANT = next(iter(INFNO_VARIANTS))
_LONG_NAME = "欧阳" * 26  # 52 characters; psnName is String(50)

CATALOGUE: dict[str, Malformation] = {m.name: m for m in (
    # ---- records: rules the document states (errors in both modes) -------------------------------
    Malformation("missing_required", "缺少必填项 psnName（人员姓名）", "record", "missing", "psnName",
                 "rejected", "rejected", break_record=_drop("psnName")),
    Malformation("empty_required", "必填项 imgExamItem（检查项目名称）为空字符串", "record", "empty", "imgExamItem",
                 "rejected", "rejected", break_record=_set("imgExamItem", "")),
    Malformation("over_long", "psnName 超长（52 字符，上限 50）", "record", "too_long", "psnName",
                 "rejected", "rejected", break_record=_set("psnName", _LONG_NAME)),
    Malformation("over_long_text", "imgDscr（影像描述）超长（3001 字符，上限 3000）", "record", "too_long", "imgDscr",
                 "rejected", "rejected", break_record=_set("imgDscr", "未" * 3001)),
    Malformation("bad_dict_gend", "gend（性别）字典外代码 3", "record", "not_dict_code", "gend",
                 "rejected", "rejected", break_record=_set("gend", "3")),
    Malformation("bad_dict_hosp_lv", "hospLv（检查医院等级）字典外代码 99", "record", "not_dict_code", "hospLv",
                 "rejected", "rejected", break_record=_set("hospLv", "99")),
    Malformation("bad_dict_exam_type", "imgExamType（影像检查类型）字典外代码 7", "record", "not_dict_code",
                 "imgExamType", "rejected", "rejected", break_record=_set("imgExamType", "7")),
    Malformation("bad_multi_separator", "imgExamType 多值用两个空格分隔", "record", "multi_separator", "imgExamType",
                 "rejected", "rejected", break_record=_set("imgExamType", "1  2")),
    Malformation("bad_date", "examDate（检查日期）格式为 2025/10/08", "record", "date_format", "examDate",
                 "rejected", "rejected", break_record=_set("examDate", "2025/10/08")),
    Malformation("impossible_date", "examDate 为不存在的日期 2025-02-30", "record", "date_format", "examDate",
                 "rejected", "rejected", break_record=_set("examDate", "2025-02-30")),
    Malformation("bad_datetime", "rpotDate（报告日期）为 ISO 格式 2025-10-08T08:00:00", "record", "datetime_format",
                 "rpotDate", "rejected", "rejected", break_record=_set("rpotDate", "2025-10-08T08:00:00")),
    Malformation("bad_admdvs", "examAdmdvs（检查医保区划）只有 5 位", "record", "admdvs_format", "examAdmdvs",
                 "rejected", "rejected", break_record=_set("examAdmdvs", "51080")),
    Malformation("bad_exam_part", "examPart（检查部位代码）不是 9 位大写字母数字", "record", "exam_part_format",
                 "examPart", "rejected", "rejected", break_record=_set("examPart", "chest")),
    Malformation("bad_age_scale", "age（年龄）两位小数 35.25", "record", "decimal_scale", "age",
                 "rejected", "rejected", break_record=_set("age", 35.25)),
    Malformation("negative_age", "age（年龄）为负数", "record", "decimal_negative", "age",
                 "rejected", "rejected", break_record=_set("age", -3)),
    Malformation("bad_file_url", "examRpotPdfI（检查报告）不是 http(s) 链接", "record", "file_format", "examRpotPdfI",
                 "rejected", "rejected", break_record=_set("examRpotPdfI", "ftp://192.0.2.1/report.pdf")),
    Malformation("record_not_object", "data 中的一条记录是字符串而不是对象", "record", "record_type", None,
                 "rejected", "rejected", break_record=lambda rec: "检查记录"),
    # ---- records: rules left to other standards (提示 in lenient mode, errors in strict) ----------
    Malformation("bad_certno_checksum", "certno（证件号码）校验位错误（GB 11643）", "record", "idcard_checksum",
                 "certno", "noted", "rejected", break_record=_bad_check_digit),
    Malformation("bad_index_format", "hiImgIndx 不符合索引号编码规则", "record", "index_format", "hiImgIndx",
                 "noted", "rejected", break_record=lambda rec: {**rec, "hiImgIndx": "IDX-" + str(rec["hiImgIndx"])[-40:]}),
    Malformation("unknown_field", "多出一个未定义字段 remark", "record", "unknown_field", "remark",
                 "altered", "rejected", break_record=_set("remark", "加急")),
    # ---- records: the document's own example spellings (ERRATA) -----------------------------------
    Malformation("erratum_hiImgIdx", "索引号字段写作 hiImgIdx（勘误 #2）", "record", "variant_spelling", _HI_WRONG,
                 "normalised", "rejected", erratum=2, break_record=_rename(_HI_RIGHT, _HI_WRONG)),
    Malformation("erratum_elecHiCardNo", "电子健康卡号写作 elecHiCardNo（勘误 #3）", "record", "variant_spelling",
                 _CARD_WRONG, "normalised", "rejected", erratum=3, break_record=_rename(_CARD_RIGHT, _CARD_WRONG)),
    Malformation("erratum_poscode", "邮政编码写作 poscode（勘误 #4）", "record", "variant_spelling", _POST_WRONG,
                 "normalised", "rejected", erratum=4, break_record=_rename(_POST_RIGHT, _POST_WRONG)),
    Malformation("erratum_stogInsUsc", "第一跳记录带第二跳的 stogInsUsc（勘误 #5）", "record", "foreign_field",
                 "stogInsUsc", "altered", "rejected", erratum=5, break_record=_foreign_uscc),
    Malformation("erratum_files_as_links", "不传 examRpotPdfI/imgInfoDcm，改传第二跳的三个链接（勘误 #6）", "record",
                 "file_substitute", "examRpotPdfI", "altered", "rejected", erratum=6, break_record=_files_as_links),
    Malformation("erratum_age_string", "age 以字符串 \"35\" 传送（勘误 #7）", "record", "decimal_string", "age",
                 "normalised", "rejected", erratum=7, break_record=_set("age", "35")),
    Malformation("erratum_exam_rslt", "examRsltCode 写作 Normal（勘误 #8）", "record", "erratum_dict_code",
                 "examRsltCode", "noted", "rejected", erratum=8, break_record=_set("examRsltCode", "Normal")),
    Malformation("erratum_exam_way", "examWay 写作 Inpatient（勘误 #9）", "record", "erratum_dict_code", "examWay",
                 "noted", "rejected", erratum=9, break_record=_set("examWay", "Inpatient")),
    Malformation("erratum_date_only", "datetime 字段 appyDate 只给日期（勘误 #10）", "record", "date_only", "appyDate",
                 "normalised", "rejected", erratum=10, break_record=_set("appyDate", "2025-10-07")),
    # ---- envelopes --------------------------------------------------------------------------------
    Malformation("wrong_key", "密钥值 key 错误", "envelope", "wrong_key", "key", "rejected", "rejected",
                 envelope_code=1021, break_message=_msg(key="WRONG-KEY-0000000")),
    Malformation("missing_key", "报文头缺少 key", "envelope", "env_missing", "key", "rejected", "rejected",
                 envelope_code=1010, break_message=_drop_key("key")),
    Malformation("unknown_institution", "交易机构编号 infCode 未登记", "envelope", "unknown_infcode", "infCode",
                 "rejected", "rejected", envelope_code=1020, break_message=_unknown_institution),
    Malformation("bad_msgid", "报文ID 不是 12+14+4 位", "envelope", "env_msgid", "msgid", "rejected", "rejected",
                 envelope_code=1010, break_message=_msg(msgid="H5108020000120251008")),
    Malformation("bad_inftime", "交易时间 infTime 格式为 2025/10/08 08:00", "envelope", "env_inftime", "infTime",
                 "rejected", "rejected", envelope_code=1010, break_message=_msg(infTime="2025/10/08 08:00")),
    Malformation("oversize_data", "data 超过 40000 字符", "envelope", "env_data_too_long", "data",
                 "rejected", "rejected", envelope_code=1030, break_message=_oversize),
    Malformation("empty_data", "data 为空数组", "envelope", "env_data_empty", "data", "rejected", "rejected",
                 envelope_code=1030, break_message=_msg(data=[])),
    Malformation("erratum_infno", f"交易编号写作 {_INFNO_VARIANT}（勘误 #1）", "envelope", "env_infno_variant", "infno",
                 "accepted", "rejected", erratum=1, envelope_code_strict=1010,
                 break_message=_msg(infno=_INFNO_VARIANT)),
    Malformation("erratum_blank_infcode", "infCode 为空格（勘误 #11）", "envelope", "env_infcode_from_msgid",
                 "infCode", "accepted", "rejected", erratum=11, envelope_code_strict=1010,
                 break_message=_blank_infcode),
    Malformation("erratum_data_string", "data 以 JSON 字符串传送（勘误 #13）", "envelope", "env_data_string", "data",
                 "accepted", "rejected", erratum=13, envelope_code_strict=1030, break_message=_data_as_string),
)}

RECORD_MALFORMATIONS = tuple(m for m in CATALOGUE.values() if m.level == "record")
ENVELOPE_MALFORMATIONS = tuple(m for m in CATALOGUE.values() if m.level == "envelope")
ERRATA_MALFORMATIONS = tuple(m for m in CATALOGUE.values() if m.erratum is not None)

