"""An ADBench-format set as the task builders of the development suite read it.

The builders of :mod:`~tfp_flowad.datasets.small_samples`, :mod:`~tfp_flowad.datasets.synthetic`
and :mod:`~tfp_flowad.datasets.literature` take a set the way
:func:`~tfp_flowad.datasets.adbench_tasks` does (a shipped set's name, an ``.npz`` path, or
pre-loaded ``(X, y)`` with a name) and, except the literature protocol, split it the way it does.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tfp_flowad.datasets.adbench import load_adbench, resolve_adbench_path
from tfp_flowad.datasets.tasks import _binary_labels, _check_data, _stratified_split

__all__ = ["ADBENCH_TEST_SHARE", "adbench_source", "adbench_split"]

#: Share of an ADBench set's rows in the test part of the protocol (BENCHMARK.md), stratified.
ADBENCH_TEST_SHARE = 0.3


def adbench_source(
    path_or_name: str | os.PathLike, data: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[str, np.ndarray, np.ndarray]:
    """The name, rows and labels of an ADBench-format set.

    Args:
        path_or_name: a shipped set's name (``"6_cardio"``) or the path of an ``.npz`` file.
        data: a pre-loaded ``(X, y)``; the file is then not read and ``path_or_name`` only names
            the set (its last path part without ``.npz``).

    Returns:
        ``(dataset, X, y)``: the file stem, ``X`` as an ndarray, ``y`` as ``int64`` 0/1.

    Raises:
        FileNotFoundError: unknown name or missing file.
        ValueError: a bad file (see :func:`~tfp_flowad.datasets.load_adbench`), ``data`` that is
            not a pair of equal length, or labels other than 0/1.
    """
    if data is None:
        path = resolve_adbench_path(path_or_name)
        dataset = path.stem
        X, y = load_adbench(path)
    else:
        dataset = Path(path_or_name).name.removesuffix(".npz")
        X, y = _check_data(data, "data")
        X = np.asarray(X)
    return dataset, X, _binary_labels(y, dataset)


def adbench_split(y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The train and test row positions of :func:`~tfp_flowad.datasets.adbench_tasks`.

    ``train_test_split(arange(len(y)), test_size=0.3, random_state=seed, stratify=y)``: the same
    positions, in the same order, as the tasks of BENCHMARK.md use for this ``seed``.
    """
    return _stratified_split(y, test_size=ADBENCH_TEST_SHARE, seed=seed)
