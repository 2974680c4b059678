"""The machine and the commit a benchmark ran on, named in its report, and where reports go (used by the
scripts only)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import torch

from lrn_ablate.training.runtime import machine_name

REPO = Path(__file__).resolve().parents[1]
BENCH_DIR = REPO / "results" / "bench"  # whatever the working directory


def commit_line() -> str:
    """The report line naming the checkout's commit, and whether tracked files had uncommitted changes (an
    untracked virtual environment in a study clone does not count)."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True).stdout.strip()
        except OSError:  # no git on this machine
            return ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "- commit: unknown (not a git checkout)"
    changed = git("status", "--porcelain", "--untracked-files=no")
    return f"- commit: `{commit}`" + (" with uncommitted changes" if changed else "")


def machine_slug(device: torch.device) -> str:
    """machine_name as a file-name part: amd-epyc-2-cores."""
    return re.sub(r"[^a-z0-9]+", "-", machine_name(device).lower()).strip("-")


def write_report(lines: list[str], out: Path, name: str, device: torch.device) -> None:
    """Print a benchmark's markdown lines (a title, a blank line, a list) with the commit first in the list,
    and write them to OUT/<name>_<machine>.md."""
    text = "\n".join([*lines[:2], commit_line(), *lines[2:]]) + "\n"
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}_{machine_slug(device)}.md").write_text(text)
