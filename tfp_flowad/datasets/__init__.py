"""Data sets and evaluation tasks (numpy / pandas / scikit-learn only; no TensorFlow here).

Loaders:

* :func:`load_kdd99` - KDD Cup 1999 (default: the 10% training file shipped with the package),
  :func:`load_kdd99_corrected` - its labelled test file;
* :func:`load_higgs`, :func:`load_susy` - the HIGGS / SUSY samples, or the full UCI files read in
  chunks; :func:`full_uci_split` - the paper's split of the full files;
* :func:`load_adbench`, :func:`adbench_paths` - tabular sets in ADBench's ``.npz`` format;
* :func:`load_moons` - scikit-learn's two moons in ``float32``.

Tasks (the protocol of BENCHMARK.md): :class:`Task`, :func:`kdd99_tasks`, :func:`physics_tasks`,
:func:`physics_tasks_full`, :func:`adbench_tasks`.

The development suite (:mod:`~tfp_flowad.datasets.suites`), on ADBench-format sets:
:func:`dev_suite_tasks` (the protocol's tasks plus the three kinds below, by name),
:func:`small_sample_tasks` (training normals drawn down to 50, 200, 1,000 rows),
:func:`synthetic_tasks` and :func:`draw_synthetic_anomalies` (ADBench's four kinds of synthetic
anomalies), :func:`literature_task` and :func:`literature_table` (the literature's one-class
protocol and its published figures).

Only the KDD-99 10% file is installed with the package; the other files live in the repository's
``benchmarks/data`` folder (:func:`benchmark_data_dir`, or ``$TFP_FLOWAD_BENCHMARK_DATA``).
"""

from tfp_flowad.datasets.adbench import (
    ADBENCH_SETS,
    adbench_paths,
    load_adbench,
    resolve_adbench_path,
)
from tfp_flowad.datasets.kdd99 import (
    BENCHMARK_DATA_ENV,
    KDD99_CATEGORICAL,
    KDD99_NORMAL,
    benchmark_data_dir,
    kdd99_columns,
    load_kdd99,
    load_kdd99_corrected,
    packaged_data_dir,
)
from tfp_flowad.datasets.literature import (
    LITERATURE_MAX_ROWS,
    LITERATURE_MIN_ROWS,
    LITERATURE_TASK,
    literature_table,
    literature_task,
)
from tfp_flowad.datasets.moons import load_moons
from tfp_flowad.datasets.physics import (
    HIGGS_FEATURES,
    SUSY_FEATURES,
    UCI_TEST_ROWS,
    full_uci_split,
    load_higgs,
    load_physics,
    load_susy,
)
from tfp_flowad.datasets.small_samples import (
    SMALL_SAMPLE_TASKS,
    small_sample_name,
    small_sample_tasks,
)
from tfp_flowad.datasets.sources import ADBENCH_TEST_SHARE, adbench_source, adbench_split
from tfp_flowad.datasets.suites import DEV_SUITE_TASKS, DEV_TASK_PATTERN, dev_suite_tasks
from tfp_flowad.datasets.synthetic import (
    SYNTHETIC_KINDS,
    draw_synthetic_anomalies,
    synthetic_tasks,
)
from tfp_flowad.datasets.tasks import (
    KDD99_NORMAL_TEST_SHARE,
    Task,
    adbench_tasks,
    kdd99_tasks,
    physics_tasks,
    physics_tasks_full,
)

__all__ = [
    "ADBENCH_SETS",
    "ADBENCH_TEST_SHARE",
    "BENCHMARK_DATA_ENV",
    "DEV_SUITE_TASKS",
    "DEV_TASK_PATTERN",
    "HIGGS_FEATURES",
    "KDD99_CATEGORICAL",
    "KDD99_NORMAL",
    "KDD99_NORMAL_TEST_SHARE",
    "LITERATURE_MAX_ROWS",
    "LITERATURE_MIN_ROWS",
    "LITERATURE_TASK",
    "SMALL_SAMPLE_TASKS",
    "SUSY_FEATURES",
    "SYNTHETIC_KINDS",
    "UCI_TEST_ROWS",
    "Task",
    "adbench_paths",
    "adbench_source",
    "adbench_split",
    "adbench_tasks",
    "benchmark_data_dir",
    "dev_suite_tasks",
    "draw_synthetic_anomalies",
    "full_uci_split",
    "kdd99_columns",
    "kdd99_tasks",
    "literature_table",
    "literature_task",
    "load_adbench",
    "load_higgs",
    "load_kdd99",
    "load_kdd99_corrected",
    "load_moons",
    "load_physics",
    "load_susy",
    "packaged_data_dir",
    "physics_tasks",
    "physics_tasks_full",
    "resolve_adbench_path",
    "small_sample_name",
    "small_sample_tasks",
    "synthetic_tasks",
]
