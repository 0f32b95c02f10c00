"""Image sizes of synthetic studies, apart from `sandbox.synth.dicom` so that naming a size does not load
pydicom and numpy."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ImageSpec:
    """Image sizes. The defaults look like a real (if small) study; tests use tiny ones."""

    slices: int = 20  # CT/MR slices per series
    matrix: int = 256  # CT/MR rows = columns
    xray_matrix: int = 512  # DX/CR rows = columns
    us_shape: tuple[int, int] = (480, 640)  # rows, columns
    us_images: int = 4


DEFAULT_IMAGES = ImageSpec()
