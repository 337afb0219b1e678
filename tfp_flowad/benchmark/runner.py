"""The benchmark runner: every method on every task of a data set, one JSON line per fit.

``run(dataset, methods, seeds, out_dir)`` follows the protocol of BENCHMARK.md: for each seed
it builds the data set's tasks (``tfp_flowad.datasets``), fits each method on each task's
training rows and appends one record per (task, method, seed) to ``out_dir/results.jsonl``:

``dataset, task, method, seed, roc_auc`` (anomaly = positive class, score as the detector gives
it), ``unseen_auc`` / ``corrected_auc`` where the task has those test sets (KDD-99),
``fit_seconds``, ``score_rows_per_second`` (``decision_function`` on the test set, one
process, after a small warm-up call), the train / test sizes, the known classes, and the
detector's hyperparameters (``get_params()``).

Finished fits are skipped on a re-run (the key is ``(dataset, task, method, seed)``), and each
record is flushed to disk as soon as it is known, so an interrupted run loses only the fit in
progress. Methods whose fits are identical share one fit: ``normalising-flow``,
``normalising-flow-density``, ``normalising-flow-classifier`` and ``normalising-flow-student``
are one ``NFADetector`` fit scored four ways.

Methods (``METHODS``, in table order): the baselines of ``tfp_flowad.baselines.BASELINES``
(the paper's, then the reference detectors), then ``normalising-flow`` (``NFADetector()``, its
default score), ``normalising-flow-density``, ``normalising-flow-classifier`` and
``normalising-flow-student`` (the same fit scored by ``-log p(x)`` alone, by the paper's
(1 + eps)-class classifier alone, and by the one network fitted to rank rows like the default
score, ``score_kind="student"``), ``nf-no-neighbours`` (``neighbour_rows=0``: the
combined score without its neighbour term), and, each also without that term, the ablations
``nf-no-jacobian`` (``flow_jacobian_penalty=0``), ``nf-realnvp``, ``nf-planar``, ``nf-radial``
(``flow=...``), and the options ``nf-temperature`` (``density_temperature="auto"``) and
``nf-mlp-trees`` (``classifier_model="mlp+boosted_trees"``), on tasks with known anomalies only
(one-class the first is ``nf-no-neighbours``' fit, and the second's trees would learn from
surrogates alone); ``nf-mlp-trees-neighbours`` is the default with those trees (the neighbour
term kept) and no held-out check of them, and ``nf-mlp`` the default without the trees
(``classifier_model="mlp"``, the default before ``"auto"``), each on tasks with known
anomalies only (one-class the default is the MLP alone).

Which tasks a method runs on: two-class methods (``needs_known_anomalies``) skip the one-class
task; one-class methods (``uses_known_anomalies = False``: ``deep-svdd-oc``, ``rae-oc``,
``iforest-oc``, ``knn-oc``) run on the one-class task only, since their fit ignores the known
anomalies.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfp_flowad.base import scale_training_lengths
from tfp_flowad.baselines import BASELINES

__all__ = [
    "METHODS",
    "BASELINE_METHODS",
    "NF_METHODS",
    "RESULTS_FILE",
    "Size",
    "run",
    "load_results",
    "parse_methods",
    "parse_seeds",
    "parse_tasks",
    "dataset_name",
    "task_order_key",
]

#: name of the results file inside ``out_dir``.
RESULTS_FILE = "results.jsonl"


@dataclass(frozen=True)
class _NFMethod:
    """An ``NFADetector`` configuration: constructor overrides and the score to read."""

    overrides: tuple[tuple[str, object], ...] = ()
    score_kind: str | None = None  # None: the detector's default
    known_only: bool = False  # one-class, the fit equals nf-no-neighbours': skipped


#: the ablations and options below leave the neighbour term out (``neighbour_rows=0``): they
#: were measured before it joined the default, and each differs from ``nf-no-neighbours``, the
#: default without it, in one thing.
_WITHOUT_NEIGHBOURS = (("neighbour_rows", 0),)

#: the normalising-flow rows: method name -> configuration.
NF_METHODS: dict[str, _NFMethod] = {
    "normalising-flow": _NFMethod(),
    "normalising-flow-density": _NFMethod(score_kind="density"),
    "normalising-flow-classifier": _NFMethod(score_kind="classifier"),
    "normalising-flow-student": _NFMethod(score_kind="student"),
    "nf-no-neighbours": _NFMethod(overrides=_WITHOUT_NEIGHBOURS),
    "nf-no-jacobian": _NFMethod(overrides=(("flow_jacobian_penalty", 0.0), *_WITHOUT_NEIGHBOURS)),
    "nf-realnvp": _NFMethod(overrides=(("flow", "realnvp"), *_WITHOUT_NEIGHBOURS)),
    "nf-planar": _NFMethod(overrides=(("flow", "planar"), *_WITHOUT_NEIGHBOURS)),
    "nf-radial": _NFMethod(overrides=(("flow", "radial"), *_WITHOUT_NEIGHBOURS)),
    "nf-temperature": _NFMethod(
        overrides=(("density_temperature", "auto"), *_WITHOUT_NEIGHBOURS), known_only=True
    ),
    "nf-mlp-trees": _NFMethod(
        overrides=(("classifier_model", "mlp+boosted_trees"), *_WITHOUT_NEIGHBOURS),
        known_only=True,
    ),
    "nf-mlp-trees-neighbours": _NFMethod(
        overrides=(("classifier_model", "mlp+boosted_trees"),), known_only=True
    ),
    "nf-mlp": _NFMethod(overrides=(("classifier_model", "mlp"),), known_only=True),
}


#: the baselines, in the order of ``tfp_flowad.baselines.BASELINES``.
BASELINE_METHODS: tuple[str, ...] = tuple(BASELINES)

#: every method, in table order.
METHODS: tuple[str, ...] = BASELINE_METHODS + tuple(NF_METHODS)


@dataclass(frozen=True)
class Size:
    """Options that shrink a run (for tests and quick looks; the default is the full protocol).

    Args:
        max_train_rows: keep at most this many NORMAL training rows per task (a random subset,
            fixed by the seed); every known anomaly is kept. ``None``: all.
        epochs_scale: multiplies every training length of a method (constructor arguments whose
            name ends in ``epochs``, and ``distillation_steps``), rounded, at least 1.
    """

    max_train_rows: int | None = None
    epochs_scale: float = 1.0

    def __post_init__(self) -> None:
        rows = self.max_train_rows
        if rows is not None and (
            isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows < 10
        ):
            raise ValueError(f"max_train_rows must be an integer >= 10 or None; got {rows!r}")
        scale = self.epochs_scale
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
            raise ValueError(f"epochs_scale must be a number > 0; got {scale!r}")
        if not math.isfinite(scale):
            raise ValueError(f"epochs_scale must be finite; got {scale!r}")

    @classmethod
    def coerce(cls, size: Size | dict | None) -> Size:
        """``None`` -> the full size; a dict -> ``Size(**dict)``."""
        if size is None:
            return cls()
        if isinstance(size, Size):
            return size
        if isinstance(size, dict):
            unknown = set(size) - {field.name for field in dataclasses.fields(cls)}
            if unknown:
                raise ValueError(
                    f"size has unknown keys {sorted(unknown)}; known: max_train_rows, epochs_scale"
                )
            return cls(**size)
        raise ValueError(f"size must be a Size, a dict or None; got {size!r}")

    def as_dict(self) -> dict:
        return {"max_train_rows": self.max_train_rows, "epochs_scale": self.epochs_scale}


# ------------------------------------------------------------------------------ parsing
def parse_methods(methods: str | Iterable[str]) -> list[str]:
    """``"all"``, ``"baselines"``, ``"nf"`` or names (a list or a comma-separated string).

    Returns:
        The method names in table order (``METHODS``), without repeats.

    Raises:
        ValueError: an unknown name (the message names it and lists the known ones).
    """
    names = methods.split(",") if isinstance(methods, str) else list(methods)
    chosen: set[str] = set()
    for raw in names:
        name = str(raw).strip()
        if not name:
            continue
        if name == "all":
            chosen.update(METHODS)
        elif name == "baselines":
            chosen.update(BASELINE_METHODS)
        elif name == "nf":
            chosen.update(NF_METHODS)
        elif name in METHODS:
            chosen.add(name)
        else:
            raise ValueError(
                f"methods: unknown method {name!r}; known methods: all, baselines, nf, "
                + ", ".join(METHODS)
            )
    if not chosen:
        raise ValueError(f"methods: no method given in {methods!r}")
    return [name for name in METHODS if name in chosen]


def parse_seeds(seeds: str | int | Iterable[int]) -> list[int]:
    """``"0-4"``, ``"0,2"``, ``"1,3-5"``, an integer or integers -> sorted distinct seeds.

    Raises:
        ValueError: not of that form, or a negative seed (the message names the value).
    """
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        values = [int(seeds)]
    elif isinstance(seeds, str):
        values = []
        for part in seeds.split(","):
            part = part.strip()
            match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
            if not match:
                raise ValueError(
                    f"seeds: {part!r} in {seeds!r} is not a seed or a range such as 0-4"
                )
            low = int(match.group(1))
            high = int(match.group(2)) if match.group(2) is not None else low
            if high < low:
                raise ValueError(f"seeds: range {part!r} runs backwards")
            values.extend(range(low, high + 1))
    else:
        values = list(seeds)
        for value in values:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"seeds must be non-negative integers; got {value!r}")
        values = [int(value) for value in values]
    if not values:
        raise ValueError(f"seeds: no seed given in {seeds!r}")
    return sorted(set(values))


def parse_tasks(tasks: str | Iterable[str] | None) -> list[str] | None:
    """``"one-class,k=1"`` or a list of task names -> names (``None`` stays ``None``: all)."""
    if tasks is None:
        return None
    names = tasks.split(",") if isinstance(tasks, str) else [str(task) for task in tasks]
    names = [name.strip() for name in names if name.strip()]
    if not names:
        raise ValueError(f"tasks: no task given in {tasks!r}")
    return list(dict.fromkeys(names))


def task_order_key(name: str) -> tuple[float, str]:
    """Sort key of task names: ``one-class`` first, then by the number of known anomalies."""
    if name == "one-class":
        return (0.0, name)
    match = re.search(r"(\d+(?:\.\d+)?)", name)
    return (float(match.group(1)) if match else math.inf, name)


# ----------------------------------------------------------------------------- data sets
@dataclass
class _Source:
    """A data set: its recorded name, default tasks and a task factory."""

    name: str
    default_tasks: tuple[str, ...]
    task_pattern: str  # regex of the task names it accepts (besides "one-class")
    task_help: str
    make_tasks: Callable[[int, list[str]], Iterable]  # (seed, task names) -> tasks

    def check_tasks(self, names: list[str] | None) -> list[str]:
        if names is None:
            return list(self.default_tasks)
        for name in names:
            if name != "one-class" and not re.fullmatch(self.task_pattern, name):
                raise ValueError(
                    f"tasks: {name!r} is not a task of {self.name}; expected {self.task_help}"
                )
        return sorted(names, key=task_order_key)


def _memo(load: Callable[[], object]) -> Callable[[], object]:
    """``load`` run once, on first use."""
    cache: list = []

    def get():
        if not cache:
            cache.append(load())
        return cache[0]

    return get


def _known_counts(names: list[str]) -> list[int]:
    return [0 if name == "one-class" else int(name.removeprefix("k=")) for name in names]


def _uci_kind(path: Path) -> str:
    """``"higgs"`` or ``"susy"`` from the file name, else from the number of columns."""
    lowered = path.name.lower()
    for kind in ("higgs", "susy"):
        if kind in lowered:
            return kind
    import pandas as pd

    columns = pd.read_csv(path, header=None, nrows=1).shape[1]
    kinds = {29: "higgs", 19: "susy"}
    if columns not in kinds:
        raise ValueError(
            f"dataset {str(path)!r}: cannot tell HIGGS (29 columns) from SUSY (19 columns): "
            f"the file has {columns} columns and its name names neither"
        )
    return kinds[columns]


def _resolve(dataset: str | os.PathLike) -> _Source:
    """The ``_Source`` of a data set given by name or path (the data loads lazily)."""
    from tfp_flowad import datasets

    text = str(dataset)
    key = text.lower()
    kdd_pattern, kdd_help = r"k=\d+", "one-class or k=N (N known attack classes)"
    if key in ("kdd99", "kdd99-corrected"):
        data = _memo(datasets.load_kdd99)
        corrected = _memo(datasets.load_kdd99_corrected) if key == "kdd99-corrected" else None

        def kdd_tasks(seed, names):
            return datasets.kdd99_tasks(
                seed,
                ks=_known_counts(names),
                data=data(),
                corrected=corrected() if corrected is not None else False,
            )

        defaults = ("one-class", "k=1", "k=2", "k=4", "k=8")
        return _Source(key, defaults, kdd_pattern, kdd_help, kdd_tasks)

    count_pattern, count_help = r"\d+", "one-class or N (N known anomalies)"
    if key in ("higgs", "susy"):
        data = _memo(lambda: datasets.load_physics(key))

        def physics_tasks(seed, names):
            return datasets.physics_tasks(key, seed, n_known=_known_counts(names), data=data())

        return _Source(key, ("one-class", "100", "1000"), count_pattern, count_help, physics_tasks)

    path = Path(text).expanduser()
    if key.endswith((".csv", ".csv.gz")):
        if not path.is_file():
            raise FileNotFoundError(f"dataset: file {text!r} does not exist")
        kind = _uci_kind(path)
        data = _memo(lambda: datasets.load_physics(kind, path))
        name = f"{kind}-full"

        def full_tasks(seed, names):
            X, y = data()
            return datasets.physics_tasks_full(X, y, seed, n_known=_known_counts(names), name=name)

        defaults = ("one-class", "100", "1000", "10000", "1000000")
        return _Source(name, defaults, count_pattern, count_help, full_tasks)

    shipped = {}
    with contextlib.suppress(FileNotFoundError):  # no shipped sets: paths still work
        shipped = datasets.adbench_paths()
    if key.endswith(".npz") or text in shipped:
        npz = shipped.get(text, path)
        if not npz.is_file():
            raise FileNotFoundError(f"dataset: file {text!r} does not exist")
        data = _memo(lambda: datasets.load_adbench(npz))

        def adbench_tasks(seed, names):
            fractions = [0.0 if n == "one-class" else float(n[:-1]) / 100 for n in names]
            return datasets.adbench_tasks(npz, seed, fractions=fractions, data=data())

        share_pattern = r"\d+(?:\.\d+)?%"
        share_help = "one-class or P% (P percent of the train anomalies known)"
        return _Source(
            npz.stem, ("one-class", "5%", "25%"), share_pattern, share_help, adbench_tasks
        )

    raise ValueError(
        f"dataset: unknown data set {text!r}; expected kdd99, kdd99-corrected, higgs, susy, an "
        f"ADBench set ({', '.join(shipped) or 'none shipped'}), a path to an .npz file or a "
        "path to a full UCI HIGGS/SUSY .csv.gz file"
    )


def dataset_name(dataset: str | os.PathLike) -> str:
    """The name that records carry for ``dataset`` (``"kdd99"``, ``"38_thyroid"``, ...)."""
    return _resolve(dataset).name


# ------------------------------------------------------------------------------- records
def load_results(path: str | os.PathLike) -> list[dict]:
    """The records of a ``results.jsonl`` file (or of ``path/results.jsonl`` for a folder).

    A line that does not parse (the tail of a write that was cut off) is passed over. A
    missing file gives an empty list.
    """
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _append(path: Path, record: dict) -> None:
    """Appends one JSON line and forces it to disk; mends a cut-off last line first."""
    with path.open("a+b") as file:
        file.seek(0, os.SEEK_END)
        if file.tell() > 0:
            file.seek(-1, os.SEEK_END)
            if file.read(1) != b"\n":
                file.write(b"\n")
        file.write((json.dumps(record) + "\n").encode())
        file.flush()
        os.fsync(file.fileno())


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


# -------------------------------------------------------------------------------- fitting
def _applies(method: str, task_name: str) -> bool:
    """Whether ``method`` runs on a task (see the module docstring)."""
    if method in NF_METHODS:
        return not (task_name == "one-class" and NF_METHODS[method].known_only)
    detector_class = BASELINES[method]
    if task_name == "one-class":
        return not detector_class.needs_known_anomalies
    return detector_class.uses_known_anomalies


def _fit_key(method: str) -> tuple:
    """Methods with equal keys share one fit."""
    if method in NF_METHODS:
        return ("nf", NF_METHODS[method].overrides)
    return ("baseline", method)


def _make_detector(method: str, seed: int, size: Size):
    if method in NF_METHODS:
        from tfp_flowad.detector import NFADetector

        detector = NFADetector(random_state=seed, **dict(NF_METHODS[method].overrides))
    else:
        detector = BASELINES[method](random_state=seed)
    if size.epochs_scale != 1.0:
        detector = scale_training_lengths(detector, size.epochs_scale)
    return detector


def benchmark_tasks(
    dataset: str | os.PathLike,
    seeds: str | int | Iterable[int],
    tasks: str | Iterable[str] | None = None,
    size: Size | dict | None = None,
) -> Iterator:
    """The tasks ``run`` fits: ``dataset``'s ``tasks`` (its default ones for ``None``) for
    each of ``seeds``, each with at most ``size.max_train_rows`` normal training rows.

    For scripts that fit something else on exactly the benchmark's splits (the records of
    ``run`` then serve as the reference).
    """
    source = _resolve(dataset)
    size = Size.coerce(size)
    names = source.check_tasks(parse_tasks(tasks))
    for seed in parse_seeds(seeds):
        for task in source.make_tasks(seed, names):
            yield _shrink(task, size)


def _shrink(task, size: Size):
    """``task`` with at most ``size.max_train_rows`` normal training rows (all anomalies kept)."""
    limit = size.max_train_rows
    y = np.asarray(task.y_train)
    normal = np.flatnonzero(y == 0)
    if limit is None or len(normal) <= limit:
        return task
    rng = np.random.default_rng([task.seed, 20_201_912])
    keep = np.sort(np.concatenate([rng.choice(normal, limit, replace=False), np.flatnonzero(y)]))
    return dataclasses.replace(task, X_train=_rows(task.X_train, keep), y_train=y[keep])


def _rows(X, positions):
    """Rows of a DataFrame (by position) or of an array."""
    return X.iloc[positions] if hasattr(X, "iloc") else np.asarray(X)[positions]


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
    detector.decision_function(_rows(task.X_test, slice(0, 256)))  # warm-up: traces, caches
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
    density's temperature, the classifier model kept and the held-out AUCs it was chosen by)."""
    names = {
        "density_auc": "density_auc_",
        "eps": "eps_",
        "density_scale": "density_scale_",
        "density_temperature": "density_temperature_",
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
) -> list[dict]:
    """Runs ``methods`` on the tasks of ``dataset`` for ``seeds``; appends to ``results.jsonl``.

    Args:
        dataset: ``"kdd99"``, ``"kdd99-corrected"`` (KDD-99 tasks also scored on the
            ``corrected`` file), ``"higgs"``, ``"susy"`` (the samples), an ADBench set's name
            (``"38_thyroid"``), the path of an ADBench-format ``.npz`` file, or the path of a
            full UCI ``HIGGS.csv.gz`` / ``SUSY.csv.gz`` (tasks of ``physics_tasks_full``).
        methods: ``"all"``, ``"baselines"``, ``"nf"``, or method names (``METHODS``), as a list
            or a comma-separated string.
        seeds: seeds as integers or as text (``"0-4"``, ``"0,2"``).
        out_dir: folder of ``results.jsonl`` (created if missing).
        tasks: task names (``"one-class"``, ``"k=2"``, ``"1000"``, ``"5%"``), a list or a
            comma-separated string; ``None``: the data set's protocol (BENCHMARK.md).
        size: a ``Size`` (or a dict of its fields) to shrink the run; ``None``: full size.
        progress: print one line per fit to stdout.

    Returns:
        Every record of ``dataset`` in ``results.jsonl`` after the run (earlier ones included).

    Raises:
        ValueError: an unknown method, data set, task or seed, or a bad ``size`` (before any
            fit).
        FileNotFoundError: a data file that does not exist.
        RuntimeError: after all other fits are done, when some fits failed; the message lists
            them (their tracebacks were printed as they happened).
    """
    method_names = parse_methods(methods)
    seed_list = parse_seeds(seeds)
    size = Size.coerce(size)
    source = _resolve(dataset)
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
        if _applies(method, task) and (task, method, seed) not in finished
    ]
    bar = _Progress(len(plan), progress)
    if other_sizes:
        bar.note(
            f"note: {results_path} holds {source.name} records of another size "
            f"({', '.join(sorted(other_sizes))}); they are kept and not re-run"
        )
    if not plan:
        bar.note(f"{source.name}: all {len(finished)} requested fits are already in {results_path}")
    failures: list[str] = []
    for seed in seed_list:
        wanted = {(task, method) for s, task, method in plan if s == seed}
        if not wanted:
            continue
        for task in source.make_tasks(seed, sorted({t for t, _ in wanted}, key=task_order_key)):
            todo = [method for method in method_names if (task.name, method) in wanted]
            if not todo:
                continue
            task = _shrink(task, size)
            groups: dict[tuple, list[str]] = {}
            for method in todo:
                groups.setdefault(_fit_key(method), []).append(method)
            for group in groups.values():
                failures.extend(_run_group(group, task, source.name, size, results_path, bar))
    if failures:
        raise RuntimeError(f"{len(failures)} fits failed: " + "; ".join(failures))
    return [r for r in load_results(results_path) if r.get("dataset") == source.name]


def _run_group(
    methods: list[str], task, dataset: str, size: Size, results_path: Path, bar: _Progress
) -> list[str]:
    """Fits once for ``methods`` (which share a fit) and writes one record per method."""
    first = methods[0]
    bar.start(dataset, task.name, first, task.seed)
    try:
        detector = _make_detector(first, task.seed, size)
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
            score = NF_METHODS[method].score_kind if method in NF_METHODS else None
            if score is not None:
                detector.score_kind = score
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
            if len(methods) > 1:
                record["shared_fit"] = list(methods)
            _append(results_path, record)
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
