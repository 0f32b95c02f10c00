"""The control API under /_sandbox/: a developer's own client meets the faults a scenario loads."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from sandbox.app import Sandbox
from sandbox.province.samples import message, record
from sandbox.spec.fields import HOP2
from tests.chain.conftest import StartSandbox


async def call(sb: Sandbox, method: str, path: str, role: str = "hospital", body: Any = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.request(method, sb.url(role) + "/_sandbox" + path,
                                                       json=body) as r:
        return r.status, await r.json()


async def test_state_names_roles_institutions_and_keys(start_sandbox: StartSandbox) -> None:
    sb = await start_sandbox()
    for role in ("hospital", "center", "province"):  # the same control API on every role's port
        status, body = await call(sb, "GET", "/", role)
        assert status == 200 and body["code"] == 0 and body["message"] == "沙箱状态"
    data = body["data"]
    assert data["roles"]["center"] == {"url": sb.url("center"), "inProcess": True, "running": True}
    assert {"code": "H51080200001", "name": "广元市第一人民医院", "role": "hospital",
            "key": "GYSY2025KEY0001XQ"} in data["institutions"]
    assert data["settings"]["mode"] == "lenient" and data["faults"] == []


async def test_a_loaded_scenario_shapes_what_my_own_client_gets_until_healed(start_sandbox: StartSandbox) -> None:
    sb = await start_sandbox(("province",))
    status, body = await call(sb, "POST", "/scenario", "province", {"name": "province-partial-failure"})
    assert status == 200
    assert body["message"] == ("已加载场景「province-partial-failure」：省级模块部分失败：同一批中 succFlag 1、0、-1 混合；"
                               "故障 2 个（应答本请求的角色随后按新配置重启，约 0.2 秒）")
    assert sb.settings.seed == 2002
    await sb.control.settled()  # the province restarts with the scenario's seed right after answering

    s = sb.settings
    mine = message(s, [record(s, n, gend="1") for n in range(6)], 1)
    async with aiohttp.ClientSession() as session:
        async with session.post(sb.url("province") + HOP2.path, json=mine) as r:
            answer = await r.json()
    assert [a["succFlag"] for a in answer["data"]] == ["1", "-1", "1", "1", "-1", "1"]
    assert answer["data"][1]["message"] == "省平台校验不通过：检查项目与影像检查类型不符"

    status, body = await call(sb, "POST", "/heal", "province", {"name": "省级拒收第2和第5条"})
    assert body["message"] == "已恢复故障：省级拒收第2和第5条"
    status, body = await call(sb, "POST", "/heal", "province", {"name": "没有这个"})
    assert status == 404 and body["message"] == "没有名为「没有这个」的故障"
    status, body = await call(sb, "POST", "/heal", "province", {})
    assert body["message"] == "已恢复全部故障（1 个）"
    async with aiohttp.ClientSession() as session:
        async with session.post(sb.url("province") + HOP2.path,
                                json=message(s, [record(s, n) for n in range(10, 13)], 2)) as r:
            assert {a["succFlag"] for a in (await r.json())["data"]} == {"1"}

    status, body = await call(sb, "GET", "/journal?hop=2&outcome=partial", "province")
    assert [e["fault"] for e in body["data"]] == ["省级拒收第2和第5条"]
    status, body = await call(sb, "GET", f"/journal/{body['data'][0]['seq']}", "province")
    assert [a["succFlag"] for a in body["data"]["answers"]][:2] == ["1", "-1"]


async def test_add_a_fault_send_reset_and_seed(start_sandbox: StartSandbox) -> None:
    sb = await start_sandbox()
    status, body = await call(sb, "POST", "/faults", body={"name": "慢", "at": "province", "kind": "delay",
                                                            "seconds": 0.1, "calls": 1})
    assert status == 200 and body["message"].startswith("已加入故障「慢」：省级模块（第二跳） 延迟应答 0.1 秒")
    status, body = await call(sb, "POST", "/faults", body={"at": "province", "kind": "delay", "secs": 1})
    assert status == 400 and "secs：未知的键「secs」" in body["message"]

    status, body = await call(sb, "POST", "/send", body={"count": 3})
    assert status == 200 and body["message"] == "医疗机构已发送 1 个报文、3 条记录"
    province = sb.state("province")
    deadline = asyncio.get_running_loop().time() + 10
    while await province.indexes.count() < 3:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)

    status, body = await call(sb, "POST", "/reset", body={"seed": 77})
    assert body["message"].startswith("已清空全部数据、日志与故障，随机种子为 77")
    assert sb.settings.seed == 77
    await sb.control.settled()
    assert await sb.state("province").indexes.count() == 0
    assert (await sb.state("center").summary())["stored"] == 0
    status, body = await call(sb, "GET", "/")
    assert body["data"]["faults"] == [] and body["data"]["journal"]["exchanges"] == {}
    status, body = await call(sb, "POST", "/seed", body={"seed": "x"})
    assert status == 400 and body["message"] == "seed 应为整数"


async def test_a_scenario_can_run_inside_a_running_sandbox(start_sandbox: StartSandbox) -> None:
    sb = await start_sandbox()
    status, body = await call(sb, "POST", "/scenario", body={"name": "happy-path", "run": True})
    assert status == 200 and "后台执行" in body["message"]
    assert "随后按新配置重启" in body["message"]
    await sb.control.settled()
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        try:
            _, body = await call(sb, "GET", "/")
        except aiohttp.ClientConnectionError:  # the roles restart with the base settings when it ends
            await asyncio.sleep(0.1)
            continue
        run = body["data"]["run"]
        if run["state"] != "running":
            break
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.1)
    assert run["state"] == "passed", run
    assert all(e["ok"] for e in run["expectations"])
    status, body = await call(sb, "POST", "/scenario", body={"name": "no-such"})
    assert status == 404 and "找不到场景「no-such」" in body["message"]


async def test_control_plane_and_dashboard_answer_503_until_the_sandbox_is_ready(start_sandbox: StartSandbox) -> None:
    from sandbox.common.ports import free_port
    from sandbox.dashboard.app import DashboardServer

    sb = await start_sandbox(("province",))
    dashboard = DashboardServer(sb, free_port())
    await dashboard.start()
    try:
        sb.ready = False  # as `sandbox serve` keeps it until its banner
        for method, path, body in (("POST", "/scenario", {"name": "happy-path"}), ("POST", "/reset", {}),
                                   ("GET", "/", None)):
            status, answer = await call(sb, method, path, "province", body)
            assert status == 503 and answer["message"] == "沙箱正在启动，各角色尚未就绪，请稍后重试"
        async with aiohttp.ClientSession() as s, s.get(dashboard.url + "api/state") as r:
            assert r.status == 503 and r.headers["Retry-After"] == "1"
            assert (await r.json())["message"] == "沙箱正在启动，各角色尚未就绪，请稍后重试"
        sb.ready = True
        status, answer = await call(sb, "GET", "/", "province")
        assert status == 200 and answer["message"] == "沙箱状态"
    finally:
        await dashboard.stop()
