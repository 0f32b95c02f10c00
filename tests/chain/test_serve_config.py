"""`sandbox serve` configured from a TOML file plus flags, with the demo trickling exams; run in-process."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import aiohttp

from sandbox.config import load_settings
from sandbox.serve import ServeOptions, serve
from tests.conftest import free_port

TOML = """
seed = 4242
mode = "strict"
response_style = "summary"
hospital_port = {hospital}
center_port = {center}
province_port = {province}
dicom_port = {dicom}
data_dir = "{data}"

[[institutions]]
code = "H51082100009"
name = "剑阁县人民医院"
key = "JGXRMYY-2025-KEY"
role = "hospital"
uscc = "125108214507230092"
admdvs = "510823"
hosp_lv = "05"

[[institutions]]
code = "C51080000001"
name = "广元市地方影像云数据共享中心"
key = "CENTER-KEY-2025"
role = "center"
uscc = "12510800MB0L310038"
"""


async def wait_for_text(out: io.StringIO, text: str, timeout: float = 30.0) -> str:
    deadline = asyncio.get_running_loop().time() + timeout
    while text not in out.getvalue():
        assert asyncio.get_running_loop().time() < deadline, out.getvalue()
        await asyncio.sleep(0.05)
    return out.getvalue()


async def test_toml_configuration_flags_and_demo(tmp_path: Path) -> None:
    ports = {r: free_port() for r in ("hospital", "center", "province", "dicom")}
    config = tmp_path / "sandbox.toml"
    config.write_text(TOML.format(data=tmp_path / "data", **ports), encoding="utf-8")
    settings = load_settings(config, seed=99)  # a flag overrides the file
    assert settings.seed == 99 and str(settings.mode) == "strict"

    out, stop = io.StringIO(), asyncio.Event()
    task = asyncio.create_task(serve(settings, ServeOptions(demo=True, demo_interval=0.2, demo_batch=2, dashboard=False),
                                     out=out, stop=stop))
    try:
        text = await wait_for_text(out, "按 Ctrl-C 停止")
        assert "种子 99 · 严格模式 · 汇总应答（文档示例）" in text
        assert "医疗机构  H51082100009  key JGXRMYY-2025-KEY  剑阁县人民医院" in text
        assert "共享中心  C51080000001  key CENTER-KEY-2025" in text
        assert f"http://127.0.0.1:{ports['center']}/mie/api/mie/saveExamRpotImgInfo" in text
        assert "演示：医疗机构每 0.2 秒上传 2 条合成检查" in text

        first = json.loads((tmp_path / "data" / "first-message.json").read_text(encoding="utf-8"))
        assert first["infCode"] == "H51082100009" and first["key"] == "JGXRMYY-2025-KEY"
        async with aiohttp.ClientSession() as s, s.post(
                f"http://127.0.0.1:{ports['center']}/mie/api/mie/saveExamRpotImgInfo", json=first) as r:
            answer = await r.json()
        # The document's example style: one entry, null index (hop 1 spells it hiImgIdx).
        assert answer["data"] == [{"hiImgIdx": None, "succFlag": "1", "message": "保存数据成功"}]

        await wait_for_text(out, "[演示]")
        assert "医疗机构已发送 1 个报文、2 条记录" in out.getvalue()
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 30) == 0
    assert out.getvalue().rstrip().endswith(f"已停止，数据保存在 {tmp_path / 'data'}")
