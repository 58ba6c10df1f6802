"""Results in a notebook: ``ipclab.load(path)`` and ``.to_pandas()``, one row per cell and trial.

    import ipclab
    result = ipclab.load("results/samples/sweep.json")
    df = result.to_pandas()
    df.groupby(["pattern", "transport", "size_bytes"]).rtt_p50_us.median()  # per-trial p50s, their median

``load`` reads through the same guarded reader as every command (a regular file under the size cap, strict JSON,
the typed model's validation): a broken or hostile file is one ConfigError line, never code that runs. The
frame's columns carry their units as the result's keys do (``rtt_p50_us``, ``mb_s``, ``size_bytes``, ``cpu_s``);
pandas is imported only by ``to_pandas`` (``pip install 'ipclab[notebook]'``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import model

if TYPE_CHECKING:
    import pandas

INSTALL_HINT = "pip install 'ipclab[notebook]'"
CELL_COLUMNS = ("pattern", "transport", "size_bytes")  # then the cell's rate figures if it has any, then these:
ROW_COLUMNS = ("trial", "status", "placement", "reason")


class Result(model.Result):
    """The typed result (:class:`ipclab.model.Result`) with a way into pandas."""

    def to_pandas(self) -> pandas.DataFrame:
        """One row per cell and trial: pattern, transport, size_bytes (and rate, when the cells have one), trial,
        status, placement, reason, then every per-trial figure under its result key (units in the name:
        ``rtt_p50_us``, ``mb_s``, ``msg_s``, ``cpu_us_msg``...). A cell without trials (``n/a``, or ``failed``
        before its first) is one row with trial <NA> and its reason. Distributions (``*_quantiles_ns``) and
        per-worker raw records are left out: they are in ``cells[i].trials[j]``."""
        pd = require_pandas()
        rows = records(self)
        columns = list(dict.fromkeys(key for row in rows for key in row))
        frame = pd.DataFrame.from_records(rows, columns=columns)
        frame["trial"] = frame["trial"].astype("Int64")  # <NA> for a cell that ran no trial
        frame["size_bytes"] = frame["size_bytes"].astype("int64")
        return frame


def require_pandas() -> Any:
    """The pandas module, or an ImportError that says how to install it."""
    try:
        import pandas
    except ImportError:
        raise ImportError(f"Result.to_pandas() needs pandas, which is not installed: {INSTALL_HINT}") from None
    return pandas


def rate_columns(cell: model.Cell) -> dict[str, Any]:
    """An open-loop cell's offered rate (``--rate``, messages per second); nothing for a closed-loop cell (pandas
    leaves its ``rate`` NaN when other cells have one)."""
    return {} if cell.rate is None else {"rate": cell.rate}


def records(result: model.Result) -> list[dict[str, Any]]:
    """The rows of :meth:`Result.to_pandas` as plain dicts (columns in a stable order)."""
    rows = []
    for cell in result.cells:
        head = {"pattern": cell.pattern, "transport": cell.transport, "size_bytes": cell.size_bytes,
                **rate_columns(cell)}
        common = {"status": cell.status, "placement": cell.placement, "reason": cell.reason}
        if not cell.trials:
            rows.append({**head, "trial": None, **common})
        for trial in cell.trials:
            figures = {k: v for k, v in trial.metrics.items() if v is None or _scalar(v)}
            rows.append({**head, "trial": trial.trial, **common, **figures})
    return rows


def _scalar(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def load(path: str) -> Result:
    """Read a result file (see the module docstring); ConfigError, one line, for anything not a usable result."""
    from .results import _read  # the guarded reader every command uses

    result = Result.from_dict(_read(path), path)
    assert isinstance(result, Result)  # from_dict builds the class it is called on
    return result
