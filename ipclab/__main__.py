"""python -m ipclab -> ipclab.cli.main()."""

import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while the interpreter starts: nothing exists yet, nothing to clean
    sys.exit(130)

sys.exit(main())
