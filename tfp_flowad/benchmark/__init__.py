"""The benchmark: run methods on a data set's tasks, record JSON lines, render tables and plots.

Modules: ``methods`` (what each method name fits), ``tasks`` (data sets, tasks and suites, run
sizes), ``records`` (the ``results.jsonl`` file), ``runner`` (``run``), ``report`` (a data set's
tables, plots), ``standings`` (the default detector against the others, across data sets).

Examples:
    >>> from tfp_flowad.benchmark import run, render_table, plot  # doctest: +SKIP
    >>> records = run("38_thyroid", "two-class,normalising-flow", "0-4", "out")  # doctest: +SKIP
    >>> print(render_table(records, "38_thyroid"))  # doctest: +SKIP
    >>> plot(records, "38_thyroid", "out/auc.png")  # doctest: +SKIP

Command line: ``tfp-flowad benchmark --dataset kdd99 --methods all --seeds 0-4 --out DIR``, or
``--suite dev`` for an ADBench set's development suite (``add_benchmark_parser`` adds the
sub-command to an ``argparse`` parser).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
from collections.abc import Mapping
from pathlib import Path

from tfp_flowad.benchmark.methods import (
    BASELINE_METHODS,
    METHODS,
    NF_METHODS,
    NFMethod,
    parse_methods,
)
from tfp_flowad.benchmark.records import RESULTS_FILE, load_results, write_whole
from tfp_flowad.benchmark.report import METRIC_TITLES, plot, render_report, render_table
from tfp_flowad.benchmark.runner import run
from tfp_flowad.benchmark.standings import render_standings, render_suite_standings
from tfp_flowad.benchmark.tasks import (
    SUITES,
    Size,
    benchmark_tasks,
    dataset_name,
    parse_seeds,
    parse_tasks,
    task_order_key,
)

__all__ = [
    "BASELINE_METHODS",
    "METHODS",
    "METRIC_TITLES",
    "NF_METHODS",
    "NFMethod",
    "RESULTS_FILE",
    "SUITES",
    "Size",
    "add_benchmark_arguments",
    "add_benchmark_parser",
    "benchmark_tasks",
    "dataset_name",
    "load_results",
    "parse_methods",
    "parse_seeds",
    "parse_tasks",
    "plot",
    "render_report",
    "render_standings",
    "render_suite_standings",
    "render_table",
    "run",
    "run_command",
    "task_order_key",
]

#: file names written next to ``results.jsonl`` by the command.
TABLE_FILE, PLOT_FILE = "table.md", "auc.png"
#: the heading of the development suite's standings in ``table.md``.
STANDINGS_HEADING = "## The default detector against each baseline (development suite)"


def run_command(
    args: argparse.Namespace, extra_methods: Mapping[str, NFMethod] | None = None
) -> None:
    """The ``benchmark`` sub-command: ``run``, then ``table.md`` and ``auc.png`` in ``--out``.

    ``args`` holds the options of ``add_benchmark_arguments``; ``extra_methods`` goes to
    ``run``. The table and the plot are written even when some fits failed (from the records
    that exist); the failure is raised afterwards. With ``--suite dev`` the table ends with the
    default detector's standings against each baseline (``render_suite_standings``), which
    are also printed last.
    """
    size = Size(max_train_rows=args.max_train_rows, epochs_scale=args.epochs_scale)
    failure = None
    try:
        records = run(
            args.dataset,
            args.methods,
            args.seeds,
            args.out,
            tasks=args.tasks,
            size=size,
            progress=not args.no_progress,
            extra_methods=extra_methods,
            suite=args.suite,
            refresh=args.refresh,
        )
    except RuntimeError as error:  # failed fits: report what was done, then fail
        failure = error
        records = load_results(args.out)
    name = dataset_name(args.dataset)
    out = Path(args.out)
    table = render_report(records, name)
    standings = ""
    if args.suite == "dev":
        standings = f"\n{STANDINGS_HEADING}\n\n" + render_suite_standings(records, [name])
    written = [out / RESULTS_FILE, write_whole(out / TABLE_FILE, table + standings)]
    with contextlib.suppress(ValueError):  # no records to draw
        written.append(plot(records, name, out / PLOT_FILE))
    if not args.no_progress:
        print(table + standings)
        print("wrote " + ", ".join(str(path) for path in written))
    if failure is not None:
        raise failure


def add_benchmark_parser(subparsers) -> argparse.ArgumentParser:
    """Adds the ``benchmark`` sub-command to ``subparsers`` (from ``add_subparsers``).

    The sub-parser sets ``run=run_command``; call ``args.run(args)`` after parsing.

    Returns:
        The sub-parser.
    """
    parser = subparsers.add_parser(
        "benchmark",
        help="run the paper's methods and the reference detectors on a data set's tasks; write a "
        "table and a plot",
        description=(
            "Fits each method on each task of the data set for each seed, appends one JSON line "
            "per fit to OUT/results.jsonl (finished fits are skipped on a re-run), then writes "
            "OUT/table.md (methods x tasks, ROC AUC mean ± std over seeds) and OUT/auc.png. "
            "With --suite dev an ADBench set's tasks are the development suite's, and the table "
            "ends with the default detector's standings against each baseline."
        ),
    )
    add_benchmark_arguments(parser)
    return parser


def add_benchmark_arguments(
    parser: argparse.ArgumentParser, extra_methods: Mapping[str, NFMethod] | None = None
) -> None:
    """Adds the ``benchmark`` command's options to ``parser``, and ``run``: ``run_command``
    with ``extra_methods`` (call ``args.run(args)`` after parsing)."""
    names = METHODS + tuple(extra_methods or ())
    parser.add_argument(
        "--dataset",
        required=True,
        help="kdd99, kdd99-corrected, higgs, susy, an ADBench set name (e.g. 38_thyroid), "
        "PATH.npz, or a full UCI PATH.csv.gz",
    )
    parser.add_argument(
        "--methods",
        default="all",
        help="all, baselines, nf, or comma-separated names: "
        + ", ".join(names)
        + " (default: %(default)s)",
    )
    parser.add_argument("--seeds", default="0-4", help="e.g. 0-4 or 0,2 (default: %(default)s)")
    parser.add_argument("--out", required=True, help="folder for results.jsonl, table.md, auc.png")
    parser.add_argument(
        "--suite",
        choices=SUITES,
        default="protocol",
        help="the tasks of an ADBench set: protocol (one-class, 5%%, 25%%) or dev (the "
        "development suite: those, small samples n50 ... n1000-25%%, synthetic-local, "
        "synthetic-global, synthetic-dependency, synthetic-clustered and literature-oc; "
        "the table then ends with the default's standings against each baseline); other "
        "data sets have their protocol's tasks in both (default: %(default)s)",
    )
    parser.add_argument(
        "--tasks",
        help="comma-separated task names, e.g. one-class,k=1 (KDD-99), one-class,100 "
        "(HIGGS/SUSY), one-class,5%% (ADBench), n200,synthetic-global (ADBench, --suite dev); "
        "default: every task of the suite",
    )
    parser.add_argument(
        "--max-train-rows",
        type=int,
        help="keep at most this many normal training rows per task (all known anomalies "
        "kept; test sets stay whole)",
    )
    parser.add_argument(
        "--epochs-scale",
        type=float,
        default=1.0,
        help="multiply every method's epochs / training steps (default: %(default)s)",
    )
    parser.add_argument(
        "--refresh",
        action="store_true",
        help="fit again the requested fits that already have records, each record replaced "
        "when its new fit is done (after a change of the code or of a default)",
    )
    parser.add_argument("--no-progress", action="store_true", help="print nothing while running")
    parser.set_defaults(run=functools.partial(run_command, extra_methods=extra_methods))
