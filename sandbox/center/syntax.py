"""Transfer syntaxes of stored instances: what the center can send in which syntax, and the conversions.

An instance is kept byte-for-byte as it arrived, in whatever transfer syntax the SCP accepted or a hospital
sent. It can be sent:

- as stored (`transfer-syntax=*`, or the stored UID named);
- in Explicit VR Little Endian (ELE, the PS3.18 default when no syntax is named): big-endian and implicit
  instances are re-encoded, deflated ones inflated, compressed ones decompressed by pydicom's decoders
  (GDCM, pylibjpeg with libjpeg and openjpeg, pydicom's own RLE);
- in Implicit VR Little Endian when it is stored uncompressed.

Anything else cannot be produced (the caller answers 406). Frames (`…/frames/{n}`) are the stored
compressed bitstream, in the media type PS3.18 table 8.7.3-5 gives its syntax, or uncompressed little-endian
pixel data (`application/octet-stream`).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy and pydicom load with the first conversion, not with the center
    from pydicom.dataset import Dataset

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
LITTLE_NATIVE = frozenset({IMPLICIT_LE, EXPLICIT_LE, DEFLATED})
NATIVE = LITTLE_NATIVE | {EXPLICIT_BE}
OCTET = "application/octet-stream"

# Single-frame media types of compressed syntaxes (PS3.18 table 8.7.3-5).
FRAME_MEDIA: dict[str, str] = {
    "1.2.840.10008.1.2.4.50": "image/jpeg",  # JPEG Baseline (Process 1)
    "1.2.840.10008.1.2.4.51": "image/jpeg",  # JPEG Extended (Process 2 & 4), 12-bit
    "1.2.840.10008.1.2.4.57": "image/jpeg",  # JPEG Lossless (Process 14)
    "1.2.840.10008.1.2.4.70": "image/jpeg",  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80": "image/jls",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81": "image/jls",  # JPEG-LS Near-lossless
    "1.2.840.10008.1.2.4.90": "image/jp2",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91": "image/jp2",  # JPEG 2000
    "1.2.840.10008.1.2.4.92": "image/jpx",  # JPEG 2000 Part 2 Lossless
    "1.2.840.10008.1.2.4.93": "image/jpx",  # JPEG 2000 Part 2
    "1.2.840.10008.1.2.4.201": "image/jphc",  # HTJ2K Lossless
    "1.2.840.10008.1.2.4.202": "image/jphc",  # HTJ2K Lossless RPCL
    "1.2.840.10008.1.2.4.203": "image/jphc",  # HTJ2K
    "1.2.840.10008.1.2.5": "image/dicom-rle",  # RLE Lossless
}
# Names some clients still send (dicomweb-client offers both).
FRAME_ALIASES = {"image/x-jls": "image/jls", "image/x-dicom-rle": "image/dicom-rle"}
FRAME_TYPES = frozenset(FRAME_MEDIA.values()) | {OCTET} | frozenset(FRAME_ALIASES)


class NotProducible(Exception):
    """The instance or frame cannot be given in the syntax or media type asked for (HTTP 406)."""


def read(data: bytes, *, pixels: bool = True) -> Dataset:
    """pydicom's dataset of Part-10 bytes (deflated data sets are inflated by pydicom)."""
    import pydicom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(io.BytesIO(data), stop_before_pixels=not pixels)


def decodable(ts: str) -> bool:
    """Whether pixel data in this syntax can be decoded here."""
    if ts in NATIVE:
        return True
    from pydicom.pixels import get_decoder

    try:
        return bool(get_decoder(ts).is_available)
    except (NotImplementedError, ValueError):
        return False


def producible(stored: str, wanted: str) -> bool:
    """Whether an instance stored in `stored` can be sent in `wanted` ('*' = as stored)."""
    if wanted in ("*", stored):
        return True
    if wanted == EXPLICIT_LE:
        return decodable(stored)
    if wanted == IMPLICIT_LE:
        return stored in NATIVE
    return False


def target(wanted: str | None) -> str:
    """The syntax meant by a `transfer-syntax` parameter (ELE when none is named, PS3.18 8.7.3.5.2)."""
    return wanted or EXPLICIT_LE


