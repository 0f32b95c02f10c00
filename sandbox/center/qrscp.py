"""Query/Retrieve (C-FIND, C-GET, C-MOVE) and Storage Commitment Push of the center's DICOM SCP.

pynetdicom calls these handlers in an association's thread; each one asks the asyncio side for records with
`run_coroutine_threadsafe` (the QueryIndex QIDO-RS uses, so C-FIND and QIDO-RS match alike) and then
answers from its own thread.

- C-FIND: Patient Root (PATIENT, STUDY, SERIES, IMAGE) and Study Root (STUDY, SERIES, IMAGE). Keys of the
  query level and the levels above it are matched (PS3.4 C.2.2.2 via `dicomquery`); keys the center does not
  support are returned empty; a key below the level with a value is refused with 0xA900.
- C-GET: the matching instances are sent back on the same association, in their stored transfer syntax when
  the requestor accepted it, else converted (decompressed, or big endian byte-swapped) to the uncompressed syntax it accepted.
- C-MOVE: to the AE title's `host:port` in `dicom_destinations`; an unknown destination is 0xA801. Each
  instance goes as stored when the destination accepted that syntax, else converted as for C-GET.
- Storage Commitment Push (N-ACTION, PS3.4 J): answered at once, then N-EVENT-REPORT on the same association
  when it is still open, else on a new association to the requestor's entry in `dicom_destinations`.

Error Comments are ASCII: the DIMSE command set has no character set; the log says the same in Chinese.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from typing import Any

from pydicom.charset import convert_encodings
from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, build_context, evt
from pynetdicom.pdu_primitives import SCP_SCU_RoleSelectionNegotiation
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StorageCommitmentPushModel,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from sandbox.center.dicomindex import QueryIndex
from sandbox.center.dicomquery import (
    BY_KEYWORD,
    UNIQUE,
    Condition,
    Level,
    QueryError,
    condition,
    dataset,
    element_text,
    levels_upto,
)
from sandbox.center.domain import Center
from sandbox.center.syntax import NotProducible, convert, producible, read
from sandbox.spec.formats import DICOM_UID_RE

log = logging.getLogger("sandbox.center.qrscp")

PENDING = 0xFF00
CANCELLED = 0xFE00
IDENTIFIER_DOES_NOT_MATCH = 0xA900
UNABLE_TO_PROCESS = 0xC000
NO_SUCH_ACTION = 0x0123
MISSING_ATTRIBUTE = 0x0120
INVALID_ATTRIBUTE_VALUE = 0x0106
NO_SUCH_OBJECT_INSTANCE = 0x0112  # Storage Commitment FailureReason (PS3.4 J.3.2.1.1.2)
CLASS_INSTANCE_CONFLICT = 0x0119
COMMITMENT_INSTANCE = UID("1.2.840.10008.1.20.1.1")  # the well-known Storage Commitment SOP Instance
QUERY_TIMEOUT_S = 120.0

PATIENT_ROOT = ("PATIENT", "STUDY", "SERIES", "IMAGE")
STUDY_ROOT = ("STUDY", "SERIES", "IMAGE")
MODELS: dict[str, tuple[str, ...]] = {
    PatientRootQueryRetrieveInformationModelFind: PATIENT_ROOT,
    PatientRootQueryRetrieveInformationModelGet: PATIENT_ROOT,
    PatientRootQueryRetrieveInformationModelMove: PATIENT_ROOT,
    StudyRootQueryRetrieveInformationModelFind: STUDY_ROOT,
    StudyRootQueryRetrieveInformationModelGet: STUDY_ROOT,
    StudyRootQueryRetrieveInformationModelMove: STUDY_ROOT,
}
FIND_MODELS = (PatientRootQueryRetrieveInformationModelFind, StudyRootQueryRetrieveInformationModelFind)
RETRIEVE_MODELS = (PatientRootQueryRetrieveInformationModelGet, PatientRootQueryRetrieveInformationModelMove,
                   StudyRootQueryRetrieveInformationModelGet, StudyRootQueryRetrieveInformationModelMove)
# Not query keys in an identifier.
_NOT_KEYS = frozenset({0x00080005, 0x00080052, 0x00080054, 0x00080056})
UNCOMPRESSED = frozenset({ExplicitVRLittleEndian, ImplicitVRLittleEndian})


class Refused(Exception):
    """An identifier the SCP cannot use: a DIMSE status with an (ASCII) Error Comment."""

    def __init__(self, status: int, comment: str, tag: int | None = None) -> None:
        super().__init__(comment)
        self.status = status
        self.comment = comment[:64]
        self.tag = tag

    def dataset(self) -> Dataset:
        ds = Dataset()
        ds.Status = self.status
        ds.ErrorComment = self.comment
        if self.tag is not None:
            ds.OffendingElement = [self.tag]
        return ds


def parse_identifier(ident: Dataset, model: str) -> tuple[Level, list[Condition], list[str]]:
    """(level, conditions, keywords to return) of a C-FIND/C-GET/C-MOVE identifier; Refused when unusable."""
    if "SpecificCharacterSet" not in ident:
        # Chinese PACS send UTF-8 names without declaring it; ASCII is unchanged by this reading. pydicom
        # decodes with the character set the data set was read with, so that is what changes.
        ident.SpecificCharacterSet = "ISO_IR 192"
        implicit, little = ident.original_encoding
        ident.set_original_encoding(implicit, little, convert_encodings("ISO_IR 192"))
    level = str(ident.get("QueryRetrieveLevel", "") or "").strip().upper()
    levels = MODELS[model]
    if level not in levels:
        log.warning("查询/检索层级「%s」不属于该信息模型（可用：%s）", level, "、".join(levels))
        raise Refused(IDENTIFIER_DOES_NOT_MATCH, f"QueryRetrieveLevel '{level[:16]}' not in {'/'.join(levels)}",
                      0x00080052)
    allowed = levels_upto(level)  # type: ignore[arg-type]
    conditions: list[Condition] = []
    returned: list[str] = []
    for elem in ident:
        if elem.tag in _NOT_KEYS or elem.tag.group == 0x0002 or not elem.keyword:
            continue
        if elem.VR == "SQ":
            returned.append(elem.keyword)
            continue
        key = BY_KEYWORD.get(elem.keyword)
        try:
            text = element_text(elem)
        except Exception as exc:  # a value pydicom cannot decode
            raise Refused(IDENTIFIER_DOES_NOT_MATCH, f"{elem.keyword}: unreadable value", elem.tag) from exc
        returned.append(elem.keyword)
        if key is None:
            continue  # returned empty: universal matching on a key the center does not keep
        if key.level not in allowed:
            if text.strip():
                log.warning("查询键 %s 低于查询层级 %s，不能匹配", key.keyword, level)
                raise Refused(IDENTIFIER_DOES_NOT_MATCH, f"{key.keyword} is below the {level} level", elem.tag)
            continue
        try:
            cond = condition(key, text, "\\")
        except QueryError as exc:
            log.warning("C-FIND 查询值无法使用：%s", exc)
            raise Refused(IDENTIFIER_DOES_NOT_MATCH, f"{key.keyword}: malformed value", elem.tag) from exc
        if cond is not None:
            conditions.append(cond)
    return level, conditions, returned  # type: ignore[return-value]


class QueryRetrieve:
    """The Q/R and Storage Commitment handlers of the center's AE."""

    def __init__(self, center: Center, loop: asyncio.AbstractEventLoop, index: QueryIndex) -> None:
        self.center = center
        self.loop = loop
        self.index = index
        self._commitments: dict[int, list[Dataset]] = {}  # id(assoc) -> reports waiting for the N-ACTION-RSP
        self._lock = threading.Lock()

    def setup(self, ae: AE) -> list[Any]:
        """Add the presentation contexts to `ae`; the (event, handler) pairs to serve with."""
        for uid in (*FIND_MODELS, *RETRIEVE_MODELS, StorageCommitmentPushModel):
            ae.add_supported_context(uid)
        ae.add_requested_context(StorageCommitmentPushModel)
        return [(evt.EVT_C_FIND, self.on_find), (evt.EVT_C_GET, self.on_get), (evt.EVT_C_MOVE, self.on_move),
                (evt.EVT_N_ACTION, self.on_commit), (evt.EVT_DIMSE_SENT, self.on_sent)]

    def _records(self, level: Level, conditions: list[Condition]) -> list[dict[str, Any]]:
        future = asyncio.run_coroutine_threadsafe(self.index.find(level, conditions), self.loop)
        return future.result(timeout=QUERY_TIMEOUT_S)

    # ---- C-FIND ----------------------------------------------------------------------------------------

    def on_find(self, event: Any) -> Iterator[tuple[int | Dataset, Dataset | None]]:
        model = str(event.request.AffectedSOPClassUID)
        try:
            level, conditions, returned = parse_identifier(event.identifier, model)
        except Refused as exc:
            yield exc.dataset(), None
            return
        # Every response names the unique keys of its level and the levels above it (PS3.4 C.4.1.2.1).
        levels = MODELS[model]
        unique = [UNIQUE[lv] for lv in levels[:levels.index(level) + 1]]  # type: ignore[index]
        returned = list(dict.fromkeys(unique + returned))
        records = self._records(level, conditions)
        for record in records:
            if event.is_cancelled:
                yield CANCELLED, None
                return
            ds = dataset(record, returned)
            ds.QueryRetrieveLevel = level
            if "RetrieveAETitle" in event.identifier:
                ds.RetrieveAETitle = self.center.settings.dicom_ae_title
            if "InstanceAvailability" in event.identifier:
                ds.InstanceAvailability = "ONLINE"
            yield PENDING, ds

    # ---- C-GET / C-MOVE ---------------------------------------------------------------------------------

    def _instances(self, event: Any) -> list[dict[str, Any]]:
        level, conditions, _ = parse_identifier(event.identifier, str(event.request.AffectedSOPClassUID))
        if not conditions:
            raise Refused(IDENTIFIER_DOES_NOT_MATCH, f"no unique key for the {level} level")
        # Every key of a level is also a key of the instances under it: match at IMAGE level directly.
        return self._records("IMAGE", conditions)

    def on_get(self, event: Any) -> Iterator[Any]:
        try:
            records = self._instances(event)
        except Refused as exc:
            yield 1
            yield exc.dataset(), None
            return
        yield len(records)
        accepted: dict[str, set[str]] = {}
        for cx in event.assoc.accepted_contexts:
            if cx.as_scu:  # the center's role in the storage sub-operations of a C-GET
                accepted.setdefault(str(cx.abstract_syntax), set()).add(str(cx.transfer_syntax[0]))
        for record in records:
            if event.is_cancelled:
                yield CANCELLED, None
                return
            yield PENDING, _fit(self.center.read_instance(record), accepted.get(record["SOPClassUID"], set()), "C-GET")

    def on_move(self, event: Any) -> Iterator[Any]:
        destination = str(event.move_destination or "").strip()
        address = self.center.settings.dicom_destination(destination)
        if address is None:
            log.warning("C-MOVE 目的地 %s 未在 dicom_destinations 中配置", destination)
            yield None, None  # pynetdicom answers 0xA801 Move Destination unknown
            return
        try:
            records = self._instances(event)
        except Refused as exc:
            yield address[0], address[1]
            yield 1
            yield exc.dataset(), None
            return
        contexts = []
        for sop_class, ts in dict.fromkeys((r["SOPClassUID"], r["transfer_syntax"]) for r in records):
            contexts.append(build_context(sop_class, ts))
            if ts not in UNCOMPRESSED:
                contexts.append(build_context(sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian]))
        yield address[0], address[1], {"contexts": contexts[:128]}
        ae = event.assoc.ae
        before = set(_requestors(ae))
        yield len(records)  # pynetdicom now opens the association to the destination
        accepted = _accepted_by(ae, before, address, destination)
        for record in records:
            if event.is_cancelled:
                yield CANCELLED, None
                return
            yield PENDING, _fit(self.center.read_instance(record), accepted.get(record["SOPClassUID"], set()), "C-MOVE")

    # ---- Storage Commitment Push -------------------------------------------------------------------------

    def on_commit(self, event: Any) -> tuple[int, Dataset | None]:
        """N-ACTION Request Storage Commitment: check it, answer, and report once the answer is sent."""
        if event.action_type != 1:
            return NO_SUCH_ACTION, None
        info = event.action_information
        transaction = str(info.get("TransactionUID", "") or "")
        if not transaction:
            return MISSING_ATTRIBUTE, None
        refs = info.get("ReferencedSOPSequence")
        if not DICOM_UID_RE.match(transaction) or not refs:
            return INVALID_ATTRIBUTE_VALUE, None
        wanted = [(str(item.get("ReferencedSOPClassUID", "")), str(item.get("ReferencedSOPInstanceUID", "")))
                  for item in refs]
        report = self._report(transaction, wanted)
        with self._lock:
            self._commitments.setdefault(id(event.assoc), []).append(report)
        return 0x0000, None

    def _report(self, transaction: str, wanted: list[tuple[str, str]]) -> Dataset:
        """The N-EVENT-REPORT data set: which of the referenced instances the center keeps."""
        stored = self._stored_classes([sop for _, sop in wanted])
        ds = Dataset()
        ds.TransactionUID = transaction
        ds.RetrieveAETitle = self.center.settings.dicom_ae_title
        ok, failed = [], []
        for sop_class, sop in wanted:
            item = Dataset()
            item.ReferencedSOPClassUID = sop_class
            item.ReferencedSOPInstanceUID = sop
            if stored.get(sop) == sop_class:
                ok.append(item)
            else:
                item.FailureReason = NO_SUCH_OBJECT_INSTANCE if sop not in stored else CLASS_INSTANCE_CONFLICT
                failed.append(item)
        if ok:
            ds.ReferencedSOPSequence = ok
        if failed:
            ds.FailedSOPSequence = failed
        return ds

    def _stored_classes(self, sop_uids: list[str]) -> dict[str, str]:
        async def read() -> dict[str, str]:
            out = {}
            for sop in dict.fromkeys(sop_uids):
                row = await self.center.store.instance(sop)
                if row is not None:
                    out[sop] = row["sop_class"]
            return out

        return asyncio.run_coroutine_threadsafe(read(), self.loop).result(timeout=QUERY_TIMEOUT_S)

    def on_sent(self, event: Any) -> None:
        """After an N-ACTION-RSP is sent, report on that association from another thread."""
        if type(event.message).__name__ != "N_ACTION_RSP":
            return
        with self._lock:
            reports = self._commitments.pop(id(event.assoc), [])
        for report in reports:
            threading.Thread(target=self._send_report, args=(event.assoc, report), daemon=True,
                             name="center-commitment-report").start()

    def _send_report(self, assoc: Any, report: Dataset) -> None:
        event_type = 2 if "FailedSOPSequence" in report else 1
        if assoc.is_established:
            try:
                status = assoc.send_n_event_report(report, event_type, StorageCommitmentPushModel,
                                                   COMMITMENT_INSTANCE)
                if status is not None and int(status.get("Status", 0xFFFF)) == 0x0000:
                    return
            except Exception as exc:  # the SCU released meanwhile: report on a new association instead
                log.info("存储确认：原关联已不可用（%s），改用新关联", exc)
        try:
            self._report_on_new_association(str(assoc.requestor.ae_title).strip(), report, event_type)
        except Exception:
            log.exception("存储确认 N-EVENT-REPORT 发送失败（事务 %s）", report.TransactionUID)

    def _report_on_new_association(self, ae_title: str, report: Dataset, event_type: int) -> None:
        """PS3.4 J.3.3: the SCP opens an association, in the SCP role, to the SCU that asked."""
        address = self.center.settings.dicom_destination(ae_title)
        if address is None:
            log.warning("存储确认：%s 的关联已关闭且未在 dicom_destinations 中配置，无法发送 N-EVENT-REPORT（事务 %s）",
                        ae_title, report.TransactionUID)
            return
        ae = AE(ae_title=self.center.settings.dicom_ae_title)
        ae.add_requested_context(StorageCommitmentPushModel)
        role = SCP_SCU_RoleSelectionNegotiation()
        role.sop_class_uid = StorageCommitmentPushModel
        role.scu_role = False
        role.scp_role = True
        assoc = ae.associate(address[0], address[1], ae_title=ae_title, ext_neg=[role])
        if not assoc.is_established:
            log.warning("存储确认：无法与 %s（%s:%d）建立关联（事务 %s）", ae_title, *address, report.TransactionUID)
            return
        try:
            assoc.send_n_event_report(report, event_type, StorageCommitmentPushModel, COMMITMENT_INSTANCE)
        finally:
            assoc.release()


