"""LocalResponseNorm against independent references: NumPy loops written from each published formula,
torch.nn.LocalResponseNorm, ONNX Runtime's LRN operator, and the articles' worked example by hand."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from lrn_ablate import kernels
from lrn_ablate.errors import UserError
from lrn_ablate.norms import lrn as lrn_module
from lrn_ablate.norms.lrn import LocalResponseNorm

CONVENTIONS = ("pytorch", "caffe", "alexnet", "article")
SETTINGS = (  # (alpha, beta, k): beta 0.75 and 0.5 take square roots on the CPU, other betas pow
    (1.0, 0.75, 1.0),
    (1.3, 0.5, 1.5),
    (0.7, 0.6, 2.0),
)


def reference_bounds(c: int, channels: int, size: int, convention: str) -> tuple[int, int, int]:
    """(first channel, last channel, divisor of alpha) of channel c's window, from each source."""
    if convention == "pytorch":  # torch/nn/functional.py: pad (size // 2, (size - 1) // 2), avg_pool3d
        lo, hi, divisor = c - size // 2, c + (size - 1) // 2, size
    elif convention == "caffe":  # lrn_layer.cpp: pre_pad_ = (size_ - 1) / 2, alpha_over_size
        lo, hi, divisor = c - (size - 1) // 2, c + (size - 1) // 2, size
    elif convention == "alexnet":  # AlexNet §3.3: j = max(0, i - n/2) ... min(N - 1, i + n/2), alpha as is
        lo, hi, divisor = c - size // 2, c + size // 2, 1
    else:  # article: max(0, c - r/2) ... min(c + r/2, N - 1), alpha / r
        lo, hi, divisor = c - size // 2, c + size // 2, size
    return max(lo, 0), min(hi, channels - 1), divisor


def divide_by_power(x: np.ndarray, scale: np.ndarray, beta: float) -> np.ndarray:
    """x / scale^beta, with 0 where scale^beta = 0 (k = 0 and an all-zero window: 0 / 0 := 0)."""
    denominator = scale**beta
    return np.where(denominator > 0, x / np.where(denominator > 0, denominator, 1.0), 0.0)


def reference_lrn(x: np.ndarray, size: int, alpha: float, beta: float, k: float,
                  convention: str = "pytorch", region: str = "across") -> np.ndarray:
    """Float64 LRN with explicit loops over channels (across) or positions (Caffe WITHIN_CHANNEL)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    if region == "within":  # lrn_layer.cpp: AVE pooling (pad (size - 1) / 2, divides by size^2), then power
        half = size // 2
        padded = np.pad(x**2, ((0, 0), (0, 0), (half, half), (half, half)))
        for h in range(x.shape[2]):
            for w in range(x.shape[3]):
                window = padded[:, :, h:h + size, w:w + size].sum(axis=(2, 3))
                out[:, :, h, w] = divide_by_power(x[:, :, h, w], k + alpha / size**2 * window, beta)
        return out
    channels = x.shape[1]
    for c in range(channels):
        lo, hi, divisor = reference_bounds(c, channels, size, convention)
        window = (x[:, lo:hi + 1] ** 2).sum(axis=1)
        out[:, c] = divide_by_power(x[:, c], k + alpha / divisor * window, beta)
    return out


def reference_vjp(x: np.ndarray, grad: np.ndarray, step: float = 1e-6, **settings) -> np.ndarray:
    """grad^T d(reference_lrn)/dx by central differences in float64 (error ~ step^2, far below 1e-5)."""
    x = np.asarray(x, dtype=np.float64)
    result = np.empty_like(x)
    for i in range(x.size):
        bump = np.zeros_like(x)
        bump.flat[i] = step
        difference = reference_lrn(x + bump, **settings) - reference_lrn(x - bump, **settings)
        result.flat[i] = (difference * grad).sum() / (2 * step)
    return result


def assert_relative(actual: torch.Tensor, expected: np.ndarray, rtol: float = 1e-5) -> None:
    """Elementwise within rtol; components near zero (cancellations) within rtol of the largest one."""
    actual_np = actual.detach().double().numpy()
    np.testing.assert_allclose(actual_np, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The tensors here are tiny. On a 2-core machine busy with other work, a parallel region (bmm splits
    the batch over threads) can wait a whole scheduler slice for its second thread: 1 thread is faster."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(params=["kernel", "band", "shifted"])
def strategy(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with each way of computing the channel window on the CPU: the C kernel, or torch ops
    with a band matmul or shifted slices (the path without a C compiler, and the one for CUDA)."""
    if request.param == "kernel":
        if kernels.library() is None:
            pytest.skip("the C kernel could not be built here (no C compiler)")
    else:
        monkeypatch.setattr(kernels, "applies", lambda *tensors: False)
        monkeypatch.setattr(lrn_module, "_BAND_CHANNELS_PER_SHIFT", 10**6 if request.param == "band" else 0)
    return request.param


