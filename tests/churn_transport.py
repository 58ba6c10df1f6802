"""A plug-in transport for the steady-heap test (IPCLAB_EXTRA_TRANSPORTS=churn=churn_transport:ChurnPipe):
anonymous pipes whose consumer, like a library that allocates per message (zmq's receive, posix_ipc's bytes),
copies every message it receives into a new bytes object and keeps up to KEEP of them, then frees them all at
once. With glibc's default trimming each such burst of frees hands the top of the heap back to the kernel and
the next messages fault it in again; a worker that keeps freed memory (engine.worker.steady_heap) faults only
while its heap first grows."""

from __future__ import annotations

from faulty_transports import Wrapped, WrapsOneEnd

from ipclab.transports.pipe import PipeTransport

KEEP = 16


class _Churn(Wrapped):
    def __init__(self, inner: object) -> None:
        super().__init__(inner)  # type: ignore[arg-type]
        self.kept: list[bytes] = []

    def recv_into(self, buf: memoryview) -> int:
        n = self.inner.recv_into(buf)
        self.kept.append(bytes(buf))  # a fresh allocation of the whole message, every page written
        if len(self.kept) == KEEP:
            self.kept.clear()
        return n


class ChurnPipe(WrapsOneEnd, PipeTransport):
    name = "churn"
    summary = "pipes whose consumer allocates a copy of each message and frees 16 at a time"
    fault = _Churn
