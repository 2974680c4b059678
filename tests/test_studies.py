"""The studies committed under results/: whole runs, reports that agree with the runs' own metrics, and
runs that repeat their first epochs when re-run from their own overrides."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from conftest import CIFAR10_JPG, read_metrics, run_cli

RESULTS = Path(__file__).resolve().parents[1] / "results"
RECORDS = ("config.yaml", ".hydra/overrides.yaml", "metrics.csv", "summary.json")
RUNS = sorted(path.parent for path in RESULTS.glob("*/runs/**/summary.json"))
STUDIES = sorted(path.parent for path in RESULTS.glob("*/summary.csv"))


def metrics(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("run", RUNS, ids=[str(r.relative_to(RESULTS)) for r in RUNS])
def test_a_committed_run_is_whole_and_its_summary_agrees_with_its_metrics(run):
    assert all((run / name).is_file() for name in RECORDS), run
    assert not (run / "checkpoint.pt").exists() and not (run / "wandb").exists()
    summary, rows = json.loads((run / "summary.json").read_text()), metrics(run)
    assert summary["status"] == "completed" and summary["epochs_completed"] == len(rows) == summary["epochs_planned"]
    accuracies = [float(row["test_acc"]) for row in rows]
    assert summary["final_test_acc"] == accuracies[-1] and summary["best_test_acc"] == max(accuracies)


@pytest.mark.parametrize("study", STUDIES, ids=[s.name for s in STUDIES])
def test_a_studys_group_means_are_those_of_its_committed_metrics(study):
    with open(study / "runs.csv") as handle:
        runs = [row for row in csv.DictReader(handle) if row["status"] == "completed"]
    finals: dict[str, list[float]] = {}
    for row in runs:
        folder = next(p for p in (study / row["run"], study.parent / row["run"]) if p.is_dir())
        finals.setdefault(row["group"], []).append(float(metrics(folder)[-1]["test_acc"]))
    with open(study / "summary.csv") as handle:
        summary = {row["group"]: row for row in csv.DictReader(handle)}
    for group, values in finals.items():
        assert float(summary[group]["final_test_acc_mean"]) == pytest.approx(sum(values) / len(values)), group
        assert int(summary[group]["n_seeds"]) == len(values)


ARTICLE = [RESULTS / "article_lenet" / "runs" / norm / "seed0" for norm in ("none", "lrn")]


@pytest.mark.slow
@pytest.mark.skipif(not CIFAR10_JPG.is_dir(), reason="the shared CIFAR-10 JPEG tree is not on this machine")
@pytest.mark.parametrize("run", [r for r in ARTICLE if r.is_dir()], ids=lambda r: r.parent.name)
def test_a_committed_article_run_repeats_its_first_two_epochs(workdir, run):
    """Its own overrides (data from this machine's copy), two epochs: within a point of what it recorded."""
    overrides = [o for o in yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text())
                 if not o.startswith("dataset.root=")]
    result = run_cli(["train", *overrides, f"dataset.root={CIFAR10_JPG}", "trainer.epochs=2", "logger=none",
                      f"hydra.run.dir={workdir / 'again'}"], workdir, timeout=600)
    assert result.returncode == 0, result.stderr
    again, recorded = read_metrics(workdir / "again"), metrics(run)[:2]
    for new, old in zip(again, recorded, strict=True):
        assert abs(float(new["test_acc"]) - float(old["test_acc"])) < 0.01, (new, old)
