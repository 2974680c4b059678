"""The C kernels' build and load, and the 2x2 max pooling kernel against torch's F.max_pool2d."""

from __future__ import annotations

import os
import shutil

import pytest
import torch
import torch.nn.functional as F

from lrn_ablate import kernels
from lrn_ablate.models.pool import MaxPool2x2
from lrn_ablate.norms.lrn import LocalResponseNorm

needs_kernels = pytest.mark.skipif(shutil.which(os.environ.get("CC", "cc")) is None, reason="no C compiler")


@pytest.fixture
def fresh_kernel_cache(tmp_path, monkeypatch):
    """library() as in a new process, with an empty cache folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    kernels.library.cache_clear()
    yield tmp_path / "lrn_ablate" / "kernels"
    kernels.library.cache_clear()


@pytest.mark.parametrize("compiler", ["no-such-compiler", "false"])
def test_without_a_working_compiler_layers_warn_and_run_on_torch_ops(fresh_kernel_cache, monkeypatch, compiler):
    monkeypatch.setenv("CC", compiler)
    with pytest.warns(RuntimeWarning, match="could not be built.*torch ops"):
        assert kernels.library() is None
    x = torch.randn(2, 6, 4, 4, dtype=torch.float64)
    torch.testing.assert_close(LocalResponseNorm(3)(x), torch.nn.LocalResponseNorm(3)(x))
    torch.testing.assert_close(MaxPool2x2()(x), F.max_pool2d(x, 2))


def test_kernels_can_be_switched_off(fresh_kernel_cache, monkeypatch):
    monkeypatch.setenv(kernels.DISABLE_VARIABLE, "0")
    assert kernels.library() is None
    assert not fresh_kernel_cache.exists()


@needs_kernels
def test_library_is_built_once_into_the_cache(fresh_kernel_cache):
    assert kernels.library() is not None
    (built,) = fresh_kernel_cache.glob("cpu-*.so")
    stamp = built.stat().st_mtime_ns
    kernels.library.cache_clear()
    assert kernels.library() is not None
    assert built.stat().st_mtime_ns == stamp and list(fresh_kernel_cache.iterdir()) == [built]


def pool_both(x: torch.Tensor, grad_seed: int = 0) -> tuple[torch.Tensor, ...]:
    """(ours, torch's) outputs and input gradients for one input and one random upstream gradient."""
    ours_x, torch_x = (x.detach().clone().requires_grad_(True) for _ in range(2))
    ours, reference = MaxPool2x2()(ours_x), F.max_pool2d(torch_x, 2)
    grad = torch.randn(reference.shape, dtype=x.dtype, generator=torch.Generator().manual_seed(grad_seed))
    ours.backward(grad)
    reference.backward(grad)
    return ours, reference, ours_x.grad, torch_x.grad


@needs_kernels
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(2, 3, 6, 6), (2, 3, 7, 5), (3, 5, 29, 31), (64, 6, 28, 28), (1, 1, 2, 2)])
def test_max_pool_matches_torch_exactly(dtype, shape):
    ours, reference, ours_grad, reference_grad = pool_both(torch.randn(shape, dtype=dtype))
    assert torch.equal(ours, reference) and torch.equal(ours_grad, reference_grad)


@needs_kernels
def test_max_pool_ties_and_nans_route_the_gradient_as_torch_does():
    x = torch.relu(torch.randn(4, 3, 8, 8))
    x[0, 0, :2, :2] = 0  # a four-way tie: the first element wins
    x[0, 0, 2, 3] = x[0, 0, 3, 2] = 5.0  # a two-way tie off the first place
    x[0, 1, 0, 1] = x[0, 1, 1, 1] = float("nan")  # two NaNs: the last one wins
    x[1, 1, 2:4, 2:4] = float("-inf")
    ours, reference, ours_grad, reference_grad = pool_both(x)
    assert torch.equal(ours.isnan(), reference.isnan())
    assert torch.equal(ours.nan_to_num(), reference.nan_to_num())
    assert torch.equal(ours_grad, reference_grad)


@needs_kernels
def test_max_pool_takes_the_kernel_only_where_it_applies():
    x = torch.randn(2, 3, 6, 6)
    for odd_input in (x.to(memory_format=torch.channels_last), x.to(torch.bfloat16), x[..., ::2, :]):
        torch.testing.assert_close(MaxPool2x2()(odd_input), F.max_pool2d(odd_input, 2), rtol=0, atol=0)
    with pytest.raises(RuntimeError, match="too small"):  # torch's own message for a too-small input
        MaxPool2x2()(torch.randn(1, 1, 1, 4))
    empty = torch.empty(0, 2, 4, 4, requires_grad=True)
    MaxPool2x2()(empty).sum().backward()
    assert empty.grad.shape == empty.shape


@needs_kernels
@pytest.mark.parametrize("layer", ["lrn", "pool"])
def test_threads_split_the_batch_without_changing_a_bit(layer):
    """Each thread takes whole batch items, so the thread count cannot change any result."""
    module = LocalResponseNorm(5, alpha=1.0) if layer == "lrn" else MaxPool2x2()
    x = 3 * torch.randn(64, 6, 28, 28)
    grad = torch.randn(module(x).shape)
    results = []
    threads = torch.get_num_threads()
    try:
        for count in (1, 3):
            torch.set_num_threads(count)
            x_grad = x.clone().requires_grad_(True)
            out = module(x_grad)
            out.backward(grad)
            results.append((out.detach(), x_grad.grad))
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(*results, strict=True))
