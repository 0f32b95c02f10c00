"""The control plane, the dashboard's actions and the center's maintenance against a browser tab on another
site: a plain form post, DNS rebinding, a non-loopback address without the flag; and the control token."""

from __future__ import annotations

import io
from contextlib import redirect_stderr
from typing import Any

import aiohttp
import pytest

from sandbox.app import Sandbox, SandboxError
from sandbox.cli import main
from sandbox.dashboard.app import create_app as dashboard_app
from sandbox.scenario.driver import Driver
from sandbox.scenario.model import SendStep
from sandbox.serve import ServeOptions, banner
from tests.chain.conftest import StartSandbox

EVIL = "http://evil.example"
FORM = {"Content-Type": "text/plain", "Origin": EVIL}  # what a cross-site <form enctype="text/plain"> sends


async def request(method: str, url: str, headers: dict[str, str] | None = None,
                  data: bytes | None = b"{}") -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.request(method, url, data=data, headers=headers or {}) as r:
        return r.status, await r.json(content_type=None)


async def stored(sb: Sandbox) -> tuple[int, int]:
    hospital = await sb.state("hospital").store.counts()
    center = await sb.state("center").summary()
    return hospital["exams"], center["stored"]


async def filled(start_sandbox: StartSandbox, **settings: Any) -> Sandbox:
    sb = await start_sandbox(**settings)
    await Driver(sb).send(SendStep(count=2))
    assert await stored(sb) == (2, 2)
    return sb


@pytest.mark.parametrize(("path", "role"), [
    ("/_sandbox/reset", "hospital"), ("/_sandbox/faults", "province"), ("/sandbox/reset", "center"),
    ("/api/forward/retry", "center")])
async def test_a_cross_site_form_post_changes_nothing(start_sandbox: StartSandbox, path: str, role: str) -> None:
    sb = await filled(start_sandbox)
    url = sb.url(role) + path
    body = b'{"name":"x","at":"province","kind":"drop"}' if path.endswith("faults") else b"{}"
    for headers, code in [
        (FORM, 1091),  # another site's page
        ({"Content-Type": "text/plain"}, 1092),  # a form without Origin (old browsers, Referer stripped)
        ({"Content-Type": "application/x-www-form-urlencoded", "Referer": EVIL + "/page.html"}, 1091),
        ({"Content-Type": "application/json", "Origin": "null"}, 1091),  # a sandboxed iframe, a file:// page
        ({"Content-Type": "application/json", "Origin": f"http://127.0.0.1:{sb.port(role) + 1}"}, 1091),
    ]:
        status, answer = await request("POST", url, headers, body)
        assert (status, answer["code"], answer["type"]) == (403, code, "error"), (headers, answer)
        assert "Content-Type" in answer["message"] or "来源" in answer["message"]
    assert await stored(sb) == (2, 2)
    assert sb.faults.state() == []  # no fault was loaded either


async def test_the_dashboard_reset_refuses_another_site_but_not_its_own_page(start_sandbox: StartSandbox,
                                                                            aiohttp_client: Any) -> None:
    sb = await filled(start_sandbox)
    dash = await aiohttp_client(dashboard_app(sb))
    resp = await dash.post("/api/reset", data=b"{}", headers=FORM)
    assert resp.status == 403 and (await resp.json())["code"] == 1091
    resp = await dash.post("/api/scenario", data=b'{"name":"happy-path"}', headers={"Content-Type": "text/plain"})
    assert resp.status == 403 and (await resp.json())["code"] == 1092
    assert await stored(sb) == (2, 2)
    own = f"http://127.0.0.1:{sb.settings.dashboard_port}"
    resp = await dash.post("/api/reset", json={}, headers={"Origin": own})
    assert resp.status == 200, await resp.text()
    assert await stored(sb) == (0, 0)


async def test_a_rebound_host_name_reads_no_keys(start_sandbox: StartSandbox) -> None:
    sb = await start_sandbox()
    key = sb.settings.hospitals[0].key
    for role in sb.roles:
        status, body = await request("GET", sb.url(role) + "/_sandbox/", {"Host": "evil.example:8700"}, data=None)
        assert (status, body["code"]) == (403, 1094)
        assert key not in str(body) and "evil.example" in body["message"]
    status, body = await request("GET", sb.url("center") + "/api/summary", {"Host": "attacker.test"}, data=None)
    assert status == 403
    # The sandbox's own names and any IP literal are fine; so is a CLI client's JSON post without Origin.
    for host in ("localhost", f"127.0.0.1:{sb.port('hospital')}", "LOCALHOST.", "[::1]:1"):
        status, body = await request("GET", sb.url("hospital") + "/_sandbox/", {"Host": host}, data=None)
        assert status == 200 and key in str(body), host
    status, body = await request("POST", sb.url("hospital") + "/_sandbox/heal",
                                 {"Content-Type": "application/json"})
    assert (status, body["code"]) == (200, 0)


