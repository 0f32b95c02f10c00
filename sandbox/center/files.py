"""The file work of hop 1: fetch (or decode) a record's report PDF and images, check them, parse every
DICOM instance and write each file under an id the center makes.

It is the costliest part of receiving (two HTTP exchanges, a DICOM parse, two file creations per exam),
and it needs nothing from the database, so it can run away from the event loop that validates, stores
and forwards: `FilePool` does it in the loop when `center_workers` is 0 (the default: nothing to start,
nothing to stop) and in that many worker processes otherwise, one message per task, so that a 2-core
server parses on both cores. A worker runs its own event loop (and keep-alive connections) in a thread
and answers with plain data; what it wrote stays where it is until the main process commits or removes it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import mmap
import multiprocessing
import os
import threading
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.center import dicomstore
from sandbox.center.dicomstore import Failure, FileStore, InstanceInfo, Part, new_id
from sandbox.center.errors import DicomProblem, FileProblem, PdfProblem
from sandbox.center.fetch import Body, Fetcher
from sandbox.config import Settings
from sandbox.spec.formats import URL_RE
from sandbox.spec.messages import CENTER

PDF_ACCEPT = "application/pdf, */*;q=0.5"
DICOM_ACCEPT = 'multipart/related; type="application/dicom", application/dicom, application/zip;q=0.9, */*;q=0.5'
BIG_BODY = 1024 * 1024  # bodies larger than this are split and parsed in a thread
WRITERS = 4  # threads creating the small files of a message


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
    pdf_failure: Failure | None = None
    infos: list[InstanceInfo] = field(default_factory=list)  # instances written under their ids
    failures: list[Failure] = field(default_factory=list)
    total: int = 0  # instances found in what was sent


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


def write_all(writes: list[tuple[str, bytes]]) -> None:
    for path, data in writes:
        with open(path, "wb") as fh:
            fh.write(data)


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
        self.fetcher = Fetcher(allowed_hosts=settings.allowed_fetch_hosts, timeout=settings.fetch_timeout_s,
                               max_bytes=settings.fetch_max_bytes, tmp_dir=root / "tmp")
        self.writer = ThreadPoolExecutor(WRITERS, thread_name_prefix="center-files")

    async def close(self) -> None:
        await self.fetcher.close()
        self.writer.shutdown(wait=True)

    async def run(self, jobs: list[FileJob]) -> list[FileResult]:
        """Fetch, check, parse and write every job's files; each job's outcome in order."""
        writes: list[tuple[str, bytes]] = []
        results = [FileResult() for _ in jobs]
        await asyncio.gather(*(self._job(job, result, writes) for job, result in zip(jobs, results, strict=True)))
        if writes:
            # Creating a file can take milliseconds on a busy disk: the writer threads overlap those waits.
            loop = asyncio.get_running_loop()
            n = min(WRITERS, len(writes))
            await asyncio.gather(*(loop.run_in_executor(self.writer, write_all, writes[i::n]) for i in range(n)))
        return results

    async def _job(self, job: FileJob, result: FileResult, writes: list[tuple[str, bytes]]) -> None:
        if job.dicom is None:
            await self._pdf(job.pdf, result, writes)
        else:
            await asyncio.gather(self._pdf(job.pdf, result, writes), self._dicom(job.dicom, result, writes))

    async def _pdf(self, value: str, result: FileResult, writes: list[tuple[str, bytes]]) -> None:
        pdf_id = new_id()
        try:
            if URL_RE.match(value):
                body = await self.fetcher.get(value, PDF_ACCEPT)
                try:
                    check_pdf(body.head(1024))
                    if body.path is not None:
                        self.pdfs.adopt(pdf_id, body.path)
                        body.path = None
                    else:
                        assert body.data is not None
                        writes.append((self.pdfs.path(pdf_id), body.data))
                finally:
                    body.discard()
                result.pdf_size = body.size
            else:
                _, data = decode_inline(value)
                check_pdf(data[:1024])
                writes.append((self.pdfs.path(pdf_id), data))
                result.pdf_size = len(data)
            result.pdf_id = pdf_id
        except FileProblem as exc:
            result.pdf_failure = Failure.of("examRpotPdfI", exc)

    async def _dicom(self, value: str, result: FileResult, writes: list[tuple[str, bytes]]) -> None:
        try:
            if URL_RE.match(value):
                body = await self.fetcher.get(value, DICOM_ACCEPT)
                source = "url"
            else:
                media, data = decode_inline(value)
                body = Body("imgInfoDcm", media or "application/octet-stream", len(data), data)
                source = "inline"
        except FileProblem as exc:
            result.failures.append(Failure.of("imgInfoDcm", exc))
            return
        try:
            if body.size > BIG_BODY:
                infos, failures, total = await asyncio.to_thread(self.store_body, body, source, None)
            else:
                infos, failures, total = self.store_body(body, source, writes)
        finally:
            body.discard()
        result.infos, result.total = infos, total
        result.failures.extend(failures)

    def store_body(self, body: Body, source: str, writes: list[tuple[str, bytes]] | None
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
                    parts = dicomstore.split_parts(body.content_type, mm, max_bytes=self.settings.fetch_max_bytes,
                                                   zip_path=body.path)
                except FileProblem as exc:
                    return [], [Failure.of("imgInfoDcm", exc)], 0
        else:
            assert body.data is not None
            try:
                parts = dicomstore.split_parts(body.content_type, body.data,
                                               max_bytes=self.settings.fetch_max_bytes)
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

    def store_part(self, part: Part, source: str, writes: list[tuple[str, bytes]] | None) -> InstanceInfo:
        """Parse one instance and write it under a new id (DicomProblem when it is not usable)."""
        info = dicomstore.inspect(part.data)
        info.digest = hashlib.sha256(part.data).hexdigest()
        info.instance_id, info.source = new_id(), source
        if writes is None:
            self.dicoms.write(info.instance_id, part.data)
        else:
            writes.append((self.dicoms.path(info.instance_id), part.data))
        return info


# ---- worker processes ---------------------------------------------------------------------------------

_worker: FileWorker | None = None
_worker_loop: asyncio.AbstractEventLoop | None = None


def _start_worker(settings_json: str, root: str) -> None:
    """Pool initializer: this process's FileWorker, on an event loop of its own in a daemon thread."""
    global _worker, _worker_loop
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="center-file-worker", daemon=True).start()
    _worker_loop = loop
    _worker = FileWorker(Settings.model_validate_json(settings_json), Path(root))


