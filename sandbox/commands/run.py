"""`sandbox run SCENARIO…`: run scenarios in-process on free ports; ✓/✗ per expectation with the observed value.

Exit status: 0 when every step succeeded and every expectation held, 1 otherwise, 2 when a scenario file is
unusable.
"""

from __future__ import annotations

import argparse
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
    t0 = time.perf_counter()
    results: list[RunResult] = []
    for scenario in chosen:
        result = run_loop(run_scenario(scenario))
        print_result(result)
        sys.stdout.flush()
        results.append(result)
    passed = sum(r.ok for r in results)
    print(f"{len(results)} 个场景：{passed} 通过，{len(results) - passed} 未通过（用时 {time.perf_counter() - t0:.1f} 秒）")
    if args.junit:
        write_junit(results, args.junit)
        print(f"JUnit XML：{args.junit}")
    return 0 if passed == len(results) else 1
