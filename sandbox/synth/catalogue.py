"""What a hospital's imaging department does, as data: exam items per modality, the devices that do
them, the departments that order them.

`part` codes follow the 9-character form of WS/T 364.8-2023 放射诊断检查技术编码 (upper-case letters and
digits). The standard's code table is not part of the interface document, so the codes here are the
sandbox's own, built as modality (2) + body region (4) + technique (3); they are stable and unique per
item. `item_code` is the hospital's own charge-item code ("按本院实际代码传").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Item:
    key: str  # also the key of the item's texts in sandbox.synth.texts
    modality: str  # DICOM Modality: CT MR DX CR US
    img_exam_type: str  # dictionary img_exam_type
    name: str  # 检查项目名称 for a plain scan
    item_code: str
    part: str  # 检查部位代码, plain scan
    body_part: str  # DICOM BodyPartExamined
    phantom: str  # key of the phantom in sandbox.synth.dicom
    weight: float  # relative frequency among all exams
    enhanced_name: str = ""  # name when the exam includes a contrast-enhanced series ("" = never enhanced)
    enhanced_code: str = ""
    enhanced_part: str = ""
    enhanced_share: float = 0.0
    sex: str = ""  # "2" = women only
    min_age: int = 0
    views: tuple[str, ...] = ()  # projection radiography: ViewPosition of each image
    fov_mm: float = 350.0  # field of view (CT/MR/X-ray)
    length_mm: float = 200.0  # scanned length along the body axis (CT/MR)
    slice_mm: float = 5.0


ITEMS: tuple[Item, ...] = (
    Item("ct_head", "CT", "2", "头颅CT平扫", "CT0101", "CTHEAD001", "HEAD", "head", 14,
         fov_mm=230, length_mm=140, slice_mm=5),
    Item("ct_chest", "CT", "2", "胸部CT平扫", "CT0201", "CTCHST001", "CHEST", "chest", 22,
         enhanced_name="胸部CT平扫+增强", enhanced_code="CT0202", enhanced_part="CTCHST002", enhanced_share=0.08,
         fov_mm=360, length_mm=300, slice_mm=5),
    Item("ct_abdomen", "CT", "2", "上腹部CT平扫", "CT0301", "CTABDM001", "ABDOMEN", "abdomen", 8,
         enhanced_name="上腹部CT平扫+增强", enhanced_code="CT0302", enhanced_part="CTABDM002", enhanced_share=0.35,
         fov_mm=380, length_mm=220, slice_mm=5, min_age=12),
    Item("ct_lspine", "CT", "2", "腰椎CT平扫", "CT0401", "CTLSPN001", "LSPINE", "lspine", 6,
         fov_mm=200, length_mm=160, slice_mm=3, min_age=16),
    Item("mr_head", "MR", "3", "头颅MRI平扫", "MR0101", "MRHEAD001", "HEAD", "head", 6,
         enhanced_name="头颅MRI平扫+增强", enhanced_code="MR0102", enhanced_part="MRHEAD002", enhanced_share=0.15,
         fov_mm=230, length_mm=130, slice_mm=6),
    Item("mr_lspine", "MR", "3", "腰椎MRI平扫", "MR0401", "MRLSPN001", "LSPINE", "lspine", 5,
         fov_mm=200, length_mm=120, slice_mm=4, min_age=16),
    Item("mr_knee", "MR", "3", "膝关节MRI平扫", "MR0601", "MRKNEE001", "KNEE", "knee", 3,
         fov_mm=160, length_mm=100, slice_mm=4, min_age=12),
    Item("dx_chest", "DX", "1", "胸部正位DR", "DR0201", "DXCHST001", "CHEST", "chest", 16,
         views=("PA",), fov_mm=430),
    Item("dx_lspine", "DX", "1", "腰椎正侧位DR", "DR0401", "DXLSPN001", "LSPINE", "lspine", 4,
         views=("AP", "LL"), fov_mm=300, min_age=16),
    Item("dx_knee", "DX", "1", "膝关节正侧位DR", "DR0601", "DXKNEE001", "KNEE", "knee", 3,
         views=("AP", "LL"), fov_mm=240),
    Item("cr_pelvis", "CR", "1", "骨盆正位CR", "CR0701", "CRPELV001", "PELVIS", "pelvis", 2,
         views=("AP",), fov_mm=400, min_age=16),
    Item("us_abdomen", "US", "4", "肝胆胰脾彩超", "US0301", "USABDM001", "ABDOMEN", "us_abdomen", 10),
    Item("us_thyroid", "US", "4", "甲状腺彩超", "US0801", "USTHYR001", "THYROID", "us_thyroid", 5, min_age=12),
    Item("us_gyn", "US", "4", "子宫附件彩超", "US0901", "USGYNP001", "PELVIS", "us_gyn", 4, sex="2", min_age=18),
)
ITEM_BY_KEY: dict[str, Item] = {i.key: i for i in ITEMS}

# Items that are ordered together in one exam (多项目: names joined by "，", codes by " ").
COMBINATIONS: tuple[tuple[str, str], ...] = (("ct_chest", "ct_abdomen"), ("ct_head", "ct_chest"))
COMBINATION_SHARE = 0.04


@dataclass(frozen=True, slots=True)
class DeviceModel:
    modality: str
    manufacturer: str
    model: str
    title: str  # 设备名称 as the hospital's equipment list reads
    dev_type: str  # 设备类型
    field_strength: float = 0.0  # MR, tesla


DEVICE_MODELS: tuple[DeviceModel, ...] = (
    DeviceModel("CT", "SIEMENS", "SOMATOM go.Top", "西门子SOMATOM go.Top 64排螺旋CT", "CT"),
    DeviceModel("CT", "GE MEDICAL SYSTEMS", "Revolution ACT", "GE Revolution ACT 16排螺旋CT", "CT"),
    DeviceModel("CT", "UIH", "uCT 760", "联影uCT 760 128层螺旋CT", "CT"),
    DeviceModel("CT", "NMS", "NeuViz 64", "东软NeuViz 64排螺旋CT", "CT"),
    DeviceModel("MR", "SIEMENS", "MAGNETOM Amira", "西门子MAGNETOM Amira 1.5T磁共振", "MR", 1.5),
    DeviceModel("MR", "UIH", "uMR 570", "联影uMR 570 1.5T磁共振", "MR", 1.5),
    DeviceModel("MR", "GE MEDICAL SYSTEMS", "SIGNA Pioneer", "GE SIGNA Pioneer 3.0T磁共振", "MR", 3.0),
    DeviceModel("DX", "Carestream Health", "DRX-Evolution Plus", "锐珂DRX-Evolution Plus数字化X线摄影系统", "DR"),
    DeviceModel("DX", "Wandong Medical", "NewVision Plus", "万东新东方1000数字化X线摄影系统", "DR"),
    DeviceModel("DX", "Philips Medical Systems", "DigitalDiagnost C90", "飞利浦DigitalDiagnost C90 DR", "DR"),
    DeviceModel("CR", "FUJIFILM Corporation", "FCR CAPSULA XLII", "富士FCR CAPSULA XLII计算机X线摄影系统", "CR"),
    DeviceModel("US", "Mindray", "Resona 7", "迈瑞Resona 7彩色多普勒超声诊断仪", "彩超"),
    DeviceModel("US", "SonoScape", "S60", "开立S60彩色多普勒超声诊断仪", "彩超"),
    DeviceModel("US", "GE Healthcare", "LOGIQ E10", "GE LOGIQ E10彩色多普勒超声诊断仪", "彩超"),
)

# How many devices of each modality a hospital of a given level has (三级 / 二级 / 一级 and others).
FLEET: dict[str, dict[str, int]] = {
    "3": {"CT": 3, "MR": 2, "DX": 3, "CR": 1, "US": 6},
    "2": {"CT": 2, "MR": 1, "DX": 2, "CR": 1, "US": 3},
    "1": {"CT": 1, "MR": 1, "DX": 1, "CR": 1, "US": 2},
}
ROOM_NAMES: dict[str, str] = {"CT": "CT{n}室", "MR": "磁共振{n}室", "DX": "DR{n}室", "CR": "CR室", "US": "超声{n}诊室"}
EXAM_DEPT: dict[str, str] = {"CT": "放射科", "MR": "放射科", "DX": "放射科", "CR": "放射科", "US": "超声医学科"}

# Who orders what: 申请科室 per item, by visit type.
ORDERING_DEPTS: dict[str, tuple[str, ...]] = {
    "ct_head": ("神经内科", "急诊科", "神经外科", "老年病科"),
    "ct_chest": ("呼吸与危重症医学科", "急诊科", "心血管内科", "胸外科", "体检中心"),
    "ct_abdomen": ("消化内科", "肝胆外科", "普外科", "急诊科"),
    "ct_lspine": ("骨科", "疼痛科", "康复医学科"),
    "mr_head": ("神经内科", "神经外科", "耳鼻咽喉科"),
    "mr_lspine": ("骨科", "疼痛科", "康复医学科"),
    "mr_knee": ("骨科", "运动医学科"),
    "dx_chest": ("呼吸与危重症医学科", "体检中心", "急诊科", "普外科"),
    "dx_lspine": ("骨科", "康复医学科"),
    "dx_knee": ("骨科", "急诊科"),
    "cr_pelvis": ("骨科", "急诊科"),
    "us_abdomen": ("消化内科", "肝胆外科", "体检中心", "内分泌科"),
    "us_thyroid": ("内分泌科", "甲状腺乳腺外科", "体检中心"),
    "us_gyn": ("妇科", "体检中心"),
}
WARDS: dict[str, str] = {
    "神经内科": "A5", "神经外科": "A6", "呼吸与危重症医学科": "B3", "心血管内科": "B4", "胸外科": "B7",
    "消化内科": "C2", "肝胆外科": "C5", "普外科": "C6", "骨科": "D3", "康复医学科": "D8", "老年病科": "E2",
    "内分泌科": "E4", "妇科": "F2", "疼痛科": "D9", "甲状腺乳腺外科": "C8", "耳鼻咽喉科": "F6",
    "运动医学科": "D5",
}

# Visit types and their shares; inpatients carry 住院号 and 病区.
VISITS: tuple[tuple[str, float], ...] = (("门诊", 0.55), ("住院", 0.3), ("急诊", 0.1), ("体检", 0.05))
