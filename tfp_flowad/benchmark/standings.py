"""The default detector against the other methods, across data sets and tasks.

Each table compares means over seeds of ROC AUC (``tfp_flowad.benchmark.report.method_means``)
column by column, a column being one task of one data set:

``render_standings`` puts the default detector beside the best of each other family of methods
on every column; ``render_suite_standings`` sets the default against each baseline on the
development suite, per part of the suite (protocol, small samples, synthetic anomalies, the
literature's task), with the columns it wins and the fit seconds; ``render_head_to_head``
counts, for each other method, the columns where it or the default is ahead; ``shortfalls``
lists the columns where a method is ahead of the default; ``render_overview`` is one line per
data set with the default's mean ROC AUC beside the best of a family of methods;
``render_differences`` sets pairs of methods side by side (what an option of the detector
changes).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np

from tfp_flowad.benchmark.methods import BASELINE_METHODS
from tfp_flowad.benchmark.records import load_results
from tfp_flowad.benchmark.report import (
    DEFAULT_METHOD,
    PAPER_METHODS,
    REFERENCE_METHODS,
    method_means,
)
from tfp_flowad.benchmark.tasks import TASK_GROUPS, task_group

__all__ = [
    "OPTION_PREFIX",
    "STANDING_FAMILIES",
    "render_differences",
    "render_head_to_head",
    "render_overview",
    "render_standings",
    "render_suite_standings",
    "shortfalls",
]

#: the prefix of the records of the detector's options and ablations (``nf-no-neighbours``...).
OPTION_PREFIX = "nf-"
#: ``render_standings``' columns: heading -> the methods it takes the best of (the options'
#: family is every recorded method named with ``OPTION_PREFIX``, whichever the runner knows).
STANDING_FAMILIES: dict[str, tuple[str, ...] | str] = {
    "best `nf-` option or ablation": OPTION_PREFIX,
    "best paper baseline": PAPER_METHODS,
    "best reference detector": REFERENCE_METHODS,
}


def _family(family: tuple[str, ...] | str, methods) -> list[str]:
    """The ``methods`` in ``family``: a tuple of names, or a prefix that names start with."""
    if isinstance(family, str):
        return [m for m in methods if m.startswith(family)]
    return [m for m in family if m in methods]


def _columns(records: list[dict], datasets: Iterable[str], metric: str = "roc_auc"):
    """``(dataset, task, {method: mean})`` for every task of every data set, in order."""
    for dataset in datasets:
        for task, means in method_means(records, dataset, metric).items():
            yield dataset, task, means


def render_standings(results: Iterable[dict], datasets: Iterable[str]) -> str:
    """A Markdown table of where the default detector stands: for each data set and task, the
    mean ROC AUC of ``normalising-flow`` and the best mean of each family of
    ``STANDING_FAMILIES`` (with the method's name), and the default's margin over the best of
    the baselines (paper and reference detectors; negative where one of them is better).

    Args:
        results: records of any data sets.
        datasets: the data sets to show, in order (their recorded names).
    """
    records = list(results)
    lines = [
        "| data set | task | default | " + " | ".join(STANDING_FAMILIES) + " | margin |",
        "|---|---|---|" + "---|" * len(STANDING_FAMILIES) + "---|",
    ]
    for dataset, task, means in _columns(records, datasets):
        default = means.get(DEFAULT_METHOD)
        bests = []
        for family in STANDING_FAMILIES.values():
            ranked = [(means[m], m) for m in _family(family, means)]
            bests.append(max(ranked) if ranked else None)
        baselines = [best for best in bests[1:] if best is not None]
        margin = "–"
        if default is not None and baselines:
            margin = f"{default - max(baselines)[0]:+.4f}"
        cells = [f"{default:.4f}" if default is not None else "–"] + [
            f"{name} {value:.4f}" if name else "–"
            for value, name in (best or (None, None) for best in bests)
        ]
        lines.append(f"| {dataset} | {task} | " + " | ".join(cells) + f" | {margin} |")
    return "\n".join(lines) + "\n"


def render_suite_standings(
    results: Iterable[dict] | str | os.PathLike,
    datasets: Iterable[str] | None = None,
    methods: Iterable[str] | None = None,
    default: str = DEFAULT_METHOD,
) -> str:
    """Markdown: a line that reads the table, and a table of ``default`` against each other
    method on the development suite.

    One row per method of ``methods`` (``None``: every baseline in the records, in table order)
    that shares a column (a data set and task) with ``default``; over the shared columns only:

    * one cell per part of the suite (``TASK_GROUPS``: protocol, small samples, synthetic,
      literature): the mean over its columns of ``default``'s mean ROC AUC over seeds, then the
      method's, then the number of columns; "–" where they share none;
    * the columns ``default`` wins and loses (a tie to four decimals counts for neither), of
      those shared;
    * the mean ``fit_seconds`` of ``default``'s records and of the method's.

    Args:
        results: records, or the path of a ``results.jsonl`` / its folder.
        datasets: the data sets to take columns from (``None``: every one in the records).
        methods: the methods set against ``default``.
        default: the method in the left of each pair.
    """
    if isinstance(results, (str, os.PathLike)):
        results = load_results(results)
    records = list(results)
    if datasets is None:
        datasets = sorted({r["dataset"] for r in records})
    columns = list(_columns(records, datasets))
    if methods is None:
        recorded = {r["method"] for r in records}
        methods = [m for m in BASELINE_METHODS if m in recorded]
    lines = [
        f"Each part of the suite: the mean ROC AUC of `{default}` / of the method (the number of "
        "columns, tasks of a data set, that both ran); then the columns "
        f"`{default}` wins / loses / shares with the method (ties to four decimals count for "
        f"neither), and the mean fit seconds of `{default}` / of the method on those.\n",
        "| against | " + " | ".join(TASK_GROUPS) + " | won / lost / shared | fit s |",
        "|---|" + "---|" * (len(TASK_GROUPS) + 2),
    ]
    for method in methods:
        shared = [(d, t, m) for d, t, m in columns if default in m and method in m]
        if method == default or not shared:
            continue
        cells = []
        for group in TASK_GROUPS:
            inside = [means for _, task, means in shared if task_group(task) == group]
            cells.append(
                f"{np.mean([m[default] for m in inside]):.4f} / "
                f"{np.mean([m[method] for m in inside]):.4f} ({len(inside)})"
                if inside
                else "–"
            )
        margins = [round(means[default] - means[method], 4) for _, _, means in shared]
        wins, losses = sum(m > 0 for m in margins), sum(m < 0 for m in margins)
        cells.append(f"{wins} / {losses} / {len(shared)}")
        places = {(dataset, task) for dataset, task, _ in shared}
        seconds = [_mean_fit_seconds(records, name, places) for name in (default, method)]
        cells.append(" / ".join("–" if s is None else f"{s:.1f}" for s in seconds))
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _mean_fit_seconds(records: list[dict], method: str, places: set) -> float | None:
    """The mean ``fit_seconds`` of ``method``'s records on the ``(dataset, task)`` ``places``."""
    seconds = [
        float(r["fit_seconds"])
        for r in records
        if r["method"] == method
        and (r["dataset"], r["task"]) in places
        and r.get("fit_seconds") is not None
    ]
    return float(np.mean(seconds)) if seconds else None


def shortfalls(
    results: Iterable[dict],
    datasets: Iterable[str],
    methods: Iterable[str],
    default: str = DEFAULT_METHOD,
) -> list[tuple[str, str, float, str, float]]:
    """Where one of ``methods`` has a higher mean ROC AUC than ``default`` to four decimals:
    ``(dataset, task, default's mean, best such method, its mean)`` for each such task, in
    order."""
    methods = list(methods)
    found = []
    for dataset, task, means in _columns(list(results), datasets):
        if default not in means:
            continue
        ranked = [(means[m], m) for m in methods if m in means]
        if ranked and round(max(ranked)[0], 4) > round(means[default], 4):
            value, name = max(ranked)
            found.append((dataset, task, means[default], name, value))
    return found


def render_head_to_head(
    results: Iterable[dict],
    datasets: Iterable[str],
    methods: Iterable[str] = REFERENCE_METHODS,
    default: str = DEFAULT_METHOD,
) -> str:
    """A Markdown table, one row per method of ``methods``: on how many tasks (data set and
    number of known anomalies) both it and ``default`` have records, on how many each has the
    higher mean ROC AUC over seeds (a tie to four decimals counts for neither), the mean of
    ``default``'s margin over those tasks, and the task where ``default`` is furthest behind.
    """
    records = list(results)
    datasets = list(datasets)
    lines = [
        f"| method | tasks run by both | `{default}` ahead | method ahead | mean margin of "
        f"`{default}` | where `{default}` is furthest behind |",
        "|---|---|---|---|---|---|",
    ]
    for method in methods:
        margins = [
            (round(means[default] - means[method], 4), dataset, task)
            for dataset, task, means in _columns(records, datasets)
            if default in means and method in means
        ]
        if not margins:
            continue
        ahead = sum(margin > 0 for margin, _, _ in margins)
        behind = sum(margin < 0 for margin, _, _ in margins)
        worst = min(margins)
        furthest = f"{worst[1]} {worst[2]} ({worst[0]:+.4f})" if worst[0] < 0 else "–"
        mean = float(np.mean([margin for margin, _, _ in margins]))
        lines.append(
            f"| {method} | {len(margins)} | {ahead} | {behind} | {mean:+.4f} | {furthest} |"
        )
    return "\n".join(lines) + "\n"


def render_overview(
    results: Iterable[dict],
    datasets: Iterable[str],
    methods: Iterable[str] = REFERENCE_METHODS,
    default: str = DEFAULT_METHOD,
    names: dict[str, str] | None = None,
    headings: tuple[str, str] | None = None,
) -> str:
    """A Markdown table, one line per data set: its tasks, ``default``'s mean ROC AUC on each,
    and the best of ``methods`` on each (name and mean), the better of the two in bold.

    Args:
        results: records of any data sets.
        datasets: the data sets to show, in order (their recorded names).
        methods: the methods to take the best of on each task.
        default: the method set beside them.
        names: optional display names of the data sets.
        headings: the headings of the two last columns (default: ``default``'s name and
            "best of the others").
    """
    records = list(results)
    methods = list(methods)
    names = names or {}
    mine_heading, others_heading = headings or (f"`{default}`", "best of the others")
    lines = [
        f"| data set | tasks | {mine_heading} | {others_heading} |",
        "|---|---|---|---|",
    ]
    for dataset in datasets:
        tasks, ours, theirs = [], [], []
        for task, means in method_means(records, dataset).items():
            if default not in means:
                continue
            ranked = [(means[m], m) for m in methods if m in means]
            mine = f"{means[default]:.4f}"
            if not ranked:
                tasks.append(task)
                ours.append(mine)
                theirs.append("–")
                continue
            value, name = max(ranked)
            other = f"{value:.4f}"
            if round(means[default], 4) >= round(value, 4):
                mine = f"**{mine}**"
            else:
                other = f"**{other}**"
            tasks.append(task)
            ours.append(mine)
            theirs.append(f"{other} {name}")
        if tasks:
            label = names.get(dataset, dataset)
            lines.append(
                f"| {label} | {' · '.join(tasks)} | {' · '.join(ours)} | {' · '.join(theirs)} |"
            )
    return "\n".join(lines) + "\n"


def paired_changes(
    records: list[dict], datasets: Iterable[str], method: str, compared: str, keep=None
) -> list[tuple[float, str, str]]:
    """``(change, dataset, task)`` for every task of ``datasets`` (in order) where both methods
    have records of a seed and ``keep(dataset, task)`` (default: every such task): the change
    of the ROC AUC from ``compared`` to ``method``, the mean over the seeds both have."""
    by_seed = {}
    for r in records:
        by_seed.setdefault((r["dataset"], r["task"], r["method"]), {})[r["seed"]] = r["roc_auc"]
    changes = []
    for dataset, task, _ in _columns(records, datasets):
        first = by_seed.get((dataset, task, method), {})
        second = by_seed.get((dataset, task, compared), {})
        seeds = sorted(set(first) & set(second))
        if seeds and (keep is None or keep(dataset, task)):
            changes.append((float(np.mean([first[s] - second[s] for s in seeds])), dataset, task))
    return changes


def render_differences(
    results: Iterable[dict],
    datasets: Iterable[str],
    pairs: Iterable[tuple],
) -> str:
    """A Markdown table of what one method changes against another, one row per pair.

    Each pair is ``(label, method, compared)`` or ``(label, method, compared, keep)``, where
    ``keep(dataset, task) -> bool`` chooses the tasks to compare (default: every task where both
    methods have records). Over those tasks: the mean change of the ROC AUC from ``compared``
    to ``method`` (on each task, the mean over the seeds that both have records of), how many
    tasks it raises and lowers by 0.0005 or more, and the largest rise and fall with their task.
    """
    records = list(results)
    datasets = list(datasets)
    lines = [
        "| what | rows | tasks | mean change | raised | lowered | largest rise | largest fall |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for pair in pairs:
        label, method, compared = pair[:3]
        keep = pair[3] if len(pair) > 3 else None
        changes = paired_changes(records, datasets, method, compared, keep)
        if not changes:
            continue
        mean = float(np.mean([change for change, _, _ in changes]))
        raised = sum(change >= 5e-4 for change, _, _ in changes)
        lowered = sum(change <= -5e-4 for change, _, _ in changes)
        best, worst = max(changes), min(changes)
        rise = f"{best[1]} {best[2]} ({best[0]:+.4f})" if best[0] >= 5e-4 else "–"
        fall = f"{worst[1]} {worst[2]} ({worst[0]:+.4f})" if worst[0] <= -5e-4 else "–"
        lines.append(
            f"| {label} | `{method}` against `{compared}` | {len(changes)} | {mean:+.4f} | "
            f"{raised} | {lowered} | {rise} | {fall} |"
        )
    return "\n".join(lines) + "\n"
