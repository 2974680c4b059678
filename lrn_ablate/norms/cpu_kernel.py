"""The C kernel of cross-channel LRN on the CPU (lrn_cpu.c): compiled on first use, then loaded with ctypes.

The torch-op formulation of LRN is about eleven passes over the tensor, each with its own dispatch; the C
loops read the input once forward and the saved tensors once backward, with no division in the backward.
The library is built with the system C compiler into the user's cache folder, keyed by the source, the
compiler and the flags, so every later process only loads it. Without a compiler (or with
LRN_ABLATE_CPU_KERNEL=0) LRN runs on torch ops, with a one-time warning: same results to rounding, slower.

The kernel runs on one thread: on the 2-core machine it was measured on, handing halves of the batch to two
threads gained under 10% even at 2.3M values (square roots and divisions bound it, and the two cores share them).
"""

from __future__ import annotations

import ctypes
import hashlib
import math
import os
import platform
import shutil
import subprocess
import warnings
from functools import lru_cache
from pathlib import Path

import torch

from lrn_ablate.data.cache import cache_file

SOURCE = Path(__file__).with_name("lrn_cpu.c")
HEADER = SOURCE.with_suffix(".h")  # the loops, included by SOURCE once per floating type
FLAGS = ["-O3", "-shared", "-fPIC", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math"]
DISABLE_VARIABLE = "LRN_ABLATE_CPU_KERNEL"

_SIZE = ctypes.c_int64
# (pointers..., batch, channels, pixels, channels_last, before, after, doubles...)
_FORWARD_ARGS = [ctypes.c_void_p] * 4 + [_SIZE] * 3 + [ctypes.c_int, _SIZE, _SIZE] + [ctypes.c_double] * 3
_BACKWARD_ARGS = [ctypes.c_void_p] * 6 + [_SIZE] * 3 + [ctypes.c_int, _SIZE, _SIZE] + [ctypes.c_double] * 2
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}


def _build(compiler: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")  # concurrent first runs each build whole
    subprocess.run([compiler, *FLAGS, "-o", str(partial), str(SOURCE), "-lm"], check=True, capture_output=True,
                   text=True)
    os.replace(partial, target)


@lru_cache(maxsize=1)
def library() -> ctypes.CDLL | None:
    """The loaded kernel library, or None (with a warning) where it cannot be built."""
    if os.environ.get(DISABLE_VARIABLE) == "0":
        return None
    try:
        compiler = shutil.which(os.environ.get("CC", "cc"))
        if compiler is None:
            raise OSError(f"no C compiler {os.environ.get('CC', 'cc')!r} on PATH")
        version = subprocess.run([compiler, "--version"], check=True, capture_output=True, text=True).stdout
        key = hashlib.sha256("\0".join([SOURCE.read_text(), HEADER.read_text(), version, *FLAGS,
                                        platform.machine()]).encode()).hexdigest()[:16]
        target = cache_file(f"kernels/lrn_cpu-{key}").with_suffix(".so")
        if not target.exists():
            _build(compiler, target)
        lib = ctypes.CDLL(str(target))
    except (OSError, subprocess.CalledProcessError) as error:
        detail = str(getattr(error, "stderr", None) or error).strip()[:300]
        warnings.warn(f"the C kernel of LocalResponseNorm could not be built ({detail}); LRN on the CPU runs on "
                      f"torch ops, more slowly", RuntimeWarning, stacklevel=2)
        return None
    for suffix in _SUFFIX.values():
        getattr(lib, f"lrn_forward_{suffix}").argtypes = _FORWARD_ARGS
        getattr(lib, f"lrn_backward_{suffix}").argtypes = _BACKWARD_ARGS
    return lib


def applies(t: torch.Tensor) -> bool:
    """Whether the kernel takes `t`, a working copy: on the CPU, float32/float64, dense NC... or channels_last."""
    return t.device.type == "cpu" and t.dtype in _SUFFIX and library() is not None


def _geometry(x: torch.Tensor, channels_last: bool) -> list[int]:
    return [x.shape[0], x.shape[1], math.prod(x.shape[2:]), int(channels_last)]


def forward(x: torch.Tensor, channels_last: bool, before: int, after: int, coef: float, k: float,
            beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(y, factor, quotient) = (x * scale^-beta, scale^-beta, scale^-beta / scale) for a dense x."""
    y, factor, quotient = (torch.empty_like(x) for _ in range(3))
    if x.numel():
        getattr(library(), f"lrn_forward_{_SUFFIX[x.dtype]}")(
            x.data_ptr(), y.data_ptr(), factor.data_ptr(), quotient.data_ptr(), *_geometry(x, channels_last),
            before, after, coef, k, beta)
    return y, factor, quotient


def backward(grad: torch.Tensor, x: torch.Tensor, factor: torch.Tensor, quotient: torch.Tensor,
             channels_last: bool, before: int, after: int, coef: float, beta: float) -> torch.Tensor:
    """dx from the upstream gradient and what forward saved, all dense in the same layout."""
    grad_x = torch.empty_like(x)
    if x.numel():
        scratch = x.new_empty(x[0].numel())  # g * x * quotient of one batch item
        getattr(library(), f"lrn_backward_{_SUFFIX[x.dtype]}")(
            grad.data_ptr(), x.data_ptr(), factor.data_ptr(), quotient.data_ptr(), grad_x.data_ptr(),
            scratch.data_ptr(), *_geometry(x, channels_last), before, after, coef, beta)
    return grad_x
