"""`lrn-ablate report PATH...`: find runs, group them, and write the figures, tables and report.md."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lrn_ablate.errors import UserError
from lrn_ablate.report.collect import collect_local, common_root
from lrn_ablate.report.groups import find_baseline, group_runs
from lrn_ablate.report.markdown import (
    ReportInputs,
    counted,
    report_markdown,
    stability_markdown,
    summary_markdown,
)
from lrn_ablate.report.plots import CURVES, group_colours, plot_cost, plot_curve, plot_stability
from lrn_ablate.report.summarize import METRICS, drawn_groups, run_stats, summarize
from lrn_ablate.report.sweeps import plot_sweeps
from lrn_ablate.report.table import build_tables
from lrn_ablate.report.wandb_source import collect_wandb
from lrn_ablate.rundir import BOOKKEEPING, STATUSES

PROG = "lrn-ablate report"


def _at_least_two(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 2:
        raise argparse.ArgumentTypeError(f"takes a whole number of at least 2, got '{text}'")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Compare logged runs: curves per group (mean over seeds), summary tables with Welch "
                    "t-tests against a baseline, sweep heatmaps and the cost per epoch, in one report.md.")
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                        help="folders searched (recursively) for run directories: folders with summary.json")
    parser.add_argument("--out", type=Path,
                        help="output folder (default: report/ in the folder the PATHs have in common, so "
                             "PATH/report for one PATH; ./report with --wandb)")
    parser.add_argument("--metric", choices=METRICS, default="test_acc",
                        help="metric of the summary, the baseline comparison and the sweep plots "
                             "(default: %(default)s)")
    parser.add_argument("--baseline", default="norm=none",
                        help="KEY=VALUE[,KEY=VALUE...] picking the group the others are compared with; "
                             "norm=X means norm.name=X (default: %(default)s)")
    parser.add_argument("--format", choices=("png", "svg", "pdf"), default="png", help="figure file format")
    parser.add_argument("--band", choices=("std", "minmax"), default="std",
                        help="band around the mean curves: ±1 std or min–max over seeds "
                             "(default: %(default)s)")
    parser.add_argument("--runs", action="store_true",
                        help="also draw every completed run as a thin line under its group's mean and band")
    parser.add_argument("--max-groups", type=_at_least_two, default=8, metavar="N",
                        help="with more groups than N, the curve, stability and cost figures draw only the "
                             "baseline and the best and worst groups, N in all; tables and heatmaps keep "
                             "every group (default: %(default)s)")
    parser.add_argument("--ignore", action="append", default=[], metavar="KEY",
                        help="treat this config key or section as bookkeeping, like seed (repeatable; e.g. "
                             "--ignore experiment_name pools runs filed under different names)")
    parser.add_argument("--wandb", metavar="ENTITY/PROJECT",
                        help="read the runs of this W&B project (public API, needs network) instead of PATHs")
    return parser


def make_report(args: argparse.Namespace) -> Path:
    """Write every output into the output folder; returns the path of report.md."""
    notes: list[str] = []
    if args.wandb:
        records = collect_wandb(args.wandb, notes)
        source, out = f"W&B {args.wandb}", args.out or Path("report")
    else:
        records = collect_local(args.paths, notes)
        source, out = ", ".join(map(str, args.paths)), args.out or common_root(args.paths) / "report"
    grouping = group_runs(records, (*BOOKKEEPING, *args.ignore))
    tables = build_tables(records, grouping)
    baseline, baseline_sentence = find_baseline(records, grouping, args.baseline)
    for note in notes:
        print(f"{PROG}: warning: {note}", file=sys.stderr)
    counts = tables.runs["status"].value_counts()
    print(f"{PROG}: found {counted(len(records), 'run')} in {counted(len(grouping.order), 'group')} ("
          + ", ".join(f"{counts[s]} {s}" for s in STATUSES if s in counts) + ")", file=sys.stderr)

    per_run = run_stats(tables, args.metric)
    summary = summarize(tables, per_run, args.metric, baseline)
    drawn = drawn_groups(summary, args.metric, baseline, args.max_groups)
    # Groups left out of the per-group figures still appear as reference lines in sweep plots: grey.
    colours = {group: "grey" for group in grouping.order} | group_colours(drawn.groups)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create the output folder '{out}': {error.strerror}.") from None
    summary.to_csv(out / "summary.csv", index=False)
    stats_only = per_run.drop(columns=tables.runs.columns.drop("run"))
    tables.runs.merge(stats_only, on="run", how="left").to_csv(out / "runs.csv", index=False)
    (out / "summary.md").write_text(summary_markdown(summary, args.metric) + "\n"
                                    + stability_markdown(summary, per_run))
    figures = {
        "Curves": [plot_curve(tables, column, args.band, colours, out / f"curves_{column}.{args.format}",
                              drawn, args.runs) for column in CURVES],
        "Stability": [plot_stability(per_run, drawn, colours, out / f"stability.{args.format}")],
        "Sweep": plot_sweeps(per_run, grouping.label_keys, args.metric, colours, out, args.format),
        "Cost": [plot_cost(summary, colours, out / f"cost.{args.format}", drawn)],
    }
    report = out / "report.md"
    report.write_text(report_markdown(ReportInputs(
        source=source, tables=tables, summary=summary, per_run=per_run, metric=args.metric, baseline=baseline,
        baseline_sentence=baseline_sentence, band=args.band, show_runs=args.runs, drawn=drawn,
        figures={title: paths for title, paths in figures.items() if paths}, notes=notes)))
    return report


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if bool(args.paths) == bool(args.wandb):
        parser.error("give the run folders (PATH...) or --wandb ENTITY/PROJECT, one of the two")
    try:
        report = make_report(args)
    except UserError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    print(f"{PROG}: wrote {report.parent}", file=sys.stderr)
    print(report)
    return 0
