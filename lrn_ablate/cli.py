"""`lrn-ablate`: dispatch to a subcommand. Heavy imports (torch) happen inside the commands only."""

from __future__ import annotations

import sys
from pathlib import Path

USAGE = """usage: lrn-ablate <command> [args]

Measure what local response normalization does against BatchNorm and its relatives.

commands:
  train    train one config or, with -m, a sweep (Hydra overrides; `lrn-ablate train --help`)
  report   turn run directories into comparison plots and tables (`lrn-ablate report --help`)

examples:
  lrn-ablate train norm=lrn
  lrn-ablate train -m norm=none,lrn seed=0,1,2
  lrn-ablate report multirun/
"""

# Hydra flags that only print something: no run, so nothing to check first.
HYDRA_INFO_FLAGS = {"-h", "--help", "--hydra-help", "-c", "--cfg", "-i", "--info", "-sc", "--shell-completion",
                    "--version", "-p", "--package", "-cp", "--config-path", "-cn", "--config-name"}

# Of those, the ones Hydra refuses beside -m (each is a mode of its own, as -m is).
HYDRA_MODE_FLAGS = {"-c", "--cfg", "-i", "--info", "-sc", "--shell-completion"}


def fail(command: str, message: str, code: int = 2) -> int:
    print(f"lrn-ablate {command}: error: {message}", file=sys.stderr)
    return code


def _resume_arguments(args: list[str]) -> list[str]:
    """`resume=DIR` continues DIR with its own saved config, written to the same directory."""
    target = next(a for a in args if a.startswith("resume="))
    run_dir = Path(target.split("=", 1)[1]).expanduser().resolve()
    from lrn_ablate.errors import UserError

    if not (run_dir / "config.yaml").is_file():
        raise UserError(f"resume={run_dir} is not a run directory (it has no config.yaml).")
    others = [a for a in args if a != target and not a.startswith("hydra.")]
    if others:
        raise UserError(f"resume continues a run with its saved config, so other overrides ({' '.join(others)}) "
                        "cannot be combined with it.")
    return [f"resume={run_dir}", f"hydra.run.dir={run_dir}", "hydra.output_subdir=null"]


def train_command(args: list[str]) -> int:
    from lrn_ablate.errors import UserError

    mode = next((a.split("=", 1)[0] for a in args if a.split("=", 1)[0] in HYDRA_MODE_FLAGS), None)
    if mode and {"-m", "--multirun"}.intersection(args):
        return fail("train", f"{mode} runs nothing, so it cannot be combined with -m; drop -m to see what one job "
                             "would use.")
    if not HYDRA_INFO_FLAGS.intersection(args):
        from lrn_ablate.launch.torchrun import check_torchrun_arguments, join_ranks, under_torchrun

        try:
            if under_torchrun():
                check_torchrun_arguments(args)
            if any(a.startswith("resume=") for a in args):
                args = _resume_arguments(args)
            else:
                from lrn_ablate.launch.precheck import check_overrides

                check_overrides([a for a in args if not a.startswith("-")])
            if under_torchrun():
                args = join_ranks(args)
        except UserError as err:
            return fail("train", str(err))
    from lrn_ablate.launch.hydra_app import launch

    return launch(args)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0 if argv else 2
    command, args = argv[0], argv[1:]
    if command == "train":
        return train_command(args)
    if command == "report":
        from lrn_ablate.report.cli import main as report_main

        return report_main(args)
    return fail(command, f"unknown command {command!r}; the commands are train and report "
                         "(see `lrn-ablate --help`).")
