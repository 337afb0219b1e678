"""The benchmark's tasks: data sets by name or path, their tasks per seed, and run sizes.

The splits and tasks are those of the protocol in ``docs/BENCHMARK.md``.

``benchmark_tasks(dataset, seeds, tasks, size, suite)`` yields the tasks the runner fits
(``tfp_flowad.datasets``' ``Task``: training rows, test rows, extra test sets), one per task
name and seed. Data sets: ``"kdd99"``, ``"kdd99-corrected"`` (KDD-99 tasks also scored on the
``corrected`` file), ``"higgs"``, ``"susy"`` (the samples), an ADBench set's name
(``"38_thyroid"``), the path of an ADBench-format ``.npz`` file, or the path of a full UCI
``HIGGS.csv.gz`` / ``SUSY.csv.gz``. ``Size`` shrinks a run (fewer normal training rows,
shorter training) for tests and quick looks.

Suites (``SUITES``): ``"protocol"``, the tasks of ``docs/BENCHMARK.md``; ``"dev"``, the
development suite of ``tfp_flowad.datasets.dev_suite_tasks`` on ADBench sets (the protocol's
tasks, small samples, synthetic anomalies, the literature's one-class task; other data sets keep
their protocol's tasks). ``task_group`` tells which part of the suite a task name belongs to.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfp_flowad import datasets
from tfp_flowad.datasets.literature import LITERATURE_TASK
from tfp_flowad.datasets.suites import DEV_SUITE_TASKS, DEV_TASK_PATTERN
from tfp_flowad.datasets.synthetic import SYNTHETIC_KINDS

__all__ = [
    "SUITES",
    "TASK_GROUPS",
    "Size",
    "benchmark_tasks",
    "dataset_name",
    "is_one_class_task",
    "parse_seeds",
    "parse_tasks",
    "DataSource",
    "resolve_dataset",
    "rows_at",
    "shrink_task",
    "task_group",
    "task_order_key",
]

#: the task suites a run can take its tasks from (see the module docstring).
SUITES: tuple[str, ...] = ("protocol", "dev")

#: the parts of the development suite, in table order (``task_group``).
TASK_GROUPS: tuple[str, ...] = ("protocol", "small samples", "synthetic", "literature")

_SMALL_SAMPLE = re.compile(r"n(\d+)(?:-(\d+(?:\.\d+)?)%)?")


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


def task_group(name: str) -> str:
    """The part of the suite a task name belongs to (one of ``TASK_GROUPS``): ``"small
    samples"`` (``n200``, ``n200-5%``), ``"synthetic"`` (``synthetic-local``), ``"literature"``
    (``literature-oc``), else ``"protocol"`` (``one-class``, ``5%``, ``k=2``, ``1000``)."""
    if _SMALL_SAMPLE.fullmatch(name):
        return "small samples"
    if name.startswith("synthetic-"):
        return "synthetic"
    if name == LITERATURE_TASK:
        return "literature"
    return "protocol"


def is_one_class_task(name: str) -> bool:
    """Whether the task named ``name`` has no known anomalies: ``one-class``, and the
    development suite's ``nN`` (no share), ``synthetic-<kind>`` and ``literature-oc``."""
    group = task_group(name)
    if group == "small samples":
        return _SMALL_SAMPLE.fullmatch(name).group(2) is None
    return name == "one-class" or group in ("synthetic", "literature")


def task_order_key(name: str) -> tuple:
    """Sort key of task names: the protocol's tasks (``one-class`` first, then by the number of
    known anomalies), then small samples (by rows, then share), synthetic anomalies (in the
    order of ``SYNTHETIC_KINDS``) and the literature's task."""
    group = task_group(name)
    rank = TASK_GROUPS.index(group)
    if group == "small samples":
        rows, share = _SMALL_SAMPLE.fullmatch(name).groups()
        return (rank, float(rows), float(share or 0), name)
    if group == "synthetic":
        kind = name.removeprefix("synthetic-")
        position = SYNTHETIC_KINDS.index(kind) if kind in SYNTHETIC_KINDS else math.inf
        return (rank, float(position), 0.0, name)
    if name == "one-class" or group == "literature":
        return (rank, 0.0, 0.0, name)
    match = re.search(r"(\d+(?:\.\d+)?)", name)
    return (rank, float(match.group(1)) if match else math.inf, 0.0, name)


# ----------------------------------------------------------------------------- data sets
@dataclass
class DataSource:
    """A data set: its recorded name, default tasks and a task factory."""

    name: str
    default_tasks: tuple[str, ...]
    task_pattern: str  # regex of the task names it accepts (besides "one-class")
    task_help: str
    make_tasks: Callable[[int, list[str]], Iterable]  # (seed, task names) -> tasks

    def check_tasks(self, names: list[str] | None) -> list[str]:
        """``names`` in task order (``None``: the default tasks).

        Raises:
            ValueError: a name that is not a task of this data set.
        """
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


