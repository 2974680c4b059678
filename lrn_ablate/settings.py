"""The declaration language of the config groups: each option of a group declares its settings once, and
the same declaration checks a composed config (before anything is written) and builds the object.

    NORMS = Group("norm")

    @NORMS.option("bn", eps=Number(above=0), momentum=Number(at_least=0, at_most=1))
    def batch_norm(eps: float, momentum: float, *, channels: int) -> nn.Module: ...

`NORMS.check(node, facts)` checks every declared setting of the chosen option and then the option's
`rule` (what must divide what, facts from an earlier group); `NORMS.build(node, channels=6)` calls the
builder with exactly the declared settings it names. Nothing here imports torch, so a bad setting is
refused in a fraction of a second; builders import what they need when they run.
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lrn_ablate.errors import UserError


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Setting(ABC):
    """One setting's accepted values. `check` raises UserError naming the key, the value and what fits."""

    @abstractmethod
    def accepts(self, value: Any) -> bool: ...

    @abstractmethod
    def describe(self) -> str: ...

    def check(self, key: str, value: Any) -> None:
        if not self.accepts(value):
            raise UserError(f"{key} must be {self.describe()}, got {value!r}.")


@dataclass(frozen=True)
class Int(Setting):
    at_least: int = 1

    def accepts(self, value: Any) -> bool:
        return _is_int(value) and value >= self.at_least

    def describe(self) -> str:
        return "a positive integer" if self.at_least == 1 else f"an integer >= {self.at_least}"


@dataclass(frozen=True)
class Number(Setting):
    """A finite number within the given bounds (`above` excludes its bound, `at_least` includes it)."""

    above: float | None = None
    at_least: float | None = None
    at_most: float | None = None
    below: float | None = None

    def accepts(self, value: Any) -> bool:
        if not _is_number(value) or not math.isfinite(value):
            return False
        return ((self.above is None or value > self.above) and (self.at_least is None or value >= self.at_least)
                and (self.at_most is None or value <= self.at_most) and (self.below is None or value < self.below))

    def describe(self) -> str:
        bounds = [f"greater than {self.above:g}" if self.above is not None else "",
                  f">= {self.at_least:g}" if self.at_least is not None else "",
                  f"<= {self.at_most:g}" if self.at_most is not None else "",
                  f"below {self.below:g}" if self.below is not None else ""]
        return " ".join(["a number", " and ".join(b for b in bounds if b)]).strip()

    def check(self, key: str, value: Any) -> None:
        if _is_number(value) and not math.isfinite(value):
            raise UserError(f"{key} must be a finite number, got {value!r}.")
        super().check(key, value)


@dataclass(frozen=True)
class Bool(Setting):
    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool)

    def describe(self) -> str:
        return "true or false"


@dataclass(frozen=True)
class Text(Setting):
    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and value != ""

    def describe(self) -> str:
        return "a non-empty string"


@dataclass(frozen=True)
class Choice(Setting):
    options: tuple[Any, ...]

    def accepts(self, value: Any) -> bool:
        return value in self.options

    def describe(self) -> str:
        return f"one of {', '.join(map(str, self.options))}"

    def check(self, key: str, value: Any) -> None:
        if not self.accepts(value):
            raise UserError(f"{key} must be {self.describe()}; got {value!r}.")


@dataclass(frozen=True)
class ListOf(Setting):
    """A list of `length` items (any length when None), each accepted by `item`."""

    item: Setting
    length: int | None = None

    def accepts(self, value: Any) -> bool:
        return (isinstance(value, Sequence) and not isinstance(value, str)
                and (self.length is None or len(value) == self.length) and all(map(self.item.accepts, value)))

    def describe(self) -> str:
        count = f"{self.length} " if self.length is not None else ""
        return f"a list of {count}values, each {self.item.describe()}"

    def check(self, key: str, value: Any) -> None:
        if self.accepts(value):
            return
        shown = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else value
        raise UserError(f"{key} must be {self.describe()}, got {shown!r}.")


@dataclass(frozen=True)
class OneOf(Setting):
    """Any value that one of `kinds` accepts (e.g. `auto` or a positive integer)."""

    kinds: tuple[Setting, ...]

    def accepts(self, value: Any) -> bool:
        return any(kind.accepts(value) for kind in self.kinds)

    def describe(self) -> str:
        return " or ".join(kind.describe() for kind in self.kinds)


@dataclass(frozen=True)
class Exactly(Setting):
    value: Any

    def accepts(self, value: Any) -> bool:
        return value == self.value and type(value) is type(self.value)

    def describe(self) -> str:
        return "null" if self.value is None else str(self.value)


