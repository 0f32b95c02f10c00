"""How deeply a JSON value nests, measured without recursion.

Receivers refuse a body nested deeper than `max_json_depth` (envelope code 1005); readers of stored bodies
(journal export, dashboard) treat such a body as text instead of walking or re-serialising it: orjson
serialises at most 254 levels, and Python's own walkers stop at the recursion limit."""

from __future__ import annotations

from typing import Any

import orjson

DEFAULT_DEPTH = 64


def deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` levels in `value` (a scalar is depth 0)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        depth += 1
        if depth > limit:
            return True
        stack.extend((c, depth) for c in children if isinstance(c, dict | list))
    return False


def brackets(raw: bytes) -> int:
    """How many `[` and `{` a JSON text holds, in strings too: at least as many as it has arrays and objects."""
    return raw.count(b"[") + raw.count(b"{")


def too_deep(raw: bytes, value: Any, limit: int, counted: int | None = None) -> bool:
    """`deeper_than` for a parsed body, skipped when the body has too few brackets to nest that deep (the
    common case: a message of 25 records has about 27). `counted`: `brackets(raw)`, when known."""
    if (brackets(raw) if counted is None else counted) <= limit:
        return False
    return deeper_than(value, limit)


def loads_bounded(text: str | bytes | None, limit: int = DEFAULT_DEPTH) -> Any:
    """The parsed JSON value of a stored body, or None when it is not JSON or nests deeper than `limit`."""
    if not text:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    raw = text.encode() if isinstance(text, str) else text
    return None if too_deep(raw, value, limit) else value
