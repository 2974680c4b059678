"""Numbers per run and per group: final and best of the metric, cost, and the Welch test against a baseline.

Only completed runs enter a mean; every other status is counted in its own column.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from lrn_ablate.report.table import Tables
from lrn_ablate.rundir import UNFINISHED

METRICS = ("test_acc", "test_loss", "train_acc", "train_loss")
METRIC_NAMES = {"test_acc": "test accuracy", "test_loss": "test loss", "train_acc": "train accuracy",
                "train_loss": "train loss"}
SIGNIFICANCE = 0.05
# A run has "risen" once its test accuracy reaches this fraction of its own best.
RISE_FRACTION = 0.95
# Per-run numbers that get a mean, a std and a Welch p-value against the baseline, besides the final metric.
STABILITY = ("rise_epoch", "max_drop")


def higher_is_better(metric: str) -> bool:
    return metric.endswith("_acc")


def rise_epoch(test_acc: pd.Series) -> float:
    """The first epoch whose test accuracy reaches RISE_FRACTION of the run's best (NaN with no epochs).

    `test_acc` is indexed by epoch and sorted."""
    values = test_acc.dropna()
    if values.empty:
        return np.nan
    return float(values.index[values >= RISE_FRACTION * values.max()][0])


def max_drop(test_acc: pd.Series) -> tuple[float, float]:
    """(largest fall of test accuracy from one logged epoch to the next, the epoch after that fall).

    0 and NaN when the accuracy never falls; the first such epoch when the largest fall happens twice."""
    values = test_acc.dropna()
    falls = (values.shift(1) - values).iloc[1:]
    if falls.empty or falls.max() <= 0:
        return 0.0, np.nan
    return float(falls.max()), float(falls.idxmax())


def run_stats(tables: Tables, metric: str) -> pd.DataFrame:
    """One row per completed run that logged epochs: its run columns plus final/best numbers."""
    completed = tables.epochs[tables.epochs["status"] == "completed"]
    rows = []
    for run, epochs in completed.groupby("run", sort=False):
        epochs = epochs.sort_values("epoch")
        # Epoch 1 carries one-time costs (warm-up, allocator, cuDNN autotuning, compilation): cost is per
        # epoch from the second on, when there is one.
        steady = epochs.iloc[1:] if len(epochs) > 1 else epochs
        values = epochs.set_index("epoch")[metric].dropna()
        if len(values):
            best_epoch = values.idxmax() if higher_is_better(metric) else values.idxmin()
        else:
            best_epoch = np.nan
        drop, drop_epoch = max_drop(epochs.set_index("epoch")["test_acc"])
        rows.append({
            "run": run,
            "last_epoch": epochs["epoch"].iloc[-1],
            f"final_{metric}": epochs[metric].iloc[-1],
            f"best_{metric}": values.get(best_epoch, np.nan),
            "best_epoch": best_epoch,  # the first epoch that reached the best value
            "final_train_acc": epochs["train_acc"].iloc[-1],
            "seconds_per_epoch": steady["epoch_seconds"].mean(),
            "images_per_second": steady["images_per_second"].mean(),
            "rise_epoch": rise_epoch(epochs.set_index("epoch")["test_acc"]),
            "max_drop": drop,
            "max_drop_epoch": drop_epoch,
        })
    columns = ["run", "last_epoch", f"final_{metric}", f"best_{metric}", "best_epoch", "final_train_acc",
               "seconds_per_epoch", "images_per_second", "rise_epoch", "max_drop", "max_drop_epoch"]
    return tables.runs.merge(pd.DataFrame(rows, columns=columns), on="run")


def welch_p(sample: pd.Series, reference: pd.Series) -> float | None:
    """Welch's t-test p-value, or None below two values a side or when both sides have no spread."""
    sample, reference = sample.dropna(), reference.dropna()
    if len(sample) < 2 or len(reference) < 2:
        return None
    with warnings.catch_warnings():  # identical values on both sides: scipy warns and returns nan
        warnings.simplefilter("ignore", RuntimeWarning)
        p = stats.ttest_ind(sample, reference, equal_var=False).pvalue
    return None if np.isnan(p) else float(p)