@dataclass(frozen=True)
class MapOf(Setting):
    """A mapping from names to values that `item` accepts, e.g. {conv1: 0.0, conv2: 0.0}."""

    item: Setting

    def accepts(self, value: Any) -> bool:
        return isinstance(value, Mapping) and all(isinstance(k, str) and self.item.accepts(v)
                                                  for k, v in value.items())

    def describe(self) -> str:
        return f"a mapping of names to values, each {self.item.describe()}"


@dataclass(frozen=True)
class Default(Setting):
    """A setting a config may leave out, which then takes `value`. Options gain settings this way without
    changing the config of runs that do not use them, so runs already made stay comparable."""

    kind: Setting
    value: Any

    def accepts(self, value: Any) -> bool:
        return self.kind.accepts(value)

    def describe(self) -> str:
        return self.kind.describe()

    def check(self, key: str, value: Any) -> None:
        self.kind.check(key, value)


NULL = Exactly(None)


def nullable(kind: Setting) -> Setting:
    return OneOf((kind, NULL))


# A rule: (the option's checked settings, facts from the group checked before, the prefix of the names in
# messages) -> facts for the next group. It checks what no single setting can: what must divide what.
Rule = Callable[[Mapping[str, Any], Any, str], Any]


@dataclass(frozen=True)
class Option:
    group: str
    name: str
    settings: Mapping[str, Setting]
    build: Callable[..., Any] | None = None
    rule: Rule | None = None


@dataclass
class Group:
    """One config group (conf/<name>/): its options, each with its settings, rule and builder."""

    name: str
    options: dict[str, Option] = field(default_factory=dict)

    def option(self, name: str, *, rule: Rule | None = None, **settings: Setting) -> Callable:
        """Decorator: the function builds option `name` from its declared settings."""
        def register(build: Callable[..., Any]) -> Callable[..., Any]:
            self.declare(name, rule=rule, build=build, **settings)
            return build
        return register

    def declare(self, name: str, *, rule: Rule | None = None, build: Callable[..., Any] | None = None,
                **settings: Setting) -> None:
        if build is not None:
            unknown = [p for p in inspect.signature(build).parameters.values()
                       if p.kind is p.POSITIONAL_OR_KEYWORD and p.name not in settings]
            if unknown:  # a builder can only read declared (so checked) settings
                raise TypeError(f"{self.name}={name}: builder parameter {unknown[0].name!r} is not declared")
        self.options[name] = Option(self.name, name, settings, build, rule)

    def chosen(self, node: Mapping[str, Any]) -> Option:
        """The option a config node selects: its `name`, or the group's only option."""
        if "name" not in node and len(self.options) == 1:
            return next(iter(self.options.values()))
        name = node.get("name")
        if name not in self.options:
            raise UserError(f"{self.name}.name must be one of {', '.join(self.options)}; got {name!r}.")
        return self.options[name]

    def check(self, node: Mapping[str, Any], facts: Any = None, prefix: str | None = None) -> Any:
        """Check every declared setting of the chosen option, then its rule; returns the rule's facts.

        Messages name settings as `<group>.<key>`, or `<prefix><key>` (a class checking its own arguments
        names them as its parameters with prefix "")."""
        option = self.chosen(node)
        prefix = f"{self.name}." if prefix is None else prefix
        for key, setting in option.settings.items():
            if key not in node and not isinstance(setting, Default):
                raise UserError(f"{prefix}{key} is missing; {self.name}={option.name} needs it "
                                f"({setting.describe()}).")
            if key in node:
                setting.check(f"{prefix}{key}", node[key])
        return option.rule(self.settings(node), facts, prefix) if option.rule else None

    def settings(self, node: Mapping[str, Any]) -> dict[str, Any]:
        """The chosen option's settings from `node`, those left out at their defaults (call after check)."""
        option = self.chosen(node)
        values = {"name": option.name}
        for key, setting in option.settings.items():
            if key in node:
                values[key] = node[key]
            elif isinstance(setting, Default):
                values[key] = setting.value
        return values

    def build(self, node: Mapping[str, Any], **context: Any) -> Any:
        """Build the chosen option from its declared settings (and the context its builder takes)."""
        option = self.chosen(node)
        if option.build is None:
            raise TypeError(f"{self.name}={option.name} has no builder")
        parameters = inspect.signature(option.build).parameters
        settings = {key: value for key, value in self.settings(node).items()
                    if key in option.settings and key in parameters}
        return option.build(**settings, **context)