def _run_in_worker(jobs: list[FileJob]) -> list[FileResult]:
    assert _worker is not None and _worker_loop is not None
    return asyncio.run_coroutine_threadsafe(_worker.run(jobs), _worker_loop).result()


class FilePool:
    """Runs FileWorker jobs in this process (workers=0) or in worker processes."""

    def __init__(self, settings: Settings, root: Path) -> None:
        self.settings = settings
        self.root = root
        self.workers = settings.center_workers
        self.local = FileWorker(settings, root)
        self._pool: Executor | None = None

    def _executor(self) -> Executor:
        if self._pool is None:
            # forkserver: the main process has threads (database, Storage SCP), which fork must not copy.
            ctx = multiprocessing.get_context("forkserver")
            self._pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_start_worker,
                                             initargs=(self.settings.model_dump_json(), str(self.root)))
        return self._pool

    async def run(self, jobs: list[FileJob]) -> list[FileResult]:
        if not jobs:
            return []
        if self.workers == 0:
            return await self.local.run(jobs)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor(), _run_in_worker, jobs)
        except BrokenProcessPool:
            # A worker died (killed, out of memory): start a fresh pool and do this message here.
            self._pool = None
            return await self.local.run(jobs)

    async def close(self) -> None:
        await self.local.close()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await asyncio.get_running_loop().run_in_executor(None, pool.shutdown)
