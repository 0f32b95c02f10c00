"""The 调阅 side: fetch an index, list indexes by person, institution, region and exam date, paged."""

from __future__ import annotations

import itertools
import re
import sqlite3
from typing import Any

import pytest

from sandbox.config import Settings
from sandbox.province.store import GET_SQL, SCHEMA, Filters, search_sql
from tests.province.helpers import message, record, send

INDEX = "/mie/api/mie/index"


async def _fill(client: Any, settings: Settings, count: int = 30) -> list[dict[str, Any]]:
    recs = [record(settings, n) for n in range(count)]
    for seq, start in enumerate(range(0, count, 10), 1):
        status, body = await send(client, message(settings, recs[start:start + 10], seq=seq))
        assert {a["succFlag"] for a in body["data"]} == {"1"}
    return recs


async def _get(client: Any, path: str, **params: Any) -> tuple[int, dict[str, Any]]:
    resp = await client.get(path, params=params)
    return resp.status, await resp.json()


async def test_index_is_fetched_with_its_links_sender_and_record(client: Any, settings: Settings) -> None:
    rec = record(settings, 4)
    msg = message(settings, [rec])
    await send(client, msg)
    status, body = await _get(client, f"{INDEX}/{rec['hiImgIndx']}")
    assert status == 200 and (body["code"], body["type"], body["message"]) == (0, "success", "成功")
    view = body["data"]
    assert view["hiImgIndx"] == rec["hiImgIndx"]
    assert (view["infCode"], view["msgid"], view["succFlag"]) == (settings.center.code, msg["msgid"], "1")
    assert view["links"] == {k: rec[k] for k in ("examRpotLinkUrl", "imgInfoLinkUrl", "imgDldLink")}
    assert view["record"] == rec
    # China time with its offset, whatever the host's zone.
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00", view["receivedTime"]), view["receivedTime"]


async def test_unknown_index_answers_404_in_the_envelope(client: Any) -> None:
    status, body = await _get(client, f"{INDEX}/111-nothing")
    assert status == 404
    assert (body["code"], body["type"]) == (1061, "error") and "111-nothing" in body["message"]


async def test_list_pages_through_everything_newest_exam_first(client: Any, settings: Settings) -> None:
    recs = await _fill(client, settings)
    seen: list[str] = []
    for page in (1, 2, 3, 4):
        status, body = await _get(client, INDEX, page=page, size=8)
        data = body["data"]
        assert (data["total"], data["page"], data["size"], data["pages"]) == (30, page, 8, 4)
        assert len(data["items"]) == (8 if page < 4 else 6)
        seen += [i["hiImgIndx"] for i in data["items"]]
    assert sorted(seen) == sorted(r["hiImgIndx"] for r in recs)
    dates = [r["examDate"] for r in sorted(recs, key=lambda r: r["hiImgIndx"])]
    assert max(dates) == (await _get(client, INDEX, size=1))[1]["data"]["items"][0]["record"]["examDate"]
    status, body = await _get(client, INDEX, page=5, size=8)
    assert body["data"]["items"] == [] and body["data"]["total"] == 30


async def test_default_page_size_is_20(client: Any, settings: Settings) -> None:
    await _fill(client, settings)
    status, body = await _get(client, INDEX)
    assert (body["data"]["size"], len(body["data"]["items"])) == (20, 20)


async def test_list_by_certno_finds_that_persons_exams(client: Any, settings: Settings) -> None:
    recs = await _fill(client, settings)
    status, body = await _get(client, INDEX, certno=recs[7]["certno"])
    assert [i["hiImgIndx"] for i in body["data"]["items"]] == [recs[7]["hiImgIndx"]]
    status, lower = await _get(client, INDEX, certno=recs[7]["certno"].lower())
    assert lower["data"]["total"] == 1  # a check character X matches whatever its case


