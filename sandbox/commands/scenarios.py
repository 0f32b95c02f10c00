"""`sandbox scenarios`: the scenario library, one line each."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sandbox.scenario import library
from sandbox.scenario.model import ScenarioError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("scenarios", help="列出场景库 / list the scenario library",
                       description="列出场景库中的场景，每个一行：名称、中文标题 / 英文标题。")
    p.add_argument("--dir", type=Path, default=None, help="场景库目录（默认 ./scenarios）")
    p.add_argument("-v", "--verbose", action="store_true", help="同时显示中英文说明")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    paths = library.files(args.dir)
    if not paths:
        print(f"sandbox scenarios: 场景库 {args.dir or library.default_dir()} 中没有场景", file=sys.stderr)
        return 1
    status = 0
    width = max(len(p.stem) for p in paths)
    for path in paths:
        try:
            sc = library.load(path)
        except ScenarioError as exc:
            print(f"{path.stem:<{width}}  ✗ {exc}")
            status = 1
            continue
        print(f"{sc.name:<{width}}  {sc.title.zh} / {sc.title.en}")
        if args.verbose:
            print(f"{'':<{width}}  {sc.description.zh}")
            print(f"{'':<{width}}  {sc.description.en}")
    return status
