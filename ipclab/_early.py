"""Signals before anything of ipclab is running: installed by the package's first line when this process is the
``ipclab`` program (``python -m ipclab ...`` or the ``ipclab`` script), never for a program that imports ipclab.

Until main() takes over, SIGINT/SIGTERM write one line and end the process at once with 130/143: nothing of a run
exists yet, and the default dispositions would print a KeyboardInterrupt traceback or end with -15. Only modules
the interpreter has loaded at start-up anyway (``os``, ``sys``, and ``signal``'s ``enum``) are used, so the
window before the handlers is as short as it can be.
"""

from __future__ import annotations

import os
import signal
import sys

NAMES: dict[int, str] = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}


def exit_at_once(signum: int, frame: object) -> None:
    # os.write and os._exit only: this may run in the middle of an import or of a buffered write.
    os.write(2, f"ipclab: interrupted by {NAMES.get(signum, signum)}\n".encode())
    os._exit(128 + signum)


def is_the_program() -> bool:
    """This process runs ipclab's command line: ``python [opts] -m ipclab ...`` or a script named ipclab."""
    argv = getattr(sys, "orig_argv", [])
    if "-m" in argv[:-1] and argv[argv.index("-m") + 1] == "ipclab":
        return True
    return os.path.basename(sys.argv[0]) == "ipclab" if sys.argv else False


def install() -> None:
    for signum in NAMES:
        signal.signal(signum, exit_at_once)
