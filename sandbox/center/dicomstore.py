"""DICOM at the center: split what a hospital sent into instances, parse each (dicomhead, or pydicom for
what it declines), keep it under an id the center makes, and compare it with the record it came with.

Forms of `imgInfoDcm` content (ERRATA: a URL the center fetches, or inline base64 in lenient mode):

- one Part-10 instance (`application/dicom`, or any type whose bytes carry `DICM` at offset 128);
- a study as `multipart/related; type="application/dicom"` (what a DICOMweb WADO-RS server answers);
- a zip of Part-10 files (`application/zip`, or bytes starting `PK\\x03\\x04`).

Nothing from the input is ever used as a file name: an object is the entry `<id>.dcm` / `<id>.pdf` of its
message's pack `packs/<pack id[-2:]>/<pack id>.zip`, or (large, or pushed by C-STORE) the file
`dicom/<id[-2:]>/<id>.dcm`, every id made by the center; zip member names and multipart headers only label
failures in messages.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import mmap
import os
import re
import struct
import time
import warnings
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pydicom

from sandbox.center import dicomhead
from sandbox.center.errors import DicomProblem, FileProblem, TooLarge
from sandbox.spec.dicts import IMG_EXAM_TYPE
from sandbox.spec.formats import DICOM_UID_RE
from sandbox.spec.messages import CENTER

MAX_PARTS = 20000  # instances in one multipart answer or zip
# Archive bounds when the caller gives none (the center passes its settings: archive_max_*).
MAX_ARCHIVE_MEMBERS = 5000
MAX_ARCHIVE_RATIO = 200.0
RATIO_FLOOR = 1024 * 1024  # members unpacking to less than this are never a bomb, whatever their ratio
DICOM_EXTENSIONS = ("", ".dcm", ".dicom", ".dic", ".ima")

# imgExamType (字典【影像检查类型】) → DICOM Modality values (PS3.3 C.7.3.1.1.1) of that kind of exam.
MODALITIES: dict[str, frozenset[str]] = {
    "1": frozenset({"CR", "DX", "RF", "MG", "XA", "IO", "PX", "RG", "DF", "DR"}),
    "2": frozenset({"CT"}),
    "3": frozenset({"MR"}),
    "4": frozenset({"US", "IVUS"}),
    "5": frozenset({"NM", "PT", "ST"}),
}
# Objects that accompany any exam (reports, key images, presentation states, documents): never compared.
NON_IMAGE_MODALITIES = frozenset({"SR", "KO", "PR", "DOC", "OT", "REG", "SEG", "RWV", "AU", "ECG", "PLAN"})

_SEQ_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
_LONG_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN", b"SQ", b"UT", b"UC", b"UR"}

# (tag, attribute) pairs read from every instance.
_TAGS = {
    "sop_class": 0x00080016, "sop_uid": 0x00080018, "study_date": 0x00080020, "modality": 0x00080060,
    "study_description": 0x00081030, "series_description": 0x0008103E, "patient_name": 0x00100010,
    "patient_id": 0x00100020, "study_uid": 0x0020000D, "series_uid": 0x0020000E,
    "series_number": 0x00200011, "instance_number": 0x00200013, "frames": 0x00280008, "rows": 0x00280010,
    "cols": 0x00280011, "accession": 0x00080050,
}
_REQUIRED = {"sop_class": "SOPClassUID", "sop_uid": "SOPInstanceUID", "study_uid": "StudyInstanceUID",
             "series_uid": "SeriesInstanceUID"}


@dataclass(slots=True)
class InstanceInfo:
    """What the center keeps about one stored instance (a row of the instances table)."""

    sop_uid: str
    sop_class: str
    study_uid: str
    series_uid: str
    transfer_syntax: str
    modality: str = ""
    patient_name: str = ""
    patient_id: str = ""
    study_date: str = ""
    study_description: str = ""
    series_description: str = ""
    accession: str = ""
    series_number: int | None = None
    instance_number: int | None = None
    rows: int | None = None
    cols: int | None = None
    frames: int = 1
    has_pixels: bool = False
    size: int = 0
    instance_id: str = ""  # the center's id of the stored object
    pack_id: str | None = None  # the message pack holding it; None: a file of its own
    offset: int | None = None  # where its bytes start in the pack
    digest: str = ""  # sha256 of the Part-10 bytes: tells a resent instance from a different one
    source: str = ""  # url | inline | c-store:<calling AE title>

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Part:
    """One candidate instance out of a container, with a label for messages."""

    label: str
    data: bytes


@dataclass(slots=True)
class Failure:
    """An instance (or a whole file) that was not stored, and why."""

    source: str
    code: str
    message: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"source": self.source, "code": self.code, "reason": self.reason, "message": self.message}

    @classmethod
    def of(cls, source: str, exc: FileProblem) -> Failure:
        return cls(source, exc.code, exc.message, exc.reason)


def _head(data: bytes | memoryview | mmap.mmap) -> str:
    """What the bytes look like, in words: an answer never echoes the bytes it was sent or fetched."""
    head = bytes(data[:64]).lstrip()
    for magic, kind in _KINDS:
        if head.startswith(magic):
            return kind
    if not head:
        return "内容为空"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "内容像文本"
    return "内容为其他二进制数据"


_KINDS = ((b"<", "内容像 HTML/XML 页面"), (b"{", "内容像 JSON"), (b"[", "内容像 JSON"), (b"%PDF-", "内容是 PDF"),
          (b"PK\x03\x04", "内容是 zip"), (b"\x89PNG", "内容是 PNG 图片"), (b"\xff\xd8", "内容是 JPEG 图片"))


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    from pydicom.multival import MultiValue  # a value pydicom read: pydicom is loaded

    if isinstance(value, (list, tuple, MultiValue)):
        value = "\\".join(str(v) for v in value)
    return str(value).strip()


def is_part10(data: bytes | memoryview | mmap.mmap) -> bool:
    return len(data) >= 132 and bytes(data[128:132]) == b"DICM"


def inspect(data: bytes | mmap.mmap) -> InstanceInfo:
    """Parse one Part-10 instance and check what the center needs; DicomProblem otherwise.

    The header is read by `dicomhead` when it can (Explicit/Implicit VR Little Endian) and by pydicom
    otherwise; both give the same InstanceInfo."""
    if not is_part10(data):
        raise DicomProblem("not_dicom", head=_head(data))
    try:
        head = dicomhead.read(data)
    except dicomhead.Declined:
        return inspect_with_pydicom(data)
    except dicomhead.Truncated as exc:
        raise DicomProblem("dicom_truncated", expected=exc.expected, got=exc.got) from exc
    t = head.text
    info = InstanceInfo(
        sop_uid=t(0x00080018), sop_class=t(0x00080016), study_uid=t(0x0020000D), series_uid=t(0x0020000E),
        transfer_syntax=head.transfer_syntax, modality=t(0x00080060).upper(),
        patient_name=head.person_name(0x00100010), patient_id=t(0x00100020), study_date=t(0x00080020),
        study_description=t(0x00081030), series_description=t(0x0008103E), accession=t(0x00080050),
        series_number=head.number(0x00200011), instance_number=head.number(0x00200013),
        rows=head.number(0x00280010), cols=head.number(0x00280011), frames=head.number(0x00280008) or 1,
        size=len(data),
    )
    _check_uids(info)
    if head.pixel_offset is not None:
        info.has_pixels = _check_pixels(data, head.pixel_offset, head.transfer_syntax == dicomhead.IMPLICIT_LE, True)
    return info


def _check_uids(info: InstanceInfo) -> None:
    missing = [label for name, label in _REQUIRED.items() if not getattr(info, name)]
    if missing:
        raise DicomProblem("dicom_missing_tags", tags="、".join(missing))
    for name, label in _REQUIRED.items():
        uid = getattr(info, name)
        if not DICOM_UID_RE.match(uid):
            raise DicomProblem("dicom_bad_uid", tag=label, value=uid[:80])


def inspect_with_pydicom(data: bytes | mmap.mmap) -> InstanceInfo:
    """`inspect` by pydicom.dcmread: any transfer syntax pydicom reads."""
    import pydicom
    from pydicom.errors import BytesLengthException, InvalidDicomError

    if not is_part10(data):
        raise DicomProblem("not_dicom", head=_head(data))
    fp: Any
    if isinstance(data, mmap.mmap):
        data.seek(0)
        fp = data  # a large spilled file: pydicom reads the header straight from the mapping
    else:
        fp = io.BytesIO(data)
    with warnings.catch_warnings():
        # A malformed value is reported by what it breaks below, not by pydicom's warning text.
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(fp, stop_before_pixels=True)
            values = {}
            for name, tag in _TAGS.items():
                elem = ds.get(tag)
                values[name] = elem.value if elem is not None else None
        except BytesLengthException as exc:
            raise _wrong_length(ds) from exc
        except (InvalidDicomError, ValueError, KeyError, EOFError, OSError, TypeError,
                AttributeError, NotImplementedError, LookupError) as exc:
            raise DicomProblem("dicom_unreadable", detail=str(exc)[:200] or exc.__class__.__name__) from exc
        pixel_at = fp.tell()
        _check_values(ds)
    implicit, little = ds.original_encoding
    name = values["patient_name"]
    info = InstanceInfo(
        sop_uid=_str(values["sop_uid"]),
        sop_class=_str(values["sop_class"]),
        study_uid=_str(values["study_uid"]),
        series_uid=_str(values["series_uid"]),
        transfer_syntax=str(ds.file_meta.get("TransferSyntaxUID", "")),
        modality=_str(values["modality"]).upper(),
        patient_name=str(name).strip() if name is not None else "",
        patient_id=_str(values["patient_id"]),
        study_date=_str(values["study_date"]),
        study_description=_str(values["study_description"]),
        series_description=_str(values["series_description"]),
        accession=_str(values["accession"]),
        series_number=_int(values["series_number"]),
        instance_number=_int(values["instance_number"]),
        rows=_int(values["rows"]),
        cols=_int(values["cols"]),
        frames=_int(values["frames"]) or 1,
        size=len(data),
    )
    _check_uids(info)
    if info.transfer_syntax in dicomhead.DEFLATED:
        # pydicom read the inflated stream: `pixel_at` is an offset in it, not in `data`.
        info.has_pixels = _check_deflated_pixels(data)
    else:
        info.has_pixels = _check_pixels(data, pixel_at, bool(implicit), little is not False)
    return info


_SIZES = {"AT": 4, "FD": 8, "FL": 4, "SL": 4, "SS": 2, "SV": 8, "UL": 4, "US": 2, "UV": 8}


def _wrong_length(ds: pydicom.Dataset) -> DicomProblem:
    """The problem of a binary value whose length is not a whole number of values, naming the element."""
    for tag in ds.keys():
        raw = ds.get_item(tag)
        vr = str(getattr(raw, "VR", "") or "")
        size = _SIZES.get(vr)
        if size and raw.value is not None and len(raw.value) % size:
            from pydicom.datadict import keyword_for_tag

            keyword = keyword_for_tag(tag) or "私有元素"
            return DicomProblem("dicom_inconsistent", tag=f"({tag.group:04X},{tag.element:04X})", keyword=keyword,
                                vr=vr, value=f"{len(raw.value)} 字节")
    return DicomProblem("dicom_unreadable", detail="二进制数值的长度不是单个值长度的整数倍")


def _check_values(ds: pydicom.Dataset) -> None:
    """Every element's value as pydicom decodes it (what metadata, rendering and conversion use); DicomProblem
    naming the first element whose bytes do not decode as its VR (pydicom's badVR.dcm: IS "1A")."""
    from pydicom.errors import BytesLengthException

    for elem in ds.iterall():
        if elem.VR == "SQ":
            continue
        try:
            elem.to_json_dict(bulk_data_element_handler=lambda e: "", bulk_data_threshold=1024)
        except (BytesLengthException, ValueError, TypeError, OverflowError, LookupError, AttributeError) as exc:
            raw = elem.value if isinstance(elem.value, (str, bytes)) else str(elem.value)
            raise DicomProblem("dicom_inconsistent", tag=f"({elem.tag.group:04X},{elem.tag.element:04X})",
                               keyword=elem.keyword or "私有元素", vr=elem.VR, value=str(raw)[:40]) from exc


def _check_deflated_pixels(data: bytes | mmap.mmap) -> bool:
    """Whether a Deflated Explicit VR Little Endian instance has whole Pixel Data (read from the inflated data)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(bytes(data)))
        if "PixelData" not in ds:
            return False
        pixels = ds.PixelData
    except (InvalidDicomError, ValueError, EOFError, OSError, zlib.error) as exc:
        raise DicomProblem("dicom_unreadable", detail=str(exc)[:200] or exc.__class__.__name__) from exc
    bits = int(ds.get("BitsAllocated", 8) or 8)
    frames = _int(ds.get("NumberOfFrames")) or 1
    expected = int(ds.get("Rows", 0)) * int(ds.get("Columns", 0)) * int(ds.get("SamplesPerPixel", 1) or 1) * frames
    expected = (expected * bits + 7) // 8
    if len(pixels) < expected:
        raise DicomProblem("dicom_truncated", expected=expected, got=len(pixels))
    return True


def _check_pixels(data: bytes | mmap.mmap, pos: int, implicit: bool, little: bool) -> bool:
    """Whether Pixel Data starts at `pos`; raises DicomProblem when its value is cut short."""
    header = data[pos:pos + 12]
    if len(header) < 8:
        return False
    order: Literal["little", "big"] = "little" if little else "big"
    group, elem = int.from_bytes(header[0:2], order), int.from_bytes(header[2:4], order)
    if (group, elem) != (0x7FE0, 0x0010):
        return False
    if implicit:
        length, start = int.from_bytes(header[4:8], order), pos + 8
    elif header[4:6] in _LONG_VRS:
        if len(header) < 12:
            raise DicomProblem("dicom_truncated", expected="?", got=len(data) - pos)
        length, start = int.from_bytes(header[8:12], order), pos + 12
    else:
        length, start = int.from_bytes(header[6:8], order), pos + 8
    if length == 0xFFFFFFFF:  # encapsulated: fragments end with a sequence delimiter
        if data.rfind(_SEQ_DELIMITER, start) < 0:
            raise DicomProblem("dicom_truncated", expected="封装像素数据的结束标记", got=len(data) - start)
        return True
    if start + length > len(data):
        raise DicomProblem("dicom_truncated", expected=length, got=len(data) - start)
    return True


# ---- containers -------------------------------------------------------------------------------------


def media_type(content_type: str) -> tuple[str, dict[str, str]]:
    """('multipart/related', {'boundary': …, 'type': …}) from a Content-Type value."""
    kind, *params = content_type.split(";")
    out: dict[str, str] = {}
    for p in params:
        key, sep, value = p.partition("=")
        if sep:
            out[key.strip().lower()] = value.strip().strip('"')
    return kind.strip().lower(), out


def split_parts(content_type: str, data: bytes | mmap.mmap, *, max_bytes: int, zip_path: Path | None = None,
                max_members: int = MAX_ARCHIVE_MEMBERS, max_ratio: float = MAX_ARCHIVE_RATIO) -> list[Part]:
    """The candidate instances in a body: multipart parts, zip members, or the body itself."""
    kind, params = media_type(content_type)
    if kind.startswith("multipart/"):
        boundary = params.get("boundary")
        if not boundary:
            raise FileProblem("multipart_bad", detail="Content-Type 缺少 boundary")
        return split_multipart(data, boundary)
    if kind in ("application/zip", "application/x-zip-compressed") or data[:4] == b"PK\x03\x04":
        return split_zip(zip_path if zip_path is not None else io.BytesIO(data), max_bytes, max_members, max_ratio)
    return [Part("", data if isinstance(data, bytes) else bytes(data))]


def split_multipart(data: bytes | mmap.mmap, boundary: str) -> list[Part]:
    """Parts of a multipart body (RFC 2046), in order."""
    delim = b"--" + boundary.encode("latin-1")
    start = data.find(delim)
    if start < 0:
        raise FileProblem("multipart_bad", detail="找不到 boundary 分隔行")
    parts: list[Part] = []
    pos = start + len(delim)
    while True:
        if data[pos:pos + 2] == b"--":
            return parts
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            raise FileProblem("multipart_bad", detail="分隔行后缺少 CRLF")
        head_start = eol + 2
        if data[head_start:head_start + 2] == b"\r\n":
            body_start = head_start + 2
        else:
            head_end = data.find(b"\r\n\r\n", head_start)
            if head_end < 0:
                raise FileProblem("multipart_bad", detail=f"第 {len(parts) + 1} 部分的头不完整")
            body_start = head_end + 4
        end = data.find(b"\r\n" + delim, body_start)
        if end < 0:
            raise FileProblem("multipart_bad", detail=f"第 {len(parts) + 1} 部分没有结束分隔行")
        parts.append(Part(CENTER["part_label"].format(n=len(parts) + 1), data[body_start:end]))
        if len(parts) > MAX_PARTS:
            raise FileProblem("multipart_bad", detail=f"超过 {MAX_PARTS} 个部分")
        pos = end + 2 + len(delim)


def split_zip(source: Path | io.BytesIO, max_bytes: int, max_members: int = MAX_ARCHIVE_MEMBERS,
              max_ratio: float = MAX_ARCHIVE_RATIO) -> list[Part]:
    """Members of a zip that may be DICOM. The archive is refused before anything is unpacked when it has
    more than `max_members` members, declares more than `max_bytes` unpacked, or a member unpacks to more
    than `max_ratio` times its packed size (a zip bomb); zipfile never unpacks more than a member declares."""
    parts: list[Part] = []
    try:
        with zipfile.ZipFile(source) as zf:
            members = zf.infolist()
            if len(members) > max_members:
                raise TooLarge("zip_too_many", count=len(members), limit=max_members)
            for info in members:
                if info.file_size > RATIO_FLOOR and info.file_size > max_ratio * max(info.compress_size, 1):
                    raise TooLarge("zip_ratio", name=info.filename[:120], limit=max_ratio)
            if sum(m.file_size for m in members) > max_bytes:
                raise TooLarge("zip_too_large", limit=max_bytes)
            for info in members:
                name = info.filename
                base = name.rsplit("/", 1)[-1]
                if info.is_dir() or name.startswith("__MACOSX/") or base.upper() == "DICOMDIR" or not base:
                    continue
                ext = os.path.splitext(base)[1].lower()
                with zf.open(info) as fh:
                    blob = fh.read(info.file_size + 1)
                if ext not in DICOM_EXTENSIONS and not is_part10(blob):
                    continue  # a readme or a viewer shipped with the images
                parts.append(Part(name[:120], blob))
                if len(parts) > MAX_PARTS:
                    raise FileProblem("zip_bad", detail=f"超过 {MAX_PARTS} 个文件")
    except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError, ValueError) as exc:
        raise FileProblem("zip_bad", detail=str(exc)[:200] or exc.__class__.__name__) from exc
    return parts


# ---- files on disk ----------------------------------------------------------------------------------


_ID_RE = re.compile(r"[0-9a-f]{32}")


def new_id() -> str:
    """A file or exam id made by the center: 32 hex digits that are a keyed BLAKE2b of a counter under a key
    drawn from the OS at start. Unguessable — one report link (/report/{examId}) says nothing about any
    other — without a system call per id (os.urandom costs about 15 µs here, thousands of ids a second);
    not a scenario's random source (ids must differ across runs)."""
    return hashlib.blake2b(next(_ID_COUNTER).to_bytes(16, "big"), key=_ID_KEY, digest_size=16).hexdigest()


_ID_KEY = os.urandom(32)
_ID_COUNTER = itertools.count()


class FileStore:
    """Files named `<root>/<id[-2:]>/<id><suffix>`; ids are the center's, never input. Each of the 256
    folders is made when its first file is written, not at start (making 768 of them took 60–700 ms)."""

    def __init__(self, root: Path, suffix: str) -> None:
        self.root = root
        self.suffix = suffix
        self._root = str(root)

    def open(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, file_id: str) -> str:
        if not _ID_RE.fullmatch(file_id):
            raise ValueError("file ids are 32 lower-case hex digits")
        return f"{self._root}/{file_id[-2:]}/{file_id}{self.suffix}"

    def write(self, file_id: str, data: bytes | memoryview) -> str:
        path = self.path(file_id)
        try:
            fh = open(path, "wb")
        except FileNotFoundError:  # the first file of its folder
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fh = open(path, "wb")
        with fh:
            fh.write(data)
        return path

    def adopt(self, file_id: str, temp: Path) -> str:
        """Move a fetched temporary file into place."""
        path = self.path(file_id)
        try:
            os.replace(temp, path)
        except FileNotFoundError:  # the first file of its folder (or `temp` is gone: raised again below)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.replace(temp, path)
        return path

    def remove(self, file_ids: Iterable[str]) -> None:
        for file_id in file_ids:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path(file_id))


