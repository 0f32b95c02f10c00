"""Reading what a center's download link (`imgDldLink`) returns: DICOMweb WADO-RS multipart, a zip, or one
instance; and what its pages show. Parsed with the standard library's MIME parser, zipfile and pydicom, not with
the sandbox center's own code, so the kit does not grade a center by the code that built it."""

from __future__ import annotations

import email.parser
import email.policy
import html
import io
import re
import zipfile

import pydicom
from pydicom.errors import InvalidDicomError

DICOM_ACCEPT = 'multipart/related; type="application/dicom", application/zip;q=0.5, application/dicom;q=0.4'


def sop_uids(content_type: str, body: bytes) -> tuple[set[str], list[str]]:
    """The SOP Instance UIDs in a download answer, and the parts that were not DICOM (Chinese notes)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind.startswith("multipart/"):
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", errors="replace")
        msg = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(head + body)
        blobs = []
        for part in msg.walk():
            if part.is_multipart():
                continue
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                blobs.append(payload)
    elif kind in ("application/zip", "application/x-zip-compressed") or body[:4] == b"PK\x03\x04":
        blobs = []
        with zipfile.ZipFile(io.BytesIO(body)) as zf:
            for info in zf.infolist():
                if not info.is_dir() and not info.filename.upper().endswith("DICOMDIR"):
                    blobs.append(zf.read(info))
    else:
        blobs = [body]
    uids: set[str] = set()
    bad: list[str] = []
    for n, blob in enumerate(blobs, 1):
        try:
            ds = pydicom.dcmread(io.BytesIO(blob), stop_before_pixels=True, force=False)
            uids.add(str(ds.SOPInstanceUID))
        except (InvalidDicomError, AttributeError, EOFError, ValueError, OSError) as e:
            bad.append(f"第 {n} 部分不是可读的 DICOM（{type(e).__name__}）")
    return uids, bad


_TAGS = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.S | re.I)


def page_text(markup: str) -> str:
    """The visible text of an HTML page, for looking up the record's values in it."""
    return html.unescape(_TAGS.sub(" ", markup))