def convert(data: bytes, stored: str, wanted: str | None) -> tuple[bytes, str]:
    """The instance in the wanted syntax, and that syntax; NotProducible when it cannot be made."""
    want = target(wanted)
    if want in ("*", stored):
        return data, stored
    if not producible(stored, want):
        raise NotProducible(f"传输语法 {stored} 的实例不能转换为 {want}")
    from pydicom.uid import UID

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = read(data)
        try:
            _to_little_endian(ds, stored)
        except Exception as exc:  # a decoder's own failure: corrupt or unusual bitstream
            raise NotProducible(f"传输语法 {stored} 的像素数据无法解码：{str(exc)[:160]}") from exc
        ds.file_meta.TransferSyntaxUID = UID(want)
        buf = io.BytesIO()
        ds.save_as(buf, implicit_vr=want == IMPLICIT_LE, little_endian=True, enforce_file_format=True)
    return buf.getvalue(), want


def _to_little_endian(ds: Dataset, stored: str) -> None:
    """Make a dataset read in `stored` writable as uncompressed little endian, in place."""
    from pydicom.uid import UID

    if UID(stored).is_compressed:
        if "PixelData" in ds:
            ds.decompress(generate_instance_uid=False)
        return
    if stored == EXPLICIT_BE:
        for elem in ds.iterall():
            _ = elem.value  # convert every raw big-endian element now, before the encoding changes
        if "PixelData" in ds:
            arr = ds.pixel_array
            ds.PixelData = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        ds.set_original_encoding(False, True, ds.original_character_set)


@dataclass(frozen=True, slots=True)
class FrameForm:
    """How frames are sent: the part's media type and transfer syntax; `stored` = the stored bitstream."""

    media: str
    ts: str
    stored: bool


def frame_form(stored: str, media: str, wanted: str | None) -> FrameForm | None:
    """The form of frames of an instance stored in `stored` for one Accept choice, or None when this
    choice cannot be met. `media` is the part type asked for ('*' for any), `wanted` its transfer-syntax."""
    compressed = stored in FRAME_MEDIA
    media = FRAME_ALIASES.get(media, media)
    if media in ("*", "*/*"):
        if compressed and wanted in (None, "*", stored):
            return FrameForm(FRAME_MEDIA[stored], stored, True)
        return _native(stored) if wanted in (None, "*", EXPLICIT_LE) else None
    if media == OCTET:
        if wanted == "*" and compressed:
            return FrameForm(OCTET, stored, True)
        if wanted in (None, "*", EXPLICIT_LE):
            return _native(stored)
        if wanted == stored and compressed:
            return FrameForm(OCTET, stored, True)
        return None
    if compressed and FRAME_MEDIA[stored] == media and wanted in (None, "*", stored):
        return FrameForm(media, stored, True)
    return None


def _native(stored: str) -> FrameForm | None:
    return FrameForm(OCTET, EXPLICIT_LE, False) if decodable(stored) else None


def frame_count(ds: Dataset) -> int:
    try:
        return max(int(ds.get("NumberOfFrames", 1) or 1), 1)
    except (TypeError, ValueError):
        return 1


def frames(data: bytes, numbers: list[int], form: FrameForm) -> list[bytes]:
    """The frames numbered (1-based) in the form chosen; NotProducible when they cannot be decoded."""
    import numpy as np
    from pydicom.encaps import get_frame

    ds = read(data)
    if "PixelData" not in ds:
        raise NotProducible("该实例没有像素数据")
    count = frame_count(ds)
    stored = str(ds.file_meta.get("TransferSyntaxUID", ""))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if form.stored:
            return [get_frame(ds.PixelData, n - 1, number_of_frames=count) for n in numbers]
        bits = int(ds.get("BitsAllocated", 16) or 16)
        if stored in LITTLE_NATIVE and bits % 8 == 0:
            # Native little-endian pixel data (deflated is inflated by pydicom): frames are plain slices.
            size = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1) or 1) * bits // 8
            raw = bytes(ds.PixelData)
            return [raw[(n - 1) * size:n * size] for n in numbers]
        try:
            arr = ds.pixel_array
        except Exception as exc:
            raise NotProducible(f"传输语法 {stored} 的像素数据无法解码：{str(exc)[:160]}") from exc
    if count == 1:
        arr = arr[np.newaxis, ...]
    return [np.ascontiguousarray(arr[n - 1]).astype(arr.dtype.newbyteorder("<")).tobytes() for n in numbers]
