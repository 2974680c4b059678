"""Find run directories under the given paths and read each one into a RunRecord.

A run directory is any folder holding summary.json: single runs (runs/<name>/<time>/), multirun jobs
(multirun/<name>/<time>/<job>/) and any nesting of those. W&B's offline folders and Hydra's .hydra/
hold no runs of ours and are skipped.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lrn_ablate.errors import UserError
from lrn_ablate.report.runs import REPORTED_METRICS, RunRecord, checked_summary, empty_metrics
from lrn_ablate.rundir import CONFIG, METRIC_COLUMNS, METRICS, SUMMARY, flatten_config, parse_metrics, read_summary_file

SKIPPED_DIRS = ("wandb",)  # plus every hidden folder (.hydra, .git, ...)


def natural_key(text: str) -> list[Any]:
    """Sort job folders 0, 1, 2, 10 rather than 0, 1, 10, 2."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def find_run_dirs(root: Path) -> list[Path]:
    """Every folder under root (root included) that holds summary.json."""
    found = []
    for folder, subfolders, files in os.walk(root):
        # Run folders are searched too, so a summary.json written at a sweep's root never hides its jobs.
        subfolders[:] = [name for name in subfolders if not name.startswith(".") and name not in SKIPPED_DIRS]
        if SUMMARY in files:
            found.append(Path(folder))
    return found


def read_config(path: Path, run: str, notes: list[str]) -> dict[str, Any]:
    """The run's resolved config, flattened; OmegaConf reads it so 1e-3 is a float as when it was written."""
    try:
        config = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except FileNotFoundError:
        notes.append(f"{run}: no config.yaml; the run is grouped by its (empty) config.")
        return {}
    except (OmegaConfBaseException, yaml.YAMLError, ValueError, OSError) as error:
        reason = " ".join(str(error).split())  # YAML errors span several lines
        notes.append(f"{run}: unreadable config.yaml ({reason}); the run is grouped by its (empty) config.")
        return {}
    return flatten_config(config) if isinstance(config, dict) else {}


def read_metrics(path: Path, run: str, notes: list[str]) -> pd.DataFrame:
    """metrics.csv as numbers; a line cut short by a kill (no newline, too few fields) is dropped, noted."""
    try:
        lines = parse_metrics(path.read_text())
    except FileNotFoundError:
        return empty_metrics()
    except (OSError, UnicodeDecodeError) as error:
        notes.append(f"{run}: unreadable metrics.csv ({error}); its metrics are ignored.")
        return empty_metrics()
    if not lines.header:
        return empty_metrics()
    if "epoch" not in lines.header:
        notes.append(f"{run}: metrics.csv has no epoch column; its metrics are ignored.")
        return empty_metrics()
    for number, text in lines.dropped:
        notes.append(f"{run}: dropped incomplete or corrupt line {number} of metrics.csv: {text!r}")
    table = pd.DataFrame(lines.rows, columns=lines.header, dtype="float64")
    missing = [column for column in REPORTED_METRICS if column not in table.columns]
    if missing:
        notes.append(f"{run}: metrics.csv lacks {', '.join(missing)}; those are left blank.")
    table = table.reindex(columns=list(METRIC_COLUMNS))
    # A resumed run may have rewritten epochs after its last checkpoint: the last row for an epoch wins.
    table = table.dropna(subset=["epoch"]).drop_duplicates("epoch", keep="last").sort_values("epoch")
    return table.astype({"epoch": "int64"}).reset_index(drop=True)


def load_run(folder: Path, run: str, notes: list[str]) -> RunRecord:
    return RunRecord(
        run=run,
        config=read_config(folder / CONFIG, run, notes),
        summary=checked_summary(read_summary_file(folder / SUMMARY), run, notes),
        metrics=read_metrics(folder / METRICS, run, notes),
    )


def collect_local(paths: Sequence[Path], notes: list[str]) -> list[RunRecord]:
    """Every run under the paths, named by its path relative to the folder above their common root."""
    folders: dict[Path, None] = {}  # an ordered set: overlapping paths must not count a run twice
    for path in paths:
        if not path.exists():
            raise UserError(f"'{path}' does not exist.")
        if not path.is_dir():
            raise UserError(f"'{path}' is not a directory; give the folder that holds the runs.")
        found = find_run_dirs(path)
        if not found:
            raise UserError(f"no run directories (folders with summary.json) under '{path}'.")
        folders.update(dict.fromkeys(folder.resolve() for folder in found))
    root = common_root(paths)
    named = {os.path.relpath(folder, root.parent): folder for folder in folders}
    return [load_run(named[name], name, notes) for name in sorted(named, key=natural_key)]


def common_root(paths: Sequence[Path]) -> Path:
    return Path(os.path.commonpath([str(path.resolve()) for path in paths]))
