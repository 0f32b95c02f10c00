"""医保区划 (administrative divisions) the synthetic data lives in, as data.

Codes are the national 6-digit division codes (GB/T 2260) that 医保区划 reuse. Each region has its
districts and counties with their postcodes, so a hospital, its patients' addresses, their resident ID
numbers and postcodes agree with one another. Guangyuan (广元, 510800) is the default; others are
selectable by code.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class County:
    code: str
    name: str
    postcode: str
    towns: tuple[str, ...]  # 街道/乡镇 used in addresses


@dataclass(frozen=True, slots=True)
class Region:
    code: str  # the prefecture's 6-digit code, e.g. 510800
    province: str
    name: str  # 广元市
    counties: tuple[County, ...]

    def county(self, code: str) -> County | None:
        return next((c for c in self.counties if c.code == code), None)


REGIONS: dict[str, Region] = {
    r.code: r
    for r in (
        Region("510800", "四川省", "广元市", (
            County("510802", "利州区", "628000", ("东坝街道", "嘉陵街道", "河西街道", "南河街道", "上西街道", "雪峰街道")),
            County("510811", "昭化区", "628017", ("元坝镇", "昭化镇", "柏林沟镇", "王家镇")),
            County("510812", "朝天区", "628012", ("朝天镇", "羊木镇", "曾家镇", "中子镇")),
            County("510821", "旺苍县", "628200", ("东河镇", "嘉川镇", "木门镇", "白水镇")),
            County("510822", "青川县", "628100", ("乔庄镇", "木鱼镇", "青溪镇", "沙州镇")),
            County("510823", "剑阁县", "628300", ("下寺镇", "普安镇", "剑门关镇", "开封镇")),
            County("510824", "苍溪县", "628400", ("陵江镇", "元坝镇", "歧坪镇", "龙王镇")),
        )),
        Region("510100", "四川省", "成都市", (
            County("510104", "锦江区", "610021", ("春熙路街道", "合江亭街道", "牛市口街道")),
            County("510105", "青羊区", "610031", ("少城街道", "草市街街道", "府南街道")),
            County("510106", "金牛区", "610036", ("荷花池街道", "驷马桥街道", "茶店子街道")),
            County("510107", "武侯区", "610041", ("浆洗街街道", "玉林街道", "簇桥街道")),
            County("510108", "成华区", "610051", ("猛追湾街道", "双桥子街道", "府青路街道")),
        )),
        Region("510700", "四川省", "绵阳市", (
            County("510703", "涪城区", "621000", ("城厢街道", "工区街道", "朝阳街道")),
            County("510704", "游仙区", "621022", ("游仙街道", "春天街道", "小枧沟镇")),
            County("510781", "江油市", "621700", ("中坝街道", "太白街道", "三合镇")),
        )),
        Region("511300", "四川省", "南充市", (
            County("511302", "顺庆区", "637000", ("中城街道", "北城街道", "舞凤街道")),
            County("511303", "高坪区", "637100", ("白塔街道", "清溪街道", "龙门街道")),
            County("511381", "阆中市", "637400", ("保宁街道", "七里街道", "江南街道")),
        )),
        Region("610700", "陕西省", "汉中市", (
            County("610702", "汉台区", "723000", ("北关街道", "东大街街道", "中山街街道")),
            County("610724", "宁强县", "724400", ("汉源街道", "大安镇", "阳平关镇")),
        )),
        Region("500100", "重庆市", "重庆市", (
            County("500103", "渝中区", "400010", ("解放碑街道", "七星岗街道", "上清寺街道")),
            County("500106", "沙坪坝区", "400030", ("小龙坎街道", "渝碚路街道", "磁器口街道")),
        )),
    )
}

DEFAULT_REGION = "510800"
# Patients of a hospital come mostly from its own region, some from elsewhere (they travel for care).
HOME_REGION_SHARE = 0.85


def region_of(admdvs: str) -> Region:
    """The region a 6-digit division code belongs to (by prefecture), default Guangyuan."""
    prefix = admdvs[:4] + "00"
    if prefix in REGIONS:
        return REGIONS[prefix]
    return REGIONS.get(admdvs[:2] + "0100", REGIONS[DEFAULT_REGION])


def county_of(admdvs: str) -> County:
    """The county of a division code, or the region's first county for a prefecture-level code."""
    region = region_of(admdvs)
    return region.county(admdvs) or region.counties[0]