async def test_list_by_institution_and_region(client: Any, settings: Settings) -> None:
    recs = await _fill(client, settings)
    hospital = settings.hospitals[1]
    status, body = await _get(client, INDEX, fixmedinsCode=hospital.code, size=100)
    expected = {r["hiImgIndx"] for r in recs if r["fixmedinsCode"] == hospital.code}
    assert {i["hiImgIndx"] for i in body["data"]["items"]} == expected and body["data"]["total"] == len(expected)
    status, body = await _get(client, INDEX, examAdmdvs=hospital.admdvs, fixmedinsCode=hospital.code)
    assert body["data"]["total"] == len(expected)
    status, body = await _get(client, INDEX, examAdmdvs="110000")
    assert body["data"]["total"] == 0


async def test_list_by_exam_date_range_is_inclusive(client: Any, settings: Settings) -> None:
    recs = await _fill(client, settings)
    dates = sorted(r["examDate"] for r in recs)
    start, end = dates[5], dates[14]
    status, body = await _get(client, INDEX, **{"from": start, "to": end, "size": 100})
    got = sorted(i["record"]["examDate"] for i in body["data"]["items"])
    assert got == [d for d in dates if start <= d <= end]
    status, body = await _get(client, INDEX, **{"from": end})
    assert body["data"]["total"] == sum(d >= end for d in dates)


@pytest.mark.parametrize("params,words", [
    ({"from": "2025/03/01"}, ("from", "yyyy-MM-dd")),
    ({"to": "2025-02-30"}, ("to",)),
    ({"from": "2025-03-10", "to": "2025-03-01"}, ("晚于",)),
    ({"size": "101"}, ("size", "100")),
    ({"size": "0"}, ("size", "正整数")),
    ({"page": "-1"}, ("page", "正整数")),
    ({"page": "abc"}, ("page",)),
    ({"certNo": "x"}, ("certNo", "未定义")),
    ({"examAdmdvs": "1234567"}, ("examAdmdvs", "超过上限")),
], ids=["bad_from", "impossible_to", "reversed_range", "size_over_max", "size_zero", "negative_page",
        "page_not_a_number", "misspelt_parameter", "admdvs_too_long"])
async def test_bad_query_parameter_answers_400_naming_it(
    client: Any, params: dict[str, str], words: tuple[str, ...]
) -> None:
    status, body = await _get(client, INDEX, **params)
    assert status == 400
    assert (body["code"], body["type"], body["data"]) == (1060, "error", [])
    for word in words:
        assert word in body["message"]


async def test_repeated_query_parameter_is_refused(client: Any) -> None:
    resp = await client.get(INDEX + "?certno=1&certno=2")
    body = await resp.json()
    assert resp.status == 400 and "certno" in body["message"] and "重复" in body["message"]


@pytest.mark.parametrize("given", [
    frozenset(c) for n in range(6) for c in itertools.combinations(
        ("certno", "fixmedins_code", "exam_admdvs", "date_from", "date_to"), n)
])
def test_every_list_query_and_the_fetch_read_an_index(tmp_path: Any, given: frozenset[str]) -> None:
    """EXPLAIN QUERY PLAN of the queries the 调阅 API makes, for every combination of filters: each reads
    the most selective index it can (ID number, then institution, then 区划, then exam date) and never
    scans the table itself; a fetch by hiImgIndx reads the primary key."""
    values = {"certno": "510802199001010011", "fixmedins_code": "H51080200001", "exam_admdvs": "510802",
              "date_from": "2025-01-01", "date_to": "2025-12-31"}
    filters = Filters(**{k: (v if k in given else None) for k, v in values.items()})
    expected = next((index for field, index in (("certno", "img_index_certno"),
                                               ("fixmedins_code", "img_index_fixmedins"),
                                               ("exam_admdvs", "img_index_admdvs")) if field in given),
                    "img_index_date")
    conn = sqlite3.connect(tmp_path / "plan.db")
    conn.executescript(SCHEMA)
    count_sql, page_sql, params = search_sql(filters)
    for sql, args in ((count_sql, params), (page_sql, (*params, 20, 0))):
        plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, args)]
        reads = [step for step in plan if step.startswith(("SCAN", "SEARCH"))]
        assert len(reads) == 1 and f"INDEX {expected}" in reads[0], plan
    plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + GET_SQL, ("x",))]
    assert plan == ["SEARCH img_index USING INDEX sqlite_autoindex_img_index_1 (hiImgIndx=?)"]
