"""The dashboard's HTTP side: the page and its assets, the message list and one message, the event stream,
scenario control, and refusals in Chinese."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import orjson
from aiohttp.test_utils import TestClient

from sandbox.app import Sandbox
from sandbox.dashboard.app import DashboardServer
from sandbox.scenario import library
from tests.dashboard.conftest import run_scenario_here

STATIC = Path(__file__).resolve().parents[2] / "sandbox" / "dashboard" / "static"


async def data(response: Any) -> Any:
    body = await response.json()
    assert body["code"] == 0, body
    return body["data"]


async def wait_run(dash: TestClient[Any, Any], timeout: float = 30) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        run = (await data(await dash.get("/api/state")))["run"]
        if run and run["state"] != "running":
            return dict(run)
        assert asyncio.get_running_loop().time() < deadline, run
        await asyncio.sleep(0.05)


async def test_the_page_is_served_in_chinese_from_the_package_with_nothing_from_outside(
        dash: TestClient[Any, Any]) -> None:
    page = await dash.get("/")
    assert page.status == 200
    html = await page.text()
    assert "医保影像云沙箱 · 培训看板" in html and 'lang="zh-CN"' in html
    for asset in ("static/app.js", "static/app.css"):
        assert asset in html
        response = await dash.get("/" + asset)
        assert response.status == 200
    for name in ("index.html", "app.js", "app.css"):
        text = (STATIC / name).read_text(encoding="utf-8")
        # offline inside the 医保专网: nothing is loaded from another host (the favicon's SVG namespace is a name)
        hosts = set(re.findall(r"(?:https?:)?//([A-Za-z0-9.-]+\.[A-Za-z]{2,})", text)) - {"www.w3.org"}
        assert not hosts, (name, hosts)
        assert "@import" not in text and "@font-face" not in text, name
    js = (STATIC / "app.js").read_text(encoding="utf-8")
    assert "zh: {" in js and "en: {" in js  # one i18n table, both languages


async def test_scenario_from_the_api_then_the_list_pages_and_filters(dash: TestClient[Any, Any]) -> None:
    started = await dash.post("/api/scenario", json={"name": "province-partial-failure"})
    assert (await started.json())["message"] == "已开始运行场景「province-partial-failure」"
    run = await wait_run(dash)
    assert run["state"] == "passed" and all(e["ok"] for e in run["expectations"])
    assert [s["state"] for s in run["steps"]] == ["done", "done"]
    everything = await data(await dash.get("/api/exchanges"))
    assert everything["total"] == 2 and everything["lastSeq"] == 2
    hop1, hop2 = everything["items"]
    assert (hop1["hop"], hop1["from_role"], hop1["to_role"], hop1["outcome"]) == (1, "hospital", "center", "ok")
    assert (hop2["hop"], hop2["from_role"], hop2["to_role"], hop2["outcome"]) == (2, "center", "province", "partial")
    assert hop2["n_failed"] == 2 and "request" not in hop2
    only2 = await data(await dash.get("/api/exchanges?hop=2"))
    assert [e["seq"] for e in only2["items"]] == [2] and only2["total"] == 1
    partial = await data(await dash.get("/api/exchanges?outcome=partial,failed"))
    assert [e["seq"] for e in partial["items"]] == [2]
    second = await data(await dash.get("/api/exchanges?offset=1&limit=1"))
    assert [e["seq"] for e in second["items"]] == [2] and second["total"] == 2
    state = await data(await dash.get("/api/state"))
    counters = state["counters"]
    assert counters["province"]["indexes"] == 8 and counters["province"]["records"] == {"1": 8, "0": 0, "-1": 2}
    assert counters["center"]["outbox"] == {"pending": 0, "sending": 0, "held": 0, "done": 8, "failed": 2,
                                            "expired": 0}
    assert counters["hospital"]["outcomes"]["ok"] == 1


async def test_a_rejected_record_names_its_fields_with_the_chinese_error_and_its_links(
        dash: TestClient[Any, Any], chain: Sandbox) -> None:
    await run_scenario_here(chain, "province-partial-failure")
    detail = await data(await dash.get("/api/exchanges/2"))
    second = detail["records"][1]
    assert second["succFlag"] == "-1" and second["message"] == "省平台校验不通过：检查项目与影像检查类型不符"
    named = {p["field"]: p for p in second["problems"] if p["source"] == "answer"}
    assert named["imgExamType"]["level"] == "error"
    assert named["imgExamType"]["fieldName"] == "影像检查类型代码"
    assert named["imgExamType"]["message"] == second["message"]
    assert set(second["links"]) >= {"examRpotLinkUrl", "imgInfoLinkUrl", "imgDldLink", "imgDldZip"}
    assert second["links"]["imgDldZip"].endswith("?accept=application/zip")
    first = detail["records"][0]
    assert first["succFlag"] == "1" and not [p for p in first["problems"] if p["level"] == "error"]
    # personal data masked by default, shown on request
    request = detail["request"]
    name = request["data"][0]["psnName"]
    assert name.endswith("*") and detail["masked"] is True
    raw = await data(await dash.get("/api/exchanges/2?mask=0"))
    assert "*" not in raw["request"]["data"][0]["psnName"] and raw["request"]["data"][0]["psnName"][0] == name[0]
    certno = raw["request"]["data"][0]["certno"]
    assert certno not in orjson.dumps(detail).decode()  # not in the index, the links or any message either


async def test_a_record_broken_at_the_hospital_shows_the_validator_s_field_error(
        dash: TestClient[Any, Any], chain: Sandbox) -> None:
    await chain.control.send({"count": 3, "malform": [{"kind": "missing_required", "positions": [2]},
                                                      {"kind": "bad_dict_gend", "positions": [3]}]})
    hop1 = (await data(await dash.get("/api/exchanges?hop=1")))["items"][0]
    assert hop1["outcome"] == "partial"
    detail = await data(await dash.get(f"/api/exchanges/{hop1['seq']}"))
    missing, gend = detail["records"][1], detail["records"][2]
    assert missing["succFlag"] == "-1" and "psnName" not in missing["keys"]
    errors = {p["field"]: p for p in missing["problems"] if p["level"] == "error"}
    assert errors["psnName"]["message"] == "必填项缺失" and errors["psnName"]["fieldName"] == "人员姓名"
    assert gend["succFlag"] == "-1"
    assert any(p["field"] == "gend" and "字典" in p["message"] for p in gend["problems"] if p["level"] == "error")


async def test_an_envelope_refused_whole_names_the_envelope_field(dash: TestClient[Any, Any], chain: Sandbox) -> None:
    await chain.control.send({"count": 1, "malform": [{"kind": "wrong_key"}]})
    refused = (await data(await dash.get("/api/exchanges?outcome=rejected")))["items"][0]
    assert refused["code"] == 1021
    detail = await data(await dash.get(f"/api/exchanges/{refused['seq']}"))
    assert "密钥值 key" in detail["answerMessage"]
    assert any(p["field"] == "key" and p["level"] == "error" for p in detail["envelopeProblems"])
    assert detail["records"][0]["succFlag"] is None


async def test_the_event_stream_sends_state_entries_and_reset(dash: TestClient[Any, Any], chain: Sandbox) -> None:
    response = await dash.get("/api/events")
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events: list[tuple[str, Any]] = []

    async def read_until(name: str) -> Any:
        buffer = b""
        while True:
            for e in events:
                if e[0] == name:
                    events.remove(e)
                    return e[1]
            chunk = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 10)
            buffer = chunk
            lines = dict(line.split(": ", 1) for line in buffer.decode().strip().split("\n") if ": " in line)
            if "event" in lines:
                events.append((lines["event"], orjson.loads(lines["data"])))

    first = await read_until("state")
    assert first["total"] == 0 and set(first["roles"]) == {"hospital", "center", "province"}
    await chain.control.send({"count": 2})
    entries = await read_until("entries")
    assert entries[0]["seq"] == 1 and entries[0]["hop"] == 1 and "request" not in entries[0]
    reset = await dash.post("/api/reset", json={})
    assert (await reset.json())["message"] == "已清空全部数据、日志与故障"
    assert (await read_until("reset"))["generation"] == 1
    response.close()


async def test_refusals_are_json_with_a_chinese_message(dash: TestClient[Any, Any]) -> None:
    cases = [
        (dash.get("/api/exchanges?hop=3"), 400, "参数 hop 应为 1 或 2"),
        (dash.get("/api/exchanges?outcome=great"), 400, "参数 outcome"),
        (dash.get("/api/exchanges?offset=-1"), 400, "参数 offset 应为非负整数"),
        (dash.get("/api/exchanges/999"), 404, "日志中没有第 999 条交互"),
        (dash.get("/api/exams?status=lost"), 400, "参数 status"),
        (dash.post("/api/scenario", json={"name": "no-such-scenario"}), 404, "找不到场景「no-such-scenario」"),
        (dash.post("/api/scenario", json={}), 400, "需要场景名称 name"),
        (dash.post("/api/scenario", data=b"[1]", headers={"Content-Type": "application/json"}), 400, "请求体应为 JSON 对象"),
    ]
    for call, status, text in cases:
        response = await call
        body = await response.json()
        assert response.status == status, (text, body)
        assert body["type"] == "error" and text in body["message"], body


async def test_the_exam_list_gives_each_exam_its_status_and_three_links(dash: TestClient[Any, Any],
                                                                       chain: Sandbox) -> None:
    await run_scenario_here(chain, "province-partial-failure")
    listing = await data(await dash.get("/api/exams?limit=100"))
    assert listing["total"] == 10
    statuses = [e["status"] for e in listing["items"]]
    assert statuses.count("indexed") == 8 and statuses.count("failed") == 2
    for exam in listing["items"]:
        links = exam["links"]
        assert links["examRpotLinkUrl"].startswith(chain.url("center") + "/report/")
        assert links["imgInfoLinkUrl"].startswith(chain.url("center") + "/viewer/")
        assert "/dicomweb/studies/" in links["imgDldLink"]
        assert exam["shown"] != exam["hiImgIndx"] and "*" in exam["shown"]  # the identity number is masked
    failed = await data(await dash.get("/api/exams?status=failed"))
    assert failed["total"] == 2 and failed["items"][0]["reason"] == "省级模块拒收（succFlag -1）"
    # each link answers: the report page, the image page, the DICOM study
    session = dash.session
    links = listing["items"][0]["links"]
    for key, kind in (("examRpotLinkUrl", "text/html"), ("imgInfoLinkUrl", "text/html"), ("imgDldZip", "application/zip")):
        async with session.get(links[key]) as r:
            assert r.status == 200 and r.content_type == kind, key


async def test_the_dashboard_server_listens_on_its_own_port(chain: Sandbox) -> None:
    server = DashboardServer(chain)
    url = await server.start()
    try:
        assert url == f"http://127.0.0.1:{chain.settings.dashboard_port}/"
        taken = DashboardServer(chain)
        try:
            await taken.start()
            raise AssertionError("the port was taken")
        except Exception as exc:  # SandboxError, in Chinese
            assert "看板无法监听" in str(exc) and "--dashboard-port" in str(exc)
    finally:
        await server.stop()


async def test_retries_in_progress_and_the_outbox_depth_are_counted_while_they_happen(
        dash: TestClient[Any, Any], chain: Sandbox) -> None:
    chain.control.add_fault({"name": "省级一直503", "at": "province", "kind": "http_error", "status": 503})
    chain.control.add_fault({"name": "共享中心502", "at": "center", "kind": "http_error", "status": 502, "calls": 3})
    sending = asyncio.create_task(chain.control.send({"count": 3}))
    seen_hop1 = seen_hop2 = 0
    depth = 0
    deadline = asyncio.get_running_loop().time() + 20
    while asyncio.get_running_loop().time() < deadline and not (seen_hop1 and seen_hop2 and depth):
        counters = (await data(await dash.get("/api/state")))["counters"]
        seen_hop1 = max(seen_hop1, counters["hospital"]["retrying"])
        if counters["center"]["retrying"]:
            seen_hop2 = max(seen_hop2, counters["center"]["retrying"])
            assert counters["center"]["maxAttempt"] >= 1 and counters["center"]["retryingRecords"] == 3
        depth = max(depth, counters["center"]["depth"] or 0)
        await asyncio.sleep(0.02)
    await sending
    assert seen_hop1 == 1  # the hospital's message, answered 502 twice before it got through
    assert seen_hop2 == 1 and depth == 3  # the center's batch of 3, retried against the 503s
    chain.control.heal(None)


async def test_a_running_scenario_shows_its_current_step_then_its_expectations(dash: TestClient[Any, Any]) -> None:
    scenario = library.find("slow-province")
    await dash.post("/api/scenario", json={"name": "slow-province"})
    seen_running: list[str] = []
    pending_while_running = False
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        run = (await data(await dash.get("/api/state")))["run"]
        assert len(run["expectations"]) == len(scenario.expect) and len(run["steps"]) == len(scenario.steps)
        seen_running += [s["label"] for s in run["steps"] if s["state"] == "running"]
        if run["state"] != "running":
            break
        pending_while_running |= all(e["ok"] is None for e in run["expectations"])  # judged at the end
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    assert pending_while_running
    # the send step waits for the center to settle, so it is the step a viewer sees running; later steps
    # may finish between two polls
    assert seen_running and seen_running[0].startswith("1. 发送"), seen_running
    assert run["state"] == "passed" and all(e["ok"] is True for e in run["expectations"])
    assert all(s["state"] == "done" and s["seconds"] is not None for s in run["steps"])


async def test_an_unexpected_failure_is_still_a_json_answer_in_chinese(dash: TestClient[Any, Any],
                                                                        monkeypatch: Any) -> None:
    from sandbox.dashboard.domain import Dashboard

    async def broken(self: Dashboard, seq: int, mask: bool = True) -> dict[str, Any]:
        raise KeyError(seq)

    monkeypatch.setattr(Dashboard, "exchange", broken)
    response = await dash.get("/api/exchanges/1")
    assert response.status == 500 and response.content_type == "application/json"
    assert (await response.json())["message"] == "看板内部错误，请稍后重试（详情见 sandbox serve 的日志）"
