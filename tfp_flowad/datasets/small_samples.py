"""ADBench tasks with the training normal rows drawn down to a small sample.

A task ``(n, f)`` is the ADBench task of fraction ``f`` (:func:`~tfp_flowad.datasets.adbench_tasks`)
with its training part drawn down to ``n`` normal rows; the test part is left whole.

Rules, for a seed with ``m`` train normal rows and ``a`` train anomalies in the protocol's split
(:func:`~tfp_flowad.datasets.adbench_split`):

* normal rows: ``np.random.default_rng([seed, SMALL_SAMPLE_SEED_KEY]).permutation(m)`` orders
  the train normal rows (in split order); task ``n`` takes the first ``n``, so the samples of a
  seed are nested (the 50 rows are among the 200, which are among the 1,000).
* known anomalies: the training part is drawn down as a whole, the anomalies in the proportion
  of the normal rows, and ``f`` of those are known: ``k = max(1, round(f * a * n / m))`` for
  ``f > 0`` (none for ``f = 0``). They are the first ``k`` of the ordering of the train
  anomalies that :func:`~tfp_flowad.datasets.adbench_tasks` uses for the same seed, so they are
  among the known anomalies of the full task of the same ``f``. Known anomalies thus never
  outnumber the normal rows as they would if the full task's count were kept beside 50 rows.
* With 50 normal rows a training part holds ``f * a * 50 / m`` known anomalies, below one on
  most shipped sets for both 5% and 25%; the floor of one would make the two tasks one and the
  same, so :data:`SMALL_SAMPLE_TASKS` runs 50 rows one-class only (the rule still builds
  ``(50, f)`` when asked).
* training rows (the normal sample, then the known anomalies) are shuffled by
  ``np.random.default_rng([seed, n * 1_000_000 + round(f * 1e6)])``.
* test: the whole test part of the split, as in the ADBench tasks.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

import numpy as np

from tfp_flowad.datasets.sources import adbench_source, adbench_split
from tfp_flowad.datasets.tasks import Task, _check_seed, _fraction_name, _known_anomaly_tasks

__all__ = [
    "SMALL_SAMPLE_SEED_KEY",
    "SMALL_SAMPLE_TASKS",
    "small_sample_name",
    "small_sample_tasks",
]

#: The ``(normal rows, known fraction)`` pairs of the development suite.
SMALL_SAMPLE_TASKS: tuple[tuple[int, float], ...] = (
    (50, 0.0),
    (200, 0.0),
    (200, 0.05),
    (200, 0.25),
    (1000, 0.0),
    (1000, 0.05),
    (1000, 0.25),
)

#: The second entry of the seed sequence that orders the train normal rows.
SMALL_SAMPLE_SEED_KEY = 50_200


def small_sample_name(n: int, fraction: float) -> str:
    """``"n200"`` for one-class, ``"n200-5%"`` with 5% known anomalies."""
    return f"n{n}" if fraction == 0 else f"n{n}-{_fraction_name(fraction)}"


def _check_pairs(pairs: Sequence[tuple[int, float]]) -> list[tuple[int, float]]:
    checked = []
    for pair in pairs:
        n, fraction = pair
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"normal rows must be positive integers, got {n!r}")
        if not 0.0 <= float(fraction) <= 1.0:
            raise ValueError(f"fractions must lie in [0, 1], got {fraction!r}")
        checked.append((int(n), float(fraction)))
    return checked


def small_sample_tasks(
    path_or_name: str | os.PathLike,
    seed: int,
    tasks: Sequence[tuple[int, float]] = SMALL_SAMPLE_TASKS,
    data: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[Task]:
    """Tasks on an ADBench-format set with ``n`` training normal rows (rules: module doc).

    Args:
        path_or_name: a shipped set's name (``"6_cardio"``) or the path of an ``.npz`` file.
        seed: non-negative integer.
        tasks: ``(n, f)`` pairs: ``n`` normal training rows, ``f`` the known share in ``[0, 1]``.
        data: a pre-loaded ``(X, y)``; ``path_or_name`` then only names the set.

    Returns:
        Tasks in the order of ``tasks``, named by :func:`small_sample_name` (``"n50"``,
        ``"n200-5%"``, ...); tasks of the same ``n`` share ``X_test``. A pair whose ``n`` exceeds
        the train normal rows, or that needs known anomalies the split lacks, is skipped with a
        ``UserWarning``.

    Raises:
        FileNotFoundError: unknown name or missing file.
        ValueError: a bad file, seed, row count or fraction.
    """
    seed = _check_seed(seed)
    pairs = _check_pairs(tasks)
    dataset, X, y = adbench_source(path_or_name, data)
    train_idx, test_idx = adbench_split(y, seed)
    train_normals = train_idx[y[train_idx] == 0]
    train_anomalies = train_idx[y[train_idx] == 1]
    m, a = len(train_normals), len(train_anomalies)
    rng = np.random.default_rng([seed, SMALL_SAMPLE_SEED_KEY])
    normal_order = train_normals[rng.permutation(m)]

    built: dict[str, Task] = {}
    for n in dict.fromkeys(n for n, _ in pairs):
        if n > m:
            warnings.warn(
                f"{dataset}: skipping the tasks of {n} normal rows: the training split holds "
                f"only {m}",
                UserWarning,
                stacklevel=2,
            )
            continue
        counts = [
            (
                small_sample_name(n, f),
                0 if f == 0 else max(1, round(f * a * n / m)),
                n * 1_000_000 + round(f * 1e6),
            )
            for size, f in pairs
            if size == n
        ]
        # The train anomalies keep their split order: _known_anomaly_tasks orders them the way
        # adbench_tasks does.
        positions = np.concatenate([normal_order[:n], train_anomalies])
        for task in _known_anomaly_tasks(
            dataset, seed, X, y, positions, test_idx, counts, known_class="anomaly"
        ):
            built[task.name] = task
    return [built[name] for name in (small_sample_name(n, f) for n, f in pairs) if name in built]
