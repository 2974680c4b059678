"""The tidy tables every output is made from: one row per run, and one row per run and epoch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from lrn_ablate.report.groups import Grouping
from lrn_ablate.report.runs import RunRecord

RUN_COLUMNS = ("run", "group", "status", "epochs_completed", "epochs_planned", "wall_seconds", "device",
               "error", "diverged_epoch")


@dataclass(frozen=True)
class Tables:
    runs: pd.DataFrame  # RUN_COLUMNS + the flattened config (dotted columns), one row per run
    epochs: pd.DataFrame  # runs joined with metrics.csv: one row per run and epoch
    grouping: Grouping


def build_tables(records: Sequence[RunRecord], grouping: Grouping) -> Tables:
    rows = []
    for record in records:
        summary = record.summary
        diverged_at = summary.get("diverged_at")
        rows.append({
            "run": record.run,
            "group": grouping.labels[record.run],
            "status": record.status,
            "epochs_completed": summary.get("epochs_completed") or len(record.metrics),
            "epochs_planned": summary.get("epochs_planned"),
            "wall_seconds": summary.get("wall_seconds"),
            "device": summary.get("device"),
            "error": summary.get("error"),
            "diverged_epoch": diverged_at.get("epoch") if isinstance(diverged_at, dict) else None,
            # Config keys never clash with the columns above: they are dotted or top-level settings.
            **record.config,
        })
    runs = pd.DataFrame(rows, columns=list(dict.fromkeys([*RUN_COLUMNS, *(k for r in rows for k in r)])))
    metrics = pd.concat([record.metrics.assign(run=record.run) for record in records], ignore_index=True)
    epochs = runs.merge(metrics, on="run", how="inner")
    return Tables(runs=runs, epochs=epochs, grouping=grouping)
