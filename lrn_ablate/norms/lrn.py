"""Local response normalization in every published convention, with a fused closed-form backward.

    y = x * scale^-beta,   scale = k + coef * (sum of x^2 over the window)

The conventions differ in the window and in `coef` (see `channel_window` and docs/lrn_conventions.md).
The gradient is Caffe's closed form (src/caffe/layers/lrn_layer.cpp, CrossChannelBackward_cpu):

    dx = g * scale^-beta - 2 * beta * x * coef * W^T(g * x * scale^-beta / scale)

where W sums over the window and W^T over the transposed window. Only the input, the scale and
scale^-beta are saved for it, instead of every intermediate that autograd would keep.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import FunctionCtx, once_differentiable

from lrn_ablate import kernels
from lrn_ablate.kernels import lrn as lrn_kernel
from lrn_ablate.norms import NORMS

# The window sum as one batched matmul with a banded matrix beats size - 1 shifted adds on the CPU
# while the channel count is small next to the window (LeNet: 6 or 16 channels, size 5); its cost grows
# with the channel count, that of the shifted adds with the window. Measured crossover on a 2-core EPYC:
# channels <= 4 * (window - 1).
_BAND_CHANNELS_PER_SHIFT = 4


def channel_window(size: int, convention: str) -> tuple[int, int, float]:
    """(channels before c, channels after c, divisor of alpha) of the LRN window of each convention."""
    if convention == "pytorch":
        return size // 2, (size - 1) // 2, float(size)
    if convention in ("caffe", "article"):
        return size // 2, size // 2, float(size)
    return size // 2, size // 2, 1.0  # alexnet: the paper and TensorFlow do not divide alpha


@dataclass(frozen=True)
class _Window:
    """scale = k + coef * W(x^2); `adjoint` applies coef * W^T, the transposed window, for the backward.

    W sums over the channel window ("across") or averages over the size x size window ("within").
    """

    region: str
    size: int
    before: int
    after: int
    coef: float
    k: float

    def uses_band(self, t: torch.Tensor) -> bool:
        """Whether the channel window is summed by the band matmul (decided once per forward)."""
        return self.region == "across" and _use_band(t, self.before + self.after + 1)

    def scale(self, squares: torch.Tensor, band: bool) -> torch.Tensor:
        if self.region == "within":
            return _pool_mean(squares, self.size).mul_(self.coef).add_(self.k)
        if band:
            return _band_sum(squares, self.before, self.after, self.coef, self.k)
        return _shifted_sum(squares, self.before, self.after, self.coef, self.k)

    def adjoint(self, t: torch.Tensor, band: bool) -> torch.Tensor:
        if self.region == "within":
            return _pool_mean(t, self.size).mul_(self.coef)  # the centred square window is its own transpose
        # channel c is in the window of channel j exactly when j is in [c - after, c + before]
        if band:
            return _band_sum(t, self.after, self.before, self.coef, 0.0)
        return _shifted_sum(t, self.after, self.before, self.coef, 0.0)


def _pool_mean(t: torch.Tensor, size: int) -> torch.Tensor:
    """Sum over the zero-padded size x size window / size^2, as Caffe's WITHIN_CHANNEL AVE pooling divides."""
    return F.avg_pool2d(t, size, stride=1, padding=size // 2, count_include_pad=True)


def _cpu_matmul_is_exact(t: torch.Tensor) -> bool:
    """False where float32 matmuls may run in bf16 (set_float32_matmul_precision), too coarse here."""
    if t.dtype == torch.float64:
        return True
    matmul = getattr(torch.backends.mkldnn, "matmul", None)
    if matmul is not None and hasattr(matmul, "fp32_precision"):  # torch >= 2.9
        return matmul.fp32_precision in ("none", "ieee")
    return torch.get_float32_matmul_precision() == "highest"


def _use_band(t: torch.Tensor, width: int) -> bool:
    # On CUDA the shifted adds are cheap memory-bound kernels (and matmuls may run in TF32): CPU only.
    return (t.device.type == "cpu" and t.shape[1] <= _BAND_CHANNELS_PER_SHIFT * (width - 1)
            and _cpu_matmul_is_exact(t))


@lru_cache(maxsize=64)
def _band(channels: int, before: int, after: int, coef: float, dtype: torch.dtype,
          device: torch.device) -> torch.Tensor:
    """B[c, j] = coef for j in [c - before, c + after]; channels outside [0, channels) have no column."""
    index = torch.arange(channels, device=device)
    offset = index[None, :] - index[:, None]
    return ((offset >= -before) & (offset <= after)).to(dtype) * coef


def _band_sum(t: torch.Tensor, before: int, after: int, coef: float, k: float) -> torch.Tensor:
    n, channels = t.shape[:2]
    if _memory_format(t) == torch.channels_last:
        # Channels are the innermost dimension: the window sum is one (N*H*W, C) x (C, C) matmul.
        rows = t.permute(0, 2, 3, 1).reshape(-1, channels)
        band_t = _band(channels, before, after, coef, t.dtype, t.device).T
        summed = torch.addmm(rows.new_full((1, 1), k).expand_as(rows), rows, band_t) if k else rows @ band_t
        return summed.view(n, t.shape[2], t.shape[3], channels).permute(0, 3, 1, 2)
    flat = t.flatten(2)
    band = _band(channels, before, after, coef, t.dtype, t.device).expand(n, channels, channels)
    if k == 0:
        return torch.bmm(band, flat).view(t.shape)
    return torch.baddbmm(flat.new_full((1, 1, 1), k).expand_as(flat), band, flat).view(t.shape)


def _shifted_sum(t: torch.Tensor, before: int, after: int, coef: float, k: float) -> torch.Tensor:
    """k + coef * sum of t over [c - before, c + after], as in-place adds of shifted channel slices.

    Every term is added exactly once (no running sum that is later subtracted), so there is no
    cancellation error, unlike a cumulative sum over channels.
    """
    total = torch.add(t.new_tensor(k), t, alpha=coef)
    channels = t.shape[1]
    for shift in range(1, min(before, channels - 1) + 1):
        total[:, shift:].add_(t[:, :-shift], alpha=coef)
    for shift in range(1, min(after, channels - 1) + 1):
        total[:, :-shift].add_(t[:, shift:], alpha=coef)
    return total


def _inverse_power(scale: torch.Tensor, beta: float) -> torch.Tensor:
    """scale^-beta. On the CPU torch.pow with a fractional exponent is a scalar loop (~25x a ReLU), while
    rsqrt is vectorized, so the universal beta = 0.75 is s^-1/2 / (s^-1/2)^-1/2 there."""
    if beta == 0.75 and scale.device.type == "cpu":
        root = scale.rsqrt()
        return root.div_(root.rsqrt())
    return scale.pow(-beta)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    # float16/bfloat16 (also under autocast) are computed in float32: x^2 overflows float16 above 256.
    return torch.float64 if dtype == torch.float64 else torch.float32


def _working_copy(t: torch.Tensor, memory_format: torch.memory_format) -> torch.Tensor:
    """t in the compute dtype and dense in `memory_format`; the same tensor when it already is."""
    return t.to(_compute_dtype(t.dtype)).contiguous(memory_format=memory_format)


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _autocast_off(x: torch.Tensor) -> AbstractContextManager:
    # Autocast would run the band matmul in bfloat16/float16; this layer always computes in float32.
    device_type = x.device.type
    if torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(device_type):
        return torch.autocast(device_type, enabled=False)
    return nullcontext()


def _torch_forward(work: torch.Tensor, window: _Window, beta: float,
                   band: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(y, scale, scale^-beta) in torch ops, for CUDA, the within-channel window, or without the C kernel."""
    scale = window.scale(work * work, band)
    factor = _inverse_power(scale, beta)
    empty = _empty_windows(scale, window)
    if empty is not None and beta > 0:  # beta = 0 divides by scale^0 = 1 everywhere, 0^0 included
        factor.masked_fill_(empty, 0.0)
    return factor * work, scale, factor


def _torch_backward(grad: torch.Tensor, work: torch.Tensor, scale: torch.Tensor, factor: torch.Tensor,
                    window: _Window, beta: float, band: bool) -> torch.Tensor:
    grad_factor = factor * grad  # g * scale^-beta
    ratio = torch.mul(grad_factor, work).div_(scale)  # g * y / scale
    empty = _empty_windows(scale, window)
    if empty is not None:
        ratio.masked_fill_(empty, 0.0)  # 0 * inf or 0 / 0 there, and the output is a constant 0
        if beta > 0:
            grad_factor.masked_fill_(empty, 0.0)
    return grad_factor.addcmul_(work, window.adjoint(ratio, band), value=-2.0 * beta)


class _LRNFunction(torch.autograd.Function):
    """The fused LRN: one window sum forward; closed-form backward from the input and two saved tensors.

    The C kernel (cross-channel windows on the CPU) saves scale^-beta and scale^-beta / scale, the torch
    path scale and scale^-beta: recomputing either costs more passes over the tensor than keeping it.
    """

    @staticmethod
    def forward(ctx: FunctionCtx, x: torch.Tensor, window: _Window, beta: float) -> torch.Tensor:
        with _autocast_off(x):
            memory_format = _memory_format(x)  # channels_last stays channels_last: no transposing copies
            work = _working_copy(x, memory_format)
            kernel = window.region == "across" and kernels.applies(work)
            band = not kernel and window.uses_band(work)
            if kernel:
                out, *saved = lrn_kernel.forward(work, memory_format == torch.channels_last, window.before,
                                                 window.after, window.coef, window.k, beta)
            else:
                out, *saved = _torch_forward(work, window, beta, band)
        ctx.save_for_backward(x, *saved)
        ctx.window, ctx.beta, ctx.band, ctx.kernel, ctx.memory_format = window, beta, band, kernel, memory_format
        return out.to(dtype=x.dtype, memory_format=ctx.memory_format)

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:
        x, *saved = ctx.saved_tensors
        window, beta = ctx.window, ctx.beta
        with _autocast_off(x):
            work, grad_work = _working_copy(x, ctx.memory_format), _working_copy(grad, ctx.memory_format)
            if ctx.kernel:
                grad_x = lrn_kernel.backward(grad_work, work, *saved, ctx.memory_format == torch.channels_last,
                                             window.before, window.after, window.coef, beta)
            else:
                grad_x = _torch_backward(grad_work, work, *saved, window, beta, ctx.band)
        return grad_x.to(dtype=x.dtype, memory_format=ctx.memory_format), None, None


def _empty_windows(scale: torch.Tensor, window: _Window) -> torch.Tensor | None:
    """Where scale = 0 (k = 0 and an all-zero window) x / scale^beta is 0 / 0; it is defined as 0 there."""
    return scale == 0 if window.k == 0 else None


class LocalResponseNorm(nn.Module):
    """b = a / (k + alpha' * sum over the window of a^2)^beta, out-of-range channels counting as zero.

    `convention` picks the window and alpha' (pytorch, caffe, alexnet, article; see `channel_window`);
    `region="within"` is Caffe's WITHIN_CHANNEL mode: a zero-padded size x size spatial window in the
    value's own channel with alpha' = alpha / size^2 (Caffe fixes k = 1, the default here). Where k = 0
    and the whole window is zero the output and its gradient are 0. Inputs are (N, C, ...) for "across"
    and (N, C, H, W) for "within", of any floating dtype: float16/bfloat16 are computed in float32 and
    returned in their own dtype, float64 is computed in float64 (for gradcheck).
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0,
                 convention: str = "pytorch", region: str = "across") -> None:
        super().__init__()
        # The settings of norm=lrn, checked by the same declaration as the config's.
        NORMS.check(dict(name="lrn", size=size, alpha=alpha, beta=beta, k=k, convention=convention,
                         region=region), prefix="")
        self.size, self.alpha, self.beta, self.k = size, float(alpha), float(beta), float(k)
        self.convention, self.region = convention, region

    def extra_repr(self) -> str:
        return (f"size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}, "
                f"convention={self.convention}, region={self.region}")

    def _window(self) -> _Window:
        if self.region == "within":
            half = self.size // 2
            return _Window("within", self.size, half, half, self.alpha, self.k)  # alpha times the mean
        before, after, divisor = channel_window(self.size, self.convention)
        return _Window("across", self.size, before, after, self.alpha / divisor, self.k)

    def _check_input(self, x: torch.Tensor) -> None:
        if not x.is_floating_point():
            raise TypeError(f"LocalResponseNorm expects a floating-point input, got {x.dtype}")
        if self.region == "within" and x.dim() != 4:
            raise ValueError(f"LocalResponseNorm(region=within) expects (N, C, H, W), got {tuple(x.shape)}")
        if x.dim() < 3:
            raise ValueError(f"LocalResponseNorm expects (N, C, ...), at least 3 dims, got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return _LRNFunction.apply(x, self._window(), self.beta)
