"""Fixtures of the synthetic-data tests: exam factories and tiny image sizes."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sandbox.config import Settings
from sandbox.synth.dicom import ImageSpec
from sandbox.synth.exams import Exam, ExamFactory

TINY = ImageSpec(slices=4, matrix=48, xray_matrix=64, us_shape=(48, 64), us_images=2)


@pytest.fixture
def settings() -> Settings:
    return Settings()


@pytest.fixture
def make_factory(settings: Settings) -> Callable[..., ExamFactory]:
    def make(seed: int = 1, hospital: int = 0, profile: str | None = None) -> ExamFactory:
        return ExamFactory(settings.hospitals[hospital], settings.center.uscc, seed,
                           index_profile=profile or settings.index_profile)

    return make


@pytest.fixture(scope="session")
def sample_exams() -> list[Exam]:
    """2000 metadata-only exams over both default hospitals (shared, read-only)."""
    s = Settings()
    out: list[Exam] = []
    for h in s.hospitals:
        out.extend(ExamFactory(h, s.center.uscc, 11, index_profile=s.index_profile).exams(1000))
    return out


@pytest.fixture(scope="session")
def one_of_each() -> dict[str, Exam]:
    """One exam of every catalogue item (first occurrence), abnormal ones preferred for lesions."""
    s = Settings()
    f = ExamFactory(s.hospitals[0], s.center.uscc, 3, index_profile=s.index_profile)
    found: dict[str, Exam] = {}
    for n in range(3000):
        e = f.exam(n)
        key = e.items[0].key
        if key not in found or (e.enhanced and not found[key].enhanced and e.items[0].enhanced_name):
            found[key] = e
    return found
