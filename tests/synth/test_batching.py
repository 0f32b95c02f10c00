from __future__ import annotations

import json
from collections.abc import Callable

from sandbox.config import Settings
from sandbox.spec.fields import DATA_MAX_CHARS
from sandbox.spec.formats import parse_msgid
from sandbox.synth.batching import batches, record_chars
from sandbox.synth.dataset import build_messages
from sandbox.synth.exams import ExamFactory
from sandbox.validate import data_length


def test_batches_stay_within_the_data_limit_and_keep_every_record_in_order(
    make_factory: Callable[..., ExamFactory],
) -> None:
    records = [e.record("http://127.0.0.1:8700") for e in make_factory().exams(120)]
    out = list(batches(records))
    assert len(out) > 2
    assert [r for b in out for r in b] == records
    for b in out:
        assert data_length(b) <= DATA_MAX_CHARS
    # Greedy: adding the next record would have crossed the limit.
    for b, nxt in zip(out, out[1:], strict=False):
        assert data_length(b) + 1 + record_chars(nxt[0]) > DATA_MAX_CHARS


def test_max_records_and_a_small_limit_split_further() -> None:
    records = [{"hiImgIndx": str(i), "x": "字" * 50} for i in range(10)]
    assert [len(b) for b in batches(records, max_records=3)] == [3, 3, 3, 1]
    assert all(data_length(b) <= 200 for b in batches(records, limit=200))


def test_a_record_larger_than_the_limit_goes_alone() -> None:
    records = [{"a": "1"}, {"a": "x" * 500}, {"a": "2"}]
    assert [len(b) for b in batches(records, limit=100)] == [1, 1, 1]


def test_envelopes_number_msgids_per_institution_and_day(make_factory: Callable[..., ExamFactory],
                                                         settings: Settings) -> None:
    factory = make_factory()
    items = [(e, e.record("http://h")) for e in factory.exams(400)]
    messages = build_messages(settings.hospitals[0], items)
    seen: dict[str, list[int]] = {}
    for msg in messages:
        parsed = parse_msgid(msg["msgid"])
        assert parsed is not None and parsed[0] == msg["infCode"] == settings.hospitals[0].code
        assert msg["infTime"].replace("-", "").replace(":", "").replace(" ", "") == msg["msgid"][12:26]
        assert msg["key"] == settings.hospitals[0].key
        seen.setdefault(msg["msgid"][12:20], []).append(parsed[2])
        last_pub = max(e.times.pub for e, r in items if r in msg["data"])
        assert msg["infTime"] > last_pub.strftime("%Y-%m-%d %H:%M:%S")  # sent after its reports were out
    assert all(seqs == list(range(1, len(seqs) + 1)) for seqs in seen.values())
    assert len(json.dumps(messages[0]["data"], ensure_ascii=False, separators=(",", ":"))) <= DATA_MAX_CHARS
