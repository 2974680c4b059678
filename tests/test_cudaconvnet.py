"""cuda-convnet's CIFAR-10 network: its locally connected layer, its geometry and its response normalization,
each against an independent reference (a direct loop, F.conv2d, numbers from the layer files, a float64
transcription of cuda-convnet's normalization kernels)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import read_summary, run_cli

from lrn_ablate.data.batches import EvalBatches, TrainBatches
from lrn_ablate.models import build_model
from lrn_ablate.models.cudaconvnet import LocallyConnected2d
from lrn_ablate.norms import build_norm
from lrn_ablate.norms.lrn import LocalResponseNorm
from lrn_ablate.optim import build_optimizer
from lrn_ablate.training.steps import evaluate

CUDACONVNET = {"name": "cudaconvnet", "conv_channels": [64, 64], "local_channels": [32, 32],
               "init_std": [1e-4, 0.01, 0.04, 0.04, 0.01]}
# conf/norm/lrn_cudaconvnet.yaml
CROSS_MAP = {"name": "lrn", "size": 5, "alpha": 1e-3, "beta": 0.75, "k": 1.0, "convention": "caffe",
             "region": "across"}


def direct_local(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, padding: int, stride: int) -> np.ndarray:
    """out[n, o, i, j] = bias[o, i, j] + sum_{c,p,q} weight[i, j, o, c, p, q] * x_padded[n, c, i*s+p, j*s+q]."""
    out_h, out_w, out_c, _, kh, kw = weight.shape
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out = np.zeros((x.shape[0], out_c, out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            patch = padded[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[:, :, i, j] = np.einsum("ncpq,ocpq->no", patch, weight[i, j]) + bias[:, i, j]
    return out


@pytest.mark.parametrize(("in_size", "kernel", "padding", "stride"), [((6, 6), 3, 1, 1), ((7, 5), 3, 0, 2),
                                                                       ((5, 8), (2, 3), 1, 1)])
def test_locally_connected_matches_a_direct_loop(in_size, kernel, padding, stride):
    torch.manual_seed(0)
    layer = LocallyConnected2d(4, 3, kernel, in_size, padding=padding, stride=stride).double()
    x = torch.randn(2, 4, *in_size, dtype=torch.float64)
    expected = direct_local(x.numpy(), layer.weight.detach().numpy(), layer.bias.detach().numpy(), padding, stride)
    np.testing.assert_allclose(layer(x).detach().numpy(), expected, rtol=1e-12, atol=1e-12)
    assert layer.weight.shape[:2] == expected.shape[2:]


def test_locally_connected_with_one_kernel_everywhere_is_a_convolution():
    torch.manual_seed(1)
    kernel, bias = torch.randn(5, 3, 3, 3, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    layer = LocallyConnected2d(3, 5, 3, 8, padding=1).double()
    with torch.no_grad():
        layer.weight.copy_(kernel.expand(8, 8, 5, 3, 3, 3))
        layer.bias.copy_(bias[:, None, None].expand(5, 8, 8))
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(layer(x), F.conv2d(x, kernel, bias, padding=1), rtol=1e-12, atol=1e-12)


def test_each_locally_connected_output_depends_only_on_its_own_window():
    torch.manual_seed(5)
    layer = LocallyConnected2d(2, 3, 3, 7, padding=1).double()
    x = torch.randn(1, 2, 7, 7, dtype=torch.float64, requires_grad=True)
    for i, j in ((0, 0), (3, 4), (6, 6)):
        (grad,) = torch.autograd.grad(layer(x)[0, :, i, j].sum(), x)
        reached = grad.abs().sum(dim=(0, 1)) > 0
        window = torch.zeros(7, 7, dtype=torch.bool)
        window[max(0, i - 1):i + 2, max(0, j - 1):j + 2] = True
        assert torch.equal(reached, window), (i, j)


def test_locally_connected_gradients_are_exact():
    layer = LocallyConnected2d(2, 2, 2, (3, 4), padding=1, stride=2).double()
    x = torch.randn(2, 2, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))


def test_locally_connected_refuses_another_input_size():
    with pytest.raises(ValueError, match=r"built for \(6, 6\)"):
        LocallyConnected2d(3, 3, 3, 6, padding=1)(torch.randn(1, 3, 8, 8))


def test_network_has_cuda_convnets_maps_and_parameter_count():
    model = build_model(CUDACONVNET, CROSS_MAP, 3, 24, 10)
    shapes = {}
    for name in ("conv1", "pool1", "conv2", "pool2", "local3", "local4"):
        getattr(model, name).register_forward_hook(lambda _, __, out, name=name: shapes.update({name: out.shape[1:]}))
    assert model(torch.randn(2, 3, 24, 24)).shape == (2, 10)
    # The layer files' geometry on 24x24 crops: 24x24x64, 12x12x64, 12x12x64, 6x6x64, 6x6x32, 6x6x32.
    assert shapes == {"conv1": (64, 24, 24), "pool1": (64, 12, 12), "conv2": (64, 12, 12), "pool2": (64, 6, 6),
                      "local3": (32, 6, 6), "local4": (32, 6, 6)}
    # conv: one bias per filter (sharedBiases=1); local: a weight set and a bias per output position.
    by_hand = ((3 * 25 + 1) * 64 + (64 * 25 + 1) * 64 + 36 * 32 * (64 * 9 + 1) + 36 * 32 * (32 * 9 + 1)
               + 1152 * 10 + 10)
    assert sum(p.numel() for p in model.parameters()) == by_hand == 1_116_490
    assert model.conv1.weight.std().item() == pytest.approx(1e-4, rel=0.05)  # initW of conv1
    assert model.local3.bias.abs().max().item() == 0.0


def cuda_convnet_cross_map(x: np.ndarray, size: int, scale: float, power: float) -> np.ndarray:
    """kFCNorm (conv_util.cu) after layer.py's `scale /= size`: a window of `size` maps starting at
    f - size//2, clipped to the maps there are, out = x * (1 + scale/size * sum x^2)^-pow."""
    add_scale, maps = scale / size, x.shape[1]
    out = np.empty_like(x)
    for f in range(maps):
        start = -(size // 2) + f
        window = x[:, max(0, start):min(maps, start + size)]
        out[:, f] = x[:, f] * (1 + add_scale * (window ** 2).sum(axis=1)) ** -power
    return out


def cuda_convnet_same_map(x: np.ndarray, size: int, scale: float, power: float) -> np.ndarray:
    """kCNorm with meanDiffs = images, after `scale /= size**2`: a size x size window starting at
    (y - size//2, x - size//2), clipped to the image, out = x * (1 + scale/size^2 * sum x^2)^-pow."""
    add_scale, (height, width) = scale / size ** 2, x.shape[2:]
    out = np.empty_like(x)
    for y in range(height):
        for z in range(width):
            top, left = y - size // 2, z - size // 2
            window = x[:, :, max(0, top):min(height, top + size), max(0, left):min(width, left + size)]
            out[:, :, y, z] = x[:, :, y, z] * (1 + add_scale * (window ** 2).sum(axis=(2, 3))) ** -power
    return out


def test_lrn_cudaconvnet_is_cuda_convnets_cross_map_normalization():
    x = np.random.default_rng(2).normal(size=(2, 64, 4, 4)) * 20  # large enough that the sum matters
    expected = cuda_convnet_cross_map(x, size=5, scale=1e-3, power=0.75)
    out = build_norm(CROSS_MAP, 64)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    assert np.abs(expected - x).max() > 1.0  # the normalization changes the values


def test_caffes_within_channel_region_is_cuda_convnets_same_map_normalization():
    x = np.random.default_rng(3).normal(size=(2, 3, 7, 6)) * 20
    expected = cuda_convnet_same_map(x, size=3, scale=5e-5 * 100, power=0.75)
    out = LocalResponseNorm(3, alpha=5e-3, beta=0.75, k=1.0, region="within")(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-12)


@pytest.mark.slow
def test_cudaconvnet_with_its_lrn_trains_through_the_cli(workdir):
    result = run_cli(["train", "model=cudaconvnet", "norm=lrn_cudaconvnet", "dataset=digits", "trainer.epochs=2",
                      "model.init_std=null", "logger=none", f"hydra.run.dir={workdir / 'run'}"], workdir)
    assert result.returncode == 0, result.stderr
    summary = read_summary(workdir / "run")
    # digits: 32x32 grey images, so 16x16 and 8x8 after the poolings and 64 positions in each local layer.
    by_hand = ((1 * 25 + 1) * 64 + (64 * 25 + 1) * 64 + 64 * 32 * (64 * 9 + 1) + 64 * 32 * (32 * 9 + 1)
               + 32 * 64 * 10 + 10)
    assert summary["status"] == "completed" and summary["num_params"] == by_hand
    assert summary["final_test_acc"] > 0.2  # 10 classes: chance is 0.1


def identity_batches(images: torch.Tensor, **kwargs: object) -> dict[str, object]:
    """Batches that leave pixels as they are: mean 0, std 1/255 undoes the /255 of the normalizer."""
    return dict(images=images, labels=torch.arange(len(images)), mean=torch.zeros(3), std=torch.full((3,), 1 / 255),
                **kwargs)


def test_training_patches_are_random_windows_of_the_whole_images():
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    batches = TrainBatches(**identity_batches(images), batch_size=16, augment="none", seed=0,
                           device=torch.device("cpu"), crop_size=24)
    patches, labels = next(batches.epoch(1))
    assert patches.shape == (16, 3, 24, 24)
    offsets = set()
    for patch, label in zip(patches, labels, strict=True):
        image = images[label].float()
        found = [(top, left) for top in range(9) for left in range(9)
                 if torch.equal(image[:, top:top + 24, left:left + 24], patch.round())]
        assert found, "a patch that is no 24x24 window of its image"
        offsets.add(found[0])
    assert len(offsets) > 8  # offsets 0-8 in each axis, drawn per image


def test_test_patches_are_the_centre_or_cuda_convnets_ten_views():
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    centre = next(iter(EvalBatches(**identity_batches(images), batch_size=8, device=torch.device("cpu"),
                                   crop_size=24)))[0]
    torch.testing.assert_close(centre.round(), images[None, :, :, 4:28, 4:28].float())  # crop border 4
    views = next(iter(EvalBatches(**identity_batches(images), batch_size=8, device=torch.device("cpu"),
                                  crop_size=24, views=10)))[0].round()
    corners = [(0, 0), (0, 8), (8, 0), (8, 8), (4, 4)]
    expected = [images[:, :, top:top + 24, left:left + 24].float() for top, left in corners]
    expected += [view.flip(3) for view in expected]
    torch.testing.assert_close(views, torch.stack(expected))


def test_the_multiview_test_averages_the_softmax_over_the_views():
    torch.manual_seed(4)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 24 * 24, 10))
    images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    labels = torch.tensor([0, 1, 2, 3, 4, 5])
    batches = EvalBatches(images, labels, torch.zeros(3), torch.ones(3), 4, torch.device("cpu"), crop_size=24,
                          views=10)
    loss, accuracy = evaluate(model, batches, torch.device("cpu"), "fp32")
    views = torch.cat([b[0] for b in batches], dim=1)  # (10, 6, 3, 24, 24)
    with torch.no_grad():
        probs = torch.stack([model(view).softmax(dim=1) for view in views]).mean(dim=0)
    assert loss == pytest.approx(-probs[torch.arange(6), labels].log().mean().item(), rel=1e-5)
    assert accuracy == pytest.approx((probs.argmax(dim=1) == labels).float().mean().item())


