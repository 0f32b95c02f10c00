"""The pytest plugin as an integrator's suite meets it: generated test files run by pytester — fixture scopes,
the scenario marker, pytest-asyncio auto and strict mode and no pytest-asyncio at all, two xdist workers, and
a teardown that leaves no port, thread or temporary folder behind."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest

pytest_plugins = ("pytester",)

COMMON = '''
import json, os
from pathlib import Path
from sandbox.api import assert_accepted

def note(name, sb):
    path = Path(os.environ["IMGCLOUD_NOTES"]) / f"{name}.json"
    path.write_text(json.dumps({"center": sb.urls.center, "province": sb.urls.province,
                                "hospital": sb.urls.hospital, "data": str(sb.settings.data_dir),
                                "seed": sb.settings.seed}))
'''


@pytest.fixture
def notes(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    folder = pytester.path / "notes"
    folder.mkdir()
    monkeypatch.setenv("IMGCLOUD_NOTES", str(folder))
    return folder


def read(notes: Path, name: str) -> dict[str, str]:
    value: dict[str, str] = json.loads((notes / f"{name}.json").read_text())
    return value


def refused(url: str) -> bool:
    host, port = url.split("//")[1].split(":")
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex((host, int(port))) != 0


def test_function_and_session_scopes_and_the_reset_between_tests(pytester: pytest.Pytester, notes: Path) -> None:
    pytester.makepyfile(COMMON + '''
def test_a(imgcloud):
    note("a", imgcloud)
    assert_accepted(imgcloud.post_hop1(imgcloud.messages.hop1(count=2)))
    assert imgcloud.center.summary()["stored"] == 2

def test_b(imgcloud):
    note("b", imgcloud)
    assert imgcloud.center.summary()["stored"] == 0

def test_c(imgcloud_session):
    note("c", imgcloud_session)
    assert_accepted(imgcloud_session.post_hop1(imgcloud_session.messages.hop1(count=2)))
    imgcloud_session.configure(mode="strict")

def test_d(imgcloud_session):
    note("d", imgcloud_session)
    assert imgcloud_session.center.summary()["stored"] == 0   # reset before the test
    assert imgcloud_session.settings.mode == "lenient"         # and the settings restored

def test_e(imgcloud_province):
    note("e", imgcloud_province)
    assert imgcloud_province.urls.center is None and imgcloud_province.urls.hop2
    assert_accepted(imgcloud_province.post_hop2(imgcloud_province.messages.hop2(count=3)))
    assert imgcloud_province.province.count() == 3
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)
    a, b, c, d = (read(notes, n) for n in "abcd")
    assert a["center"] != b["center"] and a["data"] != b["data"]  # function scope: a sandbox per test
    assert c["center"] == d["center"]  # session scope: one sandbox, reset between tests
    assert all(not Path(n["data"]).exists() for n in (a, b, c, d))  # temporary folders removed


def test_the_scenario_marker_loads_settings_and_faults_for_one_test(pytester: pytest.Pytester, notes: Path) -> None:
    pytester.makepyfile(COMMON + '''
import pytest

@pytest.mark.imgcloud_scenario("province-partial-failure")
def test_marked(imgcloud_session):
    note("marked", imgcloud_session)
    message = imgcloud_session.messages.hop1(count=6)
    assert_accepted(imgcloud_session.post_hop1(message))
    second = message["data"][1]["hiImgIndx"]
    view = imgcloud_session.wait_until(lambda: (imgcloud_session.center.exam(second) or {}).get("forward", {})
                                       .get("state") == "failed" and imgcloud_session.center.exam(second))
    assert view["forward"]["provinceSuccFlag"] == "-1"

def test_unmarked(imgcloud_session):
    note("unmarked", imgcloud_session)
    message = imgcloud_session.messages.hop1(count=6)
    assert_accepted(imgcloud_session.post_hop1(message))
    for rec in message["data"]:
        imgcloud_session.wait_until(lambda rec=rec: imgcloud_session.province.index(rec["hiImgIndx"]))

@pytest.mark.imgcloud_scenario("no-such-scenario")
def test_unknown(imgcloud):
    pass
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*no-such-scenario*"])
    assert read(notes, "marked")["seed"] == 2002 and read(notes, "unmarked")["seed"] != 2002


ASYNC_TEST = COMMON + '''
import aiohttp, pytest

{mark}
async def test_async_client_against_the_fixture(imgcloud):
    message = imgcloud.messages.hop1(count=2)
    async with aiohttp.ClientSession() as session:
        async with session.post(imgcloud.urls.hop1, json=message) as resp:
            answer = await resp.json()
    assert_accepted(answer)

def test_sync(imgcloud_center):
    assert_accepted(imgcloud_center.post_hop1(imgcloud_center.messages.hop1(count=1)))
'''


@pytest.mark.parametrize("mode", ["auto", "strict"])
def test_pytest_asyncio_auto_and_strict_mode(pytester: pytest.Pytester, notes: Path, mode: str) -> None:
    pytester.makepyfile(ASYNC_TEST.replace("{mark}", "" if mode == "auto" else "@pytest.mark.asyncio"))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-o", f"asyncio_mode={mode}")
    result.assert_outcomes(passed=2)


def test_without_pytest_asyncio(pytester: pytest.Pytester, notes: Path) -> None:
    pytester.makepyfile(COMMON + '''
def test_sync(imgcloud):
    assert_accepted(imgcloud.post_hop1(imgcloud.messages.hop1(count=1)))
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:asyncio", "-p", "no:aiohttp")
    result.assert_outcomes(passed=1)


def test_two_xdist_workers_do_not_clash(pytester: pytest.Pytester, notes: Path) -> None:
    pytester.makepyfile(COMMON + '''
import pytest

@pytest.mark.parametrize("n", range(2))
def test_each(imgcloud, n):
    note(f"x{n}", imgcloud)
    assert_accepted(imgcloud.post_hop1(imgcloud.messages.hop1(count=2)))

@pytest.mark.parametrize("n", range(4))
def test_session(imgcloud_session, n):
    note(f"s{n}", imgcloud_session)
    assert_accepted(imgcloud_session.post_hop1(imgcloud_session.messages.hop1(count=1)))
    assert imgcloud_session.center.summary()["stored"] == 1
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=6)
    seen = [read(notes, f"x{n}") for n in range(2)]
    assert len({s["center"] for s in seen}) == 2 and len({s["data"] for s in seen}) == 2
    sessions = {read(notes, f"s{n}")["center"] for n in range(4)}
    assert 1 <= len(sessions) <= 2  # one session sandbox per worker


def test_teardown_leaves_no_port_thread_or_folder(pytester: pytest.Pytester, notes: Path) -> None:
    before = {t.ident for t in threading.enumerate()}
    pytester.makepyfile(COMMON + '''
def test_whole(imgcloud):
    note("whole", imgcloud)
    assert_accepted(imgcloud.post_hop1(imgcloud.messages.hop1(count=1)))

def test_center(imgcloud_center):
    note("center", imgcloud_center)   # its file server starts on demand and must stop too
    imgcloud_center.messages.hop1(count=1)
''')
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    left = [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    assert not [t.name for t in left if not t.daemon or t.name.startswith("imgcloud")], left
    for name in ("whole", "center"):
        n = read(notes, name)
        assert not Path(n["data"]).exists()
        for role in ("center", "province", "hospital"):
            if n[role]:
                assert refused(n[role]), (name, role)
