"""The province kit."""

from __future__ import annotations

from typing import ClassVar

from sandbox.conform.kit import Kit
from sandbox.conform.model import Role


class ProvinceKit(Kit):
    role: ClassVar[Role] = "province"


KIT = ProvinceKit
