"""The sharing center's rules: receiving hop 1 with its files, building hop 2, and what the status API,
pages and DICOMweb read. No HTTP here.

On top of sandbox.common.receiver (envelope, key, msgid replay, table validation, duplicates in a batch),
each accepted record's two files are fetched (or decoded, or looked up) before the transaction:

- `examRpotPdfI`: a URL answering a PDF, or inline base64 / a data: URI (lenient mode);
- `imgInfoDcm`: a URL answering one instance, a `multipart/related; type="application/dicom"` study or a
  zip of instances; inline base64 of the same; or `dicom:<StudyInstanceUID>` for a study pushed to the
  Storage SCP.

The answer per record (decided inside the transaction, after instances already stored are recognised):

- `-1`: the record is invalid, its hiImgIndx is taken by a different record, or not one DICOM instance
  could be kept (images are what the exchange is for: hop 2's download link would be dead). Nothing of it
  is stored and the message names each failed file or instance;
- `0`: stored, but the report PDF was not kept, some instances failed (each named), the images disagree
  with the record (patient name/ID, study date, modality vs imgExamType — in strict mode a disagreement is
  `-1`), or the validator changed what was sent;
- `1`: stored as sent. An identical resend of a stored record is `1` without a second copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite

from sandbox.center import dicomstore
from sandbox.center.dicomstore import Failure, FileStore, InstanceInfo, PackStore
from sandbox.center.errors import ExamNotFound, FileProblem, NotPushed
from sandbox.center.files import Budget, FileJob, FileWorker, remove_all
from sandbox.center.render import LRU, RenderCache
from sandbox.center.store import INSTANCE_COLUMNS, REQUEUE_REASONS, CenterStore, dumps
from sandbox.common.client import Observer
from sandbox.common.db import CommittedWhileCancelled
from sandbox.common.receiver import Batch, Item, Receiver
from sandbox.config import Settings
from sandbox.spec.codes import SuccFlag
from sandbox.spec.fields import HOP2
from sandbox.spec.formats import CHINA_TIME, DATETIME_FORMAT, URL_RE, china_iso, china_text
from sandbox.spec.messages import CENTER, RECEIVER, RESULTS
from sandbox.validate import MESSAGE_LIMIT, Mode

log = logging.getLogger("sandbox.center")

DB_FILE = "center.db"
FILES_DIR = "center"
FILE_FIELDS = ("examRpotPdfI", "imgInfoDcm")
DESCRIBE_LIMIT = 5
FORWARD_STATES = ("pending", "sending", "held", "done", "failed")
READ_IN_THREAD = 1024 * 1024

_HOP2_CODES = tuple(spec.code for spec in HOP2.fields)  # the hop-2 table's order


def describe_failures(failures: list[Failure]) -> str:
    parts = [f"{f.source}：{f.message}" if f.source else f.message for f in failures[:DESCRIBE_LIMIT]]
    more = len(failures) - DESCRIBE_LIMIT
    if more > 0:
        parts.append(CENTER["failure_more"].format(more=more))
    return "；".join(parts)


def instance_row(info: InstanceInfo) -> tuple[Any, ...]:
    return tuple(int(v) if isinstance(v, bool) else v for v in (getattr(info, c) for c in INSTANCE_COLUMNS))


def info_from_row(row: aiosqlite.Row) -> InstanceInfo:
    values = {c: row[c] for c in INSTANCE_COLUMNS}
    values["has_pixels"] = bool(values["has_pixels"])
    return InstanceInfo(**values)


@dataclass(slots=True)
class Prepared:
    """What fetching a record's files produced, before the transaction decides."""

    exam_id: str
    digest: str
    pdf_id: str | None = None
    pdf_size: int | None = None
    pdf_pack: str | None = None
    pdf_offset: int | None = None
    pdf_failure: Failure | None = None
    infos: list[InstanceInfo] = field(default_factory=list)  # new instances, written under their ids
    linked: list[InstanceInfo] = field(default_factory=list)  # instances already stored (dicom: form)
    failures: list[Failure] = field(default_factory=list)
    disagreements: list[str] = field(default_factory=list)
    total: int = 0  # instances found in what was sent

    def files(self) -> tuple[list[str], list[str], set[str]]:
        """(PDF files, DICOM files, packs) written for this record."""
        pdfs = [self.pdf_id] if self.pdf_id and self.pdf_pack is None else []
        dicoms = [i.instance_id for i in self.infos if i.pack_id is None]
        packs = {i.pack_id for i in self.infos if i.pack_id is not None}
        if self.pdf_pack is not None:
            packs.add(self.pdf_pack)
        return pdfs, dicoms, packs


