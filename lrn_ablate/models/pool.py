"""LeNet's 2x2 max pooling: torch's CPU max_pool2d is a scalar loop over each window (at LeNet's first
pooling, 64x6x28x28, it took ~0.75 ms forward, 40 ReLUs), so dense float CPU inputs take the C kernel."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import FunctionCtx, once_differentiable

from lrn_ablate import kernels
from lrn_ablate.kernels import maxpool


class _MaxPool2x2Function(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, x: torch.Tensor) -> torch.Tensor:
        y, which = maxpool.forward(x)
        ctx.save_for_backward(which)
        ctx.input_shape = x.shape
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        (which,) = ctx.saved_tensors
        return maxpool.backward(grad.contiguous(), which, ctx.input_shape)


class MaxPool2x2(nn.Module):
    """nn.MaxPool2d(2): the same values and the same gradient, ties and NaNs included."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # F.max_pool2d also says what is wrong with an input too small for one window
        if x.dim() == 4 and min(x.shape[2:]) >= 2 and x.is_contiguous() and kernels.applies(x):
            return _MaxPool2x2Function.apply(x)
        return F.max_pool2d(x, 2)
