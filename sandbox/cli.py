"""`sandbox` command line. Each sub-command lives in `sandbox.commands.<name>` with `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import sys

# Sub-command modules, in the order `sandbox --help` lists them.
COMMANDS = ("validate", "generate", "send", "serve", "run", "scenarios", "journal", "replay", "conform", "load")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sandbox",
        description="医保影像云沙箱：医疗机构 → 地方影像云数据共享中心 → 医保影像云索引共享模块",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"sandbox.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