class Ingest:
    """The center's RecordHandler for one hop-1 message (one per message: it owns the files it fetched)."""

    def __init__(self, center: Center) -> None:
        self.center = center
        self.prepared: dict[int, Prepared] = {}
        self.reasons: dict[int, str] = {}
        self.kept_pdfs: set[str] = set()
        self.kept_dicoms: set[str] = set()
        self.kept_packs: set[str] = set()
        self.replaced: list[tuple[str, str | None]] = []  # objects of instances replaced (policy replace)
        self.saved = 0
        self.budget: Budget | None = None

    # ---- RecordHandler -------------------------------------------------------------------------

    async def prepare(self, batch: Batch) -> None:
        """Fetch every accepted record's files, except for identical resends of stored records."""
        center = self.center
        items = batch.accepted
        await center.load_usage()
        self.budget = Budget(center.files, batch.infcode)
        known = await center.store.exams_by_index(center.store.reader, [i.index for i in items if i.index])
        jobs: list[FileJob] = []
        fresh: list[Prepared] = []
        pushed: list[tuple[Prepared, str]] = []
        for item in items:
            digest = item.canonical()[1]
            earlier = known.get(item.index or "")
            if earlier is not None:
                if earlier[1] != digest:
                    self._reject(item, "duplicate_index", RESULTS["duplicate_index"].format(value=item.index))
                continue  # identical: answered in store() without fetching again
            prepared = self.prepared[item.position] = Prepared(dicomstore.new_id(), digest)
            dicom = str(item.values.get("imgInfoDcm", ""))
            if dicom.startswith("dicom:"):
                pushed.append((prepared, dicom[6:]))
            jobs.append(FileJob(str(item.values.get("examRpotPdfI", "")),
                                None if dicom.startswith("dicom:") else dicom))
            fresh.append(prepared)
        for prepared, result in zip(fresh, await center.files.run(jobs, self.budget), strict=True):
            prepared.pdf_id, prepared.pdf_size, prepared.pdf_failure = result.pdf_id, result.pdf_size, result.pdf_failure
            prepared.pdf_pack, prepared.pdf_offset = result.pdf_pack, result.pdf_offset
            prepared.infos, prepared.failures, prepared.total = result.infos, result.failures, result.total
        for prepared, uid in pushed:
            try:
                prepared.linked = await center.pushed_study(uid)
            except FileProblem as exc:
                prepared.failures.append(Failure.of("imgInfoDcm", exc))
            prepared.total = len(prepared.linked)

    def store(self, conn: sqlite3.Connection, batch: Batch) -> None:
        """Decide each record against what is stored now, then write exams, instances, outbox and receipts.

        Runs in the database thread inside the receiver's transaction (Database.run)."""
        items = batch.accepted
        known = CenterStore.stored_exams(conn, [i.index for i in items if i.index])
        fresh = [p for i in items if (p := self.prepared.get(i.position)) is not None]
        stored = CenterStore.digests(conn, [info.sop_uid for p in fresh for info in p.infos])
        exams: list[tuple[Any, ...]] = []
        instances: list[tuple[Any, ...]] = []
        replacing: list[tuple[Any, ...]] = []
        studies: list[tuple[str, str]] = []
        receipts: list[tuple[Any, ...]] = []
        strict = self.center.settings.mode is Mode.STRICT
        for item in batch.items:
            exam_id: str | None = None
            reason = self.reasons.get(item.position)
            if item.accepted:
                earlier = known.get(item.index or "")
                prepared = self.prepared.get(item.position)
                if earlier is not None:
                    if earlier[1] == item.canonical()[1]:
                        item.idempotent()
                        exam_id, reason = earlier[0], "idempotent"
                    else:
                        reason = "duplicate_index"
                        item.reject(RESULTS["duplicate_index"].format(value=item.index))
                elif prepared is None:
                    reason = "changed_meanwhile"
                    item.reject(CENTER["changed_meanwhile"])
                else:
                    kept = self._dedupe(prepared, stored, instances, replacing)
                    reason = self._decide(item, prepared, kept, strict)
                    if item.accepted:
                        exam_id = prepared.exam_id
                        exams.append(self._exam_row(batch, item, prepared, kept))
                        studies.extend({(exam_id, i.study_uid) for i in kept})
                        if prepared.pdf_id:
                            self.kept_pdfs.add(prepared.pdf_id)
                            if prepared.pdf_pack is not None:
                                self.kept_packs.add(prepared.pdf_pack)
            if reason is None:
                reason = self._validation_reason(item)
            receipts.append((item.index, batch.infcode, batch.msgid, item.position, item.flag.value, reason,
                             item.message, exam_id, batch.received))
        if replacing:
            self.replaced = CenterStore.replace_instances(conn, replacing)
        CenterStore.save(conn, exams=exams, instances=instances, studies=studies, receipts=receipts,
                         queued=batch.received)
        self.saved = len(exams)

    # ---- after the transaction -----------------------------------------------------------------

    async def release(self, committed: bool) -> None:
        """Remove every file and pack the committed transaction did not keep (all of them if it did not
        commit). A kept pack may still hold objects nobody refers to (a rejected record, an instance stored
        before): they are never served, and a reset removes them."""
        paths: list[str] = []
        center = self.center
        unkept = 0
        for prepared in self.prepared.values():
            if prepared.pdf_id and (not committed or prepared.pdf_id not in self.kept_pdfs):
                unkept += prepared.pdf_size or 0
            unkept += sum(i.size for i in prepared.infos if not committed or i.instance_id not in self.kept_dicoms)
            pdfs, dicoms, packs = prepared.files()
            paths += [center.pdfs.path(f) for f in pdfs if not committed or f not in self.kept_pdfs]
            paths += [center.dicoms.path(f) for f in dicoms if not committed or f not in self.kept_dicoms]
            paths += [center.packs.path(p) for p in packs if not committed or p not in self.kept_packs]
        if committed and self.replaced:
            paths += center.replaced_paths(self.replaced)
        if self.budget is not None:
            self.budget.refund(unkept)  # the quotas count what is kept
        if paths:
            await asyncio.to_thread(remove_all, sorted(set(paths)))

    # ---- deciding ------------------------------------------------------------------------------

    def _reject(self, item: Item, reason: str, message: str) -> None:
        item.reject(message)
        self.reasons[item.position] = reason

    @staticmethod
    def _validation_reason(item: Item) -> str:
        if item.flag is SuccFlag.FAILED:
            codes = {p.code for p in item.result.errors}
            return "duplicate_in_batch" if codes == {"duplicate_in_batch"} else "invalid"
        return "saved" if item.flag is SuccFlag.OK else "saved_partial"

    def _dedupe(self, prepared: Prepared, stored: dict[str, str], rows: list[tuple[Any, ...]],
                replacing: list[tuple[Any, ...]]) -> list[InstanceInfo]:
        """The record's instances after recognising those already stored (same SOP UID and bytes); a different
        instance under a stored SOP UID follows settings.instance_conflict."""
        kept = list(prepared.linked)
        replace = self.center.settings.instance_conflict == "replace"
        for info in prepared.infos:
            earlier = stored.get(info.sop_uid)
            if earlier is not None and earlier == info.digest:
                kept.append(info)  # the same instance again: the stored copy serves it
                continue
            if earlier is not None and (not replace or any(r[0] == info.sop_uid for r in rows + replacing)):
                # keep-first, or a second version of an instance this very batch brings: keep the first
                log_conflict(info, replaced=False)
                prepared.failures.append(Failure(info.sop_uid, "dicom_conflict",
                                                 CENTER["dicom_conflict"].format(uid=info.sop_uid), "conflict"))
                continue
            if earlier is not None:
                log_conflict(info, replaced=True)
                replacing.append(instance_row(info))
            else:
                rows.append(instance_row(info))
            stored[info.sop_uid] = info.digest
            self.kept_dicoms.add(info.instance_id)
            if info.pack_id is not None:
                self.kept_packs.add(info.pack_id)
            kept.append(info)
        return kept

    def _decide(self, item: Item, prepared: Prepared, kept: list[InstanceInfo], strict: bool) -> str:
        """Set the record's flag and message from its files; returns the receipt's reason."""
        if not kept:
            failures = prepared.failures or [Failure("", "no_instances", CENTER["no_instances"], "not_dicom")]
            self._reject(item, failures[0].reason, CENTER["dicom_none"].format(detail=describe_failures(failures)))
            return failures[0].reason
        lost: list[str] = []  # sent but not saved: the record answers 0
        if prepared.pdf_failure is not None:
            lost.append(CENTER["pdf_failed"].format(detail=prepared.pdf_failure.message))
        if prepared.failures:
            total = len(kept) + len(prepared.failures)
            lost.append(CENTER["dicom_partial"].format(failed=len(prepared.failures), total=total,
                                                       detail=describe_failures(prepared.failures)))
        notes: list[str] = []  # saved in full, worth telling: named as 提示
        disagreements = prepared.disagreements = dicomstore.compare(item.values, kept)
        if disagreements:
            text = CENTER["disagree"].format(detail="；".join(disagreements))
            if strict:
                self._reject(item, "disagreement", text)
                return "disagreement"
            notes.append(text)
        study, count = dicomstore.main_study(kept)
        if count > 1:
            notes.append(CENTER["multi_study"].format(count=count, uid=study))
        if lost:
            _degrade(item, lost)
        if notes:
            _note(item, notes)
        return self._validation_reason(item)

    def _exam_row(self, batch: Batch, item: Item, prepared: Prepared, kept: list[InstanceInfo]) -> tuple[Any, ...]:
        record = dict(item.values)
        for code in FILE_FIELDS:
            value = record.get(code)
            if isinstance(value, str) and not (URL_RE.match(value) or value.startswith("dicom:")):
                record[code] = f"inline:{len(value)}"  # the bytes are in the stored file, not the record
        failures = ([prepared.pdf_failure] if prepared.pdf_failure else []) + prepared.failures
        study, _ = dicomstore.main_study(kept)
        notes = prepared.disagreements
        return (prepared.exam_id, item.index, prepared.digest, batch.infcode, batch.msgid, batch.received,
                item.flag.value, item.message, dumps(record), prepared.pdf_id, prepared.pdf_size, prepared.pdf_pack,
                prepared.pdf_offset, study, len(kept),
                dumps([f.as_dict() for f in failures]), dumps(notes))

