"""The center's DICOM port, listening from the moment the center starts.

pynetdicom (with pydicom, its pixel codecs and numpy) takes about half a second of CPU to import — longer
than the rest of `sandbox serve`'s start, and in a thread it would slow every answer of the first second.
So the port is bound and listening at once (the kernel queues the connections that arrive), and the port's
thread waits, holding nothing, for the first connection: only then is the SCP of `scp.StorageSCP` imported
and built, and it serves that association and every later one. A port already in use fails the center's
start as before; an SCP that cannot be built is logged and its port closed, the HTTP side keeps running.
"""

from __future__ import annotations

import asyncio
import logging
import selectors
import socket
import socketserver
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pynetdicom.transport import ThreadedAssociationServer

    from sandbox.center.dicomindex import QueryIndex
    from sandbox.center.domain import Center

log = logging.getLogger("sandbox.center.scp")

POLL_S = 0.05  # the acceptor's poll interval: stopping returns at once


class DicomPort:
    """settings.dicom_port: `open` binds it and starts the SCP's thread; `close` stops and joins it."""

    def __init__(self, center: Center, loop: asyncio.AbstractEventLoop, index: QueryIndex) -> None:
        self.center = center
        self.loop = loop
        self.index = index
        self.listener: socket.socket | None = None
        self.server: ThreadedAssociationServer | None = None
        self.thread: threading.Thread | None = None
        self.built = threading.Event()  # set once the SCP serves, or could not be built, or is not needed
        self.closing = threading.Event()

    def open(self) -> None:
        s = self.center.settings
        # As pynetdicom's server binds (socketserver.TCPServer): the system's own IPv6 dual-stack default kept.
        listener = socket.socket(socket.AF_INET6 if ":" in s.host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((s.host, s.dicom_port))
            listener.listen()
        except BaseException:
            listener.close()
            raise
        self.listener = listener
        self.thread = threading.Thread(target=self._serve, name="center-storage-scp", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        assert self.listener is not None
        server: ThreadedAssociationServer | None = None
        try:
            if self._first_connection():
                from sandbox.center.scp import StorageSCP

                server = StorageSCP(self.center, self.loop, self.index).server_on(self.listener)
        except Exception:
            log.exception("共享中心 DICOM 服务无法启动，端口 %s 已关闭", self.center.settings.dicom_port)
        finally:  # whatever happened, `close` is not left waiting
            if server is None:
                self.listener.close()
            self.server = server
            self.built.set()
        if server is not None:
            server.serve_forever(poll_interval=POLL_S)

    def _first_connection(self) -> bool:
        """Wait, holding nothing, until a connection arrives (True) or the port is closing (False)."""
        assert self.listener is not None
        with selectors.DefaultSelector() as selector:  # epoll: no FD_SETSIZE limit on the socket's number
            selector.register(self.listener, selectors.EVENT_READ)
            while not self.closing.is_set():
                if selector.select(POLL_S):
                    return True
        return False

    def close(self) -> None:
        """Stop accepting, let pynetdicom finish, join the thread (call in a worker thread: a C-STORE handler may
        be waiting for the event loop to commit its row)."""
        if self.thread is None:
            return
        self.closing.set()
        self.built.wait()
        if self.server is not None:
            # socketserver's own shutdown: pynetdicom's also unregisters from the AE, which only start_server
            # registers with.
            socketserver.BaseServer.shutdown(self.server)
            self.server.server_close()
            self.server = None
        self.thread.join()
        self.thread = None
