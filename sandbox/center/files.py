"""The file work of hop 1: fetch (or decode) a record's report PDF and images, check them, parse every
DICOM instance and keep each under an id the center makes.

It needs nothing from the database: `Ingest.prepare` hands it a message's file values and gets plain data
back (ids, sizes, pack offsets, failures). What it wrote stays where it is until the receiving transaction
commits (kept) or does not (removed by `Ingest.release`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import io
import mmap
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.center import dicomstore
from sandbox.center.allowlist import FetchPolicy
from sandbox.center.dicomstore import Failure, FileStore, InstanceInfo, PackStore, Part, new_id
from sandbox.center.errors import DicomProblem, FetchError, FileProblem, PdfProblem
from sandbox.center.fetch import Body, Fetcher
from sandbox.config import Settings
from sandbox.spec.formats import URL_RE
from sandbox.spec.messages import CENTER

PDF_ACCEPT = "application/pdf, */*;q=0.5"
DICOM_ACCEPT = 'multipart/related; type="application/dicom", application/dicom, application/zip;q=0.9, */*;q=0.5'
BIG_BODY = 1024 * 1024  # bodies larger than this are split and parsed in a thread
WRITERS = 2  # threads writing packs and large files
WRITER_THREADS = "center-files"  # their names' prefix


@dataclass(slots=True)
class FileJob:
    """A record's two file values (URL or inline; `dicom:` references are looked up by the caller)."""

    pdf: str
    dicom: str | None  # None: the images are a pushed study, nothing to fetch


@dataclass(slots=True)
class FileResult:
    """What became of a record's files."""

    pdf_id: str | None = None
    pdf_size: int | None = None
    pdf_pack: str | None = None  # the message pack holding the PDF; None: a file of its own
    pdf_offset: int | None = None
    pdf_failure: Failure | None = None
    infos: list[InstanceInfo] = field(default_factory=list)  # instances kept under their ids
    failures: list[Failure] = field(default_factory=list)
    total: int = 0  # instances found in what was sent


# A small file on its way into the message's pack: entry name, bytes, and what gets its location.
Small = tuple[str, bytes, InstanceInfo | FileResult]


def decode_inline(value: str) -> tuple[str, bytes]:
    """(media type, bytes) of inline base64 or a `data:<type>;base64,` URI; FileProblem when it is neither."""
    media, payload = "", value
    if value.startswith("data:"):
        head, _, payload = value.partition(",")
        media = head[5:].split(";", 1)[0].strip().lower()
    try:
        return media, base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FileProblem("inline_bad") from exc


def check_pdf(head: bytes) -> None:
    # PDF readers accept the header anywhere in the first 1024 bytes (ISO 32000-1, 7.5.2 note).
    if b"%PDF-" not in head:
        raise PdfProblem("not_pdf", head=dicomstore._head(head))


def parse_pdf(source: bytes | Path) -> None:
    """Refuse (PdfProblem) a report that does not open as a PDF with at least one page (qpdf, via pikepdf):
    a `%PDF-` header followed by anything is not a report."""
    import pikepdf  # imported on first use: keeps `sandbox serve` quick to listen

    # A PDF ends with %%EOF within its last 1024 bytes (ISO 32000-1, 7.5.5); checked first so that a header
    # followed by hundreds of megabytes of anything is refused without qpdf scanning it to rebuild an xref.
    if isinstance(source, bytes):
        tail = source[-1024:]
    else:
        with source.open("rb") as fh:
            fh.seek(max(0, source.stat().st_size - 1024))
            tail = fh.read()
    if b"%%EOF" not in tail:
        raise PdfProblem("pdf_unreadable", detail="文件末尾没有 %%EOF，文件不完整")

    try:
        # stream access and no attribute push-down: about half the cost of a default open, same verdict
        with pikepdf.open(io.BytesIO(source) if isinstance(source, bytes) else source,
                          access_mode=pikepdf.AccessMode.stream, inherit_page_attributes=False) as pdf:
            pages = len(pdf.pages)
    except (pikepdf.PdfError, pikepdf.PasswordError, ValueError, RuntimeError, OSError) as exc:
        kind = "已加密" if isinstance(exc, pikepdf.PasswordError) else "文件结构损坏或不完整"
        raise PdfProblem("pdf_unreadable", detail=kind) from exc
    if pages < 1:
        raise PdfProblem("pdf_no_pages")