def grad_of(module: torch.nn.Module, x: torch.Tensor, grad: torch.Tensor) -> tuple[torch.Tensor, ...]:
    x = x.detach().requires_grad_(True)
    out = module(x)
    (grad_x,) = torch.autograd.grad(out, x, grad)
    return out.detach(), grad_x


# --- the published formulas --------------------------------------------------------------------------

@pytest.mark.parametrize(("convention", "size"), [(convention, size) for convention in CONVENTIONS
                                                    for size in range(1, 6)
                                                    if not (convention == "caffe" and size % 2 == 0)])
@pytest.mark.parametrize(("alpha", "beta", "k"), SETTINGS)
def test_fp32_output_and_gradient_match_numpy_reference(strategy, convention, size, alpha, beta, k):
    generator = torch.Generator().manual_seed(size)
    x = 2 * torch.randn(2, 6, 3, 3, generator=generator)
    grad = torch.randn(x.shape, generator=generator)
    settings = dict(size=size, alpha=alpha, beta=beta, k=k, convention=convention)
    out, grad_x = grad_of(LocalResponseNorm(**settings), x, grad)
    assert_relative(out, reference_lrn(x.numpy(), **settings))
    assert_relative(grad_x, reference_vjp(x.numpy(), grad.numpy(), **settings))


@pytest.mark.parametrize("size", [1, 3, 5])
@pytest.mark.parametrize(("alpha", "beta", "k"), SETTINGS)
def test_within_channel_matches_numpy_reference(size, alpha, beta, k):
    generator = torch.Generator().manual_seed(size)
    x = 2 * torch.randn(2, 3, 5, 4, generator=generator)
    grad = torch.randn(x.shape, generator=generator)
    settings = dict(size=size, alpha=alpha, beta=beta, k=k, region="within")
    out, grad_x = grad_of(LocalResponseNorm(**settings), x, grad)
    assert_relative(out, reference_lrn(x.numpy(), **settings))
    assert_relative(grad_x, reference_vjp(x.numpy(), grad.numpy(), **settings))


def test_window_wider_than_the_channels(strategy):
    x = torch.randn(2, 3, 4, 4)
    settings = dict(size=7, alpha=1.0, beta=0.75, k=1.0, convention="alexnet")
    assert_relative(LocalResponseNorm(**settings)(x), reference_lrn(x.numpy(), **settings))


def test_articles_worked_example_by_hand():
    """Channels 8,8,8,8,8,9,8,8,8,8; r = 2, kappa = 0, alpha = 2, beta = 2; window [c-1, c+1], alpha / r = 1.

    A far 8 sees 8^2 + 8^2 + 8^2 = 192: 8 / 192^2. The 9 and its neighbours see 64 + 81 + 64 = 209:
    9 / 209^2 and 8 / 209^2, so the 8s next to the 9 come out smaller than the far 8s. The end channels
    see only two 8s (128): 8 / 128^2.
    """
    values = [8, 8, 8, 8, 8, 9, 8, 8, 8, 8]
    far, near, end = Fraction(8, 192**2), Fraction(8, 209**2), Fraction(8, 128**2)
    expected = [end, far, far, far, near, Fraction(9, 209**2), near, far, far, end]
    assert near < far
    module = LocalResponseNorm(2, alpha=2.0, beta=2.0, k=0.0, convention="article")
    for dtype, rtol in ((torch.float64, 1e-13), (torch.float32, 1e-6)):
        out = module(torch.tensor(values, dtype=dtype).view(1, 10, 1, 1)).flatten()
        np.testing.assert_allclose(out.double().numpy(), [float(v) for v in expected], rtol=rtol)


