"""Checks of a composed config that need no torch, run before any training starts.

Each check raises UserError with one sentence naming the setting and what it accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lrn_ablate.errors import UserError

LRN_CONVENTIONS = ("pytorch", "caffe", "alexnet", "article")
LRN_REGIONS = ("across", "within")
AUGMENTATIONS = ("none", "flip", "flip_crop")
DEVICES = ("auto", "cpu", "cuda")
SCHEDULES = ("none", "cosine", "step")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def require_positive_int(key: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise UserError(f"{key} must be a positive integer, got {value!r}.")


def require_positive_number(key: str, value: Any) -> None:
    if not _is_number(value) or value <= 0:
        raise UserError(f"{key} must be a number greater than 0, got {value!r}.")


def require_non_negative_number(key: str, value: Any) -> None:
    if not _is_number(value) or value < 0:
        raise UserError(f"{key} must be a number >= 0, got {value!r}.")


def require_choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UserError(f"{key} must be one of {', '.join(choices)}; got {value!r}.")


def check_lrn(size: Any, alpha: Any, beta: Any, k: Any, convention: Any, region: Any, prefix: str = "") -> None:
    """Validate LRN settings (shared by the config check and the module's constructor)."""
    require_choice(f"{prefix}convention", convention, LRN_CONVENTIONS)
    require_choice(f"{prefix}region", region, LRN_REGIONS)
    require_positive_int(f"{prefix}size", size)
    for key, value in (("alpha", alpha), ("beta", beta), ("k", k)):
        require_non_negative_number(f"{prefix}{key}", value)
    if size % 2 == 0 and (convention == "caffe" or region == "within"):
        what = "region=within" if region == "within" else "convention=caffe"
        raise UserError(f"{prefix}size must be odd with {what} (a centred window), got {size}.")


def check_groups(groups: Any, channel_counts: list[int], prefix: str = "norm.") -> None:
    require_positive_int(f"{prefix}groups", groups)
    bad = [c for c in channel_counts if c % groups]
    if bad:
        raise UserError(
            f"{prefix}groups={groups} must divide the channel count of every norm slot "
            f"({', '.join(map(str, channel_counts))}); it does not divide {bad[0]}."
        )


def check_norm(norm: Mapping[str, Any], channel_counts: list[int]) -> None:
    name = norm.get("name")
    if name == "lrn":
        check_lrn(norm.get("size"), norm.get("alpha"), norm.get("beta"), norm.get("k"),
                  norm.get("convention"), norm.get("region"), prefix="norm.")
    elif name == "gn":
        check_groups(norm.get("groups"), channel_counts)
    if "eps" in norm:
        require_positive_number("norm.eps", norm["eps"])


def check_trainer(trainer: Mapping[str, Any]) -> None:
    require_positive_int("trainer.epochs", trainer.get("epochs"))
    require_positive_int("trainer.batch_size", trainer.get("batch_size"))
    require_positive_int("trainer.eval_batch_size", trainer.get("eval_batch_size"))
    device = str(trainer.get("device"))
    if not (device in DEVICES or device.startswith("cuda:")):
        raise UserError(f"trainer.device must be one of auto, cpu, cuda or cuda:N; got {device!r}.")
    threads = trainer.get("threads")
    if threads != "auto" and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise UserError(f"trainer.threads must be auto or a positive integer, got {threads!r}.")
    require_choice("trainer.resume", trainer.get("resume"), ("auto", "never"))
    require_choice("trainer.precision", trainer.get("precision"), ("fp32", "bf16", "fp16"))
    for key in ("deterministic", "progress", "channels_last", "compile"):
        if not isinstance(trainer.get(key), bool):
            raise UserError(f"trainer.{key} must be true or false, got {trainer.get(key)!r}.")


def check_optim(optim: Mapping[str, Any]) -> None:
    require_positive_number("optim.lr", optim.get("lr"))
    require_non_negative_number("optim.weight_decay", optim.get("weight_decay"))
    if "momentum" in optim:
        require_non_negative_number("optim.momentum", optim["momentum"])
    require_choice("optim.schedule", optim.get("schedule"), SCHEDULES)
    if optim.get("schedule") == "step":
        require_positive_int("optim.step_size", optim.get("step_size"))
        require_positive_number("optim.gamma", optim.get("gamma"))


def check_image_tree(root: Path) -> None:
    """An ImageFolder tree has train/<class>/ folders and a test/ (or val/) folder."""
    if not root.is_dir():
        raise UserError(f"dataset.root={str(root)!r} is not a directory; point it at a folder with train/ and test/.")
    train = root / "train"
    if not train.is_dir():
        raise UserError(f"dataset.root={str(root)!r} has no train/ folder (expected train/<class>/*).")
    if not any(d.is_dir() and not d.name.startswith(".") for d in train.iterdir()):
        raise UserError(f"dataset.root={str(root)!r} has no class folders in train/ (expected train/<class>/*).")
    if not (root / "test").is_dir() and not (root / "val").is_dir():
        raise UserError(f"dataset.root={str(root)!r} has train/ but no test/ or val/ folder.")


def check_dataset(dataset: Mapping[str, Any]) -> None:
    require_choice("dataset.augment", dataset.get("augment", "none"), AUGMENTATIONS)
    root = dataset.get("root")
    if dataset.get("name") == "imagefolder":
        if root in (None, "???"):
            raise UserError("dataset=imagefolder needs dataset.root=<folder with train/ and test/>.")
        check_image_tree(Path(str(root)))
    elif dataset.get("name") == "cifar10" and root and (Path(str(root)) / "train").is_dir():
        check_image_tree(Path(str(root)))
        for key in ("image_size", "channels"):
            if dataset.get(key) is not None:
                require_positive_int(f"dataset.{key}", dataset.get(key))
        if dataset.get("channels") not in (None, 1, 3):
            raise UserError(f"dataset.channels must be 1, 3 or null, got {dataset.get('channels')!r}.")


def check_alexnet(model: Mapping[str, Any]) -> None:
    towers = model["towers"]
    if not isinstance(towers, int) or isinstance(towers, bool) or towers < 1:
        raise UserError(f"model.towers must be a positive integer (2: the paper's two), got {towers!r}.")
    channels, features = list(model["conv_channels"]), list(model["fc_features"])
    if len(channels) != 5 or len(features) != 2:
        raise UserError(f"model.conv_channels needs 5 widths and model.fc_features 2, "
                        f"got {channels} and {features}.")
    if any(c % towers for c in channels):
        raise UserError(f"model.towers={towers} must divide every width in model.conv_channels {channels}.")
    devices = model.get("tower_devices")
    if devices is not None and (towers < 2 or not model["tower_local_norm"] or len(devices) != towers):
        raise UserError(f"model.tower_devices needs towers >= 2, tower_local_norm: true and one device per "
                        f"tower; got towers={towers}, tower_local_norm={model['tower_local_norm']}, "
                        f"tower_devices={list(devices)}.")


def alexnet_norm_channels(model: Mapping[str, Any]) -> list[int]:
    """Channel counts of one norm module in each slot (per tower with tower_local_norm)."""
    check_alexnet(model)
    towers = model["towers"] if model["tower_local_norm"] else 1
    return [c // towers for c in list(model["conv_channels"])[:2]]


def norm_channel_counts(model: Mapping[str, Any]) -> list[int]:
    """Channel counts of the model's norm slots, known from the config alone (for early checks)."""
    if model["name"] == "lenet":
        return list(model["conv_channels"])
    if model["name"] in ("alexnet", "alexnet_cifar"):
        return alexnet_norm_channels(model)
    raise ValueError(f"unknown model {model['name']!r}")


def check_config(cfg: Mapping[str, Any], channel_counts: list[int]) -> None:
    """Every check that can run before data is loaded; raises UserError on the first problem."""
    check_trainer(cfg["trainer"])
    check_optim(cfg["optim"])
    check_dataset(cfg["dataset"])
    check_norm(cfg["norm"], channel_counts)
    if not isinstance(cfg.get("seed"), int) or isinstance(cfg.get("seed"), bool):
        raise UserError(f"seed must be an integer, got {cfg.get('seed')!r}.")
