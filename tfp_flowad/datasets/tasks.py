"""The evaluation tasks of the benchmark protocol (BENCHMARK.md), one :class:`Task` per cell.

Every generator is a pure function of its data and ``seed``. The random draws come from
``rng = np.random.default_rng(seed)`` (and, for the stratified splits, scikit-learn's
``train_test_split(..., random_state=seed)``) in the order documented on each generator. The
draws do not depend on which tasks are asked for: the known anomalies of a task are the first
``k`` (or ``n``) entries of one random ordering, so the tasks of a seed are nested (the classes of
``k=2`` include the class of ``k=1``; the 100 signal rows are among the 1000) and asking for
``ks=(4,)`` gives the same ``k=4`` task as asking for ``ks=(0, 1, 2, 4, 8)``.

Rows of ``X_train`` are shuffled (by ``np.random.default_rng([seed, key])`` with ``key`` the
task's ``k``, ``n`` or ``round(fraction * 1e6)``), so a consumer that holds out the first rows
for validation does not get one block of the file. DataFrames keep the index of the loaded data,
so a row's identity can be traced back to it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tfp_flowad.datasets.kdd99 import KDD99_NORMAL, load_kdd99, load_kdd99_corrected
from tfp_flowad.datasets.physics import UCI_TEST_ROWS, load_physics

__all__ = [
    "KDD99_NORMAL_TEST_SHARE",
    "Task",
    "adbench_tasks",
    "kdd99_tasks",
    "physics_tasks",
    "physics_tasks_full",
]

#: Share of KDD-99 normal rows that go to the test set (the rest is the training set).
KDD99_NORMAL_TEST_SHARE = 0.2

ArrayOrFrame = pd.DataFrame | np.ndarray
Labelled = tuple[ArrayOrFrame, np.ndarray]


@dataclass(frozen=True, eq=False)
class Task:
    """One train/test problem of the benchmark.

    Attributes:
        dataset: data set name (``"kdd99"``, ``"higgs"``, ``"susy"``, an ADBench stem such as
            ``"6_cardio"``, or the name given to :func:`physics_tasks_full`).
        name: task name: ``"one-class"``, ``"k=2"``, ``"1000"``, ``"5%"``, ...
        seed: the seed that fixed the split and the known anomalies.
        X_train: training rows (DataFrame for KDD-99 and HIGGS/SUSY, ndarray for ADBench).
        y_train: ``int64``, 0 = normal, 1 = known anomaly.
        X_test: test rows.
        y_test: ``int64``, 0 = normal, 1 = anomaly.
        extra_tests: further test sets ``{name: (X, y)}``, e.g. KDD-99's ``"unseen"`` and
            ``"corrected"``.
        known_classes: the anomaly classes the known anomalies come from (KDD-99 attack names;
            ``("signal",)`` / ``("anomaly",)`` elsewhere); empty for a one-class task.
    """

    dataset: str
    name: str
    seed: int
    X_train: ArrayOrFrame = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    X_test: ArrayOrFrame = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    extra_tests: dict[str, Labelled] = field(default_factory=dict, repr=False)
    known_classes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for part, X, y in [
            ("train", self.X_train, self.y_train),
            ("test", self.X_test, self.y_test),
            *[(name, X, y) for name, (X, y) in self.extra_tests.items()],
        ]:
            if len(X) != len(y):
                raise ValueError(f"Task {self.name!r}: X_{part} has {len(X)} rows, y {len(y)}")

    @property
    def n_known(self) -> int:
        """Number of known anomalies in the training set."""
        return int(np.sum(self.y_train))

    def __repr__(self) -> str:
        n_train = len(self.y_train)
        return (
            f"Task(dataset={self.dataset!r}, name={self.name!r}, seed={self.seed}, "
            f"train={n_train - self.n_known} normal + {self.n_known} known anomalies, "
            f"test={len(self.y_test)} rows ({int(np.sum(self.y_test))} anomalies), "
            f"extra_tests={sorted(self.extra_tests)}, known_classes={self.known_classes})"
        )


def _stratified_split(y: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``train_test_split(arange(len(y)), test_size=..., random_state=seed, stratify=y)``."""
    from sklearn.model_selection import train_test_split  # imported here: ~1 s to load

    train_idx, test_idx = train_test_split(
        np.arange(len(y)), test_size=test_size, random_state=seed, stratify=y
    )
    return np.asarray(train_idx), np.asarray(test_idx)


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _take(X: ArrayOrFrame, positions: np.ndarray) -> ArrayOrFrame:
    if isinstance(X, pd.DataFrame):
        return X.iloc[positions]
    return np.asarray(X)[positions]


