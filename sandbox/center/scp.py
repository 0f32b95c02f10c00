"""The center's DICOM SCP: Verification and Storage (C-ECHO, C-STORE) for PACS that can only push, and the
Query/Retrieve and Storage Commitment services of `qrscp`.

Associations are accepted only when the called AE title is `dicom_ae_title` (else A-ASSOCIATE-RJ
rejected-permanent, service-user, reason 7 "called AE title not recognised") and, when `dicom_calling_aets` is
not empty, the calling AE title is one of them (else reason 3 "calling AE title not recognised").

pynetdicom serves associations in its own threads. A C-STORE handler, in that thread, parses the
instance with pydicom and writes it under a new id; it then hands the instance's row to the asyncio side
with `run_coroutine_threadsafe` and waits for the database to commit before answering, so a success
status means the instance is stored. A pushed study is named in hop 1 as `dicom:<StudyInstanceUID>`.

Statuses (PS3.4 GG.4): 0x0000 stored (also for an identical instance pushed again, and a different one under
a stored SOP Instance UID when settings.instance_conflict is replace); 0xC000 the data set cannot be used
(not parseable, missing UIDs, truncated pixel data, a value pydicom cannot decode as its VR); 0xC001 its SOP
Instance UID is stored with different bytes and is not overwritten (keep-first); 0xA700 the center could
not store it (disk, database). Every failure carries an Error Comment.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, evt
from pynetdicom.presentation import AllStoragePresentationContexts
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from sandbox.center import dicomstore
from sandbox.center.dicomindex import QueryIndex
from sandbox.center.dicomport import POLL_S
from sandbox.center.domain import Center
from sandbox.center.errors import DicomProblem
from sandbox.center.qrscp import QueryRetrieve
from sandbox.spec.messages import dimse_comment

log = logging.getLogger("sandbox.center.scp")

SUCCESS = 0x0000
CANNOT_UNDERSTAND = 0xC000
CONFLICT = 0xC001
OUT_OF_RESOURCES = 0xA700
COMMIT_TIMEOUT_S = 30.0


def failure(status: int, code: str, **kw: Any) -> Dataset:
    """A C-STORE failure status with its Error Comment (dcmtk prints it; without one it shows only the code)."""
    ds = Dataset()
    ds.Status = status
    ds.ErrorComment = dimse_comment(code, **kw)
    return ds


class _Server(ThreadedAssociationServer):
    """pynetdicom's server on the center's listening socket (`dicomport`), collecting garbage as rarely at our
    short poll interval as at its default one."""

    def __init__(self, *args: Any, listener: socket.socket, **kwargs: Any) -> None:
        self._listener = listener
        super().__init__(*args, **kwargs)
        # service_actions() runs gc.collect() every _gc[1] polls (59 by default, at 0.5 s each).
        self._gc = [0, int(59 * 0.5 / POLL_S)]

    def server_bind(self) -> None:
        """Serve the socket `dicomport` bound and listens on (pynetdicom's own options on it)."""
        if self.socket is not None:
            self.socket.close()  # the one socketserver made
        self.socket = self._listener
        if self.ae.network_timeout is not None:
            self.socket.settimeout(self.ae.network_timeout)
        self.server_address = self.socket.getsockname()


class StorageSCP:
    """A pynetdicom AE under settings.dicom_ae_title: its handlers and the server on the center's DICOM port."""

    def __init__(self, center: Center, loop: asyncio.AbstractEventLoop, index: QueryIndex) -> None:
        self.center = center
        self.loop = loop
        self.query_retrieve = QueryRetrieve(center, loop, index)

    def server_on(self, listener: socket.socket) -> ThreadedAssociationServer:
        """The association server on a bound, listening socket (serve it with serve_forever)."""
        settings = self.center.settings
        ae = AE(ae_title=settings.dicom_ae_title)
        ae.require_called_aet = True
        ae.require_calling_aet = list(settings.dicom_calling_aets)
        for cx in AllStoragePresentationContexts:
            assert cx.abstract_syntax is not None
            # scp_role: a C-GET requestor receives its instances as the Storage SCP (role selection).
            ae.add_supported_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES, scu_role=True, scp_role=True)
        ae.add_supported_context(Verification)
        handlers: list[Any] = [(evt.EVT_C_STORE, self.on_store), (evt.EVT_C_ECHO, self.on_echo),
                               *self.query_retrieve.setup(ae)]
        server: ThreadedAssociationServer = ae.make_server(
            (settings.host, settings.dicom_port), evt_handlers=handlers, server_class=_Server, listener=listener)
        return server

    @staticmethod
    def on_echo(event: Any) -> int:
        return SUCCESS

    def on_store(self, event: Any) -> int | Dataset:
        """C-STORE: parse, write, then wait for the asyncio side to commit the row."""
        try:
            data = event.encoded_dataset(include_meta=True)
        except (ValueError, AttributeError, KeyError) as exc:
            log.warning("C-STORE 数据集无法编码：%s", exc)
            return failure(CANNOT_UNDERSTAND, "not_encodable")
        calling = str(event.assoc.requestor.ae_title).strip()
        try:
            info = dicomstore.inspect(data)
        except DicomProblem as exc:
            log.warning("C-STORE 来自 %s 的实例无法使用：%s", calling, exc.message)
            return failure(CANNOT_UNDERSTAND, exc.code, **exc.kw)
        info.digest = hashlib.sha256(data).hexdigest()
        info.instance_id, info.source = dicomstore.new_id(), f"c-store:{calling}"
        try:
            self.center.dicoms.write(info.instance_id, data)
            future = asyncio.run_coroutine_threadsafe(self.center.add_pushed(info), self.loop)
            kept = future.result(timeout=COMMIT_TIMEOUT_S)
        except Exception:
            log.exception("C-STORE 保存失败")
            self.center.dicoms.remove([info.instance_id])
            return failure(OUT_OF_RESOURCES, "out_of_resources")
        if not kept:
            return failure(CONFLICT, "conflict")
        return SUCCESS
