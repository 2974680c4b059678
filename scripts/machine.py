"""The machine a benchmark ran on, named in its report (used by the scripts only)."""

from __future__ import annotations

import re

import torch

from lrn_ablate.training.runtime import machine_name


def machine_slug(device: torch.device) -> str:
    """machine_name as a file-name part: amd-epyc-2-cores."""
    return re.sub(r"[^a-z0-9]+", "-", machine_name(device).lower()).strip("-")
