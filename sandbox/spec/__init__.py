"""The interface document as data: field tables, dictionaries, formats, index profiles, ERRATA variants,
messages and response codes. Everything else derives from this package."""

from sandbox.spec.fields import (
    DATA_MAX_CHARS,
    ENVELOPE_FIELDS,
    HOP1,
    HOP1_FIELDS,
    HOP2,
    HOP2_FIELDS,
    OUTPUT_FIELDS,
    TRANSACTIONS,
    FieldSpec,
    Kind,
    Transaction,
)

__all__ = [
    "DATA_MAX_CHARS",
    "ENVELOPE_FIELDS",
    "HOP1",
    "HOP1_FIELDS",
    "HOP2",
    "HOP2_FIELDS",
    "OUTPUT_FIELDS",
    "TRANSACTIONS",
    "FieldSpec",
    "Kind",
    "Transaction",
]