def summarize(tables: Tables, per_run: pd.DataFrame, metric: str, baseline: str | None) -> pd.DataFrame:
    """One row per group (in display order) from run_stats' per_run: the group's varying keys, seeds, means
    and stds, status counts, and the differences in final and best metric, rise epoch and largest drop
    from the baseline with their Welch p-values."""
    final, best = f"final_{metric}", f"best_{metric}"
    reference = per_run[per_run["group"] == baseline] if baseline else None
    rows = []
    for label in tables.grouping.order:
        runs = tables.runs[tables.runs["group"] == label]
        done = per_run[per_run["group"] == label]
        seeds = sorted(done["seed"].dropna().astype(int)) if "seed" in done else []
        row = {"group": label, **{key: runs[key].iloc[0] for key in tables.grouping.label_keys},
               "n_seeds": len(done), "seeds": ",".join(map(str, seeds)),
               "epochs": done["last_epoch"].max()}
        for column in (final, best, "best_epoch", "final_train_acc", "seconds_per_epoch",
                       "images_per_second", *STABILITY):
            row[f"{column}_mean"] = done[column].mean()
            row[f"{column}_std"] = done[column].std(ddof=1)  # NaN with one seed
        row.update({status: int((runs["status"] == status).sum()) for status in UNFINISHED})
        compare = reference is not None and label != baseline and len(done) > 0 and len(reference) > 0
        row[f"delta_{final}"] = done[final].mean() - reference[final].mean() if compare else np.nan
        row["p_value"] = welch_p(done[final], reference[final]) if compare else None
        for column in (best, *STABILITY):
            row[f"delta_{column}"] = done[column].mean() - reference[column].mean() if compare else np.nan
            row[f"{column}_p"] = welch_p(done[column], reference[column]) if compare else None
        row["baseline"] = label == baseline
        rows.append(row)
    return pd.DataFrame(rows)


def epoch_curve(epochs: pd.DataFrame, column: str) -> pd.DataFrame:
    """Mean, std, min, max and count of `column` per epoch over the given runs' rows.

    Runs of different lengths are aligned by epoch: each epoch averages the runs that reached it.
    """
    values = epochs[["epoch", column]].replace([np.inf, -np.inf], np.nan)
    curve = values.groupby("epoch")[column].agg(["mean", "std", "min", "max", "count"])
    return curve.sort_index()


def best_group(summary: pd.DataFrame, metric: str) -> str | None:
    """The group with the best mean final metric (among groups with a completed run)."""
    means = summary.set_index("group")[f"final_{metric}_mean"].dropna()
    if means.empty:
        return None
    return str(means.idxmax() if higher_is_better(metric) else means.idxmin())


@dataclass(frozen=True)
class Drawn:
    """The groups a per-group figure draws, and a sentence saying which when it is not all of them."""

    groups: list[str]
    note: str = ""


def drawn_groups(summary: pd.DataFrame, metric: str, baseline: str | None, limit: int) -> Drawn:
    """All groups when there are at most `limit`; else the baseline and the best and worst groups by mean
    final metric (the best get the odd place), in display order, because thirty curves or bars with long
    labels cannot be read at a glance. The tables and heatmaps always keep every group."""
    groups = list(summary["group"])
    if len(groups) <= limit:
        return Drawn(groups)
    ranked = summary[summary["group"] != baseline].dropna(subset=[f"final_{metric}_mean"]).sort_values(
        f"final_{metric}_mean", ascending=not higher_is_better(metric), kind="stable")["group"].tolist()
    places = limit - (baseline is not None)
    n_worst = places // 2 if len(ranked) > places else 0
    best, worst = ranked[: places - n_worst], ranked[len(ranked) - n_worst:] if n_worst else []
    chosen = {*best, *worst, *([baseline] if baseline else [])}
    parts = [*(["the baseline"] if baseline else []), f"the {len(best)} best",
             *([f"the {len(worst)} worst"] if worst else [])]
    listed = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
    return Drawn([group for group in groups if group in chosen],
                 f"{len(chosen)} of {len(groups)} groups: {listed} by mean final {METRIC_NAMES[metric]}")
