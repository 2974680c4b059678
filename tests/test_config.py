"""Every option of every config group composes, and the composed values are what the YAML says."""

from __future__ import annotations

from importlib import resources

import pytest
from hydra import compose, initialize_config_module

from lrn_ablate.launch.checks import check_config
from lrn_ablate.settings import Default

GROUPS = ("model", "norm", "dataset", "optim", "trainer", "logger", "experiment")


def options(group: str) -> list[str]:
    folder = resources.files("lrn_ablate.conf") / group
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def composed(*overrides: str) -> dict:
    from omegaconf import OmegaConf

    with initialize_config_module(config_module="lrn_ablate.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)


def test_default_run_is_lenet_without_norm_on_cifar10():
    cfg = composed()
    assert (cfg["model"]["name"], cfg["norm"]["name"], cfg["dataset"]["name"]) == ("lenet", "none", "cifar10")
    assert cfg["trainer"]["epochs"] == 100 and cfg["trainer"]["device"] == "auto"
    assert cfg["logger"]["name"] == "wandb" and cfg["optim"]["name"] == "sgd"


@pytest.mark.parametrize("group", GROUPS)
def test_every_option_of_every_group_composes(group, tmp_path):
    assert options(group), f"conf/{group}/ is empty"
    for folder in ("train/cat", "test/cat"):
        (tmp_path / folder).mkdir(parents=True)
    for option in options(group):
        cfg = composed(f"{group}={option}")
        if cfg["dataset"]["name"] == "imagefolder":  # the one data set without a default root
            cfg = composed(f"{group}={option}", f"dataset.root={tmp_path}")
        if group == "model" and option == "alexnet":  # built for 227x227 images, not CIFAR-10's 32x32
            cfg = composed("model=alexnet", "dataset=imagefolder", f"dataset.root={tmp_path}",
                           "dataset.image_size=227")
        if group in ("model", "dataset", "optim", "logger"):
            assert cfg[group]["name"] == option
        if group == "norm":  # lrn_alexnet and lrn_caffe are LRN with published settings
            assert option.startswith(cfg["norm"]["name"])
        check_config(cfg)


def test_issue_groups_have_the_required_options():
    assert {"none", "lrn", "bn", "ln", "in", "gn"} <= set(options("norm"))
    assert {"cifar10", "mnist", "fashion_mnist", "cifar100", "imagefolder", "digits"} <= set(options("dataset"))
    assert {"sgd", "adam"} <= set(options("optim")) and {"wandb", "none"} <= set(options("logger"))


def test_lrn_defaults_are_the_articles():
    norm = composed("norm=lrn")["norm"]
    assert norm == {"name": "lrn", "size": 2, "alpha": 1e-4, "beta": 0.75, "k": 1.0, "convention": "pytorch",
                    "region": "across"}


def test_digits_brings_its_batch_size_but_the_command_line_wins():
    assert composed("dataset=digits")["trainer"]["batch_size"] == 16
    assert composed("dataset=digits", "trainer.batch_size=8")["trainer"]["batch_size"] == 8


def test_wandb_is_offline_unless_configured(monkeypatch):
    from omegaconf import OmegaConf

    monkeypatch.delenv("WANDB_MODE", raising=False)
    with initialize_config_module(config_module="lrn_ablate.conf", version_base="1.3"):
        assert OmegaConf.to_container(compose("config").logger, resolve=True)["mode"] == "offline"


DECLARATIONS = {"model": "lrn_ablate.models:MODELS", "norm": "lrn_ablate.norms:NORMS",
                "dataset": "lrn_ablate.data:DATASETS", "optim": "lrn_ablate.optim:OPTIMIZERS",
                "trainer": "lrn_ablate.training.trainer:TRAINER", "logger": "lrn_ablate.training.logger:LOGGERS"}


@pytest.mark.parametrize("group", DECLARATIONS)
def test_every_yaml_holds_exactly_the_settings_its_option_declares(group):
    import importlib

    module, name = DECLARATIONS[group].split(":")
    declared = getattr(importlib.import_module(module), name)
    for option in options(group):
        node = composed(f"{group}={option}")[group]
        settings = declared.chosen(node).settings
        required = {key for key, setting in settings.items() if not isinstance(setting, Default)}
        assert required <= set(node) - {"name"} <= set(settings), (group, option)


def test_checks_never_import_torch():
    import subprocess
    import sys

    code = "import sys, lrn_ablate.launch.checks; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
