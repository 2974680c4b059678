"""Per-epoch curves and the cost chart, one colour per group in every figure.

Figures are built with matplotlib's object API (Figure, not pyplot), so no GUI backend is ever needed and
nothing stays open between figures: PNGs are drawn by Agg, SVG and PDF by their own backends.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lrn_ablate.report.summarize import RISE_FRACTION, Drawn, epoch_curve
from lrn_ablate.report.table import Tables

FIGSIZE = (7.0, 4.5)
DPI = 150
# column -> (title, y label, factor from the logged value to the drawn one)
CURVES = {
    "test_acc": ("Test accuracy", "test accuracy (%)", 100.0),
    "train_loss": ("Training loss", "train loss (cross-entropy)", 1.0),
    "test_loss": ("Test loss", "test loss (cross-entropy)", 1.0),
    "gap": ("Generalization gap", "train − test accuracy (percentage points)", 100.0),
}
BAND_TEXT = {"std": "band: ±1 std over seeds", "minmax": "band: min–max over seeds"}


def group_colours(groups: Sequence[str]) -> dict[str, Any]:
    """A fixed colour per group from its position in the sorted group order, so figures agree."""
    if len(groups) <= 10:
        palette = colormaps["tab10"].colors
    elif len(groups) <= 20:
        palette = colormaps["tab20"].colors
    else:
        palette = colormaps["viridis"](np.linspace(0, 0.95, len(groups)))
    return {group: palette[i] for i, group in enumerate(groups)}


def save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def place_legend(ax: Axes, entries: int) -> None:
    # Long group labels would cover the curves once there are many of them: put the legend outside.
    if entries <= 6:
        ax.legend(fontsize="small", loc="best")
    else:
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)


def _with_gap(epochs: pd.DataFrame) -> pd.DataFrame:
    return epochs.assign(gap=epochs["train_acc"] - epochs["test_acc"])


def _bounded(completed: tuple[float, float], everything: tuple[float, float]) -> tuple[float, float]:
    """The y-range of all lines, widened past the completed runs' range by at most that range's height on
    each side, so a diverged run shows where it left without its exploding loss flattening the rest."""
    low, high = completed
    span = high - low
    return max(everything[0], low - span), min(everything[1], high + span)


def _title(text: str, drawn: Drawn) -> str:
    return f"{text}\n{drawn.note}" if drawn.note else text


def plot_curve(tables: Tables, column: str, band: str, colours: dict[str, Any], path: Path, drawn: Drawn,
               show_runs: bool = False) -> Path:
    """Mean over completed runs per epoch with a band; diverged runs drawn dashed, one line each.

    With `show_runs`, every completed run is drawn as a thin line under its group's mean and band, so that
    a collapse in one seed stays visible instead of being averaged away."""
    title, ylabel, factor = CURVES[column]
    epochs = _with_gap(tables.epochs)
    figure = Figure(figsize=FIGSIZE)
    ax = figure.subplots()
    entries = 0
    for label in drawn.groups:
        done = epochs[(epochs["group"] == label) & (epochs["status"] == "completed")]
        if done.empty:
            continue
        curve = epoch_curve(done, column)
        mean = curve["mean"] * factor
        if show_runs:
            for _, rows in done.groupby("run", sort=False):
                rows = rows.sort_values("epoch")
                ax.plot(rows["epoch"], rows[column] * factor, color=colours[label], linewidth=0.6, alpha=0.55)
        if band == "std":
            low, high = curve["mean"] - curve["std"], curve["mean"] + curve["std"]
        else:
            low, high = curve["min"], curve["max"]
        ax.plot(curve.index, mean, color=colours[label], linewidth=1.8,
                label=f"{label} (n={done['run'].nunique()})")
        # With one run the std is NaN and min = max: no band is drawn, as it should be.
        ax.fill_between(curve.index, low * factor, high * factor, color=colours[label], alpha=0.2,
                        linewidth=0)
        entries += 1
    limits = ax.get_ylim() if entries else None
    diverged = epochs[(epochs["status"] == "diverged") & epochs["group"].isin(drawn.groups)]
    for _, rows in diverged.groupby("run", sort=False):
        values = rows.sort_values("epoch").set_index("epoch")[column].replace([np.inf, -np.inf], np.nan)
        colour = colours[rows["group"].iloc[0]]
        ax.plot(values.index, values * factor, color=colour, linestyle="--", linewidth=1.0, alpha=0.8)
        finite = values.dropna()
        if len(finite):
            ax.plot(finite.index[-1], finite.iloc[-1] * factor, color=colour, marker="x", markersize=7)
    if limits is not None:
        ax.set_ylim(_bounded(limits, ax.get_ylim()))
    if len(diverged):
        ax.plot([], [], color="grey", linestyle="--", marker="x",
                label="diverged run (not averaged; x = last epoch)")
        entries += 1
    if entries:
        place_legend(ax, entries)
    else:
        ax.text(0.5, 0.5, "no completed or diverged runs to draw", transform=ax.transAxes, ha="center")
    runs_text = "; thin lines: single runs" if show_runs else ""
    ax.set_title(_title(f"{title} per epoch\nmean over completed runs, {BAND_TEXT[band]}{runs_text}", drawn),
                 fontsize="medium")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.ticklabel_format(axis="y", useOffset=False)  # a flat curve must not turn into "1e-11+5" ticks
    ax.grid(alpha=0.3)
    return save(figure, path)


def plot_cost(summary: pd.DataFrame, colours: dict[str, Any], path: Path, drawn: Drawn) -> Path:
    """Seconds per training epoch per group, mean ± std over completed runs (epoch 1 left out)."""
    rows = summary[(summary["n_seeds"] > 0) & summary["group"].isin(drawn.groups)].reset_index(drop=True)
    figure = Figure(figsize=(FIGSIZE[0], max(FIGSIZE[1], 0.45 * len(rows) + 1.5)))
    ax = figure.subplots()
    positions = np.arange(len(rows))
    means, stds = rows["seconds_per_epoch_mean"], rows["seconds_per_epoch_std"]
    ax.barh(positions, means, color=[colours[g] for g in rows["group"]], height=0.6)
    spread = stds.notna()  # one seed: no error bar rather than a misleading zero-width one
    ax.errorbar(means[spread], positions[spread], xerr=stds[spread], fmt="none", ecolor="black", capsize=4)
    ends = means + stds.fillna(0)
    speeds = rows["images_per_second_mean"]
    for position, end, mean, speed in zip(positions, ends, means, speeds, strict=True):
        ax.text(end, position, f"  {mean:.2f} s · {speed:,.0f} images/s", va="center", fontsize="small")
    ax.set_yticks(positions, [f"{g} (n={n})" for g, n in zip(rows["group"], rows["n_seeds"], strict=True)])
    ax.invert_yaxis()
    ax.set_xlim(0, (ends.max() if len(rows) else 1.0) * 1.45)
    ax.set_xlabel("seconds per epoch (training)")
    ax.set_title(_title("Training cost per epoch\nmean ± std over completed runs; epoch 1 (warm-up) left out",
                        drawn), fontsize="medium")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    if rows.empty:
        ax.text(0.5, 0.5, "no completed runs", transform=ax.transAxes, ha="center")
    return save(figure, path)


def plot_stability(per_run: pd.DataFrame, drawn: Drawn, colours: dict[str, Any], path: Path) -> Path:
    """Two panels, one dot per completed run and a bar at each group's mean: the rise epoch and the
    largest epoch-to-epoch fall of test accuracy (annotated with the epoch after the fall)."""
    groups = [label for label in drawn.groups if (per_run["group"] == label).any()]
    figure = Figure(figsize=(FIGSIZE[0] * 1.6, max(FIGSIZE[1], 0.45 * len(groups) + 1.5)))
    rise_ax, drop_ax = figure.subplots(1, 2, sharey=True)
    jitter = np.random.default_rng(0)  # fixed: the same runs give the same figure
    for position, label in enumerate(groups):
        runs = per_run[per_run["group"] == label]
        offsets = position + jitter.uniform(-0.15, 0.15, len(runs))
        for ax, values in ((rise_ax, runs["rise_epoch"]), (drop_ax, runs["max_drop"] * 100)):
            ax.scatter(values, offsets, color=colours[label], s=28, zorder=3)
            ax.plot([values.mean()] * 2, [position - 0.3, position + 0.3], color=colours[label], linewidth=2.5)
        for drop, epoch, offset in zip(runs["max_drop"], runs["max_drop_epoch"], offsets, strict=True):
            if not pd.isna(epoch):
                drop_ax.annotate(f"ep {int(epoch)}", (drop * 100, offset), xytext=(4, 2),
                                 textcoords="offset points", fontsize="x-small")
    rise_ax.set_yticks(range(len(groups)), [f"{g} (n={(per_run['group'] == g).sum()})" for g in groups])
    rise_ax.invert_yaxis()
    rise_ax.set_xlabel(f"rise epoch: first epoch at {RISE_FRACTION:.0%} of the run's best test accuracy")
    rise_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    drop_ax.set_xlabel("largest fall of test accuracy between two epochs (points)")
    drop_ax.set_xlim(left=0)
    for ax in (rise_ax, drop_ax):
        ax.grid(axis="x", alpha=0.3)
        ax.set_axisbelow(True)
    figure.suptitle(_title("How soon test accuracy rises, and how far it falls at once\none dot per "
                           "completed run, bar = group mean", drawn), fontsize="medium")
    if not groups:
        rise_ax.text(0.5, 0.5, "no completed runs", transform=rise_ax.transAxes, ha="center")
    return save(figure, path)