@pytest.mark.parametrize("beta", [0.75, 0.5, 0.0])
def test_k_zero_all_zero_window_gives_zero_output_and_gradient(strategy, beta):
    x = torch.randn(2, 8, 3, 3, dtype=torch.float64)
    x[:, :4, 0, :] = 0  # with size 3, channels 0..2 of row 0 see only zeros: scale = 0
    grad = torch.randn(x.shape, dtype=torch.float64)
    settings = dict(size=3, alpha=1.0, beta=beta, k=0.0, convention="caffe")
    out, grad_x = grad_of(LocalResponseNorm(**settings), x, grad)
    np.testing.assert_allclose(out.numpy(), reference_lrn(x.numpy(), **settings), rtol=1e-12)
    assert torch.all(out[:, :3, 0, :] == 0)
    assert torch.isfinite(grad_x).all()
    if beta > 0:
        assert torch.all(grad_x[:, :3, 0, :] == 0)


def test_k_zero_all_zero_input(strategy):
    x = torch.zeros(2, 5, 4, 4, requires_grad=True)
    for region in ("across", "within"):
        out = LocalResponseNorm(3, alpha=1.0, k=0.0, region=region)(x)
        (grad_x,) = torch.autograd.grad(out, x, torch.ones_like(out))
        assert torch.all(out == 0) and torch.all(grad_x == 0)


# --- torch.nn.LocalResponseNorm and ONNX Runtime -----------------------------------------------------

@pytest.mark.parametrize("size", range(1, 8))
@pytest.mark.parametrize("shape", [(4, 7, 5, 5), (3, 9, 11)])
def test_pytorch_convention_matches_torch(strategy, size, shape):
    generator = torch.Generator().manual_seed(size)
    x = 3 * torch.randn(shape, generator=generator)
    grad = torch.randn(shape, generator=generator)
    settings = dict(alpha=0.8, beta=0.75, k=1.5)
    out, grad_x = grad_of(LocalResponseNorm(size, **settings), x, grad)
    ref_x = x.double().requires_grad_(True)
    ref_out = torch.nn.LocalResponseNorm(size, **settings)(ref_x)
    (ref_grad,) = torch.autograd.grad(ref_out, ref_x, grad.double())
    assert_relative(out, ref_out.detach().numpy())
    assert_relative(grad_x, ref_grad.numpy())


def onnx_runtime_lrn(x: np.ndarray, size: int, alpha: float, beta: float, k: float) -> np.ndarray:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    helper = onnx.helper
    node = helper.make_node("LRN", ["x"], ["y"], size=size, alpha=alpha, beta=beta, bias=k)
    tensor = [helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, list(x.shape)) for name in "xy"]
    graph = helper.make_graph([node], "lrn", tensor[:1], tensor[1:])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x.astype(np.float32)})[0]


@pytest.mark.parametrize("size", [1, 3, 5, 7])
@pytest.mark.parametrize(("alpha", "beta", "k"), SETTINGS)
def test_caffe_convention_matches_onnx_runtime(strategy, size, alpha, beta, k):
    x = 2 * torch.randn(2, 9, 4, 4, generator=torch.Generator().manual_seed(size))
    expected = onnx_runtime_lrn(x.numpy(), size, alpha, beta, k)
    out = LocalResponseNorm(size, alpha, beta, k, convention="caffe")(x)
    assert_relative(out, expected.astype(np.float64))


def test_alexnet_equals_torch_with_alpha_times_size():
    """The paper's k=2, n=5, alpha=1e-4 is torch.nn.LocalResponseNorm(5, alpha=5e-4, k=2)."""
    x = 30 * torch.randn(4, 12, 5, 5, dtype=torch.float64)
    ours = LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0, convention="alexnet")(x)
    theirs = torch.nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)(x)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=0)


# --- the closed-form backward --------------------------------------------------------------------------

