"""`sandbox run SCENARIO…`: run scenarios in-process on free ports; ✓/✗ per expectation with the observed value.

Exit status: 0 when every step succeeded and every expectation held, 1 otherwise, 2 when a scenario file is
unusable.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from sandbox.common.loop import run as run_loop
from sandbox.scenario import library
from sandbox.scenario.junit import write_junit
from sandbox.scenario.model import Scenario, ScenarioError
from sandbox.scenario.runner import RunResult, run_scenario


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="运行故障场景并检查预期 / run scenarios and check their expectations",
                       description="在本进程中用空闲端口和临时数据目录运行场景，逐条打印预期（✓/✗）与实际值。")
    p.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                   help="场景名称或文件（.yaml/.toml）；不给则运行整个场景库")
    p.add_argument("--dir", type=Path, default=None, help="场景库目录（默认 ./scenarios）")
    p.add_argument("--junit", type=Path, metavar="FILE", help="把结果写成 JUnit XML")
    p.add_argument("--keep", type=Path, metavar="DIR",
                   help="保留每个场景的数据目录与日志：DIR/<场景名>/（journal.db、各角色的数据库与文件），"
                        "供 sandbox journal export --data-dir DIR/<场景名> 使用")
    p.set_defaults(func=run)


def print_result(r: RunResult) -> None:
    sc = r.scenario
    print(f"▶ {sc.name} — {sc.title.zh} / {sc.title.en}")
    for s in r.steps:
        mark = "  " if s.error is None else "✗ "
        print(f"   {mark}{s.label}（{s.seconds:.2f} 秒）")
        if s.error is not None:
            print(f"      步骤失败：{s.error}")
    for c in r.checks:
        print(f"  {'✓' if c.ok else '✗'} {c.text} — 实际 {c.observed_text}")
    verdict = "通过" if r.ok else "未通过"
    print(f"  {verdict}（{r.seconds:.1f} 秒）")
    print()


def keep_dir(root: Path, name: str) -> Path:
    """An empty folder for one scenario's kept data: DIR/<name>, replacing what an earlier --keep left there.
    A folder of that name holding anything else is refused (OSError), never emptied."""
    path = root / name
    if path.exists():
        entries = {p.name for p in path.iterdir()}
        if entries and "journal.db" not in entries:
            raise OSError(f"{path} 已存在且不是之前保留的场景数据目录（没有 journal.db），未覆盖")
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def run(args: argparse.Namespace) -> int:
    try:
        chosen: list[Scenario] = ([library.find(n, args.dir) for n in args.scenarios] if args.scenarios
                                  else library.load_all(args.dir))
    except ScenarioError as exc:
        print(f"sandbox run: {exc}", file=sys.stderr)
        return 2
    if not chosen:
        print("sandbox run: 场景库为空", file=sys.stderr)
        return 2
    if args.keep is not None:
        try:
            kept = [keep_dir(args.keep, sc.name) for sc in chosen]
        except OSError as exc:
            print(f"sandbox run: --keep {args.keep}：{exc}", file=sys.stderr)
            return 2
    t0 = time.perf_counter()
    results: list[RunResult] = []
    for k, scenario in enumerate(chosen):
        result = run_loop(run_scenario(scenario, data_dir=kept[k] if args.keep is not None else None))
        print_result(result)
        if args.keep is not None:
            print(f"  数据目录与日志已保留：{kept[k]}（导出：sandbox journal export --data-dir {kept[k]} "
                  "--no-mask --with-files --out …）\n")
        sys.stdout.flush()
        results.append(result)
    passed = sum(r.ok for r in results)
    print(f"{len(results)} 个场景：{passed} 通过，{len(results) - passed} 未通过（用时 {time.perf_counter() - t0:.1f} 秒）")
    if args.junit:
        write_junit(results, args.junit)
        print(f"JUnit XML：{args.junit}")
    return 0 if passed == len(results) else 1