class Budget:
    """The bytes one message may still make the center keep: the smaller of what is left of the message's
    quota and of its institution's (`quota_message_bytes`, `quota_institution_bytes`)."""

    def __init__(self, worker: FileWorker, infcode: str) -> None:
        self.worker = worker
        self.infcode = infcode
        self.message_left = worker.settings.quota_message_bytes
        self.charged = 0

    def left(self) -> int:
        institution_left = self.worker.settings.quota_institution_bytes - self.worker.used.get(self.infcode, 0)
        return max(0, min(self.message_left, institution_left))

    def limit(self) -> int:
        """The size limit of the next fetch."""
        return min(self.worker.settings.fetch_max_bytes, self.left())

    def over(self) -> FileProblem:
        s = self.worker.settings
        institution_left = s.quota_institution_bytes - self.worker.used.get(self.infcode, 0)
        if institution_left < self.message_left:
            return FetchError("quota_institution", infcode=self.infcode, limit=s.quota_institution_bytes)
        return FetchError("quota_message", limit=s.quota_message_bytes)

    def charge(self, size: int) -> None:
        """Count a file against both quotas (FileProblem when it does not fit: the caller drops it)."""
        if size > self.left():
            raise self.over()
        self.message_left -= size
        self.charged += size
        self.worker.used[self.infcode] = self.worker.used.get(self.infcode, 0) + size

    def refund(self, size: int) -> None:
        """Give back bytes of files that were not kept after all."""
        size = min(size, self.charged)
        self.charged -= size
        self.worker.used[self.infcode] = max(0, self.worker.used.get(self.infcode, 0) - size)


