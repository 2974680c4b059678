"""Every option of every config group composes, and the composed values are what the YAML says."""

from __future__ import annotations

from importlib import resources

import pytest
from hydra import compose, initialize_config_module

from lrn_ablate.conf_checks import check_config
from lrn_ablate.models import norm_channel_counts

GROUPS = ("model", "norm", "dataset", "optim", "trainer", "logger", "experiment")


def options(group: str) -> list[str]:
    folder = resources.files("lrn_ablate.conf") / group
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def composed(*overrides: str) -> dict:
    from omegaconf import OmegaConf

    with initialize_config_module(config_module="lrn_ablate.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=False)


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
        if group in ("model", "dataset", "optim", "logger"):
            assert cfg[group]["name"] == option
        if group == "norm":  # lrn_alexnet and lrn_caffe are LRN with published settings
            assert option.startswith(cfg["norm"]["name"])
        check_config(cfg, norm_channel_counts(cfg["model"]))


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
