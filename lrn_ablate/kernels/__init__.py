"""CPU kernels in C for the layers that torch runs slowly on small tensors (LRN, 2x2 max pooling).

The torch-op formulation of LRN is about eleven passes over the tensor, each with its own dispatch, and
torch's CPU max pooling is a scalar loop over each window; the C loops make one pass each way. The library
is compiled on first use with the system C compiler into the user's cache folder, keyed by the sources, the
compiler and the flags, so every later process only loads it (ctypes). Without a working compiler the
layers run on torch ops instead, after a one-time warning: same results to rounding, slower;
LRN_ABLATE_CPU_KERNELS=0 chooses that path without a warning. Each call splits its batch over
torch.get_num_threads() OpenMP threads.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import warnings
from functools import cache, lru_cache
from pathlib import Path

import torch

from lrn_ablate.atomic import replacing
from lrn_ablate.data.cache import cache_file

SOURCE = Path(__file__).with_name("kernels.c")
HEADERS = sorted(SOURCE.parent.glob("*.h"))  # the loops, each included by SOURCE once per floating type
FLAGS = ["-O3", "-shared", "-fPIC", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math"]
DISABLE_VARIABLE = "LRN_ABLATE_CPU_KERNELS"
FLOAT_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}


def _build(compiler: str, target: Path) -> None:
    """Compiles with OpenMP where the compiler has it (Apple's clang has not: the kernels then run on one thread)."""
    with replacing(target) as partial:  # concurrent first runs each build a whole library
        command = [compiler, *FLAGS, "-o", str(partial), str(SOURCE), "-lm"]
        try:
            subprocess.run([*command, "-fopenmp"], check=True, capture_output=True, text=True)
        except subprocess.CalledProcessError:
            subprocess.run(command, check=True, capture_output=True, text=True)


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
        sources = [path.read_text() for path in (SOURCE, *HEADERS)]
        key = hashlib.sha256("\0".join([*sources, version, *FLAGS, platform.machine()]).encode()).hexdigest()
        target = cache_file(f"kernels/cpu-{key[:16]}").with_suffix(".so")
        if not target.exists():
            _build(compiler, target)
        return ctypes.CDLL(str(target))
    except (OSError, subprocess.CalledProcessError) as error:
        detail = str(getattr(error, "stderr", None) or error).strip()[:300]
        warnings.warn(f"lrn-ablate's C kernels could not be built ({detail}); LRN and 2x2 max pooling on the CPU "
                      "run on torch ops, more slowly", RuntimeWarning, stacklevel=2)
        return None


def applies(*tensors: torch.Tensor) -> bool:
    """Whether the kernels take these tensors: on the CPU, float32 or float64, the library is there, and no
    torch.compile is tracing (it would break its graph at every ctypes call)."""
    return (all(t.device.type == "cpu" and t.dtype in FLOAT_SUFFIX for t in tensors)
            and not torch.compiler.is_compiling() and library() is not None)


@cache
def _entry(lib: ctypes.CDLL, name: str, dtype: torch.dtype, argtypes: tuple) -> ctypes._CFuncPtr:
    """The library's `name`_f32 or `name`_f64, typed once (setting ctypes types costs microseconds a call)."""
    entry = getattr(lib, f"{name}_{FLOAT_SUFFIX[dtype]}")
    entry.argtypes, entry.restype = [*argtypes, ctypes.c_int], ctypes.c_int
    return entry


def call(name: str, dtype: torch.dtype, argtypes: tuple, *args: object) -> int:
    """Calls `name` for `dtype` with `args` and torch's thread count; returns its result."""
    return _entry(library(), name, dtype, argtypes)(*args, torch.get_num_threads())
