"""Tables and plots of benchmark records (``results.jsonl``), shaped like the paper's tables.

``render_table`` gives methods x tasks with "mean ± std" of a metric over seeds (population
standard deviation, ``ddof = 0``); ``render_report`` stacks the tables of every metric the
records hold (ROC AUC, unseen-attack and corrected-file AUC, fit seconds, scoring rows/s);
``plot`` draws AUC against the number of known anomalies, one line per method;
``method_means`` gives the means over seeds that the tables across data sets
(``tfp_flowad.benchmark.standings``) compare; ``render_beside_published`` puts published figures
beside the records' means.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from tfp_flowad.atomic import atomic_file
from tfp_flowad.baselines import REFERENCE_BASELINES
from tfp_flowad.benchmark.methods import BASELINE_METHODS, METHODS
from tfp_flowad.benchmark.records import load_results
from tfp_flowad.benchmark.tasks import dataset_name, task_group, task_order_key

__all__ = [
    "METRIC_TITLES",
    "REFERENCE_METHODS",
    "PAPER_METHODS",
    "DEFAULT_METHOD",
    "method_means",
    "plot",
    "render_beside_published",
    "render_report",
    "render_table",
]

#: the default detector's record name.
DEFAULT_METHOD = "normalising-flow"
#: the reference detectors (the kinds of detector users run today), in table order.
REFERENCE_METHODS: tuple[str, ...] = tuple(m for m in BASELINE_METHODS if m in REFERENCE_BASELINES)
#: the paper's comparison systems, in table order.
PAPER_METHODS: tuple[str, ...] = tuple(m for m in BASELINE_METHODS if m not in REFERENCE_BASELINES)
#: metric key -> heading.
METRIC_TITLES: dict[str, str] = {
    "roc_auc": "ROC AUC",
    "unseen_auc": "ROC AUC on unseen attacks (test normals + classes not known in training)",
    "corrected_auc": "ROC AUC on the KDD-99 corrected file",
    "fit_seconds": "fit seconds",
    "score_rows_per_second": "scoring rows/s (test set, one process)",
}


def _records(results: Iterable[dict] | str | os.PathLike, dataset: str) -> list[dict]:
    """The records of ``dataset``; ``results`` is a list of records or a results path."""
    if isinstance(results, (str, os.PathLike)):
        results = load_results(results)
    records = list(results)
    chosen = [r for r in records if r.get("dataset") == str(dataset)]
    if chosen or not records:
        return chosen
    try:  # a path or an alias given where the records carry the resolved name
        name = dataset_name(dataset)
    except (ValueError, FileNotFoundError):
        return []
    return [r for r in records if r.get("dataset") == name]


def _method_order(records: list[dict], order: Iterable[str] = ()) -> list[str]:
    """The methods of ``records``: those of ``order`` in its order, then those the runner
    knows in its order, then the others (extra methods of a run, say) sorted by name."""
    present = {r["method"] for r in records}
    known = [m for m in order if m in present]
    known += [m for m in METHODS if m in present and m not in known]
    return known + sorted(present - set(known))


def _task_order(records: list[dict]) -> list[str]:
    return sorted({r["task"] for r in records}, key=task_order_key)


def _values(records: list[dict], method: str, task: str, metric: str) -> list[float]:
    return [
        float(r[metric])
        for r in records
        if r["method"] == method and r["task"] == task and r.get(metric) is not None
    ]


def _cell(values: list[float], metric: str, n_seeds: int, digits: int = 3) -> str:
    if not values:
        return "–"
    mean, std = float(np.mean(values)), float(np.std(values))
    if metric == "fit_seconds":
        text = f"{mean:.1f} ± {std:.1f}"
    elif metric == "score_rows_per_second":
        text = f"{mean:,.0f}"
    else:
        text = f"{mean:.{digits}f} ± {std:.{digits}f}"
    return text if len(values) == n_seeds else f"{text} (n={len(values)})"


def render_table(
    results: Iterable[dict] | str | os.PathLike,
    dataset: str,
    metric: str = "roc_auc",
    digits: int = 3,
    fit_seconds: bool = False,
    order: Iterable[str] = (),
) -> str:
    """A Markdown table: one row per method, one column per task, "mean ± std" over seeds.

    Args:
        results: records (as ``run`` returns them) or the path of a ``results.jsonl`` / its
            folder.
        dataset: the data set whose records to show (its recorded name, such as ``"kdd99"`` or
            ``"38_thyroid"``, or what was given to ``run``).
        metric: a record key: ``roc_auc`` (default), ``unseen_auc``, ``corrected_auc``,
            ``fit_seconds`` or ``score_rows_per_second``.
        digits: decimals of the means and standard deviations of a ROC AUC metric.
        fit_seconds: add a last column, the method's mean ``fit_seconds`` over all its
            records of the data set (every task and seed).
        order: the methods to put first, in this order; the others follow in the runner's
            order (``METHODS``), then by name.

    Returns:
        The table; a cell averaged over fewer seeds than the most seen says ``(n=...)``, and a
        method not run on a task shows "–". A line saying so when there are no records.
    """
    records = _records(results, dataset)
    every = records
    records = [r for r in records if r.get(metric) is not None]
    if not records:
        return f"_no {metric} records for {dataset}_\n"
    tasks = _task_order(records)
    n_seeds = len({r["seed"] for r in records})
    extra = ["fit s (mean)"] if fit_seconds else []
    lines = [
        "| method | " + " | ".join(tasks + extra) + " |",
        "|---|" + "---|" * (len(tasks) + len(extra)),
    ]
    for method in _method_order(records, order):
        cells = [
            _cell(_values(records, method, task, metric), metric, n_seeds, digits) for task in tasks
        ]
        if fit_seconds:
            seconds = [
                float(r["fit_seconds"])
                for r in every
                if r["method"] == method and r.get("fit_seconds") is not None
            ]
            cells.append(f"{np.mean(seconds):.1f}" if seconds else "–")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def method_means(
    results: Iterable[dict], dataset: str, metric: str = "roc_auc"
) -> dict[str, dict[str, float]]:
    """``{task: {method: mean of metric over seeds}}`` of ``dataset``'s records, tasks in their
    natural order (one-class first); methods without a value of ``metric`` left out."""
    chosen = [r for r in _records(list(results), dataset) if r.get(metric) is not None]
    means: dict[str, dict[str, float]] = {}
    for task in _task_order(chosen):
        on_task = [r for r in chosen if r["task"] == task]
        means[task] = {
            method: float(np.mean(_values(on_task, method, task, metric)))
            for method in _method_order(on_task)
        }
    return means


def render_beside_published(
    results: Iterable[dict],
    dataset: str,
    published: dict[str, dict[str, str]],
    digits: int = 3,
) -> str:
    """A Markdown table: for each method of ``published`` (method -> task -> the published
    figure, as printed), the records' "mean ± std" over seeds beside the published figure in
    each task the publication has; "–" where either is missing."""
    records = _records(list(results), dataset)
    tasks = sorted({task for row in published.values() for task in row}, key=task_order_key)
    n_seeds = len({r["seed"] for r in records}) or 1
    lines = [
        "| method | " + " | ".join(f"{task}: here | {task}: paper" for task in tasks) + " |",
        "|---|" + "---|---|" * len(tasks),
    ]
    for method, row in published.items():
        cells = []
        for task in tasks:
            values = _values(records, method, task, "roc_auc")
            cells.append(_cell(values, "roc_auc", n_seeds, digits))
            cells.append(row.get(task, "–"))
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_report(results: Iterable[dict] | str | os.PathLike, dataset: str) -> str:
    """Markdown: a heading, and ``render_table`` of every metric in ``METRIC_TITLES`` present."""
    records = _records(results, dataset)
    if not records:
        return f"# {dataset}\n\n_no records_\n"
    name = records[0]["dataset"]
    seeds = sorted({r["seed"] for r in records})
    sizes = sorted({str(r.get("size")) for r in records})
    parts = [
        f"# {name}\n",
        f"Seeds {', '.join(map(str, seeds))}; each cell is the mean ± standard deviation over "
        "seeds (ddof = 0). Anomaly = positive class.",
    ]
    if any(s not in ("None", str({"max_train_rows": None, "epochs_scale": 1.0})) for s in sizes):
        parts.append(f"Reduced size: {'; '.join(sizes)}.")
    for metric, title in METRIC_TITLES.items():
        if any(r.get(metric) is not None for r in records):
            parts.append(f"\n## {title}\n\n" + render_table(records, name, metric))
    return "\n".join(parts) + "\n"


def _x_label(records: list[dict]) -> str:
    name = records[0]["dataset"]
    if any(task_group(r["task"]) != "protocol" for r in records):
        return "task (development suite)"
    if name.startswith("kdd99"):
        return "known attack classes"
    if any(r["task"].endswith("%") for r in records):
        return "known anomalies (share of the train anomalies)"
    return "known anomalies (rows)"


def plot(
    results: Iterable[dict] | str | os.PathLike,
    dataset: str,
    path: str | os.PathLike,
    metric: str = "roc_auc",
) -> Path:
    """A PNG of ``metric`` against the task (number of known anomalies), one line per method.

    Points are the mean over seeds, error bars the standard deviation. Tasks are evenly spaced
    in their natural order (one-class first), labelled by name.

    Args:
        results: records or a results path (see ``render_table``).
        dataset: the data set to draw.
        path: the PNG to write, whole or not at all (``tfp_flowad.atomic.atomic_file``).
        metric: the record key to draw (default ``roc_auc``).

    Returns:
        ``path`` as a ``Path``.

    Raises:
        ValueError: no records of ``dataset`` with ``metric``.
    """
    from matplotlib.figure import Figure  # no pyplot: renders with Agg, leaves backends alone

    records = [r for r in _records(results, dataset) if r.get(metric) is not None]
    if not records:
        raise ValueError(f"dataset: no {metric} records for {dataset!r} to plot")
    tasks = _task_order(records)
    methods = _method_order(records)
    figure = Figure(figsize=(8, 5), layout="constrained")
    axes = figure.add_subplot()
    markers = "osD^v<>pPXh*"
    for index, method in enumerate(methods):
        xs, means, stds = [], [], []
        for position, task in enumerate(tasks):
            values = _values(records, method, task, metric)
            if values:
                xs.append(position)
                means.append(np.mean(values))
                stds.append(np.std(values))
        axes.errorbar(
            xs,
            means,
            yerr=stds,
            label=method,
            marker=markers[index % len(markers)],
            capsize=3,
            linestyle="-" if len(xs) > 1 else "none",
        )
    crowded = len(tasks) > 6  # long names side by side: slanted
    axes.set_xticks(
        range(len(tasks)), tasks, rotation=45 if crowded else 0, ha="right" if crowded else "center"
    )
    axes.set_xlabel(_x_label(records))
    axes.set_ylabel(METRIC_TITLES.get(metric, metric).split(" (")[0])
    seeds = len({r["seed"] for r in records})
    axes.set_title(f"{records[0]['dataset']}: mean ± std over {seeds} seed(s)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small", loc="best")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(target) as temporary:
        figure.savefig(temporary, dpi=110, format="png")
    return target
