"""Read the same RunRecords from a W&B project instead of run directories (`--wandb ENTITY/PROJECT`).

The W&B logger mirrors the run directory: run.config is the resolved config, the history rows are the
metrics.csv rows (logged at step = epoch) and run.summary carries the summary.json fields.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from lrn_ablate.errors import UserError
from lrn_ablate.report.runs import RunRecord, checked_summary
from lrn_ablate.rundir import METRIC_COLUMNS, flatten_config

SUMMARY_FIELDS = ("status", "epochs_completed", "epochs_planned", "final_test_acc", "best_test_acc",
                  "best_epoch", "wall_seconds", "device", "machine", "num_params", "error", "diverged_at")
# A run that died before writing its status has only W&B's state to go by.
STATE_TO_STATUS = {"finished": "completed", "running": "running", "crashed": "failed", "failed": "failed",
                   "killed": "interrupted"}


def _metrics(history: list[dict[str, Any]]) -> pd.DataFrame:
    table = pd.DataFrame(history).reindex(columns=list(METRIC_COLUMNS)).apply(pd.to_numeric, errors="coerce")
    table = table.dropna(subset=["epoch"]).drop_duplicates("epoch", keep="last").sort_values("epoch")
    return table.astype({"epoch": "int64"}).reset_index(drop=True)


def _record(run: Any, path: str, notes: list[str]) -> RunRecord:
    name = f"{path}/{run.id}"
    summary = {field: run.summary.get(field) for field in SUMMARY_FIELDS if field in run.summary}
    if summary.get("diverged_at") is not None:  # a nested summary value is W&B's own mapping type
        summary["diverged_at"] = dict(summary["diverged_at"].items())
    summary.setdefault("status", STATE_TO_STATUS.get(run.state, run.state))
    return RunRecord(
        run=name,
        config=flatten_config(dict(run.config)),
        summary=checked_summary(summary, name, notes),
        metrics=_metrics(list(run.scan_history())),  # scan_history: every row, history() would sample
    )


def collect_wandb(path: str, notes: list[str]) -> list[RunRecord]:
    """Every run of the W&B project ENTITY/PROJECT (needs network access and `wandb login`)."""
    import wandb  # only this source needs it

    try:
        records = [_record(run, path, notes) for run in wandb.Api().runs(path)]
    except Exception as error:  # network, authentication, unknown project: all end the report the same way
        raise UserError(f"could not read the runs of W&B project '{path}': {error}") from None
    if not records:
        raise UserError(f"no runs in W&B project '{path}'.")
    return records