def _requestors(ae: Any) -> list[Any]:
    """The associations this AE has opened (as requestor) and that are still running."""
    return [a for a in ae.active_associations if a.is_requestor]


def _accepted_by(ae: Any, before: set[Any], address: tuple[str, int], title: str) -> dict[str, set[str]]:
    """SOP class → transfer syntaxes accepted on the association a C-MOVE handler's pynetdicom has just opened
    to `title` at `address` (the one of those not running in `before`). pynetdicom keeps that association to
    itself; when it cannot be told apart (another C-MOVE to the same destination opened one at the same
    moment), nothing is known and the instances go as stored."""
    found = [a for a in _requestors(ae) if a not in before and a.is_established
             and (a.acceptor.address, a.acceptor.port) == address and str(a.acceptor.ae_title).strip() == title]
    accepted: dict[str, set[str]] = {}
    if len(found) == 1:
        for cx in found[0].accepted_contexts:
            accepted.setdefault(str(cx.abstract_syntax), set()).add(str(cx.transfer_syntax[0]))
    return accepted


def _fit(data: bytes, accepted: set[str], operation: str) -> Dataset:
    """The instance in a transfer syntax the C-GET requestor or C-MOVE destination accepted: as stored, or
    converted (decompressed, or big endian byte-swapped) to an uncompressed little-endian syntax it accepted;
    pynetdicom converts between the two little-endian ones itself. With nothing known of what was accepted,
    as stored."""
    ds = read(data)
    ts = str(ds.file_meta.get("TransferSyntaxUID", ""))
    if ts in accepted or ts in UNCOMPRESSED or not accepted & UNCOMPRESSED:
        return ds
    if not producible(ts, ExplicitVRLittleEndian):  # no decoder: the sub-operation fails with the stored syntax
        log.warning("%s：实例 %s 的传输语法 %s 无法转换为对方接受的语法", operation, ds.get("SOPInstanceUID"), ts)
        return ds
    try:
        return read(convert(data, ts, ExplicitVRLittleEndian)[0])
    except NotProducible as exc:
        log.warning("%s：实例 %s：%s", operation, ds.get("SOPInstanceUID"), exc)
        return ds