def _degrade(item: Item, notes: list[str]) -> None:
    """Make a saved record `0`, putting the center's notes before what the validator already said."""
    ok, partial = RESULTS["saved"], RESULTS["saved_partial"].format(detail="")
    old = item.message
    detail = "；".join(notes)
    if old.startswith(partial):
        detail += "；" + old[len(partial):]
    elif old.startswith(ok):
        detail += old[len(ok):]
    item.flag, item.message = SuccFlag.PARTIAL, RESULTS["saved_partial"].format(detail=detail)


def _note(item: Item, notes: list[str]) -> None:
    """Name the center's notes on a saved record as 提示, before what the validator noted already."""
    advisory = RESULTS["advisory"]
    head = advisory[:advisory.index("{")]
    detail = "；".join(notes)
    if head in item.message:
        before, after = item.message.split(head, 1)
        item.message = before + head + detail + "；" + after
    else:
        item.message += advisory.format(detail=detail)
    item.message = item.message[:MESSAGE_LIMIT]


class Center:
    """State of the center role: its store, files, fetcher, and the event that wakes the forwarder."""

    def __init__(self, settings: Settings, store: CenterStore, root: Path) -> None:
        self.settings = settings
        self.store = store
        self.root = root
        self.files = FileWorker(settings, root)
        self.pdfs = FileStore(root / "pdf", ".pdf")
        self.dicoms = FileStore(root / "dicom", ".dcm")
        self.packs = PackStore(root / "packs")
        self.tmp = root / "tmp"
        self.wake = asyncio.Event()
        self.renders = RenderCache()
        self.metadata_cache = LRU(4096)
        self.observers: list[Observer] = []  # called with every hop-2 exchange (a journal subscribes here)
        self.base_url = (settings.public_base_url or settings.url(settings.center_port)).rstrip("/")
        self._usage_loaded = False

    def open(self) -> None:
        self.pdfs.open()
        self.dicoms.open()
        self.packs.open()
        self.tmp.mkdir(parents=True, exist_ok=True)
        for leftover in self.tmp.glob("*.part"):
            leftover.unlink(missing_ok=True)

    async def remove_orphans(self) -> int:
        """Remove the files of hop-1 requests that never committed (the process was killed between writing
        them and committing): no row refers to them. Run at start, before anything is received; returns how
        many were removed (logged with their size)."""
        pdfs, dicoms, packs = await self.store.all_file_ids()
        stores = [(self.pdfs, set(pdfs)), (self.dicoms, set(dicoms)), (self.packs.files, set(packs))]
        count, size = await asyncio.to_thread(_remove_unreferenced, stores)
        if count:
            log.info(RECEIVER["orphans_removed"].format(count=count, size=size / 1e6))
        return count

    # ---- hop 1 ---------------------------------------------------------------------------------

    async def receive(self, message: Any) -> dict[str, Any]:
        """Answer one saveExamRpotImgInfo message (raises EnvelopeError when it is refused whole)."""
        ingest = Ingest(self)
        receiver = Receiver(hop=1, sender_role="hospital", settings=self.settings, db=self.store.db, handler=ingest)
        try:
            body = await receiver.receive(message)
        except CommittedWhileCancelled:  # cancelled (a shutdown), but its transaction committed: keep its files
            await asyncio.shield(ingest.release(committed=True))
            raise
        except BaseException:
            await asyncio.shield(ingest.release(committed=False))
            raise
        await ingest.release(committed=True)
        if ingest.saved:
            self.wake.set()
        return body

    async def load_usage(self) -> None:
        """The bytes kept per institution, read from the store once (quota_institution_bytes)."""
        if self._usage_loaded:
            return
        self._usage_loaded = True
        self.files.used.update(await self.store.usage_by_institution())

    async def pushed_study(self, study_uid: str) -> list[InstanceInfo]:
        rows = await self.store.study_instances([study_uid])
        if not rows:
            s = self.settings
            raise NotPushed("not_pushed", uid=study_uid, ae=s.dicom_ae_title, host=s.host, port=s.dicom_port)
        return [info_from_row(r) for r in rows]

    async def add_pushed(self, info: InstanceInfo) -> bool:
        """Record an instance the Storage SCP or STOW-RS wrote; False when its SOP UID is stored with other
        bytes and settings.instance_conflict keeps the first."""
        replace = self.settings.instance_conflict == "replace"
        earlier, replaced = await self.store.add_pushed(instance_row(info), replace)
        if earlier is None:
            return True
        if replaced:
            log_conflict(info, replaced=True)
            await self.forget_objects(replaced)
            return True
        self.dicoms.remove([info.instance_id])
        if earlier != info.digest:
            log_conflict(info, replaced=False)
            return False
        return True

    def replaced_paths(self, objects: list[tuple[str, str | None]]) -> list[str]:
        """Files of instances no row refers to any more (an object inside a message pack stays in it, unserved)."""
        return [self.dicoms.path(instance_id) for instance_id, pack in objects if pack is None]

    async def forget_objects(self, objects: list[tuple[str, str | None]]) -> None:
        """Remove the files of instances that were replaced or deleted, and what was rendered from them."""
        self.renders.clear()
        self.metadata_cache.clear()
        await asyncio.to_thread(remove_all, self.replaced_paths(objects))

    async def store_part(self, data: bytes, source: str) -> tuple[InstanceInfo, bool]:
        """Check and store one instance sent by STOW-RS: (its info, whether it is kept). DicomProblem when
        it cannot be used; OSError or a database error when it could not be stored."""
        info = await asyncio.to_thread(dicomstore.inspect, data)
        info.digest = hashlib.sha256(data).hexdigest()
        info.instance_id, info.source = dicomstore.new_id(), source
        await asyncio.to_thread(self.dicoms.write, info.instance_id, data)
        try:
            kept = await self.add_pushed(info)
        except BaseException:
            self.dicoms.remove([info.instance_id])
            raise
        return info, kept

    async def delete_study(self, study_uid: str) -> int:
        """Forget a study's instances and their files (DICOMweb DELETE and the center's API); how many.
        Exams that named the study keep their record; their pages then show no images."""
        objects = await self.store.delete_study(study_uid)
        if objects:
            log.warning("已删除检查 StudyInstanceUID %s 的 %d 个实例", study_uid, len(objects))
            await self.forget_objects(objects)
        return len(objects)

    # ---- hop 2 ---------------------------------------------------------------------------------

    def links(self, exam_id: str, study_uid: str | None) -> dict[str, str]:
        """The three hop-2 links (fields 71-73) of an exam."""
        return {
            "examRpotLinkUrl": f"{self.base_url}/report/{exam_id}",
            "imgInfoLinkUrl": f"{self.base_url}/viewer/{exam_id}",
            "imgDldLink": f"{self.base_url}/dicomweb/studies/{study_uid}",
        }

    def hop2_record(self, record: dict[str, Any], exam_id: str, study_uid: str | None) -> dict[str, Any]:
        """The hop-2 record of a stored exam, in the order of the hop-2 table."""
        return hop2_record(record, self.links(exam_id, study_uid), self.settings.center.uscc)

    # ---- status --------------------------------------------------------------------------------

    async def exam_status(self, key: str) -> dict[str, Any]:
        """What a hospital polls: the answer, the files kept, the links and the forwarding state."""
        row = await self.store.exam(key)
        if row is None:
            receipts = await self.store.receipts(key)
            if not receipts:
                raise ExamNotFound(key)
            return {"hiImgIndx": key, "stored": False, "receipts": [receipt_view(r) for r in receipts]}
        fwd = await self.store.forward_state(row["exam_id"])
        studies = await self.store.exam_studies(row["exam_id"])
        return {
            "hiImgIndx": row["hiImgIndx"],
            "examId": row["exam_id"],
            "stored": True,
            "infCode": row["infCode"],
            "msgid": row["msgid"],
            "receivedTime": china_iso(row["received"]),
            "succFlag": row["succFlag"],
            "message": row["message"],
            "report": {"pdf": row["pdf_id"] is not None, "pdfBytes": row["pdf_size"]},
            "images": {
                "studyInstanceUID": row["study_uid"],
                "studies": studies,
                "instances": row["instances"],
                "failures": json.loads(row["failures"]),
                "disagreements": json.loads(row["notes"]),
            },
            "links": self.links(row["exam_id"], row["study_uid"]),
            "forward": forward_view(fwd),
            "receipts": [receipt_view(r) for r in await self.store.receipts(row["hiImgIndx"])],
        }

    async def summary(self) -> dict[str, Any]:
        """Counts over everything received, stored and forwarded."""
        s = await self.store.summary()
        forward = {state: s["forward"].get(state, 0) for state in FORWARD_STATES}
        return {
            "received": s["received"],
            "messages": s["messages"],
            "answers": {flag.value: s["answers"].get(flag.value, 0) for flag in SuccFlag},
            "rejected": {"total": sum(s["rejected_by_reason"].values()), "byReason": s["rejected_by_reason"]},
            "stored": s["stored"],
            "storedPartial": s["stored_partial"],
            "pdfs": s["pdfs"],
            "instances": s["instances"],
            "instanceBytes": s["instance_bytes"],
            "forwarded": forward["done"],
            "forwardedWithWarning": s["forwarded_with_warning"],
            "forwardPending": forward["pending"],
            "forwardSending": forward["sending"],
            "forwardHeld": {"total": forward["held"], "byReason": s["forward_held_by_reason"]},
            "forwardFailed": {"total": forward["failed"], "byReason": s["forward_failed_by_reason"]},
            "oldestUndelivered": undelivered_view(await self.store.oldest_undelivered(), time.time()),
            "batches": s["batches"],
        }

    async def requeue(self, reasons: tuple[str, ...] = REQUEUE_REASONS) -> int:
        """Send again (same msgid and body) the batches held or failed for one of `reasons`; returns how many."""
        n = await self.store.requeue(reasons, now_text(), time.time())
        if n:
            self.wake.set()
        return n

    async def reset(self) -> None:
        """Forget everything (scenario control plane): rows and files."""
        pdfs, dicoms, packs = await self.store.all_file_ids()
        await self.store.reset()
        self.files.used.clear()
        self.renders.clear()
        self.metadata_cache.clear()
        await asyncio.to_thread(remove_all, [self.pdfs.path(f) for f in pdfs] + [self.dicoms.path(f) for f in dicoms]
                                + [self.packs.path(p) for p in packs])

    # ---- pages and DICOMweb --------------------------------------------------------------------

    async def exam_view(self, exam_id: str) -> dict[str, Any]:
        """An exam for its report and image pages; ExamNotFound when there is none."""
        row = await self.store.exam(exam_id)
        if row is None or row["exam_id"] != exam_id:
            raise ExamNotFound(exam_id)
        return {"row": row, "record": json.loads(row["record"]), "studies": await self.store.exam_studies(exam_id)}

    def read_instance(self, row: Any) -> bytes:
        """The Part-10 bytes of a stored instance (a row of the instances table)."""
        if row["pack_id"] is not None:
            return self.packs.read(row["pack_id"], row["offset"], row["size"])
        with open(self.dicoms.path(row["instance_id"]), "rb") as fh:
            return fh.read()

    async def instance_bytes(self, row: Any) -> bytes:
        if row["size"] > READ_IN_THREAD:
            return await asyncio.to_thread(self.read_instance, row)
        return self.read_instance(row)

    def read_pdf(self, row: Any) -> bytes:
        """The report PDF of a stored exam (a row of the exams table with pdf_id set)."""
        if row["pdf_pack"] is not None:
            return self.packs.read(row["pdf_pack"], row["pdf_offset"], row["pdf_size"])
        with open(self.pdfs.path(row["pdf_id"]), "rb") as fh:
            return fh.read()


