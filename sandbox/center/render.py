"""Frames of stored instances as PNG or JPEG, for the image page and DICOMweb `rendered` resources.

Grey-scale frames go through the modality LUT (Rescale Slope/Intercept) and then the VOI window: the
window asked for, else the instance's first Window Center/Width, else the frame's own range. The window
is the linear function of PS3.3 C.11.2.1.2.1; MONOCHROME1 is inverted so that it looks as it should.
Colour frames are shown as decoded (pydicom converts YBR to RGB).
"""

from __future__ import annotations

import io
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy, pydicom and Pillow load with the first frame shown, not with the center
    import numpy as np
    from PIL import Image

CACHE_ITEMS = 512


class RenderError(Exception):
    """A frame that cannot be shown (no pixel data, a transfer syntax without a decoder, bad frame number)."""


@dataclass(frozen=True, slots=True)
class Window:
    center: float
    width: float


def _first(value: object) -> float | None:
    from pydicom.multival import MultiValue

    if value is None:
        return None
    if isinstance(value, (list, tuple, MultiValue)):
        value = value[0] if len(value) else None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def window_linear(values: np.ndarray, window: Window) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1 linear VOI function onto 0..255."""
    import numpy as np

    c, w = window.center, max(window.width, 1.0)
    out = ((values - (c - 0.5)) / (w - 1.0 if w > 1 else 1.0) + 0.5) * 255.0
    return np.clip(out, 0, 255).astype(np.uint8)


def frame_image(data: bytes, frame: int = 1, window: Window | None = None) -> Image.Image:
    """Frame `frame` (1-based) of a Part-10 instance, windowed, as a Pillow image."""
    import numpy as np
    import pydicom
    from PIL import Image
    from pydicom.pixels import apply_modality_lut

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's notes on odd values never stop a picture
        try:
            ds = pydicom.dcmread(io.BytesIO(data))
        except Exception as exc:
            raise RenderError(f"无法读取：{exc}") from exc
        if "PixelData" not in ds:
            raise RenderError("该对象没有像素数据")
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        if not 1 <= frame <= frames:
            raise RenderError(f"帧号 {frame} 超出范围 1-{frames}")
        try:
            pixels = ds.pixel_array
        except Exception as exc:
            raise RenderError(f"传输语法 {ds.file_meta.get('TransferSyntaxUID', '?')} 无法解码：{exc}") from exc
    if frames > 1:
        pixels = pixels[frame - 1]
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if samples == 1:
        values = apply_modality_lut(pixels, ds).astype(np.float32)
        if window is None:
            center, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
            if center is not None and width is not None and width > 0:
                window = Window(center, width)
        if window is None:
            low, high = float(values.min()), float(values.max())
            window = Window((low + high) / 2.0, max(high - low, 1.0))
        grey = window_linear(values, window)
        if str(ds.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1":
            grey = 255 - grey
        return Image.fromarray(grey, "L")
    if pixels.dtype != np.uint8:
        top = float(pixels.max()) or 1.0
        pixels = (pixels.astype(np.float32) * (255.0 / top)).astype(np.uint8)
    return Image.fromarray(pixels[..., :3], "RGB")


def encode(image: Image.Image, media: str = "image/png", viewport: tuple[int, int] | None = None) -> bytes:
    """PNG or JPEG bytes, scaled down to fit `viewport` (width, height) when given."""
    if viewport is not None:
        image = image.copy()
        image.thumbnail(viewport)
    buf = io.BytesIO()
    if media == "image/jpeg":
        image.convert("RGB" if image.mode == "RGB" else "L").save(buf, "JPEG", quality=90)
    else:
        image.save(buf, "PNG", compress_level=3)
    return buf.getvalue()


class LRU:
    """A small thread-safe least-recently-used cache."""

    def __init__(self, items: int) -> None:
        self.items = items
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        with self._lock:
            hit = self._data.get(key)
            if hit is not None:
                self._data.move_to_end(key)
            return hit

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            while len(self._data) > self.items:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


class RenderCache(LRU):
    """The last rendered frames, so a slider moving back and forth does not decode them again."""

    def __init__(self, items: int = CACHE_ITEMS) -> None:
        super().__init__(items)

    def render(self, load: Callable[[], bytes], key: str, frame: int, window: Window | None, media: str,
               viewport: tuple[int, int] | None) -> bytes:
        """The frame as an image, from the cache or rendered from `load()`'s bytes."""
        cache_key = (key, frame, window, media, viewport)
        hit = self.get(cache_key)
        if hit is None:
            hit = encode(frame_image(load(), frame, window), media, viewport)
            self.put(cache_key, hit)
        return bytes(hit)
