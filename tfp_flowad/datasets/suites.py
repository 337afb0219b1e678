"""The development suite: every task the detector's choices are judged on, per ADBench set.

The benchmark protocol's tasks (BENCHMARK.md) cover fourteen tables; before a part of the
detector is cut or made cheaper, the decision is taken on a wider suite. On each ADBench-format
set, the suite "dev" holds:

* the protocol's tasks, :func:`~tfp_flowad.datasets.adbench_tasks`: ``"one-class"``, ``"5%"``,
  ``"25%"``;
* small samples, :func:`~tfp_flowad.datasets.small_sample_tasks`: ``"n50"``, ``"n200"``,
  ``"n200-5%"``, ``"n200-25%"``, ``"n1000"``, ``"n1000-5%"``, ``"n1000-25%"``;
* synthetic anomalies, :func:`~tfp_flowad.datasets.synthetic_tasks`: ``"synthetic-local"``,
  ``"synthetic-global"``, ``"synthetic-dependency"``, ``"synthetic-clustered"``;
* the literature's one-class protocol, :func:`~tfp_flowad.datasets.literature_task`:
  ``"literature-oc"``.

KDD-99, HIGGS and SUSY keep their protocol's tasks only (:func:`~tfp_flowad.datasets.kdd99_tasks`,
:func:`~tfp_flowad.datasets.physics_tasks`). Every task is a pure function of the set, the seed
and its name: asking for a subset gives the same tasks as asking for the whole suite.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import numpy as np

from tfp_flowad.datasets.literature import LITERATURE_TASK, literature_task
from tfp_flowad.datasets.small_samples import (
    SMALL_SAMPLE_TASKS,
    small_sample_name,
    small_sample_tasks,
)
from tfp_flowad.datasets.sources import adbench_source
from tfp_flowad.datasets.synthetic import SYNTHETIC_KINDS, synthetic_tasks
from tfp_flowad.datasets.tasks import Task, _fraction_name, adbench_tasks

__all__ = ["DEV_SUITE_TASKS", "DEV_TASK_PATTERN", "dev_suite_tasks"]

#: The task names of the development suite on an ADBench set, in the order they are built.
DEV_SUITE_TASKS: tuple[str, ...] = (
    "one-class",
    "5%",
    "25%",
    *(small_sample_name(n, f) for n, f in SMALL_SAMPLE_TASKS),
    *(f"synthetic-{kind}" for kind in SYNTHETIC_KINDS),
    LITERATURE_TASK,
)

_SHARE = r"\d+(?:\.\d+)?%"
_SMALL = rf"n(\d+)(?:-({_SHARE}))?"
_SYNTHETIC = rf"synthetic-({'|'.join(SYNTHETIC_KINDS)})"

#: Every task name :func:`dev_suite_tasks` accepts besides ``"one-class"``: ``"P%"``, ``"nN"``,
#: ``"nN-P%"``, ``"synthetic-<kind>"``, ``"literature-oc"``.
DEV_TASK_PATTERN = rf"{_SHARE}|{_SMALL}|{_SYNTHETIC}|{re.escape(LITERATURE_TASK)}"


def _share(text: str) -> float:
    return float(text[:-1]) / 100


def dev_suite_tasks(
    path_or_name: str | os.PathLike,
    seed: int,
    names: Sequence[str] | None = None,
    data: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[Task]:
    """The development suite's tasks on an ADBench-format set for one seed.

    Args:
        path_or_name: a shipped set's name (``"6_cardio"``) or the path of an ``.npz`` file.
        seed: non-negative integer.
        names: task names (``"one-class"`` or one matching :data:`DEV_TASK_PATTERN`, e.g.
            ``"n200-5%"``, ``"synthetic-local"``); ``None`` is :data:`DEV_SUITE_TASKS`.
        data: a pre-loaded ``(X, y)``; ``path_or_name`` then only names the set. Without it the
            file is read once for all tasks.

    Returns:
        The tasks in the order of ``names`` (a task a builder skips with a ``UserWarning``, such
        as ``"n1000"`` on a set with fewer train normal rows, is left out).

    Raises:
        FileNotFoundError: unknown name or missing file.
        ValueError: a task name the suite does not know, or what the builders raise.
    """
    shares, pairs, kinds, literature = [], [], [], False
    wanted = []  # the names the builders give the tasks asked for ("5.0%" is named "5%")
    for name in DEV_SUITE_TASKS if names is None else names:
        if name == "one-class" or re.fullmatch(_SHARE, name):
            shares.append(0.0 if name == "one-class" else _share(name))
            wanted.append(_fraction_name(shares[-1]))
        elif match := re.fullmatch(_SMALL, name):
            pairs.append((int(match.group(1)), _share(match.group(2)) if match.group(2) else 0.0))
            wanted.append(small_sample_name(*pairs[-1]))
        elif match := re.fullmatch(_SYNTHETIC, name):
            kinds.append(match.group(1))
            wanted.append(name)
        elif name == LITERATURE_TASK:
            literature = True
            wanted.append(name)
        else:
            raise ValueError(
                f"{name!r} is not a task of the development suite; expected one-class, P%, nN, "
                f"nN-P%, synthetic-<{'|'.join(SYNTHETIC_KINDS)}> or {LITERATURE_TASK}"
            )

    dataset, X, y = adbench_source(path_or_name, data)
    data = (X, y)
    tasks: list[Task] = []
    if shares:
        tasks += adbench_tasks(dataset, seed, fractions=shares, data=data)
    if pairs:
        tasks += small_sample_tasks(dataset, seed, tasks=pairs, data=data)
    if kinds:
        tasks += synthetic_tasks(dataset, seed, kinds=kinds, data=data)
    if literature:
        tasks.append(literature_task(dataset, seed, data=data))
    by_name = {task.name: task for task in tasks}
    return [by_name[name] for name in dict.fromkeys(wanted) if name in by_name]
