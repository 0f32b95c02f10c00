"""Scenario results as JUnit XML: one testsuite per scenario, one testcase per step failure and expectation."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from sandbox.scenario.runner import RunResult


def junit_tree(results: list[RunResult]) -> ET.ElementTree:
    root = ET.Element("testsuites", name="sandbox scenarios")
    total = failures = 0
    for r in results:
        cases = len(r.checks) + 1
        failed = sum(not c.ok for c in r.checks) + any(s.error for s in r.steps)
        total += cases
        failures += failed
        suite = ET.SubElement(root, "testsuite", name=r.scenario.name, tests=str(cases), failures=str(failed),
                              errors="0", skipped="0", time=f"{r.seconds:.3f}")
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="title", value=f"{r.scenario.title.zh} / {r.scenario.title.en}")
        ET.SubElement(props, "property", name="seed", value=str(r.scenario.seed))
        steps = ET.SubElement(suite, "testcase", classname=f"scenarios.{r.scenario.name}", name="步骤",
                              time=f"{sum(s.seconds for s in r.steps):.3f}")
        broken = [s for s in r.steps if s.error]
        if broken:
            f = ET.SubElement(steps, "failure", message=f"{broken[0].label}：{broken[0].error}")
            f.text = "\n".join(f"{s.label}：{s.error}" for s in broken)
        ET.SubElement(steps, "system-out").text = "\n".join(f"{s.label}（{s.seconds:.2f} 秒）" for s in r.steps)
        for c in r.checks:
            case = ET.SubElement(suite, "testcase", classname=f"scenarios.{r.scenario.name}", name=c.text, time="0")
            if not c.ok:
                ET.SubElement(case, "failure", message=f"实际 {c.observed_text}").text = (
                    f"预期：{c.text}\n实际：{c.observed_text}")
            else:
                ET.SubElement(case, "system-out").text = f"实际 {c.observed_text}"
    root.set("tests", str(total))
    root.set("failures", str(failures))
    return ET.ElementTree(root)


def write_junit(results: list[RunResult], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tree = junit_tree(results)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