GRADCHECK_SETTINGS = SETTINGS + ((0.9, 2.0, 0.0),)  # and k = 0 with beta = 2, the articles' example
ACROSS_WINDOWS = [(convention, size) for convention in CONVENTIONS for size in (2, 3, 5)
                  if not (convention == "caffe" and size % 2 == 0)]


@pytest.mark.parametrize(("convention", "size"), ACROSS_WINDOWS)
@pytest.mark.parametrize(("alpha", "beta", "k"), GRADCHECK_SETTINGS)
def test_gradcheck_float64_across(strategy, convention, size, alpha, beta, k):
    module = LocalResponseNorm(size, alpha, beta, k, convention=convention)
    x = torch.randn(2, 7, 3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(size))
    assert torch.autograd.gradcheck(module, (x.requires_grad_(True),))


@pytest.mark.parametrize("size", [1, 3, 5])
@pytest.mark.parametrize(("alpha", "beta", "k"), GRADCHECK_SETTINGS)
def test_gradcheck_float64_within(size, alpha, beta, k):
    module = LocalResponseNorm(size, alpha, beta, k, region="within")  # the convention plays no part here
    x = torch.randn(2, 3, 5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(size))
    assert torch.autograd.gradcheck(module, (x.requires_grad_(True),))


# --- dtypes, autocast, memory formats ------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("region", ["across", "within"])
def test_half_inputs_compute_in_float32_and_keep_their_dtype(strategy, dtype, region):
    module = LocalResponseNorm(5, alpha=1.0, region=region)
    x = (4 * torch.randn(4, 8, 6, 6)).to(dtype)
    x[0, 0, 0, 0] = 300.0  # 300^2 overflows float16: the sum must not be taken in the input dtype
    grad = torch.randn(x.shape).to(dtype)
    out, grad_x = grad_of(module, x, grad)
    out32, grad32 = grad_of(module, x.float(), grad.float())
    assert out.dtype == grad_x.dtype == dtype
    torch.testing.assert_close(out, out32.to(dtype), rtol=0, atol=0)
    torch.testing.assert_close(grad_x, grad32.to(dtype), rtol=0, atol=0)


