"""The run directory: the contract between training and everything after it (resume, sweep tally, report,
W&B). Every name, column, status and reader of it is defined here and nowhere else.

    config.yaml     the resolved config of the run
    metrics.csv     one row per completed epoch (METRIC_COLUMNS), appended and flushed each epoch
    summary.json    status (STATUSES) and headline numbers, rewritten atomically as the run goes
    checkpoint.pt   model, optimizer, scheduler, RNG states and position, saved atomically
    .lock           held (flock) by the one process writing here
"""

from __future__ import annotations

import fcntl
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from lrn_ablate.atomic import write_atomically
from lrn_ablate.errors import UserError

CONFIG, METRICS, SUMMARY, CHECKPOINT, LOCK = "config.yaml", "metrics.csv", "summary.json", "checkpoint.pt", ".lock"
METRIC_COLUMNS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "epoch_seconds",
                  "images_per_second", "eval_seconds")
STATUSES = ("completed", "diverged", "failed", "interrupted", "running")
# Every status but "completed": such runs are counted and listed, never averaged in.
UNFINISHED = STATUSES[1:]
# Settings that never change what a run computes: a run may be continued with other values of them, and
# runs that differ only in them are the same experiment.
RUN_ONLY_KEYS = ("resume", "data_root", "dataset.root", "trainer.resume", "trainer.progress", "trainer.threads",
                 "trainer.objective", "logger")
# ... and seeds, which make repeats of one setting: what the report never tells groups apart by.
BOOKKEEPING = ("seed", *RUN_ONLY_KEYS)


def format_value(value: Any) -> str:
    """A config value as labels, tables and tick labels write it: 0.0001, 1e-05, 2, true, lrn."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return format(value, "g")
    if value is None:
        return "null"
    return str(value)


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"norm": {"alpha": 1e-4}} -> {"norm.alpha": 1e-4}; lists become strings so they stay hashable."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_config(value, prefix=f"{name}."))
        elif isinstance(value, (list, tuple)):
            flat[name] = "[" + ", ".join(format_value(item) for item in value) + "]"
        else:
            flat[name] = value
    return flat


def is_run_only(key: str) -> bool:
    return any(key == k or key.startswith(f"{k}.") for k in RUN_ONLY_KEYS)


def changed_settings(saved: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """The dotted keys whose values differ between two configs, run-only keys left out."""
    saved, now = flatten_config(saved), flatten_config(now)
    return sorted(k for k in saved.keys() | now.keys() if saved.get(k) != now.get(k) and not is_run_only(k))


@dataclass(frozen=True)
class MetricLines:
    header: list[str]
    rows: list[dict[str, float]]  # complete lines, as numbers (an empty field is NaN)
    dropped: list[tuple[int, str]]  # (line number, text) of lines cut short by a kill or not numbers


def parse_metrics(text: str) -> MetricLines:
    """metrics.csv's lines: a line without its newline or with too few fields was cut short by a kill."""
    lines = text.splitlines(keepends=True)
    if not lines:
        return MetricLines([], [], [])
    header = [name.strip() for name in lines[0].strip().split(",")]
    rows, dropped = [], []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.rstrip("\r\n").split(",")
        try:
            if not line.endswith("\n") or len(fields) != len(header):
                raise ValueError(line)
            rows.append({name: float(field) if field.strip() else math.nan
                         for name, field in zip(header, fields, strict=True)})
        except ValueError:
            dropped.append((number, line.strip()))
    return MetricLines(header, rows, dropped)


def _metrics_line(row: Mapping[str, float]) -> str:
    return ",".join(str(int(row[c])) if c == "epoch" else repr(float(row[c])) for c in METRIC_COLUMNS) + "\n"


def read_summary_file(path: Path) -> Any:
    """summary.json's content, or None when it is missing or not JSON."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.config = self.path / CONFIG
        self.metrics = self.path / METRICS
        self.summary = self.path / SUMMARY
        self.checkpoint = self.path / CHECKPOINT
        self._lock: IO[str] | None = None

    def lock(self) -> None:
        """Take the directory for this process, or refuse if another process is writing it."""
        self.path.mkdir(parents=True, exist_ok=True)
        handle = open(self.path / LOCK, "a+")  # noqa: SIM115 - held open for the life of the run
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise UserError(f"run directory {self.path} is in use by {owner}; wait for it to finish or "
                            "pick another directory.") from None
        handle.truncate(0)
        handle.write(f"process {os.getpid()}\n")
        handle.flush()
        self._lock = handle

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def read_summary(self) -> dict[str, Any]:
        summary = read_summary_file(self.summary)
        return summary if isinstance(summary, dict) else {}

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        write_atomically(self.summary, (json.dumps(summary, indent=2) + "\n").encode())

    def read_metrics(self) -> list[dict[str, float]]:
        """Complete rows only (a last line cut short by a kill is left out)."""
        return parse_metrics(self.metrics.read_text()).rows if self.metrics.exists() else []

    def reset_metrics(self, keep_epochs: int) -> None:
        """Rewrite metrics.csv with epochs 1..keep_epochs only, dropping a torn or later line."""
        rows = [row for row in self.read_metrics() if row["epoch"] <= keep_epochs]
        text = ",".join(METRIC_COLUMNS) + "\n" + "".join(map(_metrics_line, rows))
        write_atomically(self.metrics, text.encode())

    def append_metrics(self, row: Mapping[str, float]) -> None:
        with open(self.metrics, "a") as handle:
            handle.write(_metrics_line(row))
            handle.flush()
            os.fsync(handle.fileno())
