"""The benchmark runner: methods on every task of a data set, one JSON line per fit.

``run(dataset, methods, seeds, out_dir)`` builds the data set's tasks for each seed
(``tfp_flowad.benchmark.tasks``; ``suite="dev"`` takes an ADBench set's tasks from the
development suite), fits each method (``tfp_flowad.benchmark.methods``) on each
task's training rows and appends one record per (task, method, seed) to
``out_dir/results.jsonl`` (``tfp_flowad.benchmark.records``).

Finished fits are skipped on a re-run (the key is ``(dataset, task, method, seed)``), and each
record is flushed to disk as soon as it is known, so an interrupted run loses only the fit in
progress. Methods whose fits are identical share one fit: ``normalising-flow``,
``normalising-flow-density``, ``normalising-flow-classifier`` and ``normalising-flow-student``
are one ``NFADetector`` fit scored four ways. ``extra_methods`` adds ``NFADetector``
configurations to the package's methods for one run (``benchmarks/ablations.py`` passes the
research ablations this way); their records have the same keys.

The method lists, ``Size``, ``benchmark_tasks``, ``dataset_name``, ``load_results`` and the
other helpers that callers have taken from this module stay importable from it; they live in
the sibling modules and in ``tfp_flowad.benchmark``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path

from tfp_flowad.benchmark.methods import BASELINE_METHODS, METHODS, MethodTable, NFMethod
from tfp_flowad.benchmark.records import (
    RESULTS_FILE,
    append_record,
    load_results,
    make_record,
    replace_record,
)
from tfp_flowad.benchmark.tasks import (
    Size,
    benchmark_tasks,
    dataset_name,
    parse_seeds,
    parse_tasks,
    resolve_dataset,
    shrink_task,
    task_order_key,
)

__all__ = [
    "BASELINE_METHODS",
    "METHODS",
    "NFMethod",
    "RESULTS_FILE",
    "Size",
    "benchmark_tasks",
    "dataset_name",
    "load_results",
    "parse_seeds",
    "parse_tasks",
    "run",
    "task_order_key",
]


class _Progress:
    """Plain-text progress over fits: ``[i/n] dataset task method seed s ... auc (sec)``."""

    def __init__(self, total: int, enabled: bool, stream=None):
        self.total, self.enabled, self.done = total, enabled, 0
        self.stream = stream if stream is not None else sys.stdout
        self.started = time.perf_counter()

    def start(self, dataset: str, task: str, method: str, seed: int) -> None:
        self.done += 1
        if self.enabled:
            self.stream.write(
                f"[{self.done}/{self.total}] {dataset} {task} {method} seed {seed} ... "
            )
            self.stream.flush()

    def finish(self, text: str) -> None:
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.started
        remaining = self.total - self.done
        eta = f", eta {_duration(elapsed / self.done * remaining)}" if remaining else ""
        self.stream.write(f"{text}{eta}\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        if self.enabled:
            self.stream.write(text + "\n")
            self.stream.flush()


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _clear_keras_state() -> None:
    """Resets Keras' global state (its layer-name counters) between fits. The fits' graphs are
    freed when each fit returns (``tfp_flowad.tracing``)."""
    import keras

    keras.backend.clear_session()


def run(
    dataset: str | os.PathLike,
    methods: str | Sequence[str],
    seeds: str | int | Sequence[int],
    out_dir: str | os.PathLike,
    tasks: str | Sequence[str] | None = None,
    size: Size | dict | None = None,
    progress: bool = True,
    extra_methods: Mapping[str, NFMethod] | None = None,
    suite: str = "protocol",
    refresh: bool = False,
) -> list[dict]:
    """Runs ``methods`` on the tasks of ``dataset`` for ``seeds``; appends to ``results.jsonl``.

    Args:
        dataset: ``"kdd99"``, ``"kdd99-corrected"`` (KDD-99 tasks also scored on the
            ``corrected`` file), ``"higgs"``, ``"susy"`` (the samples), an ADBench set's name
            (``"38_thyroid"``), the path of an ADBench-format ``.npz`` file, or the path of a
            full UCI ``HIGGS.csv.gz`` / ``SUSY.csv.gz`` (tasks of ``physics_tasks_full``).
        methods: ``"all"``, ``"baselines"``, ``"nf"``, or method names (``METHODS`` and those
            of ``extra_methods``), as a list or a comma-separated string.
        seeds: seeds as integers or as text (``"0-4"``, ``"0,2"``).
        out_dir: folder of ``results.jsonl`` (created if missing).
        tasks: task names (``"one-class"``, ``"k=2"``, ``"1000"``, ``"5%"``; in the
            development suite also ``"n200-5%"``, ``"synthetic-local"``, ``"literature-oc"``),
            a list or a comma-separated string; ``None``: every task of the suite.
        size: a ``Size`` (or a dict of its fields) to shrink the run; ``None``: full size.
        progress: print one line per fit to stdout.
        extra_methods: more ``NFADetector`` configurations for this run, method name ->
            ``NFMethod`` (table order: after ``METHODS``, in the mapping's order).
        suite: ``"protocol"`` (the tasks of ``docs/BENCHMARK.md``) or ``"dev"`` (an ADBench
            set's tasks from ``tfp_flowad.datasets.dev_suite_tasks``; other data sets keep their
            protocol's tasks). Records carry the task's name only: a task of both suites
            (``one-class``, ``5%``, ``25%``) is fitted once per folder.
        refresh: fit the requested fits again even where records exist; each new record
            replaces the old one of its key when its fit is done, so a run cut short leaves
            every record whole, new or old.

    Returns:
        Every record of ``dataset`` in ``results.jsonl`` after the run (earlier ones included).

    Raises:
        ValueError: an unknown method, data set, suite, task or seed, a bad ``size`` or a bad
            ``extra_methods`` (before any fit).
        FileNotFoundError: a data file that does not exist.
        RuntimeError: after all other fits are done, when some fits failed; the message lists
            them (their tracebacks were printed as they happened).
    """
    table = MethodTable(extra_methods)
    method_names = table.parse(methods)
    seed_list = parse_seeds(seeds)
    size = Size.coerce(size)
    source = resolve_dataset(dataset, suite)
    task_names = source.check_tasks(parse_tasks(tasks))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / RESULTS_FILE

    previous = [r for r in load_results(results_path) if r.get("dataset") == source.name]
    finished = {(r.get("task"), r.get("method"), r.get("seed")) for r in previous}
    other_sizes = {json.dumps(r.get("size")) for r in previous} - {json.dumps(size.as_dict())}
    plan = [
        (seed, task, method)
        for seed in seed_list
        for task in task_names
        for method in method_names
        if table.applies(method, task) and (refresh or (task, method, seed) not in finished)
    ]
    bar = _Progress(len(plan), progress)
    if other_sizes:
        bar.note(
            f"note: {results_path} holds {source.name} records of another size "
            f"({', '.join(sorted(other_sizes))}); they are kept and not re-run"
        )
    if not plan:
        bar.note(f"{source.name}: all {len(finished)} requested fits are already in {results_path}")
    # Appending is enough where no record of the fit exists; a refresh replaces them.
    write = replace_record if refresh else append_record
    failures: list[str] = []
    for seed in seed_list:
        wanted = {(task, method) for s, task, method in plan if s == seed}
        if not wanted:
            continue
        asked = sorted({t for t, _ in wanted}, key=task_order_key)
        built = list(source.make_tasks(seed, asked))
        missing = sorted(set(asked) - {task.name for task in built}, key=task_order_key)
        if missing:  # a builder skips a task the data set is too small for, with a warning
            bar.note(f"{source.name} seed {seed}: no task {', '.join(missing)} on this data set")
        for task in built:
            todo = [method for method in method_names if (task.name, method) in wanted]
            if not todo:
                continue
            task = shrink_task(task, size)
            groups: dict[tuple, list[str]] = {}
            for method in todo:
                groups.setdefault(table.fit_key(method), []).append(method)
            for group in groups.values():
                failures.extend(
                    _run_group(group, task, table, source.name, size, results_path, bar, write)
                )
    if failures:
        raise RuntimeError(f"{len(failures)} fits failed: " + "; ".join(failures))
    return [r for r in load_results(results_path) if r.get("dataset") == source.name]


def _run_group(
    methods: list[str],
    task,
    table: MethodTable,
    dataset: str,
    size: Size,
    results_path: Path,
    bar: _Progress,
    write=append_record,
) -> list[str]:
    """Fits once for ``methods`` (which share a fit) and writes one record per method with
    ``write`` (``append_record``, or ``replace_record`` in a refresh).

    Returns:
        The failed fits, one ``"dataset task method seed s"`` each.
    """
    first = methods[0]
    bar.start(dataset, task.name, first, task.seed)
    try:
        detector = table.make_detector(first, task.seed, size.epochs_scale)
        start = time.perf_counter()
        detector.fit(task.X_train, task.y_train)
        fit_seconds = time.perf_counter() - start
    except Exception as error:  # one failed fit must not stop the run
        bar.finish(f"FAILED ({type(error).__name__}: {error})")
        traceback.print_exc()
        for method in methods[1:]:
            bar.start(dataset, task.name, method, task.seed)
            bar.finish("FAILED (shared fit failed)")
        _clear_keras_state()
        return [f"{dataset} {task.name} {method} seed {task.seed}" for method in methods]

    failures = []
    for index, method in enumerate(methods):
        if index:
            bar.start(dataset, task.name, method, task.seed)
        try:
            score = table.score_kind(method)
            if score is not None:
                detector.score_kind = score
            record = make_record(detector, task, dataset, method, fit_seconds, size, methods)
            write(results_path, record)
        except Exception as error:
            bar.finish(f"FAILED ({type(error).__name__}: {error})")
            traceback.print_exc()
            failures.append(f"{dataset} {task.name} {method} seed {task.seed}")
            continue
        auc = "n/a" if record["roc_auc"] is None else f"{record['roc_auc']:.3f}"
        seconds = f"{fit_seconds:.1f} s" if index == 0 else "shared fit"
        bar.finish(f"{auc} ({seconds})")
    _clear_keras_state()
    return failures
