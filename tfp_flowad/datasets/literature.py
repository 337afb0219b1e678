"""The literature's one-class protocol on ADBench-format sets, and its published figures.

The largest published one-class table on ADBench's classical sets (Livernoche, Jain, Hezaveh,
Ravanbakhsh, "On Diffusion Modeling for Anomaly Detection", ICLR 2024, Table 1) uses a split of
its own. Its rules, per set and seed (reimplemented here from their description):

1. a set of fewer than :data:`LITERATURE_MIN_ROWS` rows is drawn up to that many rows with
   replacement: ``np.random.RandomState(seed).choice(n_rows, 1000, replace=True)`` (the draw
   of ``np.random.seed(seed)`` then ``np.random.choice``). Test rows can then repeat training
   rows, which favours detectors that memorise the training rows;
2. a set of more than :data:`LITERATURE_MAX_ROWS` rows is drawn down to that many without
   replacement: ``np.random.RandomState(seed).choice(n_rows, 50_000, replace=False)``;
3. the rows keep the order they then have (the draw's order, or the file's); the first
   ``round(0.5 * n_normal)`` normal rows (Python's ``round``) are the training set, the other
   normal rows and then every anomaly the test set; no labelled anomaly is trained on;
4. ``StandardScaler`` fitted on the training rows is applied to both parts. (The published
   protocol then replaces NaN by column means; :func:`~tfp_flowad.datasets.load_adbench`
   rejects non-finite values, so no NaN can arise here.)

The seed changes the draws of steps 1-2 only: a set of 1,000 to 50,000 rows has the same split
for every seed.

The cap of step 2 is the one the authors' experiment script passes to its data generator
(50,000 rows), not the generator's own default of 10,000: the table gives a spread of zero over
the seeds for the deterministic detectors (kNN, LOF, ...) on magic.gamma, mammography and
shuttle, which only an unchanged split of those 11,000 to 50,000-row sets can give.
(``max_rows=10_000`` builds the other reading.)

:func:`literature_table` reads the published ROC AUC (mean over 5 seeds) of the table's 26
methods on the ten shipped sets from ``benchmarks/literature/dte_one_class.csv`` of the source
repository.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from tfp_flowad.datasets.sources import adbench_source
from tfp_flowad.datasets.tasks import Task, _check_seed

__all__ = [
    "LITERATURE_MAX_ROWS",
    "LITERATURE_MIN_ROWS",
    "LITERATURE_TASK",
    "literature_table",
    "literature_task",
]

#: A smaller set is drawn up to this many rows, with replacement.
LITERATURE_MIN_ROWS = 1000

#: A larger set is drawn down to this many rows, without replacement.
LITERATURE_MAX_ROWS = 50_000

#: Name of the protocol's task.
LITERATURE_TASK = "literature-oc"


def literature_task(
    path_or_name: str | os.PathLike,
    seed: int,
    data: tuple[np.ndarray, np.ndarray] | None = None,
    max_rows: int = LITERATURE_MAX_ROWS,
) -> Task:
    """The literature's one-class task on an ADBench-format set (rules: module doc).

    Args:
        path_or_name: a shipped set's name (``"6_cardio"``) or the path of an ``.npz`` file.
        seed: non-negative integer.
        data: a pre-loaded ``(X, y)``; ``path_or_name`` then only names the set.
        max_rows: the cap of step 2, at least :data:`LITERATURE_MIN_ROWS`.

    Returns:
        A one-class :class:`~tfp_flowad.datasets.Task` named ``"literature-oc"`` whose rows are
        already standardised (float64), training rows first-half normal rows in order, test rows
        the other normal rows followed by the anomalies.

    Raises:
        FileNotFoundError: unknown name or missing file.
        ValueError: a bad file, seed or ``max_rows``, or a set with fewer than two normal rows.
    """
    from sklearn.preprocessing import StandardScaler

    seed = _check_seed(seed)
    if isinstance(max_rows, bool) or not isinstance(max_rows, (int, np.integer)):
        raise ValueError(f"max_rows must be an integer, got {max_rows!r}")
    if max_rows < LITERATURE_MIN_ROWS:
        raise ValueError(f"max_rows must be at least {LITERATURE_MIN_ROWS}, got {max_rows}")
    dataset, X, y = adbench_source(path_or_name, data)
    if len(y) < LITERATURE_MIN_ROWS:
        rows = np.random.RandomState(seed).choice(len(y), LITERATURE_MIN_ROWS, replace=True)
        X, y = X[rows], y[rows]
    if len(y) > max_rows:
        rows = np.random.RandomState(seed).choice(len(y), int(max_rows), replace=False)
        X, y = X[rows], y[rows]
    normals = np.flatnonzero(y == 0)
    n_train = round(0.5 * len(normals))
    if n_train < 1 or n_train == len(normals):
        raise ValueError(f"{dataset}: the protocol needs at least two normal rows")
    train = normals[:n_train]
    test = np.concatenate([normals[n_train:], np.flatnonzero(y == 1)])
    scaler = StandardScaler().fit(X[train])
    return Task(
        dataset=dataset,
        name=LITERATURE_TASK,
        seed=seed,
        X_train=scaler.transform(X[train]),
        y_train=np.zeros(len(train), dtype=np.int64),
        X_test=scaler.transform(X[test]),
        y_test=y[test],
    )


def literature_table(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """The published one-class ROC AUC (mean over 5 seeds) of 26 methods on the shipped sets.

    Args:
        path: the CSV (``dataset`` column, then one column per method); ``None`` reads
            ``benchmarks/literature/dte_one_class.csv`` of the source repository.

    Returns:
        A DataFrame indexed by the ADBench stem (``"6_cardio"``, the names of
        :data:`~tfp_flowad.datasets.ADBENCH_SETS`), one ``float64`` column per method
        (``"KNN"``, ``"IForest"``, ``"DTE-C"``, ...).

    Raises:
        FileNotFoundError: the CSV does not exist (it ships with the source repository, not with
            the installed package).
        ValueError: the CSV names a set that is not shipped.
    """
    from tfp_flowad.datasets.adbench import ADBENCH_SETS

    if path is None:
        path = Path(__file__).resolve().parents[2] / "benchmarks" / "literature"
        path = path / "dte_one_class.csv"
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"published figures {str(path)!r} do not exist")
    table = pd.read_csv(path, index_col="dataset").astype(np.float64)
    stems = {stem.split("_", 1)[1]: stem for stem in ADBENCH_SETS}
    unknown = sorted(set(table.index) - set(stems))
    if unknown:
        raise ValueError(f"{str(path)!r} names sets that are not shipped: {unknown}")
    table.index = pd.Index([stems[name] for name in table.index], name="dataset")
    return table
