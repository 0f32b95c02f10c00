"""`Canonical.of` serialises a message once and must give exactly what the separate functions give: the
body hash of msgid replay, `data`'s length for the 40000-character limit, and each record's canonical text."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.common.envelope import Canonical, body_hash, canonical_json
from sandbox.validate import data_length

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.text(max_size=12),
                     st.floats(allow_nan=False, allow_infinity=False))
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                       max_leaves=8)
_keys = st.sampled_from(["infno", "msgid", "key", "data", "apiVersion", "数据", "Data", "data "])


def _check(message: Any) -> None:
    canonical = Canonical.of(message)
    assert canonical.digest == body_hash(message)
    data = message.get("data") if isinstance(message, dict) else None
    if canonical.records is not None:
        assert isinstance(data, list)
        assert list(canonical.records) == [canonical_json(r).decode() for r in data]
        assert canonical.data_length == data_length(data)
    else:
        assert canonical.data_length is None


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=5),
       st.lists(st.dictionaries(st.text(max_size=8), _values, max_size=5), max_size=4))
def test_the_one_serialisation_gives_the_hash_the_length_and_the_record_texts(envelope: dict[str, Any],
                                                                              records: list[Any]) -> None:
    _check(envelope)
    _check({**envelope, "data": records})


def test_the_shortcut_is_taken_for_a_plain_batch_and_left_for_anything_it_cannot_vouch_for() -> None:
    records = [{"hiImgIndx": "甲-1", "age": 35, "b": [1, {"x": "y"}]}, {"a": "含 \"data\":0 的文字"}]
    plain = {"msgid": "m", "data": records, "infno": "x"}
    assert Canonical.of(plain).records == tuple(canonical_json(r).decode() for r in records)
    # an envelope value holding the same bytes as the data's place, a huge integer, data as a string
    for message in ({**plain, "apiVersion": {"data": 0}}, {**plain, "data": [{"n": 2**70}]},
                    {**plain, "data": json.dumps(records)}, {**plain, "data": []}, [plain]):
        canonical = Canonical.of(message)
        assert canonical.records is None and canonical.digest == body_hash(message)
    # what the province stores for a record is what the one-by-one path stored
    assert Canonical.of(plain).records[0] == orjson.dumps(records[0], option=orjson.OPT_SORT_KEYS).decode()  # type: ignore[index]
