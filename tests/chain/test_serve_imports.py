"""`sandbox serve` loads its heavy libraries on first use, not at start (issue 19): importing the serve path
loads none of them, and a serve that has printed its banner has loaded only Faker (its first message's
patient). Checked in fresh interpreters, so that what this test process imported does not count."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
# Libraries that cost tens to hundreds of milliseconds to import; pydicom's pixel codecs come in with pydicom.
HEAVY = ("numpy", "pydicom", "pynetdicom", "gdcm", "pylibjpeg", "openjpeg", "libjpeg", "reportlab", "PIL", "pikepdf",
         "faker", "rich")
SERVE_PATH = ("sandbox.commands.serve", "sandbox.serve", "sandbox.hospital.app", "sandbox.center.app",
              "sandbox.province.app", "sandbox.dashboard.app")


def _loaded(code: str) -> list[str]:
    """Run `code` in a fresh interpreter; the HEAVY packages it had imported (printed last, as JSON)."""
    tail = f"\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))"
    proc = subprocess.run([sys.executable, "-c", code + tail], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    loaded: list[str] = json.loads(proc.stdout.strip().splitlines()[-1])
    return loaded


def test_importing_the_serve_path_loads_no_heavy_library() -> None:
    code = "import sandbox.cli\nsandbox.cli.build_parser(['serve'])\n" + "".join(f"import {m}\n" for m in SERVE_PATH)
    assert _loaded(code) == []


def test_the_cli_imports_only_the_command_it_runs() -> None:
    # `generate` needs pydicom, numpy and reportlab, and `validate` rich: neither is imported to serve.
    code = "import sandbox.cli\nsandbox.cli.build_parser(['serve'])\nimport sys\nassert 'sandbox.commands.generate' " \
           "not in sys.modules and 'sandbox.commands.validate' not in sys.modules\n"
    assert _loaded(code) == []
    assert "rich" in _loaded("import sandbox.cli\nsandbox.cli.build_parser(['--help'])\n")


def test_a_serve_that_printed_its_banner_has_loaded_only_faker(tmp_path: Path) -> None:
    """The real `serve` coroutine, every role and the dashboard, stopped as soon as the banner is written:
    what it loaded is what the banner waited for. (The first message's files are written after the banner.)"""
    ports = {r: free_port() for r in ("hospital", "center", "province", "dicom", "dashboard")}
    code = f"""
import asyncio, io
from pathlib import Path
from sandbox.common.loop import run
from sandbox.config import Settings
from sandbox.serve import ServeOptions, serve

async def main():
    stop = asyncio.Event()
    class Out(io.StringIO):
        def write(self, text):
            if "已就绪" in text and not stop.is_set():
                import json, sys
                print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))
                stop.set()
            return super().write(text)
    settings = Settings(data_dir=Path({str(tmp_path / "data")!r}), hospital_port={ports["hospital"]},
                        center_port={ports["center"]}, province_port={ports["province"]},
                        dicom_port={ports["dicom"]}, dashboard_port={ports["dashboard"]})
    await serve(settings, ServeOptions(), out=Out(), stop=stop)

run(main())
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    at_banner = json.loads(proc.stdout.strip().splitlines()[0])
    assert at_banner == ["faker"]
    # After the banner the first message's files were written (the stop waited for them): they exist.
    files = list((tmp_path / "data" / "hospital" / "files").glob("*/report.pdf"))
    assert len(files) == 1 and files[0].read_bytes().startswith(b"%PDF")
