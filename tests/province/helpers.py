"""Valid hop-2 records and messages for the province's tests (built in sandbox.province.samples)."""

from sandbox.province.samples import DOCTOR, certno, message, record

__all__ = ["DOCTOR", "certno", "message", "record"]
