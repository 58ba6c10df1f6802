"""python -m ipclab -> ipclab.cli.main()."""

import sys

from .cli import main

sys.exit(main())
