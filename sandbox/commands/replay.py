"""`sandbox replay FILE --to URL`: resend recorded hop-1 or hop-2 traffic and report where answers differ.

FILE is a journal export (JSON Lines or HAR, exported with --no-mask: masked data no longer validates) or a
journal.db. Exit status: 0 every answer matches the recording, 1 some differ, 2 the file is unusable.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sandbox.common.loop import run as run_loop
from sandbox.journal.export import read_entries
from sandbox.journal.files import bundle_dir, read_manifest, referenced_urls
from sandbox.journal.mask import masked_key
from sandbox.journal.store import Journal
from sandbox.replay import replay, replayable


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("replay", help="重放记录的报文并比较应答 / replay recorded traffic and compare answers",
                       description="把日志中记录的第一跳或第二跳请求重新发给目标，逐条报告应答与记录的差异。")
    p.add_argument("file", type=Path, help="日志导出文件（.jsonl / .har，导出时用 --no-mask）或 journal.db")
    p.add_argument("--to", required=True, metavar="URL",
                   help="目标地址；只给 http://host:port 时沿用记录中的路径")
    p.add_argument("--hop", type=int, choices=(1, 2), help="只重放这一跳")
    p.add_argument("--timeout", type=float, default=10.0, help="每次请求的超时秒数（默认 10）")
    p.add_argument("--ignore-messages", action="store_true", help="只比较 code 与 succFlag，不比较 message 文字")
    p.add_argument("--files", type=Path, metavar="DIR",
                   help="journal export --with-files 打包的文件目录（默认自动使用 FILE 旁的 <文件名>.files/）")
    p.set_defaults(func=run)


async def _from_db(path: Path) -> list[dict[str, Any]]:
    journal = Journal(path)
    await journal.open()
    try:
        return [e async for e in journal.entries()]
    finally:
        await journal.close()


def load(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".db":
        return run_loop(_from_db(path))
    return list(read_entries(path.read_text(encoding="utf-8")))


def run(args: argparse.Namespace) -> int:
    try:
        entries = load(args.file)
    except FileNotFoundError:
        print(f"sandbox replay: 文件不存在：{args.file}", file=sys.stderr)
        return 2
    except (ValueError, KeyError) as exc:
        print(f"sandbox replay: 无法读取 {args.file}：{exc}", file=sys.stderr)
        return 2
    chosen = [e for e in entries if replayable(e, args.hop)]
    if any(masked_key(e.get("request")) for e in chosen):
        print("提示：导出文件已脱敏，报文头 key 被遮盖，无法通过鉴权（接收方答 1021）；"
              "请用 sandbox journal export --no-mask 导出后再重放")
    files = args.files or bundle_dir(args.file)
    if read_manifest(files) is not None:
        print(f"文件：由本次重放在本机临时端口提供 {files} 中打包的 PDF 与 DICOM")
    elif any(e.get("hop") == 1 for e in chosen) and referenced_urls(chosen):
        print("提示：第一跳报文引用的 PDF 与 DICOM 未随导出打包；目标若取不到文件会答 -1。"
              "可用 sandbox journal export --with-files 导出")
    results = run_loop(replay(entries, args.to, hop=args.hop, timeout=args.timeout,
                                 messages=not args.ignore_messages, files=files))
    for r in results:
        print(("✓ " if r.same else "✗ ") + r.text())
    differ = sum(not r.same for r in results)
    print(f"重放 {len(results)} 次交互：{len(results) - differ} 次一致，{differ} 次不一致")
    if not results:
        print("sandbox replay: 没有可重放的交互（检查 --hop 与导出文件）", file=sys.stderr)
        return 2
    return 1 if differ else 0
