"""Report texts as data: findings (影像描述) and impressions (诊断结果) per exam item, and the clinical
context (临床诊断, ICD-10 医保版 code, 主诉, 症状) that leads to each exam.

A report is the item's normal findings, one sentence per anatomical slot, with at most one slot
replaced by an abnormal finding; the impression, advice, result code (1 阴性 2 阳性 3 不确定) and any
critical value come with that finding. So a chest CT reads like a chest CT, and its impression agrees
with its findings.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Finding:
    slot: str
    text: str  # replaces the normal sentence of `slot`
    impression: str
    advice: str = ""
    result: str = "2"  # examRsltCode: 2 阳性, 3 不确定
    critical: str = ""  # rpotCritVal when this is a critical finding
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class ReportTexts:
    normal: tuple[tuple[str, str], ...]  # (slot, sentence)
    abnormal: tuple[Finding, ...]
    enhanced: str = ""  # sentence added for a contrast-enhanced exam with normal findings


@dataclass(frozen=True, slots=True)
class Indication:
    diagnosis: str  # 临床诊断
    icd: str  # 疾病编码 (ICD-10 医保版)
    complaint: str  # 主诉
    symptom: str  # 症状描述
    onset_days: tuple[int, int]  # symptom onset, days before the request


NORMAL_ADVICE = ("", "请结合临床。", "建议定期体检。")

REPORTS: dict[str, ReportTexts] = {
    "ct_head": ReportTexts(
        normal=(
            ("parenchyma", "双侧大脑半球对称，脑实质内未见异常密度影。"),
            ("ventricles", "脑室系统大小、形态未见异常，脑沟、脑裂、脑池未见增宽。"),
            ("midline", "中线结构居中。"),
            ("skull", "颅骨骨质未见异常。"),
            ("sinus", "所见副鼻窦及乳突气房含气良好。"),
        ),
        abnormal=(
            Finding("parenchyma", "左侧基底节区见斑点状低密度影，边界尚清，直径约0.6cm。", "左侧基底节区腔隙性脑梗死。",
                    "建议结合临床，必要时行头颅MRI检查。", weight=3),
            Finding("parenchyma", "右侧颞叶见团块状高密度影，大小约3.2cm×2.5cm，CT值约65HU，周围见低密度水肿带，"
                    "右侧侧脑室受压变窄。", "右侧颞叶脑出血。", "建议神经外科急会诊。",
                    critical="危急值：颅内出血，已电话通知临床医师", weight=0.5),
            Finding("ventricles", "脑室系统扩大，脑沟、脑裂增宽加深。", "脑萎缩。", "请结合临床。", weight=2),
            Finding("sinus", "双侧上颌窦黏膜增厚，窦腔内见软组织密度影。", "双侧上颌窦炎。", "建议耳鼻喉科就诊。"),
            Finding("parenchyma", "右侧额叶见小片状稍低密度影，边界欠清。", "右侧额叶稍低密度影，性质待定。",
                    "建议头颅MRI进一步检查。", result="3"),
        ),
    ),
    "ct_chest": ReportTexts(
        normal=(
            ("thorax", "胸廓对称，气管居中。"),
            ("lung", "双肺纹理清晰，双肺野内未见明确实质性病灶。"),
            ("bronchi", "各叶段支气管通畅。"),
            ("mediastinum", "纵隔内未见明显肿大淋巴结，心脏大小、形态未见异常。"),
            ("pleura", "双侧胸腔未见积液，胸膜未见增厚。"),
        ),
        abnormal=(
            Finding("lung", "右肺下叶见斑片状磨玻璃密度影及实变影，边界模糊，内见支气管充气征。", "右肺下叶炎症。",
                    "建议抗感染治疗后2周复查。", weight=4),
            Finding("lung", "左肺上叶尖后段见一实性结节，大小约0.6cm×0.5cm，边缘光整。", "左肺上叶小结节。",
                    "建议12个月后低剂量CT复查。", weight=3),
            Finding("lung", "双肺透亮度增高，肺纹理稀疏，双肺上叶见多发肺大泡。", "慢性支气管炎、肺气肿。",
                    "请结合临床。", weight=2),
            Finding("pleura", "右侧胸腔见大量气体密度影，右肺组织受压约70%。", "右侧气胸（肺组织受压约70%）。",
                    "建议胸外科急会诊。", critical="危急值：大量气胸，已电话通知临床医师", weight=0.4),
            Finding("pleura", "左侧胸腔见弧形液体密度影。", "左侧胸腔少量积液。", "请结合临床。"),
            Finding("lung", "右肺中叶见一磨玻璃密度结节，直径约0.8cm，边界尚清。", "右肺中叶磨玻璃结节，性质待定。",
                    "建议3个月后复查胸部CT。", result="3", weight=1.5),
        ),
        enhanced="增强扫描纵隔及肺门未见异常强化灶。",
    ),
    "ct_abdomen": ReportTexts(
        normal=(
            ("liver", "肝脏大小、形态正常，肝实质密度均匀，未见异常密度灶。"),
            ("gb", "胆囊不大，壁不厚，腔内未见异常密度影。"),
            ("pancreas", "胰腺大小、形态及密度未见异常。"),
            ("spleen", "脾脏不大，密度均匀。"),
            ("kidney", "双肾形态、大小未见异常，腹膜后未见肿大淋巴结。"),
        ),
        abnormal=(
            Finding("liver", "肝右叶见一类圆形低密度影，边界清楚，直径约1.5cm，CT值约8HU。", "肝右叶囊肿。",
                    "建议定期复查。", weight=3),
            Finding("gb", "胆囊腔内见数枚结节状高密度影，较大者直径约1.0cm。", "胆囊多发结石。", "建议肝胆外科就诊。",
                    weight=3),
            Finding("liver", "肝实质密度弥漫性减低，CT值低于脾脏。", "脂肪肝。", "建议低脂饮食，定期复查。", weight=2),
            Finding("kidney", "左肾下极见一直径约0.5cm点状高密度影。", "左肾结石。", "建议泌尿外科就诊。"),
            Finding("pancreas", "胰头区见一稍低密度影，边界欠清，大小约1.8cm×1.5cm。", "胰头区稍低密度影，性质待定。",
                    "建议增强MRI进一步检查。", result="3", weight=0.5),
        ),
        enhanced="增强扫描肝、胆、胰、脾未见异常强化灶，门静脉显影良好。",
    ),
    "ct_lspine": ReportTexts(
        normal=(
            ("align", "腰椎生理曲度存在，序列整齐。"),
            ("body", "各椎体骨质未见破坏，边缘未见明显骨质增生。"),
            ("disc", "各椎间盘未见明显膨出或突出，硬膜囊未见受压。"),
            ("canal", "椎管未见狭窄，双侧侧隐窝未见狭窄。"),
            ("soft", "椎旁软组织未见异常。"),
        ),
        abnormal=(
            Finding("disc", "L4/5椎间盘向后方突出，硬膜囊前缘受压，左侧侧隐窝变窄。", "L4/5椎间盘突出（后中央偏左型）。",
                    "建议骨科就诊。", weight=4),
            Finding("body", "腰椎诸椎体边缘见唇样骨质增生。", "腰椎退行性变。", "请结合临床。", weight=3),
            Finding("disc", "L5/S1椎间盘向四周均匀膨出，硬膜囊前缘轻度受压。", "L5/S1椎间盘膨出。", "请结合临床。",
                    weight=2),
            Finding("body", "L1椎体呈楔形变，前缘骨皮质断裂。", "L1椎体压缩性骨折。", "建议骨科就诊。"),
        ),
    ),
    "mr_head": ReportTexts(
        normal=(
            ("parenchyma", "脑实质内未见异常信号。"),
            ("hemispheres", "大脑半球各叶沟回正常。"),
            ("ventricles", "脑室系统未见异常，各脑池及蛛网膜下腔未见增宽。"),
            ("posterior", "小脑及脑干结构未见异常。"),
            ("midline", "中线结构无移位。"),
            ("sinus", "副鼻窦未见异常信号。"),
        ),
        abnormal=(
            Finding("sinus", "副鼻窦可见片状长T2信号。", "副鼻窦积液。", "建议耳鼻喉科就诊。", weight=2),
            Finding("parenchyma", "双侧侧脑室旁见多发斑点状长T1长T2信号，FLAIR呈高信号，DWI未见弥散受限。",
                    "双侧侧脑室旁多发缺血灶。", "请结合临床。", weight=3),
            Finding("parenchyma", "左侧放射冠区见小片状长T2信号，DWI呈高信号，ADC值减低。", "左侧放射冠区急性腔隙性脑梗死。",
                    "建议神经内科及时处理。", critical="危急值：急性脑梗死，已电话通知临床医师", weight=0.8),
            Finding("parenchyma", "右侧额叶皮层下见一点状长T2信号，边界清。", "右侧额叶点状异常信号，考虑小缺血灶可能。",
                    "建议6个月后复查。", result="3"),
        ),
        enhanced="增强扫描脑实质内未见异常强化灶。",
    ),
    "mr_lspine": ReportTexts(
        normal=(
            ("align", "腰椎生理曲度存在，序列整齐。"),
            ("body", "各椎体信号未见异常。"),
            ("disc", "各椎间盘T2WI信号未见减低，未见膨出或突出。"),
            ("cord", "圆锥位置、形态及信号未见异常。"),
            ("canal", "椎管未见狭窄。"),
        ),
        abnormal=(
            Finding("disc", "L4/5、L5/S1椎间盘T2WI信号减低，L4/5椎间盘向后突出，相应硬膜囊受压。",
                    "L4/5椎间盘突出；L4/5、L5/S1椎间盘变性。", "建议骨科就诊。", weight=4),
            Finding("body", "L3椎体内见一类圆形短T1长T2信号，边界清，直径约1.0cm。", "L3椎体血管瘤。", "建议定期复查。"),
            Finding("canal", "L3/4水平椎管前后径变窄，黄韧带增厚。", "L3/4水平椎管狭窄。", "建议骨科就诊。"),
        ),
    ),
    "mr_knee": ReportTexts(
        normal=(
            ("bones", "膝关节诸骨骨质信号未见异常。"),
            ("meniscus", "内、外侧半月板形态及信号未见异常。"),
            ("ligaments", "前、后交叉韧带及内、外侧副韧带走行连续，信号未见异常。"),
            ("cartilage", "关节软骨未见变薄。"),
            ("effusion", "关节腔内未见积液。"),
        ),
        abnormal=(
            Finding("meniscus", "内侧半月板后角内见线状高信号达关节面。", "内侧半月板后角撕裂（III度）。",
                    "建议运动医学科就诊。", weight=3),
            Finding("ligaments", "前交叉韧带走行迂曲，信号增高，连续性中断。", "前交叉韧带断裂。", "建议运动医学科就诊。"),
            Finding("effusion", "关节腔及髌上囊内见长T2信号积液。", "膝关节腔积液。", "请结合临床。", weight=2),
            Finding("cartilage", "股骨及胫骨关节面软骨变薄，关节边缘骨质增生。", "膝关节退行性骨关节病。", "请结合临床。",
                    weight=2),
        ),
    ),
    "dx_chest": ReportTexts(
        normal=(
            ("thorax", "胸廓对称，气管居中。"),
            ("lung", "双肺纹理清晰，肺野内未见异常密度影。"),
            ("hilum", "双肺门影不大。"),
            ("heart", "心影大小、形态未见异常。"),
            ("diaphragm", "双膈面光整，肋膈角锐利。"),
        ),
        abnormal=(
            Finding("lung", "右下肺野见斑片状模糊影。", "右下肺炎症。", "建议治疗后复查。", weight=4),
            Finding("heart", "心影向左下扩大，心胸比约0.58。", "心影增大。", "请结合临床及心脏超声检查。", weight=2),
            Finding("diaphragm", "左侧肋膈角变钝。", "左侧胸腔少量积液。", "请结合临床。"),
            Finding("lung", "右上肺野见一结节影，直径约1.2cm。", "右上肺结节，性质待定。", "建议胸部CT进一步检查。",
                    result="3"),
        ),
    ),
    "dx_lspine": ReportTexts(
        normal=(
            ("align", "腰椎生理曲度存在，序列整齐。"),
            ("body", "各椎体形态、骨质未见异常。"),
            ("disc", "各椎间隙未见变窄。"),
            ("appendix", "椎弓根及附件未见异常，椎旁软组织未见异常。"),
        ),
        abnormal=(
            Finding("body", "腰椎诸椎体边缘骨质增生，呈唇样改变。", "腰椎退行性变。", "请结合临床。", weight=4),
            Finding("disc", "L4/5椎间隙变窄。", "L4/5椎间隙变窄，椎间盘病变待排。", "建议腰椎MRI检查。", result="3"),
            Finding("align", "腰椎生理曲度变直。", "腰椎生理曲度变直。", "请结合临床。", weight=2),
        ),
    ),
    "dx_knee": ReportTexts(
        normal=(
            ("bones", "膝关节诸骨骨质未见异常。"),
            ("space", "关节间隙未见狭窄。"),
            ("surface", "关节面光整。"),
            ("soft", "周围软组织未见异常。"),
        ),
        abnormal=(
            Finding("surface", "股骨、胫骨关节缘及髌骨上下缘骨质增生，关节面硬化。", "膝关节退行性骨关节病。",
                    "请结合临床。", weight=4),
            Finding("bones", "胫骨平台外侧骨皮质不连续，见透亮骨折线。", "胫骨平台骨折。", "建议骨科就诊，必要时CT检查。"),
            Finding("soft", "髌上囊区软组织肿胀。", "膝关节周围软组织肿胀。", "请结合临床。"),
        ),
    ),
    "cr_pelvis": ReportTexts(
        normal=(
            ("bones", "骨盆诸骨骨质未见异常。"),
            ("joints", "双侧髋关节、骶髂关节间隙未见狭窄，关节面光整。"),
            ("femoral", "双侧股骨头形态、密度未见异常。"),
            ("soft", "周围软组织未见异常。"),
        ),
        abnormal=(
            Finding("femoral", "右侧股骨颈骨皮质不连续，见透亮骨折线，断端错位。", "右侧股骨颈骨折。", "建议骨科就诊。",
                    weight=2),
            Finding("joints", "双侧髋关节间隙变窄，关节缘骨质增生。", "双侧髋关节退行性变。", "请结合临床。", weight=3),
            Finding("femoral", "左侧股骨头密度不均，见囊状透亮影，关节面塌陷。", "左侧股骨头缺血性坏死可能。",
                    "建议髋关节MRI检查。", result="3"),
        ),
    ),
    "us_abdomen": ReportTexts(
        normal=(
            ("liver", "肝脏形态大小正常，包膜光滑，实质回声均匀，肝内管道结构清晰。"),
            ("gb", "胆囊大小正常，壁光滑，囊内透声好。"),
            ("duct", "肝内外胆管未见扩张。"),
            ("pancreas", "胰腺大小形态正常，回声均匀。"),
            ("spleen", "脾脏大小正常，实质回声均匀。CDFI：未见异常血流信号。"),
        ),
        abnormal=(
            Finding("liver", "肝脏大小正常，实质回声细密增强，后方回声衰减。", "脂肪肝（轻度）。", "建议低脂饮食，定期复查。",
                    weight=4),
            Finding("gb", "胆囊腔内见数个强回声团，较大者约1.2cm×0.8cm，后伴声影，随体位改变移动。", "胆囊多发结石。",
                    "建议肝胆外科就诊。", weight=3),
            Finding("liver", "肝右叶见一无回声区，大小约2.1cm×1.8cm，边界清，后方回声增强。", "肝囊肿。", "建议定期复查。",
                    weight=2),
            Finding("gb", "胆囊壁上见一中等回声附着，大小约0.4cm，不随体位移动，后方无声影。", "胆囊息肉样病变。",
                    "建议6个月后复查。", result="3"),
        ),
    ),
    "us_thyroid": ReportTexts(
        normal=(
            ("size", "甲状腺左右叶及峡部大小正常，包膜完整。"),
            ("parenchyma", "腺体实质回声均匀，未见明显占位。"),
            ("cdfi", "CDFI：腺体内血流信号未见异常。"),
            ("nodes", "双侧颈部未见明显肿大淋巴结。"),
        ),
        abnormal=(
            Finding("parenchyma", "甲状腺右叶见一低回声结节，大小约0.8cm×0.6cm，边界清，形态规则，纵横比<1，未见微钙化。",
                    "甲状腺右叶结节（TI-RADS 3类）。", "建议6～12个月复查。", weight=4),
            Finding("parenchyma", "甲状腺左叶见一低回声结节，大小约0.9cm×1.1cm，边界不清，形态不规则，纵横比>1，"
                    "内见点状强回声。", "甲状腺左叶结节（TI-RADS 4b类）。", "建议超声引导下细针穿刺活检。", result="3"),
            Finding("size", "甲状腺弥漫性肿大，实质回声不均匀，呈网格样改变。", "甲状腺弥漫性病变。", "请结合甲状腺功能检查。",
                    weight=2),
        ),
    ),
    "us_gyn": ReportTexts(
        normal=(
            ("uterus", "子宫前位，大小正常，形态规则，肌层回声均匀。"),
            ("endometrium", "内膜居中，厚约0.7cm。"),
            ("adnexa", "双侧附件区未见明显异常回声。"),
            ("fluid", "盆腔未见明显积液。"),
        ),
        abnormal=(
            Finding("uterus", "子宫增大，后壁肌层见一低回声结节，大小约2.5cm×2.1cm，边界清。", "子宫肌瘤（肌壁间）。",
                    "建议妇科定期复查。", weight=3),
            Finding("adnexa", "左侧附件区见一无回声区，大小约3.5cm×3.0cm，壁薄，透声好。", "左侧附件区囊性包块，考虑卵巢囊肿。",
                    "建议月经干净后复查。", weight=2),
            Finding("fluid", "盆腔见少量液性暗区，深约1.2cm。", "盆腔少量积液。", "请结合临床。"),
        ),
    ),
}

# Clinical context per body region; `ITEM_REGION` says which region each item belongs to.
INDICATIONS: dict[str, tuple[Indication, ...]] = {
    "head": (
        Indication("头晕待查", "R42.x00", "头晕3天", "反复头晕，伴恶心，无呕吐", (1, 7)),
        Indication("头痛", "R51.x00", "头痛1周", "间断头痛，以额部为主", (3, 14)),
        Indication("脑梗死", "I63.900", "左侧肢体乏力2天", "左侧肢体无力，言语含糊", (1, 3)),
        Indication("颅脑外伤", "S06.900", "外伤后头痛2小时", "摔伤后头部疼痛，无昏迷", (0, 0)),
        Indication("高血压病", "I10.x00", "头昏、血压控制不佳1月", "头昏，血压最高170/100mmHg", (20, 40)),
    ),
    "chest": (
        Indication("肺部感染", "J18.900", "咳嗽、咳痰5天", "咳嗽咳黄痰伴发热，最高体温38.5℃", (3, 7)),
        Indication("咳嗽", "R05.x00", "咳嗽2周", "干咳为主，夜间加重", (10, 20)),
        Indication("慢性阻塞性肺疾病", "J44.900", "反复咳喘10余年，加重3天", "活动后气促，咳白色泡沫痰", (2, 5)),
        Indication("胸痛待查", "R07.400", "胸痛1天", "左侧胸部刺痛，深呼吸时加重", (0, 2)),
        Indication("健康查体", "Z00.000", "体检", "无不适", (0, 0)),
    ),
    "abdomen": (
        Indication("腹痛待查", "R10.400", "上腹痛2天", "右上腹隐痛，进食油腻后加重", (1, 4)),
        Indication("胆囊结石", "K80.200", "右上腹痛反复发作1年", "右上腹阵发性绞痛", (5, 30)),
        Indication("脂肪肝", "K76.000", "体检发现肝功能异常", "无明显不适", (10, 60)),
        Indication("健康查体", "Z00.000", "体检", "无不适", (0, 0)),
    ),
    "lspine": (
        Indication("腰痛", "M54.500", "腰痛1月", "腰部酸痛，久坐后加重", (20, 40)),
        Indication("腰椎间盘突出", "M51.202", "腰痛伴左下肢麻木2周", "腰痛并向左下肢放射", (10, 20)),
        Indication("腰部外伤", "S39.900", "摔伤后腰痛1天", "腰部疼痛，活动受限", (0, 1)),
    ),
    "knee": (
        Indication("膝关节痛", "M25.561", "右膝疼痛3月", "上下楼梯时膝关节疼痛", (60, 100)),
        Indication("膝关节扭伤", "S83.600", "扭伤后左膝肿痛1天", "左膝肿胀，活动受限", (0, 1)),
        Indication("膝关节骨关节病", "M17.900", "双膝疼痛2年，加重1月", "行走后膝关节疼痛、僵硬", (20, 40)),
    ),
    "pelvis": (
        Indication("髋部外伤", "S79.900", "摔伤后右髋疼痛3小时", "右髋疼痛，不能站立", (0, 0)),
        Indication("髋关节痛", "M25.551", "双髋疼痛半年", "行走后髋部疼痛", (120, 200)),
    ),
    "thyroid": (
        Indication("甲状腺结节", "E04.101", "体检发现颈部结节", "无明显不适", (10, 60)),
        Indication("甲状腺功能亢进症", "E05.900", "心悸、多汗1月", "心悸、怕热、多汗，体重下降", (20, 40)),
    ),
    "gyn": (
        Indication("下腹痛", "R10.300", "下腹隐痛1周", "下腹部隐痛，月经量增多", (5, 10)),
        Indication("子宫平滑肌瘤", "D25.900", "复查子宫肌瘤", "无明显不适", (0, 0)),
        Indication("健康查体", "Z00.000", "体检", "无不适", (0, 0)),
    ),
}
ITEM_REGION: dict[str, str] = {
    "ct_head": "head", "mr_head": "head", "ct_chest": "chest", "dx_chest": "chest",
    "ct_abdomen": "abdomen", "us_abdomen": "abdomen", "ct_lspine": "lspine", "mr_lspine": "lspine",
    "dx_lspine": "lspine", "mr_knee": "knee", "dx_knee": "knee", "cr_pelvis": "pelvis",
    "us_thyroid": "thyroid", "us_gyn": "gyn",
}

HISTORIES: tuple[tuple[str, float], ...] = (
    ("既往体健。", 5), ("高血压病史5年，规律服药，血压控制可。", 2), ("2型糖尿病病史3年，口服降糖药治疗。", 1.5),
    ("否认肝炎、结核等传染病史，否认手术外伤史。", 2), ("慢性支气管炎病史10余年。", 1),
    ("冠心病病史2年。", 0.8), ("阑尾切除术后8年。", 0.6),
)
ALLERGIES: tuple[tuple[str, float], ...] = (
    ("否认药物及食物过敏史。", 10), ("青霉素过敏。", 1), ("头孢类药物过敏。", 0.6), ("磺胺类药物过敏。", 0.4),
    ("碘造影剂过敏史不详。", 0.2),
)
# Share of exams with a normal result, by visit type.
NORMAL_SHARE: dict[str, float] = {"门诊": 0.45, "住院": 0.3, "急诊": 0.4, "体检": 0.75}
