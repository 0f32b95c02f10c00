"""`sandbox journal export|summary`: the recorded exchanges of every hop, from the journal's SQLite file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from sandbox.app import JOURNAL_FILE
from sandbox.common.loop import run as run_loop
from sandbox.journal.export import FORMATS, write_har, write_jsonl
from sandbox.journal.files import HOSPITAL_DB, HOSPITAL_DIR, Bundle, bundle_dir, bundle_files
from sandbox.journal.store import Journal

OUTCOME_TITLES = {"ok": "成功", "partial": "部分失败", "failed": "全部失败", "rejected": "整批拒收", "transport": "传输故障"}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("journal", help="导出或汇总交互日志 / export or summarise the journal",
                       description="读取数据目录中的 journal.db：导出为 JSON Lines 或 HAR，或按跳与结果汇总。")
    jsub = p.add_subparsers(dest="journal_command", metavar="ACTION")
    e = jsub.add_parser("export", help="导出日志（默认对个人信息脱敏）")
    e.add_argument("--format", choices=FORMATS, default="jsonl", help="jsonl（默认）或 har")
    e.add_argument("--out", type=Path, help="输出文件（默认标准输出）")
    e.add_argument("--no-mask", action="store_true", help="不脱敏（姓名、证件号、电话、住址、出生日期、病人ID …）")
    e.add_argument("--hop", type=int, choices=(1, 2), help="只导出这一跳")
    e.add_argument("--scenario", help="只导出这个场景的交互")
    e.add_argument("--with-files", action="store_true",
                   help="同时打包第一跳引用的 PDF 与 DICOM（写到 --out 旁的 <文件名>.files/，sandbox replay 会自动提供）")
    _source(e)
    e.set_defaults(func=export)
    s = jsub.add_parser("summary", help="按跳与结果统计交互次数")
    _source(s)
    s.set_defaults(func=summary)

    def usage(args: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(func=usage)


def _source(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, default=Path("data"), help="数据目录（默认 ./data）")
    p.add_argument("--db", type=Path, help="直接指定 journal.db 文件")


def journal_path(args: argparse.Namespace) -> Path:
    return args.db or args.data_dir / JOURNAL_FILE


async def _export(path: Path, fmt: str, out: TextIO, mask: bool, filters: dict[str, Any]) -> int:
    journal = Journal(path)
    await journal.open()
    try:
        writer = write_har if fmt == "har" else write_jsonl
        return await writer(journal.entries(**filters), out, mask=mask)
    finally:
        await journal.close()


async def _bundle(path: Path, data_dir: Path, dest: Path, filters: dict[str, Any]) -> Bundle:
    journal = Journal(path)
    await journal.open()
    try:
        entries = [e async for e in journal.entries(**filters)]
    finally:
        await journal.close()
    return await bundle_files(entries, data_dir, dest)


def export(args: argparse.Namespace) -> int:
    path = journal_path(args)
    if not path.is_file():
        print(f"sandbox journal: 找不到日志文件 {path}", file=sys.stderr)
        return 2
    if args.with_files and not args.out:
        print("sandbox journal: --with-files 需要 --out 文件（文件打包在它旁边的 <文件名>.files/）", file=sys.stderr)
        return 2
    data_dir = args.data_dir if args.db is None else args.db.parent
    if args.with_files and not (data_dir / HOSPITAL_DIR / HOSPITAL_DB).is_file():
        print(f"sandbox journal: {data_dir} 中没有医疗机构的文件库（{HOSPITAL_DIR}/{HOSPITAL_DB}），无法打包文件",
              file=sys.stderr)
        return 2
    filters = {k: v for k, v in (("hop", args.hop), ("scenario", args.scenario)) if v is not None}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("w", encoding="utf-8") as fh:
            n = run_loop(_export(path, args.format, fh, not args.no_mask, filters))
        print(f"已导出 {n} 条交互到 {args.out}（{'未脱敏' if args.no_mask else '已脱敏'}）", file=sys.stderr)
        if args.with_files:
            bundle = run_loop(_bundle(path, data_dir, bundle_dir(args.out), filters))
            print(f"已打包 {bundle.exams} 个检查的 {bundle.files} 个文件到 {bundle.path}"
                  "（sandbox replay 重放时自动提供）", file=sys.stderr)
            if bundle.missing:
                print(f"  {len(bundle.missing)} 个链接不在本数据目录中（非本沙箱医疗机构的文件），未打包："
                      + "、".join(bundle.missing[:3]) + ("…" if len(bundle.missing) > 3 else ""), file=sys.stderr)
    else:
        run_loop(_export(path, args.format, sys.stdout, not args.no_mask, filters))
    return 0


async def _summary(path: Path) -> dict[str, Any]:
    journal = Journal(path)
    await journal.open()
    try:
        return await journal.stats()
    finally:
        await journal.close()


def summary(args: argparse.Namespace) -> int:
    path = journal_path(args)
    if not path.is_file():
        print(f"sandbox journal: 找不到日志文件 {path}", file=sys.stderr)
        return 2
    stats = run_loop(_summary(path))
    for hop in ("1", "2"):
        lanes = stats["exchanges"].get(hop, {})
        flags = stats["records"].get(hop, {})
        total = sum(lanes.values())
        parts = "，".join(f"{OUTCOME_TITLES.get(k, k)} {v}" for k, v in sorted(lanes.items()))
        recs = "，".join(f"succFlag {k}: {v}" for k, v in sorted(flags.items()))
        print(f"第{'一' if hop == '1' else '二'}跳：{total} 次交互（{parts or '无'}）；记录 {recs or '无'}")
    return 0
