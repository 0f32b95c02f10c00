"""Domain errors of the province, each a fixed envelope code (sandbox.spec.codes) with a Chinese message."""

from __future__ import annotations

from sandbox.common.envelope import EnvelopeError
from sandbox.spec.messages import QUERY


class BadQuery(EnvelopeError):
    """A query parameter the 调阅 endpoints cannot use (code 1060, HTTP 400)."""

    def __init__(self, problem: str, **kw: object) -> None:
        super().__init__("bad_query", detail=QUERY[problem].format(**kw))


class IndexNotFound(EnvelopeError):
    """No index stored under this hiImgIndx (code 1061, HTTP 404)."""

    def __init__(self, index: str) -> None:
        super().__init__("index_not_found", index=index)
