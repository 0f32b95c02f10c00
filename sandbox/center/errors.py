"""Domain errors of the center: each carries a machine-readable code and a Chinese message.

File problems (`FileProblem` and its subclasses) never leave the center as HTTP errors: they become a
record's succFlag and message. Lookup errors are EnvelopeErrors, mapped to the response envelope by the
shared error middleware.
"""

from __future__ import annotations

from typing import Any

from sandbox.common.envelope import EnvelopeError
from sandbox.spec.messages import CENTER


class FileProblem(Exception):
    """A file of a record could not be kept. `code` names a CENTER message; `reason` groups it for the summary."""

    reason = "file"

    def __init__(self, code: str, **kw: Any) -> None:
        self.code = code
        self.kw = kw
        super().__init__(CENTER[code].format(**kw))

    @property
    def message(self) -> str:
        return str(self)


class FetchError(FileProblem):
    """A URL that was refused or could not be fetched (host not allowed, timeout, HTTP status, size)."""

    reason = "fetch"

    def __init__(self, code: str, **kw: Any) -> None:
        super().__init__(code, **kw)
        if code in ("host_not_allowed", "forbidden_special", "forbidden_own", "fetch_resolve"):
            self.reason = "host_not_allowed"
        elif code in ("fetch_too_large", "zip_too_large", "zip_too_many", "zip_ratio"):
            self.reason = "too_large"
        elif code in ("quota_message", "quota_institution"):
            self.reason = "quota"


class TooLarge(FileProblem):
    """An archive beyond its bounds (bytes after unpacking, members, compression ratio)."""

    reason = "too_large"


class DicomProblem(FileProblem):
    """Bytes that are not a usable DICOM instance."""

    reason = "not_dicom"


class PdfProblem(FileProblem):
    """Bytes that are not a PDF."""

    reason = "not_pdf"


class NotPushed(FileProblem):
    """`dicom:<StudyInstanceUID>` names a study nobody pushed to the Storage SCP."""

    reason = "not_pushed"


class ExamNotFound(EnvelopeError):
    """No exam under this hiImgIndx or examId (code 1070, HTTP 404)."""

    def __init__(self, key: str) -> None:
        super().__init__("exam_not_found", key=key)


class DicomNotFound(EnvelopeError):
    """No stored study, series or instance with these UIDs (code 1071, HTTP 404)."""

    def __init__(self, detail: str) -> None:
        super().__init__("dicom_not_found", detail=detail)


class NotAcceptable(EnvelopeError):
    """The Accept header asks for a representation the center cannot give (code 1072, HTTP 406)."""

    def __init__(self, detail: str) -> None:
        super().__init__("not_acceptable", detail=detail)


class BadDicomRequest(EnvelopeError):
    """A DICOMweb or WADO-URI parameter the center cannot use (code 1073, HTTP 400)."""

    def __init__(self, detail: str) -> None:
        super().__init__("bad_dicom_request", detail=detail)


class UnsupportedMedia(EnvelopeError):
    """A STOW-RS body that is not multipart/related of application/dicom (code 1074, HTTP 415)."""

    def __init__(self, detail: str) -> None:
        super().__init__("unsupported_media", detail=detail)


class PayloadTooLarge(EnvelopeError):
    """A STOW-RS body over fetch_max_bytes (code 1003, HTTP 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__("body_too_large", limit=limit)
