"""A plug-in transport that loses messages by construction, loaded through IPCLAB_EXTRA_TRANSPORTS.

    drop10    anonymous pipes whose producer silently skips every DROP_EVERY-th message it is asked to send,
              declared unreliable (as a datagram transport is): a stream of N messages loses exactly N/10

Known answer for the report tests: ``ipclab run -t drop10 -p stream -n 1000 --warmup 0`` loses 100 of 1000
messages, 10.0 %, and every figure of that cell must say so beside it.
"""

from __future__ import annotations

from faulty_transports import Wrapped, WrapsOneEnd

from ipclab.transports.pipe import PipeTransport

DROP_EVERY = 10


class _Dropper(Wrapped):
    def send(self, msg: memoryview) -> None:
        self.n += 1
        if self.n % DROP_EVERY:
            self.inner.send(msg)


class DropTransport(WrapsOneEnd, PipeTransport):
    name = "drop10"
    summary = "pipes whose producer drops every 10th message (unreliable by declaration)"
    reliable = False
    faulty_role, fault = "client", _Dropper
