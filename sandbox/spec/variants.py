"""Where the document contradicts itself (ERRATA.md), as data.

Each variant is recognised by name: lenient mode accepts it with a warning, strict mode rejects it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Variant:
    erratum: int
    wrong: str
    right: str
    where: str  # where the document uses the wrong spelling


# infno spelled as in both examples (ERRATA #1); it names neither hop exactly.
INFNO_VARIANTS: dict[str, Variant] = {
    "saveExamRpotImgIdx": Variant(1, "saveExamRpotImgIdx", "", "两个示例报文的 infno"),
}

_COMMON = (
    Variant(2, "hiImgIdx", "hiImgIndx", "示例请求报文与第一跳返回值"),
    Variant(3, "elecHiCardNo", "elecHlCardNo", "第一跳示例报文"),
)

FIELD_VARIANTS: dict[int, dict[str, Variant]] = {
    1: {v.wrong: v for v in _COMMON + (Variant(4, "poscode", "postcode", "第二跳表格与两个示例报文"),)},
    2: {
        v.wrong: v
        for v in _COMMON
        + (
            Variant(4, "postcode", "poscode", "第一跳表格"),
            Variant(5, "stogInsUsec", "stogInsUscc", "第二跳示例报文"),
            Variant(5, "stogInsUsc", "stogInsUscc", "第一跳示例报文"),
        )
    },
}

# Fields of the other hop that the examples carry (ERRATA #5, #6). In lenient mode a hop-1 message
# without its files may name them by hop 2's links; `substitutes` says which link stands for which file.
FOREIGN_FIELDS: dict[int, dict[str, int]] = {
    1: {"stogInsUscc": 5, "stogInsUsc": 5, "stogInsUsec": 5,
        "examRpotLinkUrl": 6, "imgInfoLinkUrl": 6, "imgDldLink": 6},
    2: {"examRpotPdfI": 6, "imgInfoDcm": 6},
}
FILE_SUBSTITUTES: dict[str, str] = {"examRpotPdfI": "examRpotLinkUrl", "imgInfoDcm": "imgDldLink"}
