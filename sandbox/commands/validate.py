"""`sandbox validate FILE`: check a message of either hop against the document.

Exit status: 0 valid, 1 invalid, 2 unreadable (missing file, not UTF-8, not JSON, empty).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from sandbox.spec.fields import TRANSACTIONS
from sandbox.spec.index_profiles import DEFAULT_PROFILE, PROFILES
from sandbox.validate import Mode, Report, detect_hop, validate_message

MAX_FILE_BYTES = 64 * 1024 * 1024
LEVEL_TITLES = {"error": "错误", "warning": "警告"}


class Unreadable(Exception):
    """The file cannot be read as a JSON message; the text is the one-line reason."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("validate", help="校验一个报文文件 / validate a message file",
                       description="按接口文档校验第一跳或第二跳报文，列出全部错误与警告。")
    p.add_argument("file", type=Path, help="JSON 报文文件（- 表示标准输入）")
    p.add_argument("--hop", type=int, choices=(1, 2), help="1=saveExamRpotImgInfo, 2=saveExamRpotImgIndx；默认按 infno 判断")
    p.add_argument("--strict", action="store_true", help="严格模式：文档示例的异写一律报错")
    p.add_argument("--json", action="store_true", help="以 JSON 输出结果")
    p.add_argument("--index-profile", default=DEFAULT_PROFILE, choices=sorted(PROFILES), help="索引号编码规则")
    p.set_defaults(func=run)


def load_message(path: Path) -> Any:
    """Read a JSON message, or raise Unreadable with a one-line Chinese reason."""
    try:
        if str(path) == "-":
            raw = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
        else:
            if path.is_dir():
                raise Unreadable(f"{path} 是目录，不是文件")
            with path.open("rb") as fh:
                raw = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError as exc:
        raise Unreadable(f"文件不存在：{path}") from exc
    except OSError as exc:
        raise Unreadable(f"无法读取 {path}：{exc.strerror}") from exc
    if len(raw) > MAX_FILE_BYTES:
        raise Unreadable(f"文件超过 {MAX_FILE_BYTES // 1024 // 1024} MB，不像一个报文")
    if not raw.strip():
        raise Unreadable("文件为空")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Unreadable(f"文件不是 UTF-8 编码（第 {exc.start} 字节）") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise Unreadable(f"不是合法的 JSON：第 {exc.lineno} 行第 {exc.colno} 列 {exc.msg}") from exc
    except RecursionError as exc:
        raise Unreadable("JSON 嵌套过深") from exc


def run(args: argparse.Namespace) -> int:
    try:
        message = load_message(args.file)
    except Unreadable as exc:
        print(f"sandbox validate: {exc}", file=sys.stderr)
        return 2
    hop = args.hop or detect_hop(message)
    guessed = hop is None
    mode = Mode.STRICT if args.strict else Mode.LENIENT
    report = validate_message(message, hop or 1, mode, args.index_profile)
    if args.json:
        out = report.as_dict()
        out["hopDetected"] = not guessed
        print(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        print_report(report, guessed)
    return 0 if report.valid else 1


def print_report(report: Report, guessed: bool) -> None:
    console = Console(highlight=False, width=max(Console().width, 150))
    tx = TRANSACTIONS[report.hop]
    mode = "严格模式" if report.mode is Mode.STRICT else "宽松模式"
    verdict = "[green]有效 valid[/]" if report.valid else "[red]无效 invalid[/]"
    console.print(
        f"第{'一' if report.hop == 1 else '二'}跳 {tx.infno} · {mode} · {len(report.records)} 条记录 · "
        f"data {report.data_chars} 字符 → {verdict}（{len(report.errors)} 个错误，{len(report.warnings)} 个警告）"
    )
    if guessed:
        console.print("[yellow]无法从 infno 或字段判断交易，按第一跳校验；可用 --hop 指定[/]")
    print_answers(console, report)
    problems = report.problems
    if not problems:
        return
    table = Table(show_lines=False)
    for col in ("级别", "位置", "字段", "字段名", "代码", "说明"):
        table.add_column(col, overflow="fold")
    for p in problems:
        style = "red" if p.level == "error" else "yellow"
        table.add_row(
            f"[{style}]{LEVEL_TITLES[p.level]}[/]",
            f"第{p.record}条" if p.record is not None else "报文头",
            p.field or "",
            p.field_name or "",
            p.code + (f" #{p.erratum}" if p.erratum else ""),
            p.message,
        )
    console.print(table)


FLAG_STYLES = {"1": "green", "0": "yellow", "-1": "red"}


def print_answers(console: Console, report: Report) -> None:
    """The succFlag a receiver in this mode would answer each record, and why."""
    if not report.envelope_ok:
        console.print("接收方应答：[magenta]整批拒收[/]（报文头错误，code 非 0），不逐条应答")
        return
    answers = report.answers()
    if not answers:
        return
    table = Table(title="接收方的逐条应答（仅依据报文本身；共享中心取不到文件时还会是 0 或 -1）", show_lines=False)
    for col in ("位置", "succFlag", "原因", "应答信息 message"):
        table.add_column(col, overflow="fold")
    for a in answers:
        style = FLAG_STYLES[a["succFlag"]]
        table.add_row(f"第{a['position']}条", f"[{style}]{a['succFlag']}[/]", a["reason"], a["message"])
    console.print(table)
