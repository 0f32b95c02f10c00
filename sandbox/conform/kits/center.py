"""The center kit."""

from __future__ import annotations

from typing import ClassVar

from sandbox.conform.kit import Kit
from sandbox.conform.model import Role


class CenterKit(Kit):
    role: ClassVar[Role] = "center"


KIT = CenterKit