# The ZIP records a stored pack is made of (PKWARE APPNOTE 4.3.7, 4.3.12, 4.3.16), as zipfile packs them.
_LOCAL_HEADER, _LOCAL_MAGIC = struct.Struct("<4s2B4HL2L2H"), b"PK\x03\x04"
_CENTRAL_HEADER, _CENTRAL_MAGIC = struct.Struct("<4s4B4HL2L5H2L"), b"PK\x01\x02"
_END_RECORD, _END_MAGIC = struct.Struct("<4s4H2LH"), b"PK\x05\x06"
_ZIP_VERSION = 20  # zipfile's version for a stored entry (made by, needed to extract)
_ZIP_SYSTEM = zipfile.ZipInfo().create_system  # 3 (Unix) here, 0 on Windows
_ZIP_MODE = 0o600 << 16  # the external attributes writestr gives a file entry that has none (rw-------)


def stored_zip(entries: list[tuple[str, bytes]], stamp: tuple[int, ...]) -> tuple[bytes, list[int]] | None:
    """The bytes `zipfile` writes for `entries` stored (not deflated), each a `ZipInfo(name, date_time=stamp)`
    given to `writestr`, and the offset of each entry's data — made in one pass, at a tenth of zipfile's
    cost (its per-entry objects, header rewrites and seeks were most of a pack writer's CPU). None when
    zipfile would write something else: a ZIP64 record (sizes or counts past its limits) or a UTF-8 name."""
    if len(entries) > zipfile.ZIP_FILECOUNT_LIMIT:
        return None
    dostime = stamp[3] << 11 | stamp[4] << 5 | (stamp[5] // 2)
    dosdate = (stamp[0] - 1980) << 9 | stamp[1] << 5 | stamp[2]
    parts: list[bytes] = []
    central: list[bytes] = []
    offsets: list[int] = []
    at = 0
    for name, data in entries:
        size = len(data)
        if not name.isascii() or size * 1.05 > zipfile.ZIP64_LIMIT or at > zipfile.ZIP64_LIMIT:
            return None
        raw = name.encode("ascii")
        crc = zlib.crc32(data)
        parts.append(_LOCAL_HEADER.pack(_LOCAL_MAGIC, _ZIP_VERSION, 0, 0, zipfile.ZIP_STORED,
                                        dostime, dosdate, crc, size, size, len(raw), 0) + raw)
        parts.append(data)
        central.append(_CENTRAL_HEADER.pack(_CENTRAL_MAGIC, _ZIP_VERSION, _ZIP_SYSTEM, _ZIP_VERSION, 0,
                                            0, zipfile.ZIP_STORED, dostime, dosdate, crc, size, size, len(raw),
                                            0, 0, 0, 0, _ZIP_MODE, at) + raw)
        offsets.append(at + _LOCAL_HEADER.size + len(raw))
        at += _LOCAL_HEADER.size + len(raw) + size
    directory = b"".join(central)
    if at > zipfile.ZIP64_LIMIT or len(directory) > zipfile.ZIP64_LIMIT:
        return None
    parts += (directory, _END_RECORD.pack(_END_MAGIC, 0, 0, len(entries), len(entries),
                                          len(directory), at, 0))
    return b"".join(parts), offsets


class PackStore:
    """The small files of one hop-1 message together in one uncompressed ZIP, `<root>/<id[-2:]>/<id>.zip`,
    each entry named `<object id>.dcm` or `.pdf`.

    Creating a file is the costliest thing a busy disk does (measured here: from 60 µs to over 1 ms of
    kernel time each); one pack per message instead of two files per exam keeps ingest off that path. The
    entries are stored, not deflated, so each object is read straight at its offset — and `unzip` shows a
    person what a message brought."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files = FileStore(root, ".zip")

    def open(self) -> None:
        self.files.open()

    def path(self, pack_id: str) -> str:
        return self.files.path(pack_id)

    def write(self, pack_id: str, entries: list[tuple[str, bytes]]) -> list[int]:
        """Write a pack; the offset of each entry's bytes. The ZIP is made in memory and written at once:
        zipfile writing to the file makes several small writes per entry, and a writer thread waits for the
        GIL again after each one while the event loop is busy."""
        stamp = time.localtime()[:6]
        made = stored_zip(entries, stamp)
        if made is not None:
            data, offsets = made
            self.files.write(pack_id, data)
            return offsets
        offsets = []
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
            for name, data_ in entries:
                info = zipfile.ZipInfo(name, date_time=stamp)
                zf.writestr(info, data_)
                # The local header: 30 fixed bytes, the name, the extra field (none for ZIP_STORED < 4 GiB).
                offsets.append(info.header_offset + 30 + len(info.filename.encode()) + len(info.extra))
        self.files.write(pack_id, buf.getbuffer())
        return offsets

    def read(self, pack_id: str, offset: int, size: int) -> bytes:
        with open(self.path(pack_id), "rb") as fh:
            fh.seek(offset)
            return fh.read(size)

    def remove(self, pack_ids: Iterable[str]) -> None:
        self.files.remove(pack_ids)


# ---- the record against its images --------------------------------------------------------------------


def _name_forms(name: str) -> set[str]:
    """A DICOM Person Name's component groups (alphabetic=ideographic=phonetic) as comparable strings."""
    return {g.replace("^", "").replace(" ", "").casefold() for g in name.split("=") if g.strip("^ ")}


def compare(values: dict[str, Any], infos: list[InstanceInfo]) -> list[str]:
    """Where the images disagree with their record: patient name and ID, study date, modality."""
    problems: Counter[tuple[str, str, str]] = Counter()
    record_name = str(values.get("psnName", "")).replace(" ", "").casefold()
    ids = {str(values[k]).strip().upper() for k in ("patnId", "certno", "iptNo") if values.get(k)}
    exam_date = str(values.get("examDate", "")).replace("-", "")
    exam_types = [t for t in str(values.get("imgExamType", "")).split(" ") if t]
    allowed: set[str] = set()
    checkable = bool(exam_types) and all(t in MODALITIES for t in exam_types)
    for t in exam_types:
        allowed |= MODALITIES.get(t, frozenset())
    for info in infos:
        if info.patient_name and record_name and record_name not in _name_forms(info.patient_name):
            problems[("disagree_name", info.patient_name, str(values.get("psnName")))] += 1
        if info.patient_id and ids and info.patient_id.upper() not in ids:
            problems[("disagree_id", info.patient_id, "、".join(sorted(ids)))] += 1
        if info.study_date and exam_date and info.study_date != exam_date:
            problems[("disagree_date", info.study_date, str(values.get("examDate")))] += 1
        if checkable and info.modality and info.modality not in NON_IMAGE_MODALITIES and info.modality not in allowed:
            title = "、".join(IMG_EXAM_TYPE[t] for t in exam_types)
            problems[("disagree_modality", info.modality, f"{values.get('imgExamType')}|{title}")] += 1
    out = []
    for (code, dicom, record), count in problems.items():
        title = ""
        if code == "disagree_modality":
            record, title = record.split("|", 1)
        text = CENTER[code].format(dicom=dicom, record=record, title=title)
        out.append(text + CENTER["disagree_count"].format(count=count))
    return out


def main_study(infos: list[InstanceInfo]) -> tuple[str | None, int]:
    """The study with the most instances (the one imgDldLink names) and how many studies there are."""
    counts = Counter(i.study_uid for i in infos)
    if not counts:
        return None, 0
    return counts.most_common(1)[0][0], len(counts)