def experiment(*overrides: str) -> dict:
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    with initialize_config_module(config_module="lrn_ablate.conf", version_base="1.3"):
        return OmegaConf.to_container(compose("config", overrides=list(overrides)), resolve=True)


def test_the_13pct_preset_takes_the_layer_params_files_rates_and_decays():
    cfg = experiment("experiment=cudaconvnet_13pct")
    model = build_model(cfg["model"], cfg["norm"], 3, 24, 10)
    optimizer, scheduler = build_optimizer(cfg["optim"], model.named_parameters(), cfg["trainer"]["epochs"])
    names = {id(p): n for n, p in model.named_parameters()}
    got = {names[id(p)]: (group["lr"], group["weight_decay"]) for group in optimizer.param_groups
           for p in group["params"]}
    # layer-params-conv-local-13pct.cfg: epsW 0.001, epsB 0.002, wc 0 on conv1/conv2, 0.004 on local3,
    # local4 and fc10; cuda-convnet never decays biases.
    expected = {f"{layer}.weight": (0.001, 0.004 if layer in ("local3", "local4", "fc") else 0.0)
                for layer in ("conv1", "conv2", "local3", "local4", "fc")}
    expected.update({f"{layer}.bias": (0.002, 0.0) for layer in ("conv1", "conv2", "local3", "local4", "fc")})
    assert got.keys() == expected.keys()
    for name, (lr, decay) in expected.items():
        assert got[name] == (pytest.approx(lr), pytest.approx(decay)), name
    assert cfg["trainer"]["batch_size"] == 128 and optimizer.param_groups[0]["momentum"] == 0.9
    # 140 epochs at epsW, 10 at epsW/10, 10 at epsW/100.
    rates = []
    for _ in range(cfg["trainer"]["epochs"]):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[:140] == [0.001] * 140
    assert rates[140:150] == pytest.approx([1e-4] * 10) and rates[150:] == pytest.approx([1e-5] * 10)


def test_the_11pct_preset_differs_from_the_13pct_only_in_its_norm():
    first, second = experiment("experiment=cudaconvnet_13pct"), experiment("experiment=cudaconvnet_11pct")
    assert {key for key in first if first[key] != second[key]} == {"norm"}
    assert first["norm"] == {"name": "none"} and second["norm"] == CROSS_MAP


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["cudaconvnet_13pct", "cudaconvnet_11pct"])
def test_each_preset_trains_an_epoch_on_digits_through_the_cli(workdir, preset):
    result = run_cli(["train", f"experiment={preset}", "dataset=digits", "trainer.epochs=1", "logger=none",
                      f"hydra.run.dir={workdir / 'run'}"], workdir)
    assert result.returncode == 0, result.stderr
    summary = read_summary(workdir / "run")
    assert summary["status"] == "completed" and summary["epochs_completed"] == 1
    # digits' 32x32 images in 24x24 crops: the same geometry as CIFAR-10's, with one input channel.
    assert summary["num_params"] == 1_116_490 - 2 * 25 * 64
