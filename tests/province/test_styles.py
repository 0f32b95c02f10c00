"""The two response styles: one entry per record (ERRATA's reading) or the example's single summary."""

from __future__ import annotations

from typing import Any

from sandbox.typedefs import SETTINGS
from tests.province.helpers import message, record, send


async def test_per_record_style_answers_one_entry_per_record(province: Any) -> None:
    client = await province(response_style="per-record")
    settings = client.server.app[SETTINGS]
    recs = [record(settings, n) for n in range(3)]
    status, body = await send(client, message(settings, recs))
    assert [a["hiImgIndx"] for a in body["data"]] == [r["hiImgIndx"] for r in recs]
    assert {a["succFlag"] for a in body["data"]} == {"1"}


async def test_summary_style_answers_like_the_documents_example(province: Any) -> None:
    client = await province(response_style="summary")
    settings = client.server.app[SETTINGS]
    status, body = await send(client, message(settings, [record(settings, n) for n in range(3)]))
    assert body == {"code": 0, "type": "success", "message": "成功",
                    "data": [{"hiImgIndx": None, "succFlag": "1", "message": "保存数据成功"}]}


async def test_summary_style_names_the_failed_records(province: Any) -> None:
    client = await province(response_style="summary")
    settings = client.server.app[SETTINGS]
    bad = record(settings, 2, gend="7")
    status, body = await send(client, message(settings, [record(settings, 1), bad]))
    (entry,) = body["data"]
    assert entry["hiImgIndx"] is None and entry["succFlag"] == "0"
    assert bad["hiImgIndx"] in entry["message"] and "gend" in entry["message"]


async def test_summary_style_all_failed_is_minus_1(province: Any) -> None:
    client = await province(response_style="summary")
    settings = client.server.app[SETTINGS]
    status, body = await send(client, message(settings, [record(settings, 1, gend="7")]))
    assert body["code"] == -1 and body["data"][0]["succFlag"] == "-1"
