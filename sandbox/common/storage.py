"""Recognising storage failures — disk full, read-only or unwritable folder, I/O error — wherever they come
from (SQLite or a file write), so that receivers answer them as such (HTTP 507, envelope code 1090) and
writers know to wait and try again rather than give up."""

from __future__ import annotations

import errno
import os
import sqlite3
import tempfile
from pathlib import Path

# SQLite primary result codes (the low byte of an extended code).
_SQLITE = {13: "磁盘已满", 8: "数据库只读", 10: "磁盘 I/O 错误", 14: "无法打开数据库文件"}
_ERRNO = {errno.ENOSPC: "磁盘已满", errno.EDQUOT: "超出磁盘配额", errno.EROFS: "文件系统只读",
          errno.EIO: "磁盘 I/O 错误", errno.EACCES: "没有写入权限", errno.EPERM: "没有写入权限"}


def storage_problem(exc: BaseException | None) -> str | None:
    """A Chinese name of the storage failure behind `exc` (or what caused it), or None when it is not one."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, sqlite3.Error):
            code = getattr(exc, "sqlite_errorcode", None)
            if isinstance(code, int) and (code & 0xFF) in _SQLITE:
                return _SQLITE[code & 0xFF]
        elif isinstance(exc, OSError) and exc.errno in _ERRNO:
            return _ERRNO[exc.errno]
        exc = exc.__cause__ or exc.__context__
    return None


def check_writable(folder: Path) -> None:
    """Create the folder if needed and write (then remove) a file in it; OSError when that is impossible."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".probe-", dir=folder)
    try:
        os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)
        os.unlink(name)
