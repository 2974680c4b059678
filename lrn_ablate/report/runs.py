"""One run as the report sees it, whichever source (run directory or W&B) it was read from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from lrn_ablate.rundir import METRIC_COLUMNS, STATUSES

# The metrics.csv columns the report draws or tabulates.
REPORTED_METRICS = ("train_loss", "train_acc", "test_loss", "test_acc", "epoch_seconds", "images_per_second")


@dataclass(frozen=True)
class RunRecord:
    run: str  # unique name within one report: a path relative to the common root, or entity/project/id
    config: dict[str, Any]  # flattened: dotted keys -> scalars (lists written as strings)
    summary: dict[str, Any]  # the summary.json fields; "status" is always one of STATUSES
    metrics: pd.DataFrame  # METRIC_COLUMNS, one row per epoch, sorted by epoch

    @property
    def status(self) -> str:
        return self.summary["status"]


def checked_summary(summary: Any, run: str, notes: list[str]) -> dict[str, Any]:
    """The summary with a known status; anything else is counted as a failed run (and noted)."""
    if not isinstance(summary, dict):
        notes.append(f"{run}: summary.json is unreadable or not a JSON object; counted as failed.")
        return {"status": "failed", "error": "unreadable summary.json"}
    if summary.get("status") not in STATUSES:
        notes.append(f"{run}: unknown status {summary.get('status')!r} in summary.json; counted as failed.")
        return {**summary, "status": "failed"}
    return summary


def empty_metrics() -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype="int64" if column == "epoch" else "float64")
                         for column in METRIC_COLUMNS})
