"""schemathesis hooks (loaded through SCHEMATHESIS_HOOKS by tests/test_schemathesis.py): how to send a body
documented as multipart/related (STOW-RS), which schemathesis has no serializer for. The generated value
becomes the one part of a multipart/related; type="application/dicom" body."""

from __future__ import annotations

from typing import Any

import schemathesis

BOUNDARY = "schemathesis-stow"


@schemathesis.serializer("multipart/related")
def stow_body(ctx: Any, value: Any) -> dict[str, Any]:
    part = value if isinstance(value, bytes) else str(value).encode()
    body = (f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode() + part
            + f"\r\n--{BOUNDARY}--\r\n".encode())
    return {"data": body,
            "headers": {"Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'}}
