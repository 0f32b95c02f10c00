"""A message's pack: the one-pass ZIP writer (`stored_zip`) gives zipfile's bytes and offsets exactly, and
leaves to zipfile what it would write differently (a UTF-8 name); `unzip` reads a pack as a person would."""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.center.dicomstore import PackStore, new_id, stored_zip

Stamp = tuple[int, int, int, int, int, int]
NAMES = st.from_regex(r"[0-9a-f]{32}\.(dcm|pdf)", fullmatch=True)
ENTRIES = st.lists(st.tuples(NAMES, st.binary(max_size=3000)), max_size=40, unique_by=lambda e: e[0])  # ids are unique
STAMPS = st.tuples(st.integers(1980, 2107), st.integers(1, 12), st.integers(1, 28), st.integers(0, 23),
                   st.integers(0, 59), st.integers(0, 59))


def with_zipfile(entries: list[tuple[str, bytes]], stamp: tuple[int, ...]) -> tuple[bytes, list[int]]:
    """What PackStore wrote before: zipfile.writestr of a ZipInfo per entry, and each entry's data offset."""
    offsets = []
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=cast(Stamp, stamp))
            zf.writestr(info, data)
            offsets.append(info.header_offset + 30 + len(info.filename.encode()) + len(info.extra))
    return buf.getvalue(), offsets


@settings(max_examples=150, deadline=None)
@given(ENTRIES, STAMPS)
def test_the_one_pass_writer_gives_zipfiles_bytes_and_offsets(entries: list[tuple[str, bytes]],
                                                              stamp: tuple[int, ...]) -> None:
    assert stored_zip(entries, stamp) == with_zipfile(entries, stamp)


def test_a_name_zipfile_would_flag_as_utf8_is_left_to_zipfile(tmp_path: Path) -> None:
    entries = [(f"{new_id()}.dcm", b"DICM"), ("报告.pdf", b"%PDF-1.4")]
    assert stored_zip(entries, (2026, 12, 3, 20, 0, 0)) is None
    packs = PackStore(tmp_path)
    packs.open()
    pack_id = new_id()
    offsets = packs.write(pack_id, entries)
    with zipfile.ZipFile(packs.path(pack_id)) as zf:
        assert zf.namelist() == [name for name, _ in entries]
        assert zf.getinfo("报告.pdf").flag_bits & 0x800  # the UTF-8 name flag zipfile sets
    assert [packs.read(pack_id, at, len(data)) for at, (_, data) in zip(offsets, entries, strict=True)] == \
        [data for _, data in entries]


@pytest.mark.skipif(shutil.which("unzip") is None, reason="unzip is not installed")
def test_unzip_lists_and_tests_a_written_pack(tmp_path: Path) -> None:
    entries = [(f"{new_id()}.{kind}", bytes(range(256)) * (k + 1)) for k in range(6) for kind in ("pdf", "dcm")]
    packs = PackStore(tmp_path)
    packs.open()
    pack_id = new_id()
    offsets = packs.write(pack_id, entries)
    tested = subprocess.run(["unzip", "-t", packs.path(pack_id)], capture_output=True, text=True, check=False)
    assert tested.returncode == 0 and "No errors detected" in tested.stdout, tested.stdout + tested.stderr
    assert all(packs.read(pack_id, at, len(data)) == data for at, (_, data) in zip(offsets, entries, strict=True))
