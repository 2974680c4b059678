"""Final metric over swept numeric keys: a heatmap per pair of keys, or a line plot for a single key.

A swept key is a numeric config key (seed and bookkeeping excluded) with two or more values among the
completed runs. Every other key that varies between those runs (a third swept key, norm.convention, ...)
gets its own panel or line, so no cell or point ever averages over different settings; only seeds are.
A heatmap panel needs two or more values of both of its keys: a preset that sits beside a grid (one cell
of its own, such as norm=lrn_caffe next to an alpha x beta grid) is left to the summary table, and a
pair of keys that no panel varies together gets no figure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from lrn_ablate.report.plots import FIGSIZE, place_legend, save
from lrn_ablate.report.summarize import METRIC_NAMES, higher_is_better
from lrn_ablate.rundir import format_value


def metric_axis(metric: str) -> tuple[str, float]:
    """The axis label of the final metric and the factor from the logged value (fractions -> %)."""
    name = f"final {METRIC_NAMES[metric]}"
    return (f"{name} (%)", 100.0) if higher_is_better(metric) else (name, 1.0)


def swept_keys(per_run: pd.DataFrame, label_keys: Sequence[str]) -> list[str]:
    keys = []
    for key in label_keys:
        column = per_run[key]
        numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
        if numeric and column.nunique() > 1:
            keys.append(key)
    return keys


def _text(value: Any) -> str:
    return "—" if pd.isna(value) else format_value(value)


def _panels(rows: pd.DataFrame, keys: Sequence[str]) -> list[tuple[str, pd.DataFrame]]:
    """(title, rows) for each combination of the keys that still vary within rows."""
    varying = [key for key in keys if rows[key].nunique(dropna=False) > 1]
    if not varying:
        return [("", rows)]
    return [(", ".join(f"{k}={_text(v)}" for k, v in zip(varying, values, strict=True)), part)
            for values, part in rows.groupby(varying, dropna=False, sort=True)]


def heatmap_panels(per_run: pd.DataFrame, x: str, y: str, label_keys: Sequence[str]
                   ) -> list[tuple[str, pd.DataFrame]]:
    """(title, rows) of each setting of the other varying keys in which both x and y take 2+ values."""
    rows = per_run.dropna(subset=[x, y])
    return [(title, part) for title, part in _panels(rows, [k for k in label_keys if k not in (x, y)])
            if part[x].nunique() > 1 and part[y].nunique() > 1]


def plot_heatmap(panel_rows: list[tuple[str, pd.DataFrame]], x: str, y: str, metric: str, path: Path) -> Path:
    """Mean final metric over seeds for each (x, y) cell, one panel per setting of the other varying keys."""
    label, factor = metric_axis(metric)
    rows = pd.concat([part for _, part in panel_rows])
    xs, ys = sorted(rows[x].unique()), sorted(rows[y].unique())
    panels = [(title, part.pivot_table(index=y, columns=x, values=f"final_{metric}", aggfunc="mean")
               .reindex(index=ys, columns=xs) * factor) for title, part in panel_rows]
    low = min(float(np.nanmin(grid.to_numpy())) for _, grid in panels)
    high = max(float(np.nanmax(grid.to_numpy())) for _, grid in panels)
    columns = min(3, len(panels))
    lines = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(max(FIGSIZE[0], 3.4 * columns + 1.5), 3.2 * lines + 1.2), layout="constrained")
    axes = figure.subplots(lines, columns, squeeze=False).ravel()
    cmap = colormaps["viridis"].with_extremes(bad="#e6e6e6")  # cells without a completed run
    image = None
    for ax, (title, grid) in zip(axes, panels, strict=False):
        image = ax.imshow(grid.to_numpy(), origin="lower", cmap=cmap, vmin=low, vmax=high, aspect="auto")
        for (i, j), value in np.ndenumerate(grid.to_numpy()):
            if np.isnan(value):
                ax.text(j, i, "—", ha="center", va="center", color="dimgrey")
                continue
            shade = 0.5 if high == low else (value - low) / (high - low)
            ax.text(j, i, f"{value:.1f}" if factor != 1 else f"{value:.3f}", ha="center", va="center",
                    fontsize="small", color="white" if shade < 0.6 else "black")
        ax.set_xticks(range(len(xs)), [format_value(v) for v in xs])
        ax.set_yticks(range(len(ys)), [format_value(v) for v in ys])
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.set_title(title.replace(", ", "\n", 1) if len(title) > 40 else title, fontsize="small")
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    figure.colorbar(image, ax=axes[: len(panels)].tolist(), label=label, shrink=0.9)
    figure.suptitle(f"{label.capitalize()} over {x} × {y}\n"
                    "mean over seeds of completed runs; — = none completed", fontsize="medium")
    return save(figure, path)


def plot_line(per_run: pd.DataFrame, x: str, label_keys: Sequence[str], metric: str,
              colours: dict[str, Any], path: Path) -> Path:
    """Mean ± std over seeds against x; one line per setting of the other varying keys, and each group
    without x (such as norm=none) as a dashed reference line in its group colour."""
    label, factor = metric_axis(metric)
    final = f"final_{metric}"
    rows = per_run.dropna(subset=[x])
    figure = Figure(figsize=FIGSIZE)
    ax = figure.subplots()
    lines = _panels(rows, [k for k in label_keys if k != x])
    palette = colormaps["Dark2"].colors  # sweep lines are not groups, so not the group colours
    for index, (title, part) in enumerate(lines):
        points = part.groupby(x)[final].agg(["mean", "std"]) * factor
        ax.errorbar(points.index, points["mean"], yerr=points["std"], marker="o", capsize=4,
                    color=palette[index % len(palette)] if len(lines) > 1 else "black", label=title or None)
    for group, part in per_run[per_run[x].isna()].groupby("group", sort=False):
        ax.axhline(part[final].mean() * factor, color=colours[group], linestyle="--",
                   label=f"{group} (no {x}; n={len(part)})")
    values = rows[x]
    if (values > 0).all() and values.max() / values.min() >= 20:
        ax.set_xscale("log")
    ax.set_xticks(sorted(values.unique()), [format_value(v) for v in sorted(values.unique())])
    ax.minorticks_off()
    handles, _ = ax.get_legend_handles_labels()
    if handles:
        place_legend(ax, len(handles))
    ax.set_xlabel(x)
    ax.set_ylabel(label)
    ax.set_title(f"{label.capitalize()} against {x}\nmean ± std over seeds of completed runs",
                 fontsize="medium")
    ax.grid(alpha=0.3)
    return save(figure, path)


def plot_sweeps(per_run: pd.DataFrame, label_keys: Sequence[str], metric: str, colours: dict[str, Any],
                out: Path, fmt: str) -> list[Path]:
    """The sweep figures this set of runs calls for (none when no numeric key was swept)."""
    keys = swept_keys(per_run, label_keys)
    if len(keys) == 1:
        return [plot_line(per_run, keys[0], label_keys, metric, colours, out / f"sweep_{keys[0]}.{fmt}")]
    figures = []
    for x, y in combinations(keys, 2):
        panels = heatmap_panels(per_run, x, y, label_keys)
        if panels:
            figures.append(plot_heatmap(panels, x, y, metric, out / f"sweep_{x}_{y}.{fmt}"))
    return figures
