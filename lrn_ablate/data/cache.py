"""Decoded data sets saved as uint8 tensors, so that only the first run pays for decoding."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch

from lrn_ablate.atomic import replacing

Tensors = dict[str, torch.Tensor]


def cache_file(key: str) -> Path:
    """In the user's cache folder, never inside a data folder (which may be shared or read-only)."""
    cache_home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache_home / "lrn_ablate" / f"{key}.pt"


def cached(key: str, build: Callable[[], Tensors]) -> Tensors:
    """The tensors saved under `key` (a fingerprint of the source files), built and saved on first use."""
    path = cache_file(key)
    if path.exists():
        return torch.load(path, weights_only=True)
    tensors = build()
    with replacing(path) as partial:  # concurrent first runs each write a whole file
        torch.save(tensors, partial)
    return tensors
