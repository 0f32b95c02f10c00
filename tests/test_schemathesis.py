"""schemathesis, run as its own command, against the center's and the province's /openapi.json: every
documented operation gets generated requests (bounded in examples and time), and none may answer a server
error, a status code its operation does not document, or a media type it does not document."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sandbox.center import create_app as center_app
from sandbox.config import Settings
from sandbox.province.app import create_app as province_app

ROOT = Path(__file__).resolve().parent.parent
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance"


def _schemathesis() -> str:
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("schemathesis is not installed (pip install -e '.[dev]')")
    return found


async def _run(url: str, report: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        _schemathesis(), "run", url, "--checks", CHECKS, "--max-examples", "3", "--max-time", "15",
        "--workers", "1", "--seed", "20251231", "--request-timeout", "20", "--no-shrink", "--phases",
        "examples,coverage,fuzzing", "--continue-on-failure", "--report", "junit", "--report-junit-path", str(report),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=str(report.parent),  # its cache stays out of the repo
        env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks", "PYTHONPATH": str(ROOT)})
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace")


@pytest.mark.slow
@pytest.mark.parametrize("role", ["center", "province"])
async def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(
        aiohttp_client: Any, make_settings: Callable[..., Settings], tmp_path: Path, role: str) -> None:
    settings = make_settings()
    app, port = ((center_app(settings), settings.center_port) if role == "center"
                 else (province_app(settings), settings.province_port))
    await aiohttp_client(app, server_kwargs={"port": port})
    code, out = await _run(f"http://127.0.0.1:{port}/openapi.json", tmp_path / "junit.xml")
    assert code == 0, out[-6000:]
