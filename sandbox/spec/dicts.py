"""Dictionaries: the document's section 四 plus the code lists its tables cite."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# 四、(一) 性别 gend
GEND: Mapping[str, str] = MappingProxyType({"0": "未知", "1": "男", "2": "女", "9": "未说明性别"})

# 四、(二) 医院等级 hosp_lv
HOSP_LV: Mapping[str, str] = MappingProxyType({
    "01": "三级特等", "02": "三级甲等", "03": "三级乙等", "04": "三级丙等",
    "05": "二级甲等", "06": "二级乙等", "07": "二级丙等", "08": "一级甲等",
    "09": "一级乙等", "10": "一级丙等", "11": "无等级", "12": "三级无等",
    "13": "二级无等", "14": "一级无等",
})

# 四、(三) 影像检查类型 img_exam_type
IMG_EXAM_TYPE: Mapping[str, str] = MappingProxyType({
    "1": "X线成像", "2": "计算机断层成像(CT)", "3": "磁共振成像(MRI)",
    "4": "超声成像(US)", "5": "核医学成像(ECT)", "9": "其他",
})

# psnCertType: GA/T 2000.156-2016 常用证件代码 (the common ones; the standard has more).
PSN_CERT_TYPE: Mapping[str, str] = MappingProxyType({
    "111": "居民身份证",
    "112": "临时居民身份证",
    "113": "户口簿",
    "114": "中国人民解放军军官证",
    "115": "中国人民武装警察部队警官证",
    "117": "出生医学证明",
    "118": "中国人民解放军士兵证",
    "119": "中国人民武装警察部队士兵证",
    "414": "普通护照",
    "511": "台湾居民来往大陆通行证",
    "516": "港澳居民来往内地通行证",
    "553": "外国人永久居留身份证",
    "554": "外国人居留证",
    "990": "其他",
})

# examWay (field 14 note): 1-平扫；2-增强；9-其它
EXAM_WAY: Mapping[str, str] = MappingProxyType({"1": "平扫", "2": "增强", "9": "其它"})

# examRsltCode (field 65 note): 1-阴性; 2-阳性; 3-不确定
EXAM_RSLT_CODE: Mapping[str, str] = MappingProxyType({"1": "阴性", "2": "阳性", "3": "不确定"})

DICTIONARIES: Mapping[str, Mapping[str, str]] = MappingProxyType({
    "gend": GEND,
    "hosp_lv": HOSP_LV,
    "img_exam_type": IMG_EXAM_TYPE,
    "psn_cert_type": PSN_CERT_TYPE,
    "exam_way": EXAM_WAY,
    "exam_rslt_code": EXAM_RSLT_CODE,
})

# Chinese titles used in messages, e.g. 字典【性别 gend】
DICT_TITLES: Mapping[str, str] = MappingProxyType({
    "gend": "性别 gend",
    "hosp_lv": "医院等级 hosp_lv",
    "img_exam_type": "影像检查类型 img_exam_type",
    "psn_cert_type": "常用证件代码 GA/T 2000.156",
    "exam_way": "检查方式 examWay",
    "exam_rslt_code": "检查结果代码 examRsltCode",
})
