"""Compose every config a `train` command will run and check it, before Hydra launches anything.

Hydra reports a bad override with a screenful (search path, stack hint); this turns the common
mistakes into one sentence, and catches bad values in any job of a sweep before the first one trains.
"""

from __future__ import annotations

from collections.abc import Iterator

from hydra import compose, initialize_config_module
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import MissingConfigException, OverrideParseException
from omegaconf import OmegaConf

from lrn_ablate.errors import UserError
from lrn_ablate.launch.checks import check_config


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), text).rstrip(".")


def _sweep_values(override: Override) -> list[str]:
    """The values of a sweep to check: every value of a choice or range, the two ends of an interval.

    An interval (Optuna's search space) has no values to enumerate, but a search draws from between its
    ends, so a value that cannot run inside it shows at an end (a negative alpha) or at both (a size,
    which an interval can only give as a float).
    """
    key = override.get_key_element()
    if not override.is_interval_sweep():
        return [f"{key}={value}" for value in override.sweep_string_iterator()]
    interval = override.value()
    if not interval.start < interval.end:
        raise UserError(f"{key}=interval({interval.start:g}, {interval.end:g}) is empty: its start must be "
                        "below its end.")
    if "log" in interval.tags and interval.start <= 0:
        raise UserError(f"{key}: a log interval must start above 0; got {interval.start:g}.")
    return [f"{key}={interval.start!r}", f"{key}={interval.end!r}"]


def _candidates(overrides: list[str]) -> Iterator[list[str]]:
    """The first value of every sweep, then each other value of each sweep with the rest at their first.

    That covers every value given on the command line with len(values) compositions instead of the
    whole cartesian product.
    """
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except OverrideParseException as err:
        raise UserError(f"cannot parse override {err.override!r}: {_first_line(err.message)}.") from None
    choices = []
    for override in parsed:
        key = override.get_key_element()
        if override.is_sweep_override():
            choices.append(_sweep_values(override))
        else:
            choices.append([f"{key}={override.get_value_element_as_str()}"])
    first = [values[0] for values in choices]
    yield first
    for i, values in enumerate(choices):
        for value in values[1:]:
            yield first[:i] + [value] + first[i + 1:]


def _compose(overrides: list[str]) -> dict:
    try:
        cfg = compose(config_name="config", overrides=overrides)
    except MissingConfigException as err:
        group = (err.missing_cfg_file or "").split("/")[0]
        options = ", ".join(err.options or [])
        if group and options:
            chosen = next((o for o in overrides if o.lstrip("+~").split("=")[0] == group), group)
            raise UserError(f"{chosen} is not an option of {group}; choose one of: {options}.") from None
        raise UserError(_first_line(str(err)) + ".") from None
    except Exception as err:  # noqa: BLE001 - Hydra and OmegaConf raise many kinds; each is the user's input
        if "not in struct" in str(err.__cause__):
            key = str(err).split("'")[1]
            raise UserError(f"{key} is not a setting; `lrn-ablate train --help` lists them "
                            f"(to add a new key on purpose, write +{key}=...).") from None
        cause = f" ({_first_line(str(err.__cause__))})" if err.__cause__ else ""
        raise UserError(f"{_first_line(str(err))}{cause}.") from None
    return OmegaConf.to_container(cfg, resolve=True)


def asks_for_search(overrides: list[str]) -> bool:
    """Whether the command line picks one of Optuna's sweepers."""
    return any(o.startswith("hydra/sweeper=optuna") for o in overrides)


def _check_sweeper(overrides: list[str]) -> None:
    # Optuna's own defaults minimise and stop the search at the first failed trial; runs return a test
    # accuracy and may diverge, so plain hydra/sweeper=optuna without a direction is nearly always a mistake.
    if "hydra/sweeper=optuna" in overrides and not any(o.startswith("hydra.sweeper.direction=") for o in overrides):
        raise UserError("hydra/sweeper=optuna minimises, but a run returns its test accuracy; use "
                        "hydra/sweeper=optuna_accuracy, which maximises it (or set hydra.sweeper.direction).")
    interval = next((o for o in overrides if "interval(" in o.split("=", 1)[-1]), None)
    if interval and not asks_for_search(overrides):
        raise UserError(f"{interval} is a range to search, which only a search sweeper draws from; add "
                        "hydra/sweeper=optuna_accuracy, or give the values as a list (a,b,c).")


def check_overrides(overrides: list[str]) -> None:
    """Raise UserError for the first override or composed value that cannot run."""
    _check_sweeper(overrides)
    # Hydra's own settings do not change the config, except the search path, which adds config groups.
    own = [o for o in overrides if not o.lstrip("+~").startswith("hydra") or o.startswith("hydra.searchpath")]
    with initialize_config_module(config_module="lrn_ablate.conf", version_base="1.3"):
        for candidate in _candidates(own):
            config = _compose(candidate)
            check_config(config)
