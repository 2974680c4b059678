"""The machine a benchmark ran on, named in its report (used by the scripts only)."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

import torch


def machine_name(device: torch.device) -> str:
    """The machine benchmarks ran on, for their reports: GPU model, or CPU model and core count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
              if line.startswith("model name")] if cpuinfo.exists() else []
    return f"{models[0] if models else platform.processor() or 'CPU'}, {os.cpu_count()} cores"


def machine_slug(device: torch.device) -> str:
    """machine_name as a file-name part: amd-epyc-2-cores."""
    return re.sub(r"[^a-z0-9]+", "-", machine_name(device).lower()).strip("-")
