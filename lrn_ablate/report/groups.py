"""Which runs are repeats of one setting (a group), and how that group is named.

Runs whose configs agree on every key but the bookkeeping ones (seed, paths, logging, resume) form one
group. A group's label names only the keys that vary: `norm=lrn, norm.alpha=0.001`. A choice such as
`norm` (a config section with a `name`) is written `norm=<norm.name>`, and its other keys are named only
where they vary between runs of the same choice, so norm.alpha never labels a `norm=none` group.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from lrn_ablate.errors import UserError
from lrn_ablate.report.runs import RunRecord
from lrn_ablate.rundir import BOOKKEEPING, format_value

# experiment_name is not bookkeeping: runs that the user filed under different names stay apart (and are
# labelled so) unless `--ignore experiment_name`.
MISSING_TEXT = "—"
NO_CONFIG = "no readable config"


class _Missing:
    """A key that a run's config does not have (norm.alpha of a norm=none run)."""

    def __repr__(self) -> str:
        return MISSING_TEXT


MISSING: Any = _Missing()


@dataclass(frozen=True)
class Grouping:
    labels: dict[str, str]  # run -> group label
    order: list[str]  # group labels in display order (numeric values sorted as numbers)
    label_keys: list[str]  # config keys named in at least one label, in config order


def is_ignored(key: str, ignored: Iterable[str]) -> bool:
    return any(key == prefix or key.startswith(prefix + ".") for prefix in ignored)


def _choice(key: str, keys: set[str]) -> str | None:
    """For norm.alpha, the choice key norm.name when the norm section is a choice; else None."""
    section = key.split(".", 1)[0]
    choice = f"{section}.name"
    return choice if choice in keys and key != choice else None


def display_key(key: str) -> str:
    """norm.name is written norm: the choice itself."""
    return key.removesuffix(".name") if key.endswith(".name") and key.count(".") == 1 else key


def _display(key: str, value: Any) -> str:
    return f"{display_key(key)}={MISSING_TEXT if value is MISSING else format_value(value)}"


def _sort_value(value: Any) -> tuple[int, Any]:
    if value is MISSING:
        return (2, "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value)
    return (1, format_value(value))


# Runs without a readable config get a group of their own (listed last) but must not make every key look
# varied, so they stay out of the comparison that picks the label keys.
_UNKNOWN: tuple[Any, ...] = (NO_CONFIG,)


def _setting(record: RunRecord, keys: Sequence[str]) -> tuple[Any, ...]:
    return tuple(record.config.get(key, MISSING) for key in keys) if record.config else _UNKNOWN


def group_runs(records: Sequence[RunRecord], ignored: Sequence[str] = BOOKKEEPING) -> Grouping:
    keys = list(dict.fromkeys(key for record in records for key in record.config
                              if not is_ignored(key, ignored)))
    key_set = set(keys)
    settings = {record.run: _setting(record, keys) for record in records}
    known = [setting for setting in dict.fromkeys(settings.values()) if setting is not _UNKNOWN]

    def varies(index: int, setting: tuple[Any, ...]) -> bool:
        choice = _choice(keys[index], key_set)
        scope = known
        if choice is not None:  # only runs of the same choice decide whether a choice's sub-key varies
            at = keys.index(choice)
            scope = [other for other in known if other[at] == setting[at]]
        return len({other[index] for other in scope}) > 1

    named = {setting: [i for i in range(len(keys)) if varies(i, setting)] for setting in known}
    label_of = {setting: ", ".join(_display(keys[i], setting[i]) for i in indices) or "all runs"
                for setting, indices in named.items()}
    label_of[_UNKNOWN] = NO_CONFIG
    used = sorted({i for indices in named.values() for i in indices})
    ordered = sorted(known, key=lambda setting: [_sort_value(setting[i]) for i in used])
    if _UNKNOWN in settings.values():
        ordered.append(_UNKNOWN)
    return Grouping(
        labels={run: label_of[setting] for run, setting in settings.items()},
        order=[label_of[setting] for setting in ordered],
        label_keys=[keys[i] for i in used],
    )


def parse_baseline(text: str) -> dict[str, str]:
    """`norm=none` or `norm=lrn,norm.alpha=1e-3` -> {"norm.name": ...} style criteria (keys as written)."""
    criteria = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--baseline takes KEY=VALUE[,KEY=VALUE...] (e.g. norm=none), got '{text}'.")
        criteria[key.strip()] = value.strip()
    return criteria


def _matches(config: dict[str, Any], key: str, wanted: str) -> bool:
    # `norm=none` means the norm choice: norm.name when the config has it.
    value = config.get(f"{key}.name", config.get(key, MISSING))
    if value is MISSING:
        return False
    if format_value(value) == wanted:
        return True
    try:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and float(wanted) == value
    except ValueError:
        return False


def find_baseline(records: Sequence[RunRecord], grouping: Grouping, text: str) -> tuple[str | None, str]:
    """The one group whose runs all match the baseline criteria, and a sentence saying what was found."""
    criteria = parse_baseline(text)
    groups: dict[str, list[RunRecord]] = {}
    for record in records:
        groups.setdefault(grouping.labels[record.run], []).append(record)
    matching = [label for label in grouping.order
                if all(_matches(r.config, k, v) for r in groups[label] for k, v in criteria.items())]
    if len(matching) == 1:
        return matching[0], f"Baseline: `{matching[0]}` (matched `--baseline {text}`)."
    if not matching:
        return None, f"No group matches `--baseline {text}`, so no group is compared against a baseline."
    listed = "; ".join(f"`{label}`" for label in matching)
    return None, (f"`--baseline {text}` matches {len(matching)} groups ({listed}); name more keys to pick "
                  "one. No group is compared against a baseline.")
