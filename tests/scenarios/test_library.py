"""Every scenario of the library runs green through `sandbox run`."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.cli import main
from sandbox.scenario import library

LIBRARY = Path(__file__).resolve().parents[2] / "scenarios"
FILES = library.files(LIBRARY)


def test_the_library_has_at_least_twelve_scenarios_each_described_in_chinese_and_english() -> None:
    scenarios = library.load_all(LIBRARY)
    assert len(scenarios) >= 12
    assert len({s.name for s in scenarios}) == len(scenarios)
    for s in scenarios:
        assert s.title.zh and s.title.en and s.description.zh and s.description.en
        assert any("\u4e00" <= ch <= "\u9fff" for ch in s.description.zh)
        assert not any("\u4e00" <= ch <= "\u9fff" for ch in s.description.en + s.title.en)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_library_scenario_runs_green(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["run", str(path)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "✗" not in out
    assert "1 个场景：1 通过" in out


def test_scenarios_lists_the_library_one_line_each(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenarios", "--dir", str(LIBRARY)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(FILES)
    assert any(line.startswith("happy-path ") and "Happy path" in line and "顺利路径" in line for line in lines)
