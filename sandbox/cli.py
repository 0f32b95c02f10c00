"""`sandbox` command line. Each sub-command lives in `sandbox.commands.<name>` with `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# Sub-command modules, in the order `sandbox --help` lists them.
COMMANDS = ("validate", "generate", "send", "serve", "run", "scenarios", "journal", "replay", "conform", "load")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every command; or, when `argv` names one, of that command alone — its options, help
    and errors are the same, and `sandbox serve` does not import the modules of the other seven."""
    parser = argparse.ArgumentParser(
        prog="sandbox",
        description="医保影像云沙箱：医疗机构 → 地方影像云数据共享中心 → 医保影像云索引共享模块",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    named = [a for a in (argv or [])[:1] if a in COMMANDS]
    for name in named or COMMANDS:
        importlib.import_module(f"sandbox.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the output was piped into a reader that stopped (`sandbox conform --list | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush writes nowhere
        return 1


if __name__ == "__main__":
    sys.exit(main())