def hop2_record(record: dict[str, Any], links: dict[str, str], uscc: str) -> dict[str, Any]:
    """A validated hop-1 record as hop 2 carries it, in the order of the hop-2 table: the files replaced by
    the center's three links, its USCC as stogInsUscc, postcode spelt as hop 2 spells it (ERRATA #4)."""
    values = dict(record)
    if "poscode" not in values and "postcode" in values:
        values["poscode"] = values["postcode"]
    values.update(links, stogInsUscc=uscc)
    return {code: values[code] for code in _HOP2_CODES if code in values}


def _remove_unreferenced(stores: list[tuple[FileStore, set[str]]]) -> tuple[int, int]:
    """Remove every file of the stores whose id is not in its set; (files removed, bytes freed)."""
    count = size = 0
    for store, referenced in stores:
        if not store.root.is_dir():
            continue
        for folder in os.scandir(store.root):
            if not folder.is_dir():
                continue
            for entry in os.scandir(folder.path):
                name = entry.name
                if not name.endswith(store.suffix) or name[:-len(store.suffix)] in referenced:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    size += entry.stat().st_size
                    os.unlink(entry.path)
                    count += 1
    return count, size
def log_conflict(info: InstanceInfo, *, replaced: bool) -> None:
    """A different instance under a stored SOP Instance UID, logged whichever the policy."""
    if replaced:
        log.warning("SOPInstanceUID %s 已存储且内容不同：按 instance_conflict=replace 用新实例（来源 %s）替换",
                    info.sop_uid, info.source or "-")
    else:
        log.warning("SOPInstanceUID %s 已存储且内容不同：按 instance_conflict=keep-first 保留首个，拒收新实例（来源 %s）",
                    info.sop_uid, info.source or "-")


