"""2x2 max pooling with stride 2 in one C pass each way (maxpool.h), for dense NCHW CPU tensors."""

from __future__ import annotations

import ctypes

import torch

from lrn_ablate.kernels import call

_SIZE = ctypes.c_int64
_ARGS = (ctypes.c_void_p,) * 3 + (_SIZE,) * 3


def forward(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(y, which): the maxima, and each one's place in its window (0..3, row-major) for the backward."""
    n, c, height, width = x.shape
    y = x.new_empty(n, c, height // 2, width // 2)
    which = torch.empty(y.shape, dtype=torch.int32)
    if y.numel():
        call("maxpool2_forward", x.dtype, _ARGS, x.data_ptr(), y.data_ptr(), which.data_ptr(), n * c, height, width)
    return y, which


def backward(grad: torch.Tensor, which: torch.Tensor, input_shape: torch.Size) -> torch.Tensor:
    """The input gradient: each output's gradient at its maximum, zero elsewhere; `grad` is dense NCHW."""
    n, c, height, width = input_shape
    if not grad.numel():  # an empty batch
        return grad.new_zeros(input_shape)
    grad_x = grad.new_empty(input_shape)  # the kernel writes every value, zeros included
    call("maxpool2_backward", grad.dtype, _ARGS, grad.data_ptr(), which.data_ptr(), grad_x.data_ptr(), n * c, height,
         width)
    return grad_x
