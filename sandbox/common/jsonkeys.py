"""Finding a key an object of a JSON text repeats: every parser keeps the last value silently, so
`"key":"WRONG","key":"<right>"` would pass unseen."""

from __future__ import annotations

from collections import Counter
from typing import Any


class RepeatedKeys:
    """A `json.loads` object_pairs_hook that builds the objects as usual and keeps the first repeat it meets:
    `found` is (key, how many times, the object it is in), or None."""

    def __init__(self) -> None:
        self.found: tuple[str, int, dict[str, Any]] | None = None

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs) and self.found is None:
            key, count = next((k, n) for k, n in Counter(k for k, _ in pairs).items() if n > 1)
            self.found = (key, count, obj)
        return obj
