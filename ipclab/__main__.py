"""``python -m ipclab`` and the ``ipclab`` script: ipclab.cli.main() with signals covered from the first import
to the last flush.

Before main() (the imports) and after it (flushing, interpreter shutdown), nothing of a run exists: SIGINT/SIGTERM
then write one line and end the process at once with 130/143 (never the default disposition's -15, never a
traceback). Inside main() they become exceptions that clean up (ipclab.cli.common.terminate_as_exception).
Interpreter start-up before this module runs is the one window left to the default dispositions.
"""

from __future__ import annotations

import atexit
import os
import sys
from typing import NoReturn


def entry() -> NoReturn:
    """The process entry point (console script ``ipclab``)."""
    from ._early import install

    install()  # already done by the package when this is the program; a no-op then
    from .cli import main

    code = main()  # restores the at-once handlers when it returns
    # Python's own shutdown restores the default signal dispositions before it is done (a SIGTERM then ends
    # the process with -15), so it is not used: flush, run the atexit functions, and leave. Everything of the
    # run was cleaned up by main()'s finally blocks; a signal until the last line still means 130/143.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # `| head`, or main already redirected stdout
            pass
        except OSError:
            code = code or 1
    atexit._run_exitfuncs()
    os._exit(code)


if __name__ == "__main__":
    entry()
