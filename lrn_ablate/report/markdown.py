"""summary.md and report.md: the tables and generated text around the figures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lrn_ablate.report.groups import display_key
from lrn_ablate.report.summarize import (
    METRIC_NAMES,
    RISE_FRACTION,
    SIGNIFICANCE,
    Drawn,
    best_group,
    higher_is_better,
)
from lrn_ablate.report.table import Tables
from lrn_ablate.rundir import UNFINISHED


def counted(number: int, noun: str) -> str:
    """1 run, 2 runs."""
    return f"{number} {noun}{'s' * (number != 1)}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *(line(row) for row in rows)])


def _number(value: float, digits: int) -> str:
    return "" if pd.isna(value) else f"{value:,.{digits}f}"


def _mean_std(row: pd.Series, column: str, factor: float, digits: int) -> str:
    mean, std = row[f"{column}_mean"] * factor, row[f"{column}_std"] * factor
    if pd.isna(mean):
        return ""
    return f"{mean:.{digits}f}" if pd.isna(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def _unfinished(row: pd.Series) -> str:
    return ", ".join(f"{row[status]} {status}" for status in UNFINISHED if row[status]) or "—"


def metric_units(metric: str) -> tuple[str, float, int, str]:
    """(name with unit, factor from logged value, decimals, unit of a difference)."""
    if higher_is_better(metric):
        return f"{METRIC_NAMES[metric]} (%)", 100.0, 2, "points"
    return METRIC_NAMES[metric], 1.0, 4, ""


def _p(value: float | None) -> str:
    return "" if value is None or pd.isna(value) else f"{value:.3g}"


def _delta(row: pd.Series, column: str, factor: float, digits: int) -> str:
    value = row[f"delta_{column}"]
    return "" if pd.isna(value) else f"{value * factor:+.{digits}f}"


def stability_markdown(summary: pd.DataFrame, per_run: pd.DataFrame) -> str:
    """How soon each group's test accuracy rises and how far it falls between two epochs, per group."""
    header = ["group", f"rise epoch ({RISE_FRACTION:.0%} of best)", "Δ vs baseline", "p (Welch)",
              "largest drop (points)", "Δ vs baseline (points)", "p (Welch)", "drop epochs (per run)"]
    rows = []
    for _, row in summary.iterrows():
        runs = per_run[per_run["group"] == row["group"]]
        drops = [f"{drop * 100:.1f}@{int(epoch)}" for drop, epoch in zip(runs["max_drop"], runs["max_drop_epoch"],
                                                                         strict=True) if not pd.isna(epoch)]
        rows.append([
            f"**{row['group']}** (baseline)" if row["baseline"] else row["group"],
            _mean_std(row, "rise_epoch", 1.0, 1), _delta(row, "rise_epoch", 1.0, 1), _p(row["rise_epoch_p"]),
            _mean_std(row, "max_drop", 100.0, 2), _delta(row, "max_drop", 100.0, 2), _p(row["max_drop_p"]),
            ", ".join(drops) or "—",
        ])
    return markdown_table(header, rows) + "\n"


def summary_markdown(summary: pd.DataFrame, metric: str) -> str:
    name, factor, digits, unit = metric_units(metric)
    final = f"final_{metric}"
    header = ["group", "seeds", f"final {name}", f"best {name}", "best epoch", "final train accuracy (%)",
              "seconds / epoch", "images / s", "not completed",
              f"Δ final vs baseline ({unit})" if unit else "Δ final vs baseline", "p final (Welch)",
              f"Δ best vs baseline ({unit})" if unit else "Δ best vs baseline", "p best (Welch)"]
    rows = []
    for _, row in summary.iterrows():
        rows.append([
            f"**{row['group']}** (baseline)" if row["baseline"] else row["group"],
            f"{row['n_seeds']}" + (f" ({row['seeds']})" if row["seeds"] else ""),
            _mean_std(row, final, factor, digits),
            _mean_std(row, f"best_{metric}", factor, digits),
            _number(row["best_epoch_mean"], 1),
            _mean_std(row, "final_train_acc", 100.0, 2),
            _mean_std(row, "seconds_per_epoch", 1.0, 2),
            _number(row["images_per_second_mean"], 0),
            _unfinished(row),
            _delta(row, final, factor, digits),
            _p(row["p_value"]),
            _delta(row, f"best_{metric}", factor, digits),
            _p(row[f"best_{metric}_p"]),
        ])
    return markdown_table(header, rows) + "\n"


@dataclass(frozen=True)
class ReportInputs:
    source: str  # where the runs came from, as the user gave it
    tables: Tables
    summary: pd.DataFrame
    per_run: pd.DataFrame  # run_stats: one row per completed run
    metric: str
    baseline: str | None
    baseline_sentence: str
    band: str
    show_runs: bool  # the curves draw every completed run under its group's mean
    drawn: Drawn  # the groups the curve, stability and cost figures draw
    figures: dict[str, list[Path]]  # section title -> figure files (in the output folder)
    notes: list[str]


def _figure(path: Path) -> str:
    # A PDF does not display inline in Markdown viewers: link it instead.
    title = path.stem.replace("_", " ")
    return f"[{title}]({path.name})" if path.suffix == ".pdf" else f"![{title}]({path.name})"


