"""A hop-1 record that tries to use the center's fetcher against the machine it runs on (SSRF), files that
only look like what they claim, archives and senders that would fill the center, and a slow origin."""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections.abc import AsyncIterator
from typing import Any

import pikepdf
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from sandbox.center import allowlist, create_app
from sandbox.center.allowlist import normalise_host, parse_entry
from sandbox.config import Settings
from tests.center.helpers import HOP1_PATH, FileServer, answers, instance, message, pdf, record, study, zip_of


async def send(center: TestClient, msg: dict[str, Any]) -> list[dict[str, Any]]:
    resp = await center.post(HOP1_PATH, json=msg)
    assert resp.status == 200
    body = await resp.json()
    assert body["data"], body
    return answers(body)


async def status(center: TestClient, key: str) -> dict[str, Any]:
    body: dict[str, Any] = await (await center.get(f"/api/exams/{key}")).json()
    return body


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names the fetcher looked up in DNS (none of the tests below may need one)."""
    seen: list[str] = []

    async def lookup(host: str, port: int) -> list[tuple[Any, ...]]:
        seen.append(host)
        raise OSError("no DNS in tests")

    monkeypatch.setattr(allowlist, "lookup", lookup)
    return seen


def test_hosts_are_normalised_before_they_are_compared() -> None:
    for spelling in ("127.0.0.1", "0177.0.0.1", "2130706433", "0x7f.1", "127.1", "0x7F000001", "[::ffff:127.0.0.1]"):
        assert normalise_host(spelling) == "127.0.0.1", spelling
    assert normalise_host("LocalHost.") == "localhost" and normalise_host("[::1]") == "::1"
    assert normalise_host("files.hosp.example.") == "files.hosp.example"
    assert [str(e) for e in parse_entry("files.hosp.example")] == ["files.hosp.example:80", "files.hosp.example:443"]
    assert [str(e) for e in parse_entry("0177.0.0.1:*")] == ["127.0.0.1:*"]
    with pytest.raises(ValueError, match="端口"):
        parse_entry("127.0.0.1:http")
    assert [str(e) for e in parse_entry("影像.example:8080")] == ["影像.example:8080"]  # IDN, checked as IDNA
    for nonsense in ("bad host::", "a..b:80", "[::1", "files/x:80"):
        with pytest.raises(ValueError, match="主机|配对"):
            parse_entry(nonsense)


async def test_the_default_list_is_the_hospital_file_server_alone(aiohttp_client: Any, make_settings: Any,
                                                                  lookups: list[str]) -> None:
    hospital, other = await FileServer().start(), await FileServer().start()
    try:
        assert hospital.server is not None
        settings = make_settings(allowed_fetch_hosts=(), hospital_port=hospital.server.port)
        center = await aiohttp_client(create_app(settings), server_kwargs={"port": settings.center_port})
        ok = record(settings, 1, hospital.add("/r1.pdf", pdf(), "application/pdf"),
                    hospital.add("/s1.dcm", instance(n=1), "application/dicom"))
        assert (await send(center, message(settings, [ok])))[0]["succFlag"] == "1"
        elsewhere = record(settings, 2, other.add("/r2.pdf", pdf(), "application/pdf"),
                           other.add("/s2.dcm", instance(n=2), "application/dicom"))
        answer = (await send(center, message(settings, [elsewhere], seq=2)))[0]
        assert answer["succFlag"] == "-1" and "不在允许取文件的主机与端口列表" in answer["message"]
        assert all(b.hits == 0 for b in other.blobs.values())  # never contacted
        assert lookups == []
    finally:
        await hospital.close()
        await other.close()


@pytest.fixture
async def wide(aiohttp_client: Any, make_settings: Any) -> AsyncIterator[tuple[TestClient, Settings]]:
    """A center told to fetch from any port of loopback, by address and by name."""
    settings = make_settings(allowed_fetch_hosts=("127.0.0.1:*", "localhost:*"), fetch_timeout_s=5.0)
    center = await aiohttp_client(create_app(settings), server_kwargs={"port": settings.center_port})
    yield center, settings


async def test_the_centers_own_ports_are_never_fetched_in_any_spelling(wide: tuple[TestClient, Settings],
                                                                       lookups: list[str]) -> None:
    center, settings = wide
    key = settings.hospitals[0].key
    seq = 0
    for n, host in enumerate(["127.0.0.1", "0177.0.0.1", "2130706433", "0x7f.1", "localhost", "localhost.",
                              "LOCALHOST", "[::ffff:127.0.0.1]"], start=10):
        for port in (settings.center_port, settings.province_port, settings.dicom_port):
            url = f"http://{host}:{port}/_sandbox/"
            seq += 1
            answer = (await send(center, message(settings, [record(settings, n, url, url)], seq=seq)))[0]
            assert answer["succFlag"] == "-1", (host, port, answer)
            assert "是沙箱自己的服务" in answer["message"] and key not in answer["message"], answer
    assert lookups == []  # localhost and localhost. never went to DNS


async def test_a_name_not_on_the_list_is_refused_without_a_lookup(aiohttp_client: Any, make_settings: Any,
                                                                 files: FileServer, lookups: list[str]) -> None:
    settings = make_settings(allowed_fetch_hosts=("127.0.0.1:*",))
    center = await aiohttp_client(create_app(settings))
    assert files.server is not None
    port = files.server.port
    files.add("/s.dcm", instance(n=3), "application/dicom")
    for n, host in enumerate(["localhost.", "metadata.google.internal", "169.254.169.254", "127.0.0.1.nip.io"], 3):
        url = f"http://{host}:{port}/s.dcm"
        answer = (await send(center, message(settings, [record(settings, n, url, url)], seq=n)))[0]
        assert answer["succFlag"] == "-1" and "不在允许取文件的主机与端口列表" in answer["message"], answer
    assert lookups == [] and files.blobs["/s.dcm"].hits == 0
    # the same server by an allowed address in another spelling: normalised, then fetched
    url = f"http://0177.0.0.1:{port}/s.dcm"
    rec = record(settings, 3, files.add("/r.pdf", pdf(), "application/pdf").replace("127.0.0.1", "2130706433"), url)
    assert (await send(center, message(settings, [rec], seq=9)))[0]["succFlag"] == "1"
    assert files.blobs["/s.dcm"].hits == 1


async def test_link_local_and_unspecified_addresses_are_refused_even_when_listed(aiohttp_client: Any,
                                                                                 make_settings: Any) -> None:
    settings = make_settings(allowed_fetch_hosts=("169.254.169.254:80", "0.0.0.0:*"))
    center = await aiohttp_client(create_app(settings))
    for n, url in enumerate(["http://169.254.169.254/latest/meta-data/", "http://0.0.0.0:9/x"], 1):
        answer = (await send(center, message(settings, [record(settings, n, url, url)], seq=n)))[0]
        assert answer["succFlag"] == "-1" and "链路本地" in answer["message"], answer


async def test_answers_never_echo_fetched_bytes(center: TestClient, files: FileServer, settings: Settings) -> None:
    secret = b"SECRET-PAYLOAD-7f3a"
    recs = [record(settings, 20, files.add("/r20.pdf", b"<html>" + secret, "application/pdf"),
                   files.add("/s20.dcm", instance(n=20), "application/dicom")),
            record(settings, 22, files.add("/r22.pdf", pdf(), "application/pdf"),
                   files.add("/s22.dcm", b"%PDF-1.7 " + secret, "application/dicom"))]
    text = str(await send(center, message(settings, recs)))
    assert "不是 PDF 文件" in text and "不是 DICOM 文件" in text and "SECRET" not in text

    async def banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_SECRET-BANNER\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(banner, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}/x"
        text = str(await send(center, message(settings, [record(settings, 21, url, url)], seq=2)))
        assert "不是合法的 HTTP/1.1 应答" in text and "SECRET" not in text and "OpenSSH" not in text
    finally:
        server.close()
        await server.wait_closed()


async def test_a_pdf_must_open_with_a_page(center: TestClient, files: FileServer, settings: Settings) -> None:
    fake = b"%PDF-1.4\n" + bytes(3 * 1024 * 1024)  # the header and zeros: beyond BIG_BODY, parsed in a thread
    empty = io.BytesIO()
    pikepdf.new().save(empty)
    for n, (body, words) in enumerate([(fake, "PDF 无法解析"), (empty.getvalue(), "PDF 没有任何页面")], 30):
        rec = record(settings, n, files.add(f"/r{n}.pdf", body, "application/pdf"),
                     files.add(f"/s{n}.dcm", instance(n=n), "application/dicom"))
        answer = (await send(center, message(settings, [rec], seq=n)))[0]
        assert answer["succFlag"] == "0" and words in answer["message"], answer
        assert (await status(center, rec["hiImgIndx"]))["report"] == {"pdf": False, "pdfBytes": None}


def _bomb(size: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("bomb.dcm", "w", force_zip64=True) as fh:
            chunk = bytes(1024 * 1024)
            for _ in range(size // len(chunk)):
                fh.write(chunk)
    return buf.getvalue()


async def test_archives_are_bounded_before_anything_is_unpacked(aiohttp_client: Any, make_settings: Any,
                                                                files: FileServer) -> None:
    settings = make_settings(archive_max_members=3, archive_max_bytes=200_000)
    center = await aiohttp_client(create_app(settings))
    bomb = _bomb(32 * 1024 * 1024)  # 32 MiB of zeros in about 32 KB
    cases = [
        (bomb, "疑似压缩炸弹"),
        (zip_of({f"{i}.dcm": d for i, d in enumerate(study(41, 4))}), "超过上限 3 个（archive_max_members）"),
        (zip_of({"big.dcm": instance(n=42, size=320)}), "archive_max_bytes"),
    ]
    for n, (body, words) in enumerate(cases, 40):
        rec = record(settings, n, files.add(f"/r{n}.pdf", pdf(), "application/pdf"),
                     files.add(f"/s{n}.zip", body, "application/zip"))
        answer = (await send(center, message(settings, [rec], seq=n)))[0]
        assert answer["succFlag"] == "-1" and words in answer["message"], answer
    summary = await (await center.get("/api/summary")).json()
    assert summary["rejected"]["byReason"] == {"too_large": 3} and summary["instances"] == 0


async def test_message_and_institution_quotas(aiohttp_client: Any, make_settings: Any, files: FileServer) -> None:
    report, image = pdf(), instance(n=50)
    one = len(report) + len(image)
    settings = make_settings(quota_message_bytes=one + 100, quota_institution_bytes=2 * one + 100)
    center = await aiohttp_client(create_app(settings))

    def rec(n: int) -> dict[str, Any]:
        return record(settings, n, files.add(f"/r{n}.pdf", report, "application/pdf"),
                      files.add(f"/s{n}.dcm", instance(n=n), "application/dicom"))

    first = await send(center, message(settings, [rec(50), rec(51)], seq=1))
    flags = sorted(a["succFlag"] for a in first)
    assert flags[-1] == "1" and any("quota_message_bytes" in a["message"] for a in first), first
    second = await send(center, message(settings, [rec(52)], seq=2))
    assert second[0]["succFlag"] in ("0", "1")  # the institution still has room for one exam
    third = await send(center, message(settings, [rec(53)], seq=3))
    code = settings.hospitals[0].code
    assert third[0]["succFlag"] == "-1" and "quota_institution_bytes" in third[0]["message"]
    assert code in third[0]["message"]
    # another institution has its own quota; a reset gives the first its room back
    other = settings.hospitals[1]
    fourth = await send(center, message(settings, [rec(54)], seq=4, hospital=other, infCode=other.code))
    assert fourth[0]["succFlag"] == "1", fourth
    assert (await center.post("/sandbox/reset", json={})).status == 200
    assert (await send(center, message(settings, [rec(55)], seq=5)))[0]["succFlag"] == "1"


async def test_a_message_whose_files_stall_does_not_hold_the_next_one(aiohttp_client: Any,
                                                                      make_settings: Any) -> None:
    gate = asyncio.Event()
    hits: list[str] = []
    report, image = pdf(), instance(n=60)

    async def handle(request: web.Request) -> web.Response:
        hits.append(request.path)
        if request.path.startswith("/slow/"):
            await gate.wait()
        kind = "application/pdf" if request.path.endswith(".pdf") else "application/dicom"
        return web.Response(body=report if kind == "application/pdf" else image, content_type=kind)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    settings = make_settings(fetch_timeout_s=120.0, fetch_per_message=4)
    center = await aiohttp_client(create_app(settings))
    try:
        base = f"http://127.0.0.1:{server.port}"
        slow = [record(settings, 60 + i, f"{base}/slow/r{i}.pdf", f"{base}/slow/s{i}.dcm") for i in range(20)]
        stalled = asyncio.create_task(send(center, message(settings, slow, seq=1)))
        deadline = asyncio.get_running_loop().time() + 60
        while len(hits) < settings.fetch_per_message:
            assert asyncio.get_running_loop().time() < deadline and not stalled.done()
            await asyncio.sleep(0.02)
        legit = record(settings, 90, f"{base}/fast/r.pdf", f"{base}/fast/s.dcm")
        answer = (await asyncio.wait_for(send(center, message(settings, [legit], seq=2)), 60))[0]
        assert answer["succFlag"] in ("0", "1"), answer  # answered while the other message still waits
        assert not stalled.done()
        assert len([h for h in hits if h.startswith("/slow/")]) == settings.fetch_per_message  # its share only
        gate.set()
        assert len(await asyncio.wait_for(stalled, 60)) == 20
    finally:
        gate.set()
        await server.close()
