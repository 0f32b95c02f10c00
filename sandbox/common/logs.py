"""Log lines of the long-running commands: China time with its explicit offset, whatever the host's zone."""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from typing import TextIO

from sandbox.spec.formats import CHINA_TIME


class ChinaTimeFormatter(logging.Formatter):
    """`2025-10-08 14:30:05.123+08:00 INFO sandbox.receiver: …`"""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 (logging's name)
        when = datetime.fromtimestamp(record.created, CHINA_TIME)
        return when.isoformat(sep=" ", timespec="milliseconds")


def setup_logging(level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Send the sandbox's log records (info and above) to stderr, one line each."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(ChinaTimeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("sandbox")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
