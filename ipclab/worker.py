"""Worker entry point: ``python -m ipclab.worker CONTROL_FD [RUNNER_PID]`` or ``--stdio [RUNNER_PID]``.

The loop itself lives in ipclab.engine.worker (see there for the control protocol); this module keeps the
command line every launcher uses and imports nothing else, so a worker starts fast.
"""

from __future__ import annotations

import sys

from .engine.worker import main, one_line, serve

__all__ = ["main", "one_line", "serve"]

if __name__ == "__main__":
    sys.exit(main())
