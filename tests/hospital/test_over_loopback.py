"""The hospital on a real loopback socket: a DICOMweb client retrieves its studies, and `sandbox send`
drives a center that fetches the files while the send runs."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from dicomweb_client.api import DICOMwebClient

from sandbox.cli import main
from sandbox.config import Settings
from sandbox.hospital.app import create_app
from sandbox.hospital.domain import Hospital
from sandbox.spec.fields import HOP1
from sandbox.typedefs import HOSPITAL
from tests.conftest import free_port

from .conftest import TINY, FakeCenter


async def test_dicomweb_client_retrieves_the_study_named_in_imgInfoDcm(hospital_settings: Settings) -> None:
    server = TestServer(create_app(hospital_settings, seed=4, image_spec=TINY), host="127.0.0.1",
                        port=hospital_settings.hospital_port)
    await server.start_server()
    try:
        hospital: Hospital = server.app[HOSPITAL]
        exams = await hospital.generate_exams(2)
        for exam in exams:
            url = exam.record(hospital.base_url)["imgInfoDcm"]
            assert url.startswith(f"http://127.0.0.1:{hospital_settings.hospital_port}/dicomweb/studies/")
            client = DICOMwebClient(url=f"{hospital.base_url}/dicomweb")
            instances = await asyncio.to_thread(client.retrieve_study, exam.study_uid)
            expected = await hospital.store.instances(exam.study_uid)
            assert sorted(ds.SOPInstanceUID for ds in instances) == sorted(r["sop_uid"] for r in expected)
            assert all(ds.PatientID == exam.patient_id for ds in instances)
    finally:
        await server.close()


@pytest.fixture
def threaded_center() -> Iterator[FakeCenter]:
    """A fake center on its own thread and loop, so the synchronous CLI can talk to it."""
    center = FakeCenter(fetch=True)
    port = free_port()
    center.url = f"http://127.0.0.1:{port}"
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    app = web.Application()
    app.router.add_post(HOP1.path, center.handle)
    runner = web.AppRunner(app)

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield center
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


ARGS = ["--count", "3", "--seed", "2", "--file-port", "0", "--slices", "3", "--matrix", "32"]


def test_send_command_serves_files_during_the_send_and_prints_the_summary(
    threaded_center: FakeCenter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["send", "--to", threaded_center.url, "--data-dir", str(tmp_path), *ARGS])
    out = capsys.readouterr().out
    assert code == 0, out
    assert len(threaded_center.requests) == 1 and len(threaded_center.requests[0]["data"]) == 3
    assert [(k, s) for k, s, _ in threaded_center.fetched] == [("examRpotPdfI", 200), ("imgInfoDcm", 200)] * 3
    assert all(t.startswith("multipart/related") for k, _, t in threaded_center.fetched if k == "imgInfoDcm")
    assert "succFlag 统计" in out and "保存数据成功" in out and "3 条记录" in out


def test_send_command_exits_1_when_a_record_fails(
    threaded_center: FakeCenter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    threaded_center.script = ["drop-second"]
    code = main(["send", "--to", threaded_center.url, "--data-dir", str(tmp_path), "--json", *ARGS])
    out = capsys.readouterr().out
    assert code == 1
    assert '"-1": 1' in out and "校验位错误" in out


def test_send_command_exits_2_with_one_chinese_line_when_the_center_is_unreachable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code = main(["send", "--to", url, "--data-dir", str(tmp_path), "--retries", "2", *ARGS])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("sandbox send: 无法连接地方影像云数据共享中心")