def _comparison_lines(inputs: ReportInputs) -> list[str]:
    if inputs.baseline is None:
        return []
    _, factor, digits, unit = metric_units(inputs.metric)
    final = f"final_{inputs.metric}"
    lines = []
    for _, row in inputs.summary[~inputs.summary["baseline"]].iterrows():
        delta, p = row[f"delta_{final}"], row["p_value"]
        if pd.isna(delta):
            lines.append(f"- `{row['group']}`: no comparison (it or the baseline has no completed run).")
            continue
        text = f"- `{row['group']}`: {delta * factor:+.{digits}f}{' ' + unit if unit else ''} vs baseline"
        if pd.isna(p):
            text += "; no test (needs at least 2 seeds on both sides, with some spread)."
        else:
            verdict = "significant" if p < SIGNIFICANCE else "not significant"
            text += f", p = {p:.3g} (Welch's t-test): {verdict} at {SIGNIFICANCE}."
        lines.append(text)
    return lines


def _span(values: pd.Series) -> str:
    """3, or 2–3 when the values differ."""
    low, high = int(values.min()), int(values.max())
    return str(low) if low == high else f"{low}–{high}"


def _overview(inputs: ReportInputs) -> list[str]:
    runs, summary, metric = inputs.tables.runs, inputs.summary, inputs.metric
    _, factor, digits, unit = metric_units(metric)
    counts = runs["status"].value_counts()
    status_text = ", ".join(f"{counts[s]} {s}" for s in ("completed", *UNFINISHED) if s in counts)
    keys = [f"`{display_key(key)}`" for key in inputs.tables.grouping.label_keys]
    lines = [
        f"Runs from `{inputs.source}`: {counted(len(runs), 'run')} ({status_text}) in "
        f"{counted(len(summary), 'group')}.",
        "",
        f"- Groups differ in: {', '.join(keys)}." if keys else "- All runs share one setting.",
        f"- Completed runs (seeds) per group: {_span(summary['n_seeds'])}.",
    ]
    epochs = summary["epochs"].dropna()
    if len(epochs):
        lines.append(f"- Epochs: {_span(epochs)}.")
    best = best_group(summary, metric)
    if best is not None:
        value = summary.set_index("group").loc[best, f"final_{metric}_mean"] * factor
        shown = f"{value:.{digits}f}" + (" %" if unit else "")
        lines.append(f"- Best group by mean final {METRIC_NAMES[metric]}: `{best}` ({shown}).")
    lines += ["", inputs.baseline_sentence, "", *_comparison_lines(inputs)]
    return lines


def _unfinished_runs(runs: pd.DataFrame) -> list[str]:
    listed = runs[runs["status"] != "completed"]
    if listed.empty:
        return [f"All {len(runs)} runs completed."]
    rows = []
    for _, run in listed.iterrows():
        details = []
        if run["status"] == "diverged" and not pd.isna(run["diverged_epoch"]):
            details.append(f"non-finite loss in epoch {int(run['diverged_epoch'])}")
        if isinstance(run["error"], str):
            details.append(run["error"])
        planned = "?" if pd.isna(run["epochs_planned"]) else str(int(run["epochs_planned"]))
        epochs = f"{int(run['epochs_completed'])}/{planned}"
        rows.append([f"`{run['run']}`", run["group"], run["status"], epochs, "; ".join(details)])
    return ["These runs are counted in the summary but not averaged into any number or curve; diverged "
            "runs' partial curves are drawn dashed.", "",
            markdown_table(["run", "group", "status", "epochs", "detail"], rows)]


def _section_text(title: str, inputs: ReportInputs) -> str:
    if title != "Sweep" and inputs.drawn.note:
        return f"{_figures_text(title, inputs)} These figures draw {inputs.drawn.note}; the tables have all."
    return _figures_text(title, inputs)


def _figures_text(title: str, inputs: ReportInputs) -> str:
    if title == "Curves":
        band = "±1 std" if inputs.band == "std" else "min–max"
        runs = " Thin lines are the single completed runs." if inputs.show_runs else ""
        return (f"Mean over the completed runs of each group with a {band} band.{runs} Runs of different "
                "lengths are aligned by epoch: each epoch averages the runs that reached it.")
    if title == "Stability":
        return (f"Per completed run (one dot each): the rise epoch, the first epoch at which test accuracy "
                f"reaches {RISE_FRACTION:.0%} of that run's best, and the largest fall of test accuracy from "
                "one epoch to the next; the bar is the group mean.")
    if title == "Sweep":
        return (f"Final {METRIC_NAMES[inputs.metric]} per setting of the swept numeric keys, averaged over "
                "seeds only: every other setting that varies gets its own panel or line.")
    return ("Seconds per training epoch, mean ± std over completed runs; epoch 1 (one-time warm-up) is "
            "left out.")


def report_markdown(inputs: ReportInputs) -> str:
    lines = ["# LRN ablation report", "", *_overview(inputs), "", "## Summary", "",
             "Means ± std over seeds of completed runs; `summary.csv` has the same numbers in the logged "
             "units (accuracies as fractions). "
             f"Δ and p compare the final and the best {METRIC_NAMES[inputs.metric]} with the baseline group.", "",
             summary_markdown(inputs.summary, inputs.metric), "",
             "### Rise and drops", "",
             f"From each completed run's test accuracy: the rise epoch is the first epoch that reaches "
             f"{RISE_FRACTION:.0%} of the run's best; the largest drop is the largest fall from one epoch to "
             "the next (0 when it never falls), listed per run as points@epoch after the fall. Δ and p "
             "compare the group means with the baseline group.", "",
             stability_markdown(inputs.summary, inputs.per_run)]
    for title, paths in inputs.figures.items():
        lines += [f"## {title}", ""]
        lines += [_section_text(title, inputs), ""]
        lines += [line for path in paths for line in (_figure(path), "")]
    lines += ["## Runs not averaged", "", *_unfinished_runs(inputs.tables.runs)]
    if inputs.notes:
        lines += ["", "## Notes", "", *(f"- {note}" for note in inputs.notes)]
    return "\n".join(lines).rstrip() + "\n"
