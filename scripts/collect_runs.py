"""Copy the records of a study's finished runs into the repository, without checkpoints or W&B files.

    python scripts/collect_runs.py SRC DST

For every run directory under SRC (a folder with summary.json) whose status is completed, diverged or
failed, copies config.yaml, .hydra/overrides.yaml, metrics.csv and summary.json to the same relative
path under DST. Runs still going (or interrupted) are left out, so the command can be repeated while a
study computes: each time it adds the runs that finished since.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

RECORDS = ("config.yaml", ".hydra/overrides.yaml", "metrics.csv", "summary.json")
FINISHED = ("completed", "diverged", "failed")


def collect(source: Path, target: Path) -> list[Path]:
    copied = []
    for summary in sorted(source.rglob("summary.json")):
        run = summary.parent
        if "wandb" in run.parts or json.loads(summary.read_text()).get("status") not in FINISHED:
            continue
        destination = target / run.relative_to(source)
        for name in RECORDS:
            if (run / name).is_file():
                (destination / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(run / name, destination / name)
        copied.append(destination)
    return copied


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    args = parser.parse_args()
    copied = collect(args.source, args.target)
    print(f"{len(copied)} finished runs copied to {args.target}")


if __name__ == "__main__":
    main()