def _shuffled(positions: np.ndarray, seed: int, key: int) -> np.ndarray:
    return positions[np.random.default_rng([seed, key]).permutation(len(positions))]


def _binary_labels(y: np.ndarray | pd.Series, what: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{what}: y must be 1-D, got shape {y.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"{what}: y must hold 0/1 labels, got {np.unique(y)[:5].tolist()}")
    return y.astype(np.int64)


def _check_data(data: object, what: str) -> tuple[ArrayOrFrame, np.ndarray | pd.Series]:
    if not isinstance(data, tuple) or len(data) != 2:
        raise ValueError(f"{what} must be a pair (X, y), got {type(data).__name__}")
    X, y = data
    if len(X) != len(y):
        raise ValueError(f"{what}: X has {len(X)} rows but the labels have {len(y)}")
    return X, y


def kdd99_tasks(
    seed: int,
    ks: Sequence[int] = (0, 1, 2, 4, 8),
    data: tuple[pd.DataFrame, pd.Series] | None = None,
    corrected: bool | tuple[pd.DataFrame, pd.Series] = False,
) -> list[Task]:
    """KDD-99 tasks for one seed: "one-class" (``k=0``) and ``k`` known attack classes.

    Protocol (BENCHMARK.md, KDD-99): normal rows are split 80% train / 20% test; the rows of each
    attack class 50% "known pool" / 50% test (``n // 2`` rows to the pool, so a class with a
    single row goes to the test); task ``k`` trains on the train normals plus the pool rows of
    ``k`` attack classes chosen at random among those with pool rows. The test set is the test
    normals plus the test rows of all attack classes.

    Draw order, with ``rng = np.random.default_rng(seed)`` and row positions in file order:

    1. ``rng.permutation(n_normal)`` over the normal rows; the first
       ``n_normal - round(0.2 * n_normal)`` are train, the rest test.
    2. For each attack class in sorted name order: ``rng.permutation(n_class)`` over its rows;
       the first ``n_class // 2`` form the known pool, the rest go to the test.
    3. ``rng.permutation(n_eligible)`` over the sorted classes with pool rows; task ``k`` chooses
       the first ``k`` (so the choices are nested across ``k``).
    4. ``rng.permutation(n_test)`` orders the test rows (test normals, then each class's test
       rows in sorted class order, before the permutation).

    The training rows of task ``k`` (train normals, then the pools of its classes) are then
    shuffled by ``np.random.default_rng([seed, k])``. Steps 1-4 depend on the seed only, so every
    ``k`` of a seed shares the same split.

    Args:
        seed: non-negative integer.
        ks: numbers of known attack classes; 0 is the one-class task.
        data: a pre-loaded ``(X, labels)`` from :func:`~tfp_flowad.datasets.load_kdd99` (saves
            reading the file once per seed); ``None`` loads the packaged, deduplicated 10% file.
        corrected: also test on the deduplicated ``corrected`` file: ``True`` loads it with
            :func:`~tfp_flowad.datasets.load_kdd99_corrected`, a pre-loaded ``(X, labels)`` is
            used as is (the same objects are shared by every task).

    Returns:
        One :class:`Task` per ``k``, named ``"one-class"``, ``"k=1"``, ``"k=2"``, ...; the tasks
        share ``X_test`` / ``y_test``. ``extra_tests["unseen"]`` holds the test normals plus the
        test rows of the classes not chosen (for ``k=0`` it equals the full test);
        ``extra_tests["corrected"]`` (when asked for) the corrected file, label
        ``normal`` -> 0 and every attack -> 1. ``known_classes`` lists the chosen classes in the
        order chosen.

    Raises:
        ValueError: a bad seed, a ``k`` that is negative or larger than the number of attack
            classes with pool rows, data without normal rows, or X and labels of different length.

    Examples:
        >>> tasks = kdd99_tasks(0, ks=(0, 2))
        >>> [task.name for task in tasks], len(tasks[1].known_classes)
        (['one-class', 'k=2'], 2)
    """
    seed = _check_seed(seed)
    X, labels = load_kdd99() if data is None else _check_data(data, "data")
    label_values = np.asarray(labels).astype(str)
    is_normal = label_values == KDD99_NORMAL
    if not is_normal.any():
        raise ValueError(f"data holds no {KDD99_NORMAL!r} rows")
    rng = np.random.default_rng(seed)

    # 1. normal rows: 80% train / 20% test.
    normal_positions = np.flatnonzero(is_normal)
    n_normal_test = int(round(KDD99_NORMAL_TEST_SHARE * len(normal_positions)))
    normal_order = normal_positions[rng.permutation(len(normal_positions))]
    train_normals = normal_order[: len(normal_order) - n_normal_test]
    test_normals = normal_order[len(normal_order) - n_normal_test :]

    # 2. attack classes: 50% known pool / 50% test (a lone row goes to the test).
    classes = sorted(set(label_values[~is_normal].tolist()))
    pools: dict[str, np.ndarray] = {}
    test_parts = [test_normals]
    for name in classes:
        positions = np.flatnonzero(label_values == name)
        positions = positions[rng.permutation(len(positions))]
        n_pool = len(positions) // 2
        pools[name] = positions[:n_pool]
        test_parts.append(positions[n_pool:])

    # 3. one random order of the classes with pool rows; task k takes the first k.
    eligible = [name for name in classes if len(pools[name])]
    class_order = [eligible[i] for i in rng.permutation(len(eligible))]
    ks = [int(k) for k in ks]
    for k in ks:
        if k < 0 or k > len(eligible):
            raise ValueError(
                f"ks holds k={k}, but only {len(eligible)} attack classes have known-pool rows"
            )

    # 4. test rows in random order.
    test_positions = np.concatenate(test_parts)
    test_positions = test_positions[rng.permutation(len(test_positions))]
    test_labels = label_values[test_positions]
    X_test = _take(X, test_positions)
    y_test = (test_labels != KDD99_NORMAL).astype(np.int64)

    extra_shared: dict[str, Labelled] = {}
    if corrected is not False:
        Xc, labels_c = (
            load_kdd99_corrected() if corrected is True else _check_data(corrected, "corrected")
        )
        yc = (np.asarray(labels_c).astype(str) != KDD99_NORMAL).astype(np.int64)
        extra_shared["corrected"] = (Xc, yc)

    tasks = []
    for k in ks:
        chosen = tuple(class_order[:k])
        train_positions = np.concatenate([train_normals, *(pools[name] for name in chosen)])
        train_positions = _shuffled(train_positions, seed, k)
        y_train = (label_values[train_positions] != KDD99_NORMAL).astype(np.int64)
        unseen = ~np.isin(test_labels, chosen)
        extra = {"unseen": (_take(X_test, np.flatnonzero(unseen)), y_test[unseen])}
        extra.update(extra_shared)
        tasks.append(
            Task(
                dataset="kdd99",
                name="one-class" if k == 0 else f"k={k}",
                seed=seed,
                X_train=_take(X, train_positions),
                y_train=y_train,
                X_test=X_test,
                y_test=y_test,
                extra_tests=extra,
                known_classes=chosen,
            )
        )
    return tasks


def _known_anomaly_tasks(
    dataset: str,
    seed: int,
    X: ArrayOrFrame,
    y: np.ndarray,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    counts: list[tuple[str, int, int]],
    known_class: str,
) -> Iterator[Task]:
    """Tasks from a fixed split: train normals + the first ``n`` of a random order of the train
    anomalies (drawn with ``default_rng(seed)``), for each ``(name, n, shuffle_key)``."""
    rng = np.random.default_rng(seed)
    train_normals = train_idx[y[train_idx] == 0]
    train_anomalies = train_idx[y[train_idx] == 1]
    anomaly_order = train_anomalies[rng.permutation(len(train_anomalies))]
    X_test, y_test = _take(X, test_idx), y[test_idx]
    for name, n, key in counts:
        if n > len(anomaly_order):
            warnings.warn(
                f"{dataset}: skipping task {name!r}: it needs {n} known anomalies but the "
                f"training split holds only {len(anomaly_order)}",
                UserWarning,
                stacklevel=2,
            )
            continue
        train_positions = _shuffled(np.concatenate([train_normals, anomaly_order[:n]]), seed, key)
        yield Task(
            dataset=dataset,
            name=name,
            seed=seed,
            X_train=_take(X, train_positions),
            y_train=y[train_positions],
            X_test=X_test,
            y_test=y_test,
            extra_tests={},
            known_classes=(known_class,) if n else (),
        )


def _check_counts(n_known: Sequence[int]) -> list[tuple[str, int, int]]:
    counts = []
    for n in n_known:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n_known must hold non-negative integers, got {n!r}")
        counts.append(("one-class" if n == 0 else str(int(n)), int(n), int(n)))
    return counts


def physics_tasks(
    name: str,
    seed: int,
    n_known: Sequence[int] = (0, 100, 1000),
    data: tuple[pd.DataFrame, np.ndarray] | None = None,
) -> list[Task]:
    """HIGGS / SUSY tasks for one seed on the sample (or any table given as ``data``).

    Protocol (BENCHMARK.md, HIGGS and SUSY): stratified 50% train / 50% test; task ``n`` trains
    on all train background rows (label 0) plus ``n`` signal rows drawn at random from the train
    signal; the test is the whole test half.

    Draw order: ``train_test_split(arange(n_rows), test_size=0.5, random_state=seed,
    stratify=y)``; then ``np.random.default_rng(seed).permutation`` over the train signal rows
    (in split order), of which task ``n`` takes the first ``n``; its training rows (background,
    then the signal) are shuffled by ``np.random.default_rng([seed, n])``.

    Args:
        name: ``"higgs"`` or ``"susy"``.
        seed: non-negative integer.
        n_known: numbers of known signal rows; 0 is the one-class task. A number larger than the
            train signal is skipped with a ``UserWarning`` (no error).
        data: a pre-loaded ``(X, y)``; ``None`` loads the sample with
            :func:`~tfp_flowad.datasets.load_higgs` / :func:`~tfp_flowad.datasets.load_susy`.

    Returns:
        Tasks named ``"one-class"``, ``"100"``, ``"1000"``, ... sharing ``X_test`` / ``y_test``.

    Raises:
        ValueError: unknown ``name``, bad seed or ``n_known``, labels other than 0/1.
    """
    key = str(name).lower()
    if key not in ("higgs", "susy"):
        raise ValueError(f"name must be 'higgs' or 'susy', got {name!r}")
    seed = _check_seed(seed)
    counts = _check_counts(n_known)
    X, y = load_physics(key) if data is None else _check_data(data, "data")
    y = _binary_labels(y, key)
    train_idx, test_idx = _stratified_split(y, test_size=0.5, seed=seed)
    return list(
        _known_anomaly_tasks(key, seed, X, y, train_idx, test_idx, counts, known_class="signal")
    )


def physics_tasks_full(
    X: pd.DataFrame | np.ndarray,
    y: np.ndarray,
    seed: int,
    n_known: Sequence[int] = (0, 100, 1000, 10_000, 1_000_000),
    name: str = "physics-full",
    n_test: int = UCI_TEST_ROWS,
) -> Iterator[Task]:
    """Tasks on a full UCI HIGGS/SUSY table, as in the paper: the last 500,000 rows are the test.

    Task ``n`` trains on all background rows before the test block plus ``n`` signal rows from
    there, chosen by ``np.random.default_rng(seed).permutation`` over those signal rows (task
    ``n`` takes the first ``n``); its training rows are shuffled by
    ``np.random.default_rng([seed, n])``.

    The tasks are produced lazily, one at a time: each training set of the full HIGGS file is a
    copy of about 6 million rows, so keeping all of them at once could exhaust memory. Wrap the
    call in ``list(...)`` when that is not a concern.

    Args:
        X: the features in file order (from :func:`~tfp_flowad.datasets.load_higgs` /
            :func:`~tfp_flowad.datasets.load_susy` given the UCI file).
        y: labels in file order, 1 = signal.
        seed: non-negative integer.
        n_known: numbers of known signal rows; 0 is the one-class task. A number larger than the
            available signal is skipped with a ``UserWarning``.
        name: the ``dataset`` of the tasks, e.g. ``"higgs-full"``.
        n_test: size of the test block at the end.

    Returns:
        An iterator over tasks named ``"one-class"``, ``"100"``, ``"1000"``, ``"10000"``,
        ``"1000000"``.

    Raises:
        ValueError: bad seed, ``n_known`` or ``n_test``, labels other than 0/1, lengths that
            disagree, or not more than ``n_test`` rows.
    """
    seed = _check_seed(seed)
    counts = _check_counts(n_known)
    X, y = _check_data((X, y), "X, y")
    y = _binary_labels(y, name)
    if isinstance(n_test, bool) or not isinstance(n_test, (int, np.integer)) or n_test < 1:
        raise ValueError(f"n_test must be a positive integer, got {n_test!r}")
    if len(y) <= n_test:
        raise ValueError(
            f"need more than n_test={n_test} rows, got {len(y)}; the full UCI files have "
            "11,000,000 (HIGGS) and 5,000,000 (SUSY) rows"
        )
    cut = len(y) - int(n_test)
    # A generator, validated above: the tasks are built one at a time as they are requested.
    return _known_anomaly_tasks(
        name, seed, X, y, np.arange(cut), np.arange(cut, len(y)), counts, known_class="signal"
    )


def _fraction_name(fraction: float) -> str:
    return "one-class" if fraction == 0 else f"{fraction * 100:g}%"


def adbench_tasks(
    path_or_name: str | os.PathLike,
    seed: int,
    fractions: Sequence[float] = (0.0, 0.05, 0.25),
    data: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[Task]:
    """Tasks on an ADBench-format set for one seed.

    Protocol (BENCHMARK.md, ADBench-format sets): stratified 70% train / 30% test; task ``f``
    trains on the train normals plus ``max(1, round(f * n))`` of the ``n`` train anomalies (none
    for ``f = 0``); the other train anomalies are dropped. The test is the whole test part.

    Draw order: ``train_test_split(arange(n_rows), test_size=0.3, random_state=seed,
    stratify=y)``; then ``np.random.default_rng(seed).permutation`` over the train anomalies (in
    split order), of which each task takes the first ones; its training rows are shuffled by
    ``np.random.default_rng([seed, round(f * 1e6)])``.

    Args:
        path_or_name: a shipped set's name (``"6_cardio"``, see
            :func:`~tfp_flowad.datasets.adbench_paths`) or the path of an ``.npz`` file.
        seed: non-negative integer.
        fractions: shares of the train anomalies that are known, each in ``[0, 1]``.
        data: a pre-loaded ``(X, y)``; the file is then not read (``path_or_name`` only names
            the data set).

    Returns:
        Tasks named ``"one-class"``, ``"5%"``, ``"25%"``, ... with ``X`` as ``ndarray``.

    Raises:
        FileNotFoundError: unknown name or missing file.
        ValueError: a bad file (see :func:`~tfp_flowad.datasets.load_adbench`), seed or fraction.
    """
    from tfp_flowad.datasets.sources import adbench_source, adbench_split  # they use this module

    seed = _check_seed(seed)
    dataset, X, y = adbench_source(path_or_name, data)
    train_idx, test_idx = adbench_split(y, seed)
    n_train_anomalies = int(y[train_idx].sum())
    counts = []
    for fraction in fractions:
        fraction = float(fraction)
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fractions must lie in [0, 1], got {fraction!r}")
        n = 0 if fraction == 0 else max(1, round(fraction * n_train_anomalies))
        counts.append((_fraction_name(fraction), n, int(round(fraction * 1e6))))
    return list(
        _known_anomaly_tasks(
            dataset, seed, X, y, train_idx, test_idx, counts, known_class="anomaly"
        )
    )