def remove_all(paths: list[str]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


class FileWorker:
    """Does the file work of one message, in the process it lives in."""

    def __init__(self, settings: Settings, root: Path) -> None:
        self.settings = settings
        self.pdfs = FileStore(root / "pdf", ".pdf")
        self.dicoms = FileStore(root / "dicom", ".dcm")
        self.packs = PackStore(root / "packs")
        self.fetcher = Fetcher(policy=FetchPolicy(settings), timeout=settings.fetch_timeout_s,
                               max_bytes=settings.fetch_max_bytes, tmp_dir=root / "tmp",
                               per_group=settings.fetch_per_message)
        self.writer = ThreadPoolExecutor(WRITERS, thread_name_prefix=WRITER_THREADS)
        # Bytes of files kept per institution (infCode), for quota_institution_bytes: read from the store when
        # the center opens (Center.load_usage), counted as files are fetched, given back when not kept.
        self.used: dict[str, int] = {}

    async def close(self) -> None:
        await self.fetcher.close()
        self.writer.shutdown(wait=True)

    async def run(self, jobs: list[FileJob], budget: Budget) -> list[FileResult]:
        """Fetch, check, parse and keep every job's files within the message's `budget`; each job's outcome in
        order. The small files of the message go into one pack (PackStore), large ones into files of their own.
        The message's fetches share at most `fetch_per_message` connections per origin."""
        if not jobs:
            return []
        small: list[Small] = []
        results = [FileResult() for _ in jobs]
        fetching = []
        for job, result in zip(jobs, results, strict=True):
            if self._inline(job):  # nothing to wait for: no task per file
                self._pdf_inline(job.pdf, result, small, budget)
                if job.dicom is not None:
                    self._dicom_inline(job.dicom, result, small, budget)
            else:  # one task per file, the two of a record side by side
                fetching.append(self._pdf(job.pdf, result, small, budget))
                if job.dicom is not None:
                    fetching.append(self._dicom(job.dicom, result, small, budget))
        await asyncio.gather(*fetching)
        if small:
            pack_id = new_id()
            entries = [(name, data) for name, data, _ in small]
            offsets = await asyncio.get_running_loop().run_in_executor(self.writer, self.packs.write, pack_id,
                                                                       entries)
            for (_, _, owner), offset in zip(small, offsets, strict=True):
                if isinstance(owner, InstanceInfo):
                    owner.pack_id, owner.offset = pack_id, offset
                else:
                    owner.pdf_pack, owner.pdf_offset = pack_id, offset
        return results

    @staticmethod
    def _inline(job: FileJob) -> bool:
        """Both files inline, and the images small enough to parse on the event loop."""
        return not URL_RE.match(job.pdf) and (job.dicom is None or (
            not URL_RE.match(job.dicom) and len(job.dicom) // 4 * 3 <= BIG_BODY))

    async def _get(self, url: str, accept: str, budget: Budget) -> Body:
        """Fetch within the message's budget, and charge it."""
        limit = budget.limit()
        if limit <= 0:
            raise budget.over()
        try:
            body = await self.fetcher.get(url, accept, limit=limit, group=budget)
        except FetchError as exc:
            if exc.code == "fetch_too_large" and limit < self.settings.fetch_max_bytes:
                raise budget.over() from exc
            raise
        try:
            budget.charge(body.size)
        except FileProblem:
            body.discard()
            raise
        return body

    async def _pdf(self, value: str, result: FileResult, writes: list[Small], budget: Budget) -> None:
        if not URL_RE.match(value):
            self._pdf_inline(value, result, writes, budget)
            return
        pdf_id = new_id()
        try:
            body = await self._get(value, PDF_ACCEPT, budget)
            try:
                check_pdf(body.head(1024))
                if body.path is not None or body.size > BIG_BODY:
                    await asyncio.to_thread(parse_pdf, body.path if body.path is not None else body.data or b"")
                else:
                    parse_pdf(body.data or b"")
            except FileProblem:
                budget.refund(body.size)
                body.discard()
                raise
            try:
                if body.path is not None:
                    self.pdfs.adopt(pdf_id, body.path)
                    body.path = None
                else:
                    assert body.data is not None
                    writes.append((f"{pdf_id}.pdf", body.data, result))
            finally:
                body.discard()
            result.pdf_size = body.size
            result.pdf_id = pdf_id
        except FileProblem as exc:
            result.pdf_failure = Failure.of("examRpotPdfI", exc)

    @staticmethod
    def _pdf_inline(value: str, result: FileResult, writes: list[Small], budget: Budget) -> None:
        pdf_id = new_id()
        try:
            _, data = decode_inline(value)
            check_pdf(data[:1024])
            parse_pdf(data)
            budget.charge(len(data))
        except FileProblem as exc:
            result.pdf_failure = Failure.of("examRpotPdfI", exc)
            return
        writes.append((f"{pdf_id}.pdf", data, result))
        result.pdf_size = len(data)
        result.pdf_id = pdf_id

    @staticmethod
    def _inline_body(value: str, result: FileResult, budget: Budget) -> Body | None:
        """Inline images as a Body, or None with the failure noted."""
        try:
            media, data = decode_inline(value)
            budget.charge(len(data))
        except FileProblem as exc:
            result.failures.append(Failure.of("imgInfoDcm", exc))
            return None
        return Body("imgInfoDcm", media or "application/octet-stream", len(data), data)

    def _dicom_inline(self, value: str, result: FileResult, writes: list[Small], budget: Budget) -> None:
        """Inline images small enough to parse here (see `_inline`)."""
        body = self._inline_body(value, result, budget)
        if body is not None:
            result.infos, failures, result.total = self.store_body(body, "inline", writes)
            result.failures.extend(failures)

    async def _dicom(self, value: str, result: FileResult, writes: list[Small], budget: Budget) -> None:
        body: Body | None
        if URL_RE.match(value):
            source = "url"
            try:
                body = await self._get(value, DICOM_ACCEPT, budget)
            except FileProblem as exc:
                result.failures.append(Failure.of("imgInfoDcm", exc))
                return
        else:
            source = "inline"
            if (body := self._inline_body(value, result, budget)) is None:
                return
        try:
            if body.size > BIG_BODY:
                infos, failures, total = await asyncio.to_thread(self.store_body, body, source, None)
            else:
                infos, failures, total = self.store_body(body, source, writes)
        finally:
            body.discard()
        if not infos:
            budget.refund(body.size)
        result.infos, result.total = infos, total
        result.failures.extend(failures)

    def store_body(self, body: Body, source: str, writes: list[Small] | None
                   ) -> tuple[list[InstanceInfo], list[Failure], int]:
        """Split a body into instances, parse each and store it (or queue it on `writes`);
        (stored, failed, found)."""
        infos: list[InstanceInfo] = []
        failures: list[Failure] = []
        if body.path is not None:
            with body.path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                kind, _ = dicomstore.media_type(body.content_type)
                if not kind.startswith("multipart/") and mm[:4] != b"PK\x03\x04" and kind not in (
                        "application/zip", "application/x-zip-compressed"):
                    # One large instance: parse the mapping, then move the file into place as it is.
                    try:
                        info = dicomstore.inspect(mm)
                    except DicomProblem as exc:
                        return [], [Failure.of("imgInfoDcm", exc)], 1
                    info.digest = hashlib.sha256(mm).hexdigest()
                    info.instance_id, info.source = new_id(), source
                    mm.close()
                    self.dicoms.adopt(info.instance_id, body.path)
                    body.path = None
                    return [info], [], 1
                try:
                    parts = dicomstore.split_parts(body.content_type, mm, zip_path=body.path, **self._archive())
                except FileProblem as exc:
                    return [], [Failure.of("imgInfoDcm", exc)], 0
        else:
            assert body.data is not None
            try:
                parts = dicomstore.split_parts(body.content_type, body.data, **self._archive())
            except FileProblem as exc:
                return [], [Failure.of("imgInfoDcm", exc)], 0
        for part in parts:
            try:
                infos.append(self.store_part(part, source, writes))
            except DicomProblem as exc:
                failures.append(Failure.of(part.label or "imgInfoDcm", exc))
        if not parts:
            failures.append(Failure("imgInfoDcm", "no_instances", CENTER["no_instances"], "not_dicom"))
        return infos, failures, len(parts)

    def _archive(self) -> dict[str, Any]:
        s = self.settings
        return {"max_bytes": s.archive_max_bytes, "max_members": s.archive_max_members,
                "max_ratio": s.archive_max_ratio}

    def store_part(self, part: Part, source: str, writes: list[Small] | None) -> InstanceInfo:
        """Parse one instance and write it under a new id (DicomProblem when it is not usable)."""
        info = dicomstore.inspect(part.data)
        info.digest = hashlib.sha256(part.data).hexdigest()
        info.instance_id, info.source = new_id(), source
        if writes is None:
            self.dicoms.write(info.instance_id, part.data)
        else:
            writes.append((f"{info.instance_id}.dcm", part.data, info))
        return info
