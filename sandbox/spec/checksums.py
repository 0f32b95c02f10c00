"""Check characters of the national identifiers the document relies on."""

from __future__ import annotations

import re

# GB 11643-1999 公民身份号码: 17 digits + check character from ISO 7064 MOD 11-2.
# (weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2, i.e. 2^(17-i) mod 11)
_ID_CHECK = "10X98765432"
ID18_RE = re.compile(r"^\d{17}[\dX]$")
ID15_RE = re.compile(r"^\d{15}$")


def id_check_char(first17: str) -> str:
    """GB 11643 check character for the first 17 digits."""
    if len(first17) != 17:
        raise ValueError(f"need 17 digits, got {len(first17)}")
    if not first17.isdecimal():
        raise ValueError(f"not 17 digits: {first17!r}")
    # This runs for every new certno a validator sees, so in one C call: each weight is 2^(17-i) mod 11
    # and 13 = 2 (mod 11), so the digits read as a base-13 number are half the weighted sum, mod 11.
    return _ID_CHECK[2 * int(first17, 13) % 11]


def id_valid(value: str) -> bool:
    """True when `value` is an 18-character resident ID with a correct check character."""
    value = value.upper()
    return bool(ID18_RE.match(value)) and id_check_char(value[:17]) == value[17]


# GB 32100-2015 统一社会信用代码: 17 characters + check character, MOD 31.
USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_VALUE = {c: i for i, c in enumerate(USCC_CHARSET)}
USCC_RE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$")


def uscc_check_char(first17: str) -> str:
    """GB 32100 check character for the first 17 characters."""
    total = sum(_USCC_VALUE[c] * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_CHARSET[(31 - total % 31) % 31]


def uscc_valid(value: str) -> bool:
    """True when `value` is an 18-character USCC with a correct check character."""
    return bool(USCC_RE.match(value)) and uscc_check_char(value[:17]) == value[17]