async def test_with_a_token_the_control_plane_and_actions_need_it(start_sandbox: StartSandbox,
                                                                  aiohttp_client: Any) -> None:
    sb = await filled(start_sandbox, allow_remote=True, control_token="s3cret-token")
    key = sb.settings.hospitals[0].key
    state = sb.url("hospital") + "/_sandbox/"
    for headers in ({}, {"X-Sandbox-Token": "wrong"}):
        status, body = await request("GET", state, headers, data=None)
        assert (status, body["code"]) == (403, 1093) and key not in str(body)
        status, body = await request("POST", sb.url("center") + "/sandbox/reset",
                                     {"Content-Type": "application/json", **headers})
        assert (status, body["code"]) == (403, 1093)
    dash = await aiohttp_client(dashboard_app(sb))
    resp = await dash.post("/api/reset", json={})
    assert resp.status == 403
    seq = (await (await dash.get("/api/exchanges?limit=1")).json())["data"]["items"][0]["seq"]
    assert (await dash.get(f"/api/exchanges/{seq}?mask=0")).status == 403
    assert (await dash.get(f"/api/exchanges/{seq}")).status == 200  # the masked view needs no token
    assert await stored(sb) == (2, 2)
    status, body = await request("GET", state, {"X-Sandbox-Token": "s3cret-token"}, data=None)
    assert status == 200 and key in str(body)
    resp = await dash.post("/api/reset", json={}, headers={"X-Sandbox-Token": "s3cret-token"})
    assert resp.status == 200
    assert await stored(sb) == (0, 0)


def test_a_non_loopback_address_needs_the_flag(make_settings: Any) -> None:
    err = io.StringIO()
    with redirect_stderr(err):
        assert main(["serve", "--host", "0.0.0.0", "--no-dashboard", "--data-dir", str(make_settings().data_dir),
                     "--hospital-port", "1", "--center-port", "2", "--province-port", "3"]) == 2
    assert "--allow-remote" in err.getvalue() and "0.0.0.0" in err.getvalue()
    with pytest.raises(SandboxError):
        Sandbox(make_settings(host="0.0.0.0"))
    # With the flag (not started here: tests listen on loopback only) a token is made and shown with a warning.
    sb = Sandbox(make_settings(host="0.0.0.0", allow_remote=True))
    token = sb.settings.control_token
    assert token and len(token) >= 24 and Sandbox(make_settings(host="0.0.0.0", allow_remote=True)
                                                  ).settings.control_token != token
    text = banner(sb, None, 1.0, ServeOptions(), "http://0.0.0.0:8703/")
    assert "警告" in text and token in text and "X-Sandbox-Token" in text and f"#token={token}" in text


async def test_dicomweb_and_pages_answer_cors_only_to_allowed_origins(start_sandbox: StartSandbox) -> None:
    sb = await filled(start_sandbox)
    center = sb.state("center")
    row = (await center.store.list_exams(0, 1))[1][0]
    study = sb.url("center") + f"/dicomweb/studies/{row['study_uid']}/metadata"
    async with aiohttp.ClientSession() as s:
        for origin, allowed in [(EVIL, False), ("http://localhost:3000", True), ("http://127.0.0.1:8042", True),
                                ("https://localhost:3000", False), ("http://localhost.evil.example", False),
                                (f"http://127.0.0.1:{sb.port('center')}", True)]:
            for method in ("GET", "OPTIONS"):
                async with s.request(method, study, headers={"Origin": origin,
                                                             "Access-Control-Request-Method": "GET"}) as r:
                    granted = r.headers.get("Access-Control-Allow-Origin")
                    assert granted == (origin if allowed else None), (origin, method, granted)
                    assert granted != "*"
        async with s.get(sb.url("center") + "/api/summary", headers={"Origin": "http://localhost:3000"}) as r:
            assert "Access-Control-Allow-Origin" not in r.headers  # the status API is never shared


async def test_exam_ids_are_random_not_a_counter(start_sandbox: StartSandbox) -> None:
    sb = await filled(start_sandbox)
    ids = [r["exam_id"] for r in (await sb.state("center").store.list_exams(0, 10))[1]]
    assert len(ids) == 2 and all(len(i) == 32 for i in ids)
    common = len(next((ids[0][:n] for n in range(32, 0, -1) if ids[1].startswith(ids[0][:n])), ""))
    assert common < 8  # no shared prefix: one report link says nothing about the next
    from sandbox.center.dicomstore import new_id

    many = {new_id()[:8] for _ in range(2000)}
    assert len(many) > 1990
