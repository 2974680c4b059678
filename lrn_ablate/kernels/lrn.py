"""Cross-channel LRN forward and backward in one C pass each (lrn.h), for dense CPU tensors."""

from __future__ import annotations

import ctypes
import math

import torch

from lrn_ablate.kernels import call

_SIZE = ctypes.c_int64
# (pointers..., batch, channels, pixels, channels_last, before, after, doubles...)
_FORWARD_ARGS = (ctypes.c_void_p,) * 4 + (_SIZE,) * 3 + (ctypes.c_int, _SIZE, _SIZE) + (ctypes.c_double,) * 3
_BACKWARD_ARGS = (ctypes.c_void_p,) * 5 + (_SIZE,) * 3 + (ctypes.c_int, _SIZE, _SIZE) + (ctypes.c_double,) * 2


def _geometry(x: torch.Tensor, channels_last: bool) -> list[int]:
    return [x.shape[0], x.shape[1], math.prod(x.shape[2:]), int(channels_last)]


def forward(x: torch.Tensor, channels_last: bool, before: int, after: int, coef: float, k: float,
            beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(y, factor, quotient) = (x * scale^-beta, scale^-beta, scale^-beta / scale) for a dense x."""
    y, factor, quotient = (torch.empty_like(x) for _ in range(3))
    if x.numel():
        call("lrn_forward", x.dtype, _FORWARD_ARGS, x.data_ptr(), y.data_ptr(), factor.data_ptr(),
             quotient.data_ptr(), *_geometry(x, channels_last), before, after, coef, k, beta)
    return y, factor, quotient


def backward(grad: torch.Tensor, x: torch.Tensor, factor: torch.Tensor, quotient: torch.Tensor,
             channels_last: bool, before: int, after: int, coef: float, beta: float) -> torch.Tensor:
    """dx from the upstream gradient and what forward saved, all dense in the same layout."""
    grad_x = torch.empty_like(x)
    if x.numel() and call("lrn_backward", x.dtype, _BACKWARD_ARGS, grad.data_ptr(), x.data_ptr(), factor.data_ptr(),
                          quotient.data_ptr(), grad_x.data_ptr(), *_geometry(x, channels_last), before, after,
                          coef, beta):
        raise MemoryError("out of memory for the LRN backward's scratch space")
    return grad_x
