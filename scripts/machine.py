"""The machine a benchmark ran on, named in its report (used by the scripts only)."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from lrn_ablate.training.runtime import machine_name


def machine_slug(device: torch.device) -> str:
    """machine_name as a file-name part: amd-epyc-2-cores."""
    return re.sub(r"[^a-z0-9]+", "-", machine_name(device).lower()).strip("-")


def write_report(lines: list[str], out: Path, name: str, device: torch.device) -> None:
    """Print a benchmark's markdown lines and write them to OUT/<name>_<machine>.md."""
    text = "\n".join(lines) + "\n"
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}_{machine_slug(device)}.md").write_text(text)