def now_text() -> str:
    """The time stored in the center's rows: China wall time (`yyyy-MM-dd HH:mm:ss`)."""
    return china_text()


def receipt_view(row: aiosqlite.Row) -> dict[str, Any]:
    return {"msgid": row["msgid"], "position": row["position"], "succFlag": row["succFlag"], "reason": row["reason"],
            "message": row["message"], "receivedTime": china_iso(row["received"])}


def forward_view(row: aiosqlite.Row | None) -> dict[str, Any]:
    """An exam's delivery to the province: state, attempts, first/last/next attempt, last error and answer."""
    if row is None:
        return {"state": "none"}
    state = row["state"]
    if state == "done":
        word = CENTER["state_warning"] if row["succFlag"] == "0" else CENTER["state_forwarded"]
    elif state == "failed" and row["reason"] == "expired":
        word = CENTER["state_expired"]
    else:
        word = CENTER[f"state_{state}"]
    view: dict[str, Any] = {"state": state, "stateText": word, "queuedTime": china_iso(row["queued"]),
                            "updatedTime": china_iso(row["updated"])}
    if row["batch_id"] is not None:
        view.update(msgid=row["msgid"], attempts=row["attempts"], firstAttempt=china_iso(row["first_at"]),
                    lastAttempt=china_iso(row["last_at"]))
        if row["status"] is not None:
            view["httpStatus"] = row["status"]
        if row["last_error"]:
            view["lastError"] = row["last_error"]
        if state == "sending" and row["attempts"]:
            view["nextAttempt"] = china_iso(row["next_at"])
    if row["succFlag"] is not None:
        view["provinceSuccFlag"] = row["succFlag"]
    if row["message"] is not None:
        view["message"] = row["message"]
    if row["reason"] is not None:
        view["reason"] = row["reason"]
    return view


def undelivered_view(row: aiosqlite.Row | None, now: float) -> dict[str, Any] | None:
    """The exam waiting longest for the province's answer, and for how long (seconds)."""
    if row is None:
        return None
    queued = datetime.strptime(row["queued"], DATETIME_FORMAT).replace(tzinfo=CHINA_TIME)
    return {"examId": row["exam_id"], "state": row["state"], "reason": row["reason"],
            "queuedTime": china_iso(row["queued"]), "ageSeconds": max(0, round(now - queued.timestamp()))}
