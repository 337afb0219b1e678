"""Tables and plots of benchmark records (``results.jsonl``), shaped like the paper's tables.

``render_table`` gives methods x tasks with "mean ± std" of a metric over seeds (population
standard deviation, ``ddof = 0``); ``render_report`` stacks the tables of every metric the
records hold (ROC AUC, unseen-attack and corrected-file AUC, fit seconds, scoring rows/s);
``plot`` draws AUC against the number of known anomalies, one line per method;
``render_standings`` puts the default detector beside the best of each other family of methods
on every data set and task.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from tfp_flowad.baselines import REFERENCE_BASELINES
from tfp_flowad.benchmark.runner import (
    BASELINE_METHODS,
    METHODS,
    NF_METHODS,
    dataset_name,
    load_results,
    task_order_key,
)

__all__ = ["render_table", "render_report", "render_standings", "plot", "METRIC_TITLES"]

#: the default detector's record name.
DEFAULT_METHOD = "normalising-flow"
#: ``render_standings``' columns: heading -> the methods it takes the best of.
STANDING_FAMILIES: dict[str, tuple[str, ...]] = {
    "best `nf-` option or ablation": tuple(m for m in NF_METHODS if m.startswith("nf-")),
    "best paper baseline": tuple(m for m in BASELINE_METHODS if m not in REFERENCE_BASELINES),
    "best reference detector": tuple(REFERENCE_BASELINES),
}

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


def _method_order(records: list[dict]) -> list[str]:
    present = {r["method"] for r in records}
    known = [m for m in METHODS if m in present]
    return known + sorted(present - set(known))


def _task_order(records: list[dict]) -> list[str]:
    return sorted({r["task"] for r in records}, key=task_order_key)


def _values(records: list[dict], method: str, task: str, metric: str) -> list[float]:
    return [
        float(r[metric])
        for r in records
        if r["method"] == method and r["task"] == task and r.get(metric) is not None
    ]


def _cell(values: list[float], metric: str, n_seeds: int) -> str:
    if not values:
        return "–"
    mean, std = float(np.mean(values)), float(np.std(values))
    if metric == "fit_seconds":
        text = f"{mean:.1f} ± {std:.1f}"
    elif metric == "score_rows_per_second":
        text = f"{mean:,.0f}"
    else:
        text = f"{mean:.3f} ± {std:.3f}"
    return text if len(values) == n_seeds else f"{text} (n={len(values)})"


def render_table(
    results: Iterable[dict] | str | os.PathLike, dataset: str, metric: str = "roc_auc"
) -> str:
    """A Markdown table: one row per method, one column per task, "mean ± std" over seeds.

    Args:
        results: records (as ``run`` returns them) or the path of a ``results.jsonl`` / its
            folder.
        dataset: the data set whose records to show (its recorded name, such as ``"kdd99"`` or
            ``"38_thyroid"``, or what was given to ``run``).
        metric: a record key: ``roc_auc`` (default), ``unseen_auc``, ``corrected_auc``,
            ``fit_seconds`` or ``score_rows_per_second``.

    Returns:
        The table; a cell averaged over fewer seeds than the most seen says ``(n=...)``, and a
        method not run on a task shows "–". A line saying so when there are no records.
    """
    records = _records(results, dataset)
    records = [r for r in records if r.get(metric) is not None]
    if not records:
        return f"_no {metric} records for {dataset}_\n"
    tasks = _task_order(records)
    n_seeds = len({r["seed"] for r in records})
    lines = [
        "| method | " + " | ".join(tasks) + " |",
        "|---|" + "---|" * len(tasks),
    ]
    for method in _method_order(records):
        cells = [_cell(_values(records, method, task, metric), metric, n_seeds) for task in tasks]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


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
    for dataset in datasets:
        chosen = _records(records, dataset)
        for task in _task_order(chosen):
            means = {}  # method -> mean ROC AUC over seeds, for the methods run on the task
            for method in {r["method"] for r in chosen if r["task"] == task}:
                values = _values(chosen, method, task, "roc_auc")
                if values:
                    means[method] = float(np.mean(values))
            default = means.get(DEFAULT_METHOD)
            bests = []
            for family in STANDING_FAMILIES.values():
                ranked = [(means[m], m) for m in family if m in means]
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
        path: the PNG to write (written to a temporary file, then renamed).
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
    axes.set_xticks(range(len(tasks)), tasks)
    axes.set_xlabel(_x_label(records))
    axes.set_ylabel(METRIC_TITLES.get(metric, metric).split(" (")[0])
    seeds = len({r["seed"] for r in records})
    axes.set_title(f"{records[0]['dataset']}: mean ± std over {seeds} seed(s)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small", loc="best")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix=".png", dir=target.parent)
    os.close(handle)
    try:
        figure.savefig(temporary, dpi=110)
        os.chmod(temporary, 0o644)  # mkstemp makes the file private
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return target
