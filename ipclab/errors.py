"""Exception hierarchy: user errors (exit 2), failed runs (exit 1), and everything else is a bug."""

from __future__ import annotations


class IpclabError(Exception):
    """Base of every error ipclab reports as one line instead of a traceback."""

    exit_code = 1


class ConfigError(IpclabError):
    """Bad user input: a flag, a size, an experiment file. Exit status 2."""

    exit_code = 2


class TransportUnavailable(IpclabError):
    """The mechanism cannot run on this machine (library missing, kernel feature absent)."""


class NotApplicable(IpclabError):
    """A cell the mechanism cannot carry (1 MiB over UDP): an ``n/a`` cell with this reason."""


class WorkerError(IpclabError):
    """A worker process failed, hung or died; the message says which and why."""

    def __init__(self, message: str, traceback: str | None = None) -> None:
        super().__init__(message)
        self.traceback = traceback


class Interrupted(IpclabError):
    """The runner received SIGINT/SIGTERM; carries the exit status to use (130/143)."""

    def __init__(self, signum: int) -> None:
        import signal

        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum
        self.exit_code = 128 + signum