def resolve_dataset(dataset: str | os.PathLike, suite: str = "protocol") -> DataSource:
    """The ``DataSource`` of a data set given by name or path (the data loads lazily).

    ``suite`` (one of ``SUITES``) chooses an ADBench set's tasks: ``"protocol"`` (``one-class``,
    ``5%``, ``25%``; any ``P%``) or ``"dev"`` (``DEV_SUITE_TASKS``; any name of
    ``DEV_TASK_PATTERN``). KDD-99, HIGGS and SUSY have their protocol's tasks in both.

    Raises:
        ValueError: an unknown data set or suite.
        FileNotFoundError: a data file that does not exist.
    """
    if suite not in SUITES:
        raise ValueError(f"suite: unknown suite {suite!r}; expected one of {', '.join(SUITES)}")
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
        return DataSource(key, defaults, kdd_pattern, kdd_help, kdd_tasks)

    count_pattern, count_help = r"\d+", "one-class or N (N known anomalies)"
    if key in ("higgs", "susy"):
        data = _memo(lambda: datasets.load_physics(key))

        def physics_tasks(seed, names):
            return datasets.physics_tasks(key, seed, n_known=_known_counts(names), data=data())

        return DataSource(
            key, ("one-class", "100", "1000"), count_pattern, count_help, physics_tasks
        )

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
        return DataSource(name, defaults, count_pattern, count_help, full_tasks)

    shipped = {}
    with contextlib.suppress(FileNotFoundError):  # no shipped sets: paths still work
        shipped = datasets.adbench_paths()
    if key.endswith(".npz") or text in shipped:
        npz = shipped.get(text, path)
        if not npz.is_file():
            raise FileNotFoundError(f"dataset: file {text!r} does not exist")
        data = _memo(lambda: datasets.load_adbench(npz))

        def adbench_tasks(seed, names):
            return datasets.dev_suite_tasks(npz, seed, names, data=data())

        if suite == "dev":
            dev_help = (
                "one-class, P%, nN, nN-P%, synthetic-<"
                + "|".join(SYNTHETIC_KINDS)
                + f"> or {LITERATURE_TASK} (the development suite)"
            )
            return DataSource(npz.stem, DEV_SUITE_TASKS, DEV_TASK_PATTERN, dev_help, adbench_tasks)
        share_pattern = r"\d+(?:\.\d+)?%"
        share_help = "one-class or P% (P percent of the train anomalies known)"
        return DataSource(
            npz.stem, ("one-class", "5%", "25%"), share_pattern, share_help, adbench_tasks
        )

    raise ValueError(
        f"dataset: unknown data set {text!r}; expected kdd99, kdd99-corrected, higgs, susy, an "
        f"ADBench set ({', '.join(shipped) or 'none shipped'}), a path to an .npz file or a "
        "path to a full UCI HIGGS/SUSY .csv.gz file"
    )


def dataset_name(dataset: str | os.PathLike) -> str:
    """The name that records carry for ``dataset`` (``"kdd99"``, ``"38_thyroid"``, ...)."""
    return resolve_dataset(dataset).name


def benchmark_tasks(
    dataset: str | os.PathLike,
    seeds: str | int | Iterable[int],
    tasks: str | Iterable[str] | None = None,
    size: Size | dict | None = None,
    suite: str = "protocol",
) -> Iterator:
    """The tasks ``run`` fits: ``dataset``'s ``tasks`` (those of ``suite`` for ``None``) for
    each of ``seeds``, each with at most ``size.max_train_rows`` normal training rows.

    For scripts that fit something else on exactly the benchmark's splits (the records of
    ``run`` then serve as the reference).
    """
    source = resolve_dataset(dataset, suite)
    size = Size.coerce(size)
    names = source.check_tasks(parse_tasks(tasks))
    for seed in parse_seeds(seeds):
        for task in source.make_tasks(seed, names):
            yield shrink_task(task, size)


def shrink_task(task, size: Size):
    """``task`` with at most ``size.max_train_rows`` normal training rows (all anomalies kept).

    Only the training rows change: the test set and the extra test sets stay whole."""
    limit = size.max_train_rows
    y = np.asarray(task.y_train)
    normal = np.flatnonzero(y == 0)
    if limit is None or len(normal) <= limit:
        return task
    rng = np.random.default_rng([task.seed, 20_201_912])
    keep = np.sort(np.concatenate([rng.choice(normal, limit, replace=False), np.flatnonzero(y)]))
    return dataclasses.replace(task, X_train=rows_at(task.X_train, keep), y_train=y[keep])


def rows_at(X, positions):
    """Rows of a DataFrame (by position) or of an array."""
    return X.iloc[positions] if hasattr(X, "iloc") else np.asarray(X)[positions]
