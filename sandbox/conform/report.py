"""A conformance report in four forms: the terminal table, JSON, JUnit XML and (in `html.py`) one HTML page."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from rich.console import Console
from rich.table import Table

from sandbox.app import ROLE_TITLES
from sandbox.conform.model import VERDICT_ZH, Report, Result

STYLE = {"pass": "green", "fail": "bold red", "warn": "yellow", "skip": "dim", "error": "bold red"}


def result_line(r: Result) -> str:
    """One progress line while the kit runs."""
    return f"{r.mark} {r.requirement.id}  {r.requirement.title.zh} — {r.observed}"


def print_report(report: Report, console: Console | None = None) -> None:
    """The terminal table: one row per requirement with its mark, source, and what was observed; then the verdict."""
    console = console or Console()
    table = Table(title=f"一致性测试 · {ROLE_TITLES[report.role]}（{report.role}） {report.target}", show_lines=False)
    for col in ("", "编号", "要求", "出处", "级别", "实际"):
        table.add_column(col, overflow="fold")
    for r in report.results:
        table.add_row(f"[{STYLE[r.verdict]}]{r.mark}[/]", r.requirement.id, r.requirement.title.zh,
                      r.requirement.source, "必须" if r.requirement.severity == "required" else "建议",
                      r.observed)
    console.print(table)
    counts = report.counts()
    summary = "，".join(f"{VERDICT_ZH[k]} {v}" for k, v in counts.items() if v)
    verdict = "[green]全部必须项通过[/]" if report.passed else "[bold red]有必须项未通过[/]"
    console.print(f"{verdict}（{summary}；用时 {report.seconds:.1f} 秒）")


def write_json(report: Report, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_json(), ensure_ascii=False, indent=2), encoding="utf-8")


def junit_tree(report: Report) -> ET.ElementTree:
    """One testsuite for the run, one testcase per requirement; warn is a passing case with its text in
    system-out, skip is `skipped`, error is `error`."""
    counts = report.counts()
    root = ET.Element("testsuites", name=f"sandbox conform {report.role}")
    suite = ET.SubElement(root, "testsuite", name=f"conform.{report.role}", tests=str(len(report.results)),
                          failures=str(counts["fail"]), errors=str(counts["error"]), skipped=str(counts["skip"]),
                          time=f"{report.seconds:.3f}", timestamp=report.started)
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="target", value=report.target)
    for k, v in report.options.items():
        ET.SubElement(props, "property", name=k, value=str(v))
    for r in report.results:
        req = r.requirement
        case = ET.SubElement(suite, "testcase", classname=f"conform.{report.role}.{req.id}",
                             name=f"{req.id} {req.title.zh}", time=f"{r.seconds:.3f}")
        evidence = evidence_text(r)
        if r.verdict == "fail":
            ET.SubElement(case, "failure", message=r.observed).text = evidence
        elif r.verdict == "error":
            ET.SubElement(case, "error", message=r.observed).text = evidence
        elif r.verdict == "skip":
            ET.SubElement(case, "skipped", message=r.observed)
        else:
            ET.SubElement(case, "system-out").text = evidence
    root.set("tests", str(len(report.results)))
    root.set("failures", str(counts["fail"]))
    root.set("errors", str(counts["error"]))
    return ET.ElementTree(root)


def evidence_text(r: Result) -> str:
    """Expected, observed and every exchange, as plain text (JUnit bodies, and the HTML page's folded evidence)."""
    lines = [f"出处：{r.requirement.source}", f"预期：{r.requirement.expected.zh}", f"实际：{r.observed}"]
    if r.detail:
        lines.append(r.detail)
    for i, e in enumerate(r.exchanges, 1):
        arrow = "→" if e.direction == "sent" else "←"
        lines.append(f"--- 交互 {i} {arrow} {e.method} {e.url}（{e.at}，{e.seconds:.3f} 秒）")
        if e.request_body:
            lines.append(f"请求：{e.request_body}")
        if e.error:
            lines.append(f"错误：{e.error}")
        else:
            lines.append(f"应答：HTTP {e.status} {e.response_body}")
    return "\n".join(lines)


def write_junit(report: Report, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tree = junit_tree(report)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
