"""Hostile input: keys that are not the sender's, SQL metacharacters and 10,000-character values in every
string field, odd query parameters. Each gets a clear answer; nothing crashes; nothing is stored that
should not be."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from sandbox.config import Institution, Settings, default_institutions
from sandbox.spec.checksums import uscc_check_char
from sandbox.spec.fields import HOP2, Kind
from tests.province.helpers import message, record, send, stored

SQL = "x'); DROP TABLE img_index; -- \" OR 1=1 /*"
LONG = ("中' OR '1'='1\"; --" * 700)[:10_000]
STRING_FIELDS = [f for f in HOP2.fields if f.kind is not Kind.DECIMAL]
OTHER_CENTER = Institution(code="C51080000009", name="另一共享中心", key="OTHERCENTERKEY0009", role="center",
                           uscc="12510800MB0L31009" + uscc_check_char("12510800MB0L31009"))


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    return make_settings(institutions=(*default_institutions(), OTHER_CENTER))


@pytest.mark.parametrize("key", [
    "GYYXY2025CENTERKE",  # one character short
    "gyyxy2025centerkey",  # another case
    "GYYXY2025CENTERKEY" + "X",
    "' OR '1'='1",
], ids=["prefix", "case", "suffix", "sql"])
async def test_wrong_key_is_refused_without_revealing_the_right_one(client: Any, settings: Settings, key: str) -> None:
    status, body = await send(client, message(settings, [record(settings, 1)], key=key))
    assert (body["code"], body["type"]) == (1021, "error")
    assert settings.center.key not in body["message"]
    assert await stored(client) == (0, 0)


@pytest.mark.parametrize("owner", ["hospital", "other_center"])
async def test_key_of_another_institution_is_refused(client: Any, settings: Settings, owner: str) -> None:
    key = settings.hospitals[0].key if owner == "hospital" else OTHER_CENTER.key
    status, body = await send(client, message(settings, [record(settings, 1)], key=key))
    assert body["code"] == 1021 and settings.center.code in body["message"]
    assert await stored(client) == (0, 0)


async def test_center_cannot_file_indexes_under_another_centers_uscc(client: Any, settings: Settings) -> None:
    rec = record(settings, 1, center=OTHER_CENTER)  # index and stogInsUscc of the other center
    status, body = await send(client, message(settings, [rec]))
    assert body["data"][0]["succFlag"] == "-1" and OTHER_CENTER.uscc in body["data"][0]["message"]
    assert (await stored(client))[0] == 0


def _named(message_text: str, code: str, name: str) -> bool:
    return code in message_text or name in message_text


@pytest.mark.parametrize("payload", [SQL, LONG], ids=["sql_metacharacters", "ten_thousand_chars"])
async def test_hostile_value_in_every_string_field_is_stored_verbatim_or_rejected_by_name(
    client: Any, settings: Settings, payload: str
) -> None:
    problems: list[str] = []
    expected_rows = 0
    for seq, spec in enumerate(STRING_FIELDS, 1):
        rec = record(settings, 100 + seq, **{spec.code: payload})
        status, body = await send(client, message(settings, [rec], seq=seq))
        if status != 200 or body["code"] not in (0, -1):
            problems.append(f"{spec.code}: HTTP {status} {body}")
            continue
        (answer,) = body["data"]
        if answer["succFlag"] == "-1":
            if not _named(answer["message"], spec.code, spec.name):
                problems.append(f"{spec.code}: rejected without naming the field: {answer['message'][:200]}")
            continue
        expected_rows += 1
        resp = await client.get("/mie/api/mie/index/" + quote(rec["hiImgIndx"], safe=""))
        view = await resp.json()
        if resp.status != 200 or view["data"]["record"].get(spec.code) != payload:
            problems.append(f"{spec.code}: saved ({answer['succFlag']}) but not stored verbatim")
        if payload is LONG and spec.length is not None:
            problems.append(f"{spec.code}: {len(payload)} chars accepted over its length {spec.length}")
    assert problems == []
    assert (await stored(client))[0] == expected_rows  # the table is intact and holds only what was accepted


async def test_ten_thousand_chars_are_accepted_only_where_the_table_sets_no_length(
    client: Any, settings: Settings
) -> None:
    unlimited = [f.code for f in HOP2.fields if f.kind is Kind.TEXT]
    assert unlimited == ["clncDiag", "illhis", "chfcomp", "algs"]
    for seq, code in enumerate(unlimited, 1):
        status, body = await send(client, message(settings, [record(settings, seq, **{code: LONG})], seq=seq))
        assert body["data"][0]["succFlag"] == "1"


@pytest.mark.parametrize("params", [
    {"certno": "' OR '1'='1"},
    {"fixmedinsCode": "%"},
    {"examAdmdvs": "1; --"},
    {"from": "2025-01-01' OR 1=1"},
], ids=["certno_or_true", "like_wildcard", "statement_break", "date_injection"])
async def test_sql_metacharacters_in_query_parameters_match_nothing(
    client: Any, settings: Settings, params: dict[str, str]
) -> None:
    await send(client, message(settings, [record(settings, n) for n in range(3)]))
    resp = await client.get("/mie/api/mie/index", params=params)
    body = await resp.json()
    if resp.status == 200:
        assert body["data"]["total"] == 0 and body["data"]["items"] == []
    else:
        assert resp.status == 400 and body["code"] == 1060
    assert (await stored(client))[0] == 3


async def test_sql_metacharacters_in_the_index_path_find_nothing(client: Any, settings: Settings) -> None:
    await send(client, message(settings, [record(settings, 1)]))
    resp = await client.get("/mie/api/mie/index/" + quote("' OR '1'='1", safe=""))
    assert resp.status == 404 and (await resp.json())["code"] == 1061
