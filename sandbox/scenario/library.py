"""The scenario library: the YAML (or TOML) files of a folder, `scenarios/` by default."""

from __future__ import annotations

from pathlib import Path

from sandbox.scenario.model import Scenario, ScenarioError, load

SUFFIXES = (".yaml", ".yml", ".toml")


def default_dir() -> Path:
    """`./scenarios` when it exists, else the library shipped beside the package."""
    here = Path.cwd() / "scenarios"
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[2] / "scenarios"


def files(folder: Path | None = None) -> list[Path]:
    folder = folder or default_dir()
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES and p.is_file())


def load_all(folder: Path | None = None) -> list[Scenario]:
    """Every scenario of the library, in file-name order; raises ScenarioError on the first bad file."""
    return [load(p) for p in files(folder)]


def find(name_or_path: str, folder: Path | None = None) -> Scenario:
    """A scenario by file path, file name (with or without suffix) or `name`."""
    path = Path(name_or_path)
    if path.suffix in SUFFIXES and path.is_file():
        return load(path)
    for p in files(folder):
        if p.stem == name_or_path or p.name == name_or_path:
            return load(p)
    for p in files(folder):
        try:
            scenario = load(p)
        except ScenarioError:
            continue
        if scenario.name == name_or_path:
            return scenario
    known = "、".join(p.stem for p in files(folder)) or "（无）"
    raise ScenarioError(name_or_path, [f"找不到场景「{name_or_path}」；场景库 {folder or default_dir()} 中有：{known}"])
