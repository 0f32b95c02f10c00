"""A text in Chinese and English, as the data files (scenarios, the conformance catalogue) write it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Text(BaseModel):
    """A text in Chinese and English."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)
