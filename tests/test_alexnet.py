"""AlexNet as published and AlexNet-CIFAR: shapes, parameter counts, grouping, pooling, norm slots, tower
placement, the LRN presets, and training on digits through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import read_metrics, run_cli
from hydra import compose, initialize_config_module
from omegaconf import DictConfig, OmegaConf
from torch import nn

from lrn_ablate.errors import UserError
from lrn_ablate.models import build_model, norm_channel_counts
from lrn_ablate.models.alexnet import AlexNet, TowerNorm, TowerPlacedAlexNet
from lrn_ablate.norms import build_norm

NORMS = ("none", "lrn", "bn", "ln", "in", "gn")
PRESETS = ("alexnet_paper", "alexnet_caffe", "caffenet", "alexnet_cifar")


def config(*overrides: str) -> DictConfig:
    with initialize_config_module(config_module="lrn_ablate.conf", version_base="1.3"):
        return compose("config", overrides=list(overrides))


def alexnet(*overrides: str, image_size: int = 227, num_classes: int = 1000) -> nn.Module:
    cfg = config("model=alexnet", *overrides)
    return build_model(cfg.model, cfg.norm, 3, image_size, num_classes)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def feature_shapes(model: AlexNet, image_size: int) -> dict[str, tuple[int, ...]]:
    """Output shape (C, H, W) of every layer of `model.features` for one image."""
    shapes: dict[str, tuple[int, ...]] = {}
    for name, layer in model.features.named_children():
        layer.register_forward_hook(lambda _m, _i, out, key=name: shapes.update({key: tuple(out.shape[1:])}))
    with torch.no_grad():
        model.eval()(torch.randn(1, 3, image_size, image_size))
    return shapes


@pytest.mark.parametrize("image_size", [227, 224])
def test_published_feature_map_shapes(image_size: int) -> None:
    model = alexnet("norm=lrn", f"model.image_size={image_size}", image_size=image_size)
    shapes = feature_shapes(model, image_size)
    assert shapes["conv1"] == shapes["norm1"] == (96, 55, 55)
    assert shapes["pool1"] == (96, 27, 27)
    assert shapes["conv2"] == shapes["norm2"] == (256, 27, 27)
    assert shapes["pool2"] == (256, 13, 13)
    assert shapes["conv3"] == shapes["conv4"] == (384, 13, 13)
    assert shapes["conv5"] == (256, 13, 13)
    assert shapes["pool5"] == (256, 6, 6)
    assert model.classifier.fc6.in_features == 256 * 6 * 6
    assert model.features.conv1.padding == ((0, 0) if image_size == 227 else (2, 2))


def test_parameter_counts_with_1000_classes() -> None:
    with torch.device("meta"):  # counting needs no initialised weights
        assert n_params(alexnet()) == 60_965_224
        assert n_params(alexnet("model.towers=1")) == 62_378_344


def test_only_conv2_conv4_conv5_are_grouped() -> None:
    with torch.device("meta"):
        grouped, single = alexnet(), alexnet("model.towers=1")
    assert {name: conv.groups for name, conv in grouped.features.named_children()
            if isinstance(conv, nn.Conv2d)} == {"conv1": 1, "conv2": 2, "conv3": 1, "conv4": 2, "conv5": 2}
    assert all(conv.groups == 1 for conv in single.features if isinstance(conv, nn.Conv2d))


@pytest.mark.parametrize(("overlapping", "window", "cifar_side"), [(True, 3, 3), (False, 2, 4)])
def test_pooling_windows_and_fc6_input(overlapping: bool, window: int, cifar_side: int) -> None:
    with torch.device("meta"):
        big = alexnet(f"model.overlapping_pool={overlapping}")
    pools = [layer for layer in big.features if isinstance(layer, nn.MaxPool2d)]
    assert [(p.kernel_size, p.stride) for p in pools] == [(window, 2)] * 3
    assert big.classifier.fc6.in_features == 256 * 6 * 6  # 55 -> 27 -> 13 -> 6 either way

    cfg = config("model=alexnet_cifar", f"model.overlapping_pool={overlapping}")
    small = build_model(cfg.model, cfg.norm, 3, 32, 10)
    assert small.classifier.fc6.in_features == 128 * cifar_side * cifar_side
    with torch.no_grad():
        assert small.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_norm_slot_order_paper_and_caffenet() -> None:
    with torch.device("meta"):
        paper = alexnet("experiment=alexnet_paper")
        caffenet = alexnet("experiment=caffenet")
    assert [n for n, _ in paper.features.named_children()][:8] == [
        "conv1", "relu1", "norm1", "pool1", "conv2", "relu2", "norm2", "pool2"]
    assert [n for n, _ in caffenet.features.named_children()][:8] == [
        "conv1", "relu1", "pool1", "norm1", "conv2", "relu2", "pool2", "norm2"]
    assert [n for n, _ in paper.classifier.named_children()] == [
        "fc6", "relu6", "drop6", "fc7", "relu7", "drop7", "fc8"]


def test_tower_local_norm_is_one_norm_per_tower() -> None:
    with torch.device("meta"):
        local = alexnet("norm=bn")
        shared = alexnet("norm=bn", "model.tower_local_norm=false")
    assert isinstance(local.features.norm1, TowerNorm)
    assert [n.num_features for n in local.features.norm1.norms] == [48, 48]
    assert [n.num_features for n in local.features.norm2.norms] == [128, 128]
    assert shared.features.norm1.num_features == 96 and shared.features.norm2.num_features == 256

    lrn = build_norm(config("experiment=alexnet_paper").norm, 96)
    x = torch.randn(2, 96, 5, 5) * 20
    local_lrn = TowerNorm(lambda c: lrn, 96, 2)
    assert torch.equal(local_lrn(x), torch.cat([lrn(x[:, :48]), lrn(x[:, 48:])], 1))
    assert not torch.allclose(local_lrn(x), lrn(x))  # the windows at channels 46-49 differ


def test_norm_channel_counts() -> None:
    assert norm_channel_counts(config("model=alexnet").model) == [48, 128]
    assert norm_channel_counts(config("model=alexnet", "model.tower_local_norm=false").model) == [96, 256]
    assert norm_channel_counts(config("model=alexnet", "model.towers=1").model) == [96, 256]
    assert norm_channel_counts(config("model=alexnet_cifar").model) == [24, 64]


@pytest.mark.parametrize("preset", ["alexnet_paper", "alexnet_caffe"])
def test_lrn_presets_equal_torch_local_response_norm(preset: str) -> None:
    # Paper: k=2, alpha=1e-4 per squared term; Caffe: k=1, alpha=1e-4/5. torch divides its alpha by size.
    reference = {"alexnet_paper": nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0),
                 "alexnet_caffe": nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)}[preset]
    lrn = build_norm(config(f"experiment={preset}").norm, 96)
    x = torch.randn(2, 96, 13, 13) * 30  # large enough that the window term matters
    assert (lrn(x) - reference(x)).abs().max().item() <= 1e-6 * x.abs().max().item()
    assert not torch.allclose(reference(x), x, rtol=1e-2)


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_compose(preset: str) -> None:
    cfg = config(f"experiment={preset}")
    expected = {
        "alexnet_paper": ("alexnet", True, True, "alexnet", 2.0),
        "alexnet_caffe": ("alexnet", False, True, "caffe", 1.0),
        "caffenet": ("alexnet", False, False, "caffe", 1.0),
        "alexnet_cifar": ("alexnet_cifar", True, True, "alexnet", 2.0),
    }[preset]
    model, norm = cfg.model, cfg.norm
    assert (model.name, model.tower_local_norm, model.norm_before_pool, norm.convention, norm.k) == expected
    assert cfg.experiment_name == preset and cfg.norm.name == "lrn" and cfg.norm.size == 5
    assert cfg.norm.alpha == 1e-4 and cfg.norm.beta == 0.75
    assert cfg.optim.momentum == 0.9 and cfg.optim.weight_decay == 5e-4


def test_tower_placement_equals_grouped_network() -> None:
    grouped = alexnet("experiment=alexnet_paper").eval()
    placed = TowerPlacedAlexNet.from_grouped(grouped, ["cpu", "cpu"]).eval()
    assert n_params(placed) == n_params(grouped)
    x = torch.randn(2, 3, 227, 227)
    with torch.no_grad():
        assert (placed(x) - grouped(x)).abs().max().item() <= 1e-6


@pytest.mark.parametrize("norm", ["bn", "gn"])
def test_tower_placement_from_config_matches_in_training_mode(norm: str) -> None:
    """Batch statistics of bn and the groups of gn stay within a tower, so training mode agrees too."""
    cfg = config("model=alexnet_cifar", f"norm={norm}", "model.dropout=0")
    torch.manual_seed(0)
    grouped = build_model(cfg.model, cfg.norm, 3, 32, 10)
    torch.manual_seed(0)
    placed = build_model(config("model=alexnet_cifar", f"norm={norm}", "model.dropout=0",
                                "model.tower_devices=[cpu,cpu]").model, cfg.norm, 3, 32, 10)
    assert isinstance(placed, TowerPlacedAlexNet)
    x = torch.randn(8, 3, 32, 32)
    assert (placed(x) - grouped(x)).abs().max().item() <= 1e-6


def test_tower_placement_needs_tower_local_norm() -> None:
    with pytest.raises(UserError, match="tower_local_norm: true"):
        norm_channel_counts(config("model=alexnet_cifar", "model.tower_local_norm=false",
                                   "model.tower_devices=[cpu,cpu]").model)
    cfg = config("model=alexnet_cifar", "model.towers=1")
    with pytest.raises(ValueError, match="tower_local_norm"):
        TowerPlacedAlexNet.from_grouped(build_model(cfg.model, cfg.norm, 3, 32, 10), ["cpu", "cpu"])


def test_image_size_must_match_the_design() -> None:
    cfg = config("model=alexnet")
    with pytest.raises(UserError, match="built for 227x227 images but the dataset gives 32x32"):
        build_model(cfg.model, cfg.norm, 3, 32, 10)
    small = config("model=alexnet", "model.image_size=null")
    with pytest.raises(UserError, match="too small"):
        build_model(small.model, small.norm, 3, 32, 10)


@pytest.mark.parametrize("norm", NORMS)
def test_alexnet_cifar_takes_a_training_step_with_each_norm(norm: str) -> None:
    cfg = config("model=alexnet_cifar", f"norm={norm}")
    model = build_model(cfg.model, cfg.norm, 3, 32, 10)
    before = model.features.conv1.weight.detach().clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss = nn.functional.cross_entropy(model(torch.randn(8, 3, 32, 32)), torch.randint(0, 10, (8,)))
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss) and not torch.equal(before, model.features.conv1.weight)


def test_alexnet_cifar_trains_an_epoch_on_digits_with_each_norm(workdir: Path) -> None:
    sweep = workdir / "sweep"
    result = run_cli(["train", "-m", "model=alexnet_cifar", "dataset=digits", "trainer.epochs=1",
                      f"norm={','.join(NORMS)}", "logger=none", f"hydra.sweep.dir={sweep}"], workdir, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    trained = {}
    for run_dir in sorted(p.parent for p in sweep.glob("*/summary.json")):
        trained[OmegaConf.load(run_dir / "config.yaml").norm.name] = read_metrics(run_dir)
    assert sorted(trained) == sorted(NORMS)
    assert all(len(rows) == 1 for rows in trained.values())
