"""The repeated-key check counts the keys of a plain batch from its brackets without walking it: the count
must be exactly what the walk gives, for any JSON, and a repeat must still be found."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.common.envelope import EnvelopeError
from sandbox.common.http import _count_keys, check_duplicate_keys
from sandbox.common.jsondepth import brackets

_scalars = st.one_of(st.none(), st.integers(-(2**60), 2**60), st.text(alphabet="ab{}[]\":, 甲", max_size=6))
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=4), inner, max_size=3)),
                       max_leaves=6)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["msgid", "data", "key"]), _values, max_size=3),
       st.lists(st.dictionaries(st.text(alphabet="ab[{", max_size=4), _values, max_size=4), max_size=4))
def test_the_count_from_brackets_is_the_walked_count(envelope: dict[str, Any], records: list[Any]) -> None:
    for message in (envelope, {**envelope, "data": records}):
        raw = orjson.dumps(message)
        assert _count_keys(message, brackets(raw)) == _count_keys(message, -1)  # -1: never the shortcut
        check_duplicate_keys(raw, orjson.loads(raw))  # no repeat: passes


def test_a_repeat_in_a_plain_batch_is_still_refused() -> None:
    raw = (b'{"infno":"x","data":[{"a":"1","b":"2"},{"key":"1","key":"2"}],"msgid":"m"}')
    assert brackets(raw) == 4  # the plain shape: message, data, two records
    with pytest.raises(EnvelopeError) as err:
        check_duplicate_keys(raw, json.loads(raw))
    assert err.value.name == "duplicate_key"
