"""The benchmark's records: one JSON line per (data set, task, method, seed) in ``results.jsonl``.

A record holds ``dataset, task, method, seed``; ``roc_auc`` (anomaly = positive class, the
score as the detector gives it); ``unseen_auc`` / ``corrected_auc`` where the task has those
test sets (KDD-99); ``score_rows_per_second`` (``decision_function`` on the test set, one
process, after a 256-row warm-up call); ``fit_seconds`` and, where the detector times its
stages, ``stage_seconds``; ``fitted``, what an ``NFADetector`` chose from its training rows;
the train / test sizes and the known classes; the detector's hyperparameters (``params``,
``get_params()``); the run's ``size``; and ``shared_fit``, the methods whose records come from
the same fit, where there are several.

Each record is appended and forced to disk as soon as it is known (``append_record``), so an
interrupted run loses only the fit in progress. A kill during an append can leave a cut-off
last line: the next append starts a new line after it, and ``load_results`` passes over it
(saying so on stderr). A record fitted again (``--refresh``) replaces the old one of its
key by a whole rewrite of the file (``replace_record``). Files that are written in one piece
(tables, the measurement scripts' JSON files) go through ``write_whole``: whole or not at all.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from tfp_flowad.atomic import atomic_file
from tfp_flowad.benchmark.tasks import Size, rows_at

__all__ = [
    "RESULTS_FILE",
    "append_record",
    "load_results",
    "make_record",
    "replace_record",
    "write_whole",
]

#: name of the results file inside a run's output folder.
RESULTS_FILE = "results.jsonl"


def load_results(path: str | os.PathLike) -> list[dict]:
    """The records of a JSON-lines file (or of ``path/results.jsonl`` for a folder).

    A line that is not a JSON object (the remains of an append that was cut off by a kill) is
    passed over, and stderr names the file and the line. Blank lines are passed over silently.
    A missing file gives an empty list.
    """
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict):
            records.append(record)
        else:
            print(
                f"{path}: line {number} is not a whole JSON record (a write cut off?); passed over",
                file=sys.stderr,
            )
    return records


def append_record(path: str | os.PathLike, record: dict) -> None:
    """Appends ``record`` as one JSON line and forces it to disk.

    When the file does not end in a newline (an append cut off by a kill), a newline is
    written first, so the new record is a whole line of its own.
    """
    with Path(path).open("a+b") as file:
        file.seek(0, os.SEEK_END)
        if file.tell() > 0:
            file.seek(-1, os.SEEK_END)
            if file.read(1) != b"\n":
                file.write(b"\n")
        file.write((json.dumps(record) + "\n").encode())
        file.flush()
        os.fsync(file.fileno())


def replace_record(path: str | os.PathLike, record: dict) -> None:
    """Adds ``record`` to the JSON lines file ``path``, in place of the records with its key
    ``(dataset, task, method, seed)``: appended when there are none, else the file rewritten
    whole (``write_whole``) with the new record where the first old one was."""
    key = _record_key(record)
    records = load_results(path)
    if not any(_record_key(old) == key for old in records):
        append_record(path, record)
        return
    kept, placed = [], False
    for old in records:
        if _record_key(old) != key:
            kept.append(old)
        elif not placed:
            kept.append(record)
            placed = True
    write_whole(path, "".join(json.dumps(r) + "\n" for r in kept))


def _record_key(record: dict) -> tuple:
    return tuple(record.get(name) for name in ("dataset", "task", "method", "seed"))


def write_whole(path: str | os.PathLike, text: str) -> Path:
    """Writes ``text`` to ``path`` whole or not at all (``tfp_flowad.atomic.atomic_file``): a
    kill leaves the previous content. Returns ``path`` as a ``Path``."""
    with atomic_file(path) as temporary:
        temporary.write_text(text)
    return Path(path)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def make_record(
    detector, task, dataset: str, method: str, fit_seconds: float, size: Size, shared_fit=()
) -> dict:
    """The record of ``method``: the fitted ``detector`` scored on ``task``'s test sets.

    Args:
        detector: the fitted detector, its score set to the one ``method`` reads.
        task: the ``tfp_flowad.datasets.Task`` it was fitted on.
        dataset: the data set's recorded name.
        method: the method name.
        fit_seconds: wall seconds of the fit.
        size: the run's ``Size``.
        shared_fit: every method scored from this same fit (recorded when more than one).
    """
    record = {
        "dataset": dataset,
        "task": task.name,
        "method": method,
        "seed": task.seed,
        **_evaluate(detector, task),
        "fit_seconds": round(fit_seconds, 3),
        **_stage_seconds(detector),
        **_fitted_choices(detector),
        **_task_facts(task),
        "params": _jsonable(detector.get_params()),
        "size": size.as_dict(),
    }
    if len(shared_fit) > 1:
        record["shared_fit"] = list(shared_fit)
    return record


def _auc(y: np.ndarray, scores: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        return None
    if not np.isfinite(scores).all():
        raise ValueError(f"{int(np.sum(~np.isfinite(scores)))} scores are NaN or infinite")
    return round(float(roc_auc_score(y, scores)), 6)


def _evaluate(detector, task) -> dict:
    """ROC AUCs on the test set and the extra test sets, and scoring rows/s."""
    detector.decision_function(rows_at(task.X_test, slice(0, 256)))  # warm-up: traces, caches
    start = time.perf_counter()
    scores = detector.decision_function(task.X_test)
    seconds = time.perf_counter() - start
    result = {
        "roc_auc": _auc(task.y_test, scores),
        "score_rows_per_second": round(len(scores) / max(seconds, 1e-9)),
    }
    for name, (X, y) in sorted(task.extra_tests.items()):
        result[f"{name}_auc"] = _auc(y, detector.decision_function(X))
    return result


def _stage_seconds(detector) -> dict:
    """``{"stage_seconds": {...}}`` where the detector times its stages (``fit_seconds_``)."""
    stages = getattr(detector, "fit_seconds_", None)
    if not isinstance(stages, dict):
        return {}
    return {"stage_seconds": {str(k): round(float(v), 3) for k, v in stages.items()}}


def _fitted_choices(detector) -> dict:
    """``{"fitted": {...}}``: what an ``NFADetector`` chose from the training rows itself (the
    density's separation of the known anomalies, ``eps_``, the density weight's multiplier, the
    classifier model kept and the held-out AUCs it was chosen by)."""
    names = {
        "density_auc": "density_auc_",
        "eps": "eps_",
        "density_scale": "density_scale_",
        "classifier_model": "classifier_model_",
        "classifier_model_aucs": "classifier_model_aucs_",
    }
    fitted = {
        key: _jsonable(getattr(detector, name))
        for key, name in names.items()
        if hasattr(detector, name)
    }
    return {"fitted": fitted} if fitted else {}


def _task_facts(task) -> dict:
    return {
        "n_train": len(task.y_train),
        "n_known": task.n_known,
        "n_test": len(task.y_test),
        "known_classes": list(task.known_classes),
    }
