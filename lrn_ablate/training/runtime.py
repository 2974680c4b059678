"""Device choice, seeding and determinism: the process-wide settings a run starts from."""

from __future__ import annotations

import ctypes
import os
import platform
import random
from pathlib import Path

import numpy as np
import torch

from lrn_ablate.errors import UserError
from lrn_ablate.training.share import Share, usable_cores


def pick_device(name: str, share: Share) -> torch.device:
    """trainer.device as a torch.device: `auto` is a GPU when there is one (this job's own one when jobs of
    a sweep share a machine with several GPUs), else the CPU."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    name = share.device(name, gpus)
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"trainer.device={name} but no CUDA GPU is visible; use trainer.device=auto or cpu.")
    return torch.device(name)


def set_threads(threads: str | int, share: Share) -> None:
    """trainer.threads: a number sets it; auto keeps torch's default (one per physical core) for a job that
    runs alone, and gives each of N jobs running side by side cores / N."""
    count = share.threads(threads)
    if count is not None:
        torch.set_num_threads(count)


def machine_name(device: torch.device) -> str:
    """The machine a run or benchmark ran on: the GPU model, or the CPU model and core count. Float sums
    differ between CPUs, so a run repeats digit for digit only on the machine this names."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
              if line.startswith("model name")] if cpuinfo.exists() else []
    return f"{models[0] if models else platform.processor() or 'CPU'}, {usable_cores()} cores"


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def keep_freed_memory() -> bool:
    """Stop glibc from returning freed blocks to the system after every step.

    Each training step frees and reallocates the same activation-sized blocks; with glibc's default
    thresholds they go back to the kernel and come back as page faults (over a thousand per LeNet step
    here), which costs more than the step's arithmetic on small models. False (and no effect) off glibc.
    """
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
    return bool(mallopt(m_trim_threshold, 1 << 30)) and bool(mallopt(m_mmap_threshold, 32 << 20))


def seed_everything(seed: int, deterministic: bool, device: torch.device) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        # cuBLAS needs this workspace setting to be deterministic (PyTorch's reproducibility notes).
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
