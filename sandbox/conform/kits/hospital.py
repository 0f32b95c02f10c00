"""The hospital kit."""

from __future__ import annotations

from typing import ClassVar

from sandbox.conform.kit import Kit
from sandbox.conform.model import Role


class HospitalKit(Kit):
    role: ClassVar[Role] = "hospital"


KIT = HospitalKit