def test_autocast_keeps_float32_inputs_float32_and_exact(strategy):
    module = LocalResponseNorm(5, alpha=1.0)  # includes the band matmul, which autocast would lower
    x = 3 * torch.randn(4, 6, 7, 7)
    grad = torch.randn(x.shape)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, grad_x = grad_of(module, x, grad)
    expected_out, expected_grad = grad_of(module, x, grad)
    assert out.dtype == grad_x.dtype == torch.float32
    torch.testing.assert_close(out, expected_out, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(grad_x, expected_grad, rtol=1e-6, atol=1e-7)


def test_autocast_conv_then_lrn_trains():
    conv = torch.nn.Conv2d(3, 6, 3)
    module = LocalResponseNorm(5, alpha=1e-2)
    x = torch.randn(2, 3, 9, 9)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        hidden = conv(x)
        out = module(hidden)
    assert hidden.dtype == out.dtype == torch.bfloat16
    out.float().square().sum().backward()
    assert conv.weight.grad is not None and torch.isfinite(conv.weight.grad).all()
    torch.testing.assert_close(out, module(hidden.detach()), rtol=0, atol=0)


def test_reduced_precision_float32_matmul_is_not_used(strategy):
    """With bf16 float32 matmuls allowed, the window sum must stay exact (the band is skipped)."""
    matmul = torch.backends.mkldnn.matmul
    previous = matmul.fp32_precision
    x = 2 * torch.randn(2, 6, 3, 3)
    settings = dict(size=5, alpha=1.0, beta=0.75, k=1.0)
    try:
        matmul.fp32_precision = "bf16"
        out = LocalResponseNorm(**settings)(x)
    finally:
        matmul.fp32_precision = previous
    assert_relative(out, reference_lrn(x.numpy(), **settings))


def test_channels_last_matches_torch_and_stays_channels_last(strategy):
    x = 2 * torch.randn(3, 6, 5, 5)
    grad = torch.randn(x.shape)
    channels_last = torch.channels_last
    out, grad_x = grad_of(LocalResponseNorm(3, alpha=1.0), x.to(memory_format=channels_last),
                          grad.to(memory_format=channels_last))
    expected_out, expected_grad = grad_of(torch.nn.LocalResponseNorm(3, alpha=1.0), x.double(), grad.double())
    assert out.is_contiguous(memory_format=channels_last) and grad_x.is_contiguous(memory_format=channels_last)
    assert_relative(out, expected_out.numpy())
    assert_relative(grad_x, expected_grad.numpy())


def test_channels_last_within_channel_gives_the_same_result():
    module = LocalResponseNorm(3, alpha=1.0, region="within")
    x = 2 * torch.randn(3, 6, 5, 5)
    grad = torch.randn(x.shape)
    out, grad_x = grad_of(module, x, grad)
    channels_last = torch.channels_last
    out_cl, grad_cl = grad_of(module, x.to(memory_format=channels_last), grad.to(memory_format=channels_last))
    assert out_cl.is_contiguous(memory_format=channels_last)
    assert grad_cl.is_contiguous(memory_format=channels_last)
    torch.testing.assert_close(out_cl, out, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(grad_cl, grad_x, rtol=1e-6, atol=1e-7)


def test_non_contiguous_gradient(strategy):
    x = torch.randn(2, 6, 4, 4, requires_grad=True)
    LocalResponseNorm(3, alpha=1.0)(x).sum().backward()  # sum's gradient is an expanded (stride 0) tensor
    x_ref = x.detach().double().requires_grad_(True)
    torch.nn.LocalResponseNorm(3, alpha=1.0)(x_ref).sum().backward()
    assert_relative(x.grad, x_ref.grad.numpy())


@pytest.mark.parametrize("region", ["across", "within"])
def test_empty_batch(strategy, region):
    x = torch.empty(0, 6, 4, 4, requires_grad=True)
    out = LocalResponseNorm(5, region=region)(x)
    out.sum().backward()
    assert out.shape == x.grad.shape == x.shape


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    module = LocalResponseNorm(5, alpha=1.0)
    x, grad = torch.randn(4, 6, 7, 7), torch.randn(4, 6, 7, 7)
    out, grad_x = grad_of(module, x, grad)
    out_cuda, grad_cuda = grad_of(module, x.cuda(), grad.cuda())
    torch.testing.assert_close(out_cuda.cpu(), out, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad_cuda.cpu(), grad_x, rtol=1e-5, atol=1e-6)


# --- settings and inputs that are rejected -------------------------------------------------------------

@pytest.mark.parametrize("settings", [
    dict(size=4, convention="caffe"),
    dict(size=2, region="within"),
    dict(size=0),
    dict(size=-3),
    dict(size=2.0),
    dict(size=3, alpha=-1e-4),
    dict(size=3, beta=-0.75),
    dict(size=3, k=-1.0),
    dict(size=3, convention="tensorflow"),
    dict(size=3, region="spatial"),
])
def test_invalid_settings_are_rejected_with_one_sentence(settings):
    with pytest.raises(UserError) as error:
        LocalResponseNorm(**settings)
    message = str(error.value)
    assert message.endswith(".") and "\n" not in message


def test_wrong_inputs_are_rejected():
    with pytest.raises(ValueError, match="within"):
        LocalResponseNorm(3, region="within")(torch.randn(2, 4, 5))
    with pytest.raises(ValueError, match="at least 3"):
        LocalResponseNorm(3)(torch.randn(2, 4))
    with pytest.raises(TypeError, match="floating"):
        LocalResponseNorm(3)(torch.ones(2, 4, 3, 3, dtype=torch.int64))



@pytest.mark.parametrize("channels", [1, 6, 16])
def test_pixel_norm_is_the_root_mean_square_over_channels(channels):
    """norm=pixel against ProGAN's formula b = a / sqrt(mean_c a^2 + eps), in float64 NumPy."""
    from lrn_ablate.norms import build_norm

    x = np.random.default_rng(channels).normal(size=(2, channels, 5, 5)) * 3
    expected = x / np.sqrt((x ** 2).mean(axis=1, keepdims=True) + 1e-8)
    out = build_norm({"name": "pixel", "eps": 1e-8}, channels)(torch.from_numpy(x))
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)
