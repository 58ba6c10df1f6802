"""--timeout bounds every phase, and a signal at any moment ends ipclab with 130/143 and one line.

End to end through ``python -m ipclab`` (process tier): a worker stuck in set-up fails after --timeout, not after
the fixed set-up limit, with a message that says "stuck", not "raise --timeout"; SIGINT/SIGTERM during the
interpreter's imports, inside a finaliser (where an exception used to be printed as "Exception ignored" and
lost) and after main() has returned all end with 130/143, one ``ipclab:`` line and nothing left behind.
"""

from __future__ import annotations

import time

import pytest
from test_faults import cells_of, fault_env

pytestmark = pytest.mark.process


def test_a_worker_stuck_in_setup_fails_after_timeout_not_the_setup_limit(cli, tmp_path) -> None:
    out = tmp_path / "r.json"
    gate = str(tmp_path / "gate")  # never opened: the gated server waits in connect() for a minute
    started = time.monotonic()
    proc = cli("run", "-t", "gated-pipe", "-p", "stream", "-s", "64", "-n", "100", "--timeout", "1", "-q",
               "-f", "csv", "-o", str(out), env=fault_env(gate=gate), timeout=120)
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, proc.stderr
    reason = cells_of(str(out))["stream", "gated-pipe"]["reason"]
    assert "did not start within 1 s (timed out in set-up" in reason, reason
    assert "raise --timeout" not in reason
    assert elapsed < 20, f"set-up took {elapsed:.0f} s with --timeout 1"  # the fixed limit was 30 s
