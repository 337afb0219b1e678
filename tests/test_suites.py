"""Tests of the development suite's task builders: small samples, synthetic anomalies, the
literature's one-class protocol and :func:`dev_suite_tasks`."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import ks_2samp
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

from tfp_flowad import datasets
from tfp_flowad.datasets import (
    ADBENCH_SETS,
    DEV_SUITE_TASKS,
    DEV_TASK_PATTERN,
    SYNTHETIC_KINDS,
    adbench_paths,
    adbench_tasks,
    dev_suite_tasks,
    draw_synthetic_anomalies,
    literature_table,
    literature_task,
    load_adbench,
    small_sample_tasks,
    synthetic_tasks,
)
from tfp_flowad.datasets.synthetic import (
    CLUSTERED_MEAN_SHIFT,
    GLOBAL_RANGE_MARGIN,
    LOCAL_COVARIANCE_SCALE,
    SYNTHETIC_MIN_TEST_ANOMALIES,
)


@pytest.fixture(scope="module")
def cardio() -> tuple[np.ndarray, np.ndarray]:
    return load_adbench(adbench_paths()["6_cardio"])


@pytest.fixture(scope="module")
def cardio_ids(cardio) -> tuple[np.ndarray, np.ndarray]:
    """Cardio with the row number as a first column, so that rows can be told apart."""
    X, y = cardio
    return np.c_[np.arange(len(y)), X], y


def _ids(X: np.ndarray) -> set[int]:
    return set(X[:, 0].astype(int).tolist())


def _toy(n_normal: int, n_anomalies: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Row number in column 0, then four Gaussian columns; anomalies last."""
    rng = np.random.default_rng(seed)
    n = n_normal + n_anomalies
    X = np.c_[np.arange(n), rng.normal(size=(n, 4))]
    X[n_normal:, 1:] += 3.0
    return X, np.r_[np.zeros(n_normal, int), np.ones(n_anomalies, int)]


def test_no_tensorflow_import() -> None:
    folder = Path(datasets.__file__).parent
    for module in ("sources", "small_samples", "synthetic", "literature", "suites"):
        source = (folder / f"{module}.py").read_text()
        assert "import tensorflow" not in source and "import keras" not in source


# ----------------------------------------------------------------------------- small samples


def test_small_sample_sizes_labels_and_test_part(cardio_ids) -> None:
    tasks = small_sample_tasks("6_cardio", 1, data=cardio_ids)
    names = ["n50", "n200", "n200-5%", "n200-25%", "n1000", "n1000-5%", "n1000-25%"]
    assert [task.name for task in tasks] == names
    full = adbench_tasks("6_cardio", 1, data=cardio_ids)
    m = len(full[0].y_train)
    a = int(cardio_ids[1].sum()) - int(full[0].y_test.sum())
    for task, (n, f) in zip(
        tasks,
        [(50, 0), (200, 0), (200, 0.05), (200, 0.25), (1000, 0), (1000, 0.05), (1000, 0.25)],
        strict=True,
    ):
        assert task.dataset == "6_cardio" and task.seed == 1
        assert int((task.y_train == 0).sum()) == n
        assert task.n_known == (0 if f == 0 else max(1, round(f * a * n / m)))
        assert task.known_classes == (() if f == 0 else ("anomaly",))
        # the test part is the ADBench protocol's, whole
        np.testing.assert_array_equal(task.X_test, full[0].X_test)
        np.testing.assert_array_equal(task.y_test, full[0].y_test)
        assert not _ids(task.X_train) & _ids(task.X_test)
    # a 5% training part of 1,000 normal rows holds fewer known anomalies than the full task
    assert 1 <= tasks[5].n_known < full[1].n_known


def test_small_samples_nested_and_drawn_from_the_split(cardio_ids) -> None:
    tasks = {task.name: task for task in small_sample_tasks("6_cardio", 2, data=cardio_ids)}
    full = {task.name: task for task in adbench_tasks("6_cardio", 2, data=cardio_ids)}

    def normals(task):
        return _ids(task.X_train[task.y_train == 0])

    def known(task):
        return _ids(task.X_train[task.y_train == 1])

    assert normals(tasks["n50"]) < normals(tasks["n200"]) < normals(tasks["n1000"])
    assert normals(tasks["n1000"]) < normals(full["one-class"])
    assert normals(tasks["n200-25%"]) == normals(tasks["n200"])
    assert known(tasks["n200-5%"]) <= known(tasks["n1000-5%"]) <= known(full["5%"])
    assert known(tasks["n1000-25%"]) <= known(full["25%"])


def test_small_samples_deterministic_by_seed(cardio) -> None:
    pairs = [(200, 0.25)]
    first = small_sample_tasks("6_cardio", 3, tasks=pairs, data=cardio)[0]
    again = small_sample_tasks("6_cardio", 3, tasks=pairs, data=cardio)[0]
    other = small_sample_tasks("6_cardio", 4, tasks=pairs, data=cardio)[0]
    np.testing.assert_array_equal(first.X_train, again.X_train)
    np.testing.assert_array_equal(first.y_train, again.y_train)
    assert first.X_train.shape == other.X_train.shape
    assert not np.array_equal(first.X_train, other.X_train)


def test_small_samples_skip_and_errors() -> None:
    data = _toy(500, 20)  # 350 train normal rows
    with pytest.warns(UserWarning, match="only 350"):
        tasks = small_sample_tasks("toy", 0, tasks=[(50, 0.25), (1000, 0.0)], data=data)
    assert [task.name for task in tasks] == ["n50-25%"]
    assert tasks[0].n_known == 1  # 25% of the 2 anomalies a 50-row part holds, at least one
    with pytest.raises(ValueError, match="fractions"):
        small_sample_tasks("toy", 0, tasks=[(50, 2.0)], data=data)
    with pytest.raises(ValueError, match="positive"):
        small_sample_tasks("toy", 0, tasks=[(0, 0.0)], data=data)


# ------------------------------------------------------------------------ synthetic anomalies


@pytest.fixture(scope="module")
def gaussian_normals() -> np.ndarray:
    """4,000 rows of one correlated Gaussian (correlation 0.8, column scales 1 to 8)."""
    rng = np.random.default_rng(0)
    correlation = np.full((4, 4), 0.8) + 0.2 * np.eye(4)
    scales = np.array([1.0, 2.0, 4.0, 8.0])
    rows = rng.multivariate_normal(np.zeros(4), correlation, size=4000) * scales
    return rows + np.array([0.0, 10.0, -5.0, 100.0])


@pytest.fixture(scope="module")
def drawn(gaussian_normals) -> dict[str, np.ndarray]:
    return draw_synthetic_anomalies(gaussian_normals[:2000], 2000, seed=0)


def test_synthetic_shapes_and_determinism(gaussian_normals, drawn) -> None:
    assert list(drawn) == list(SYNTHETIC_KINDS)
    for rows in drawn.values():
        assert rows.shape == (2000, 4) and rows.dtype == np.float64
        assert np.isfinite(rows).all()
    # a kind's draws do not depend on the other kinds asked for
    alone = draw_synthetic_anomalies(gaussian_normals[:2000], 2000, 0, kinds=("dependency",))
    np.testing.assert_array_equal(alone["dependency"], drawn["dependency"])
    other = draw_synthetic_anomalies(gaussian_normals[:2000], 2000, 1, kinds=("global",))
    assert not np.array_equal(other["global"], drawn["global"])
    with pytest.raises(ValueError, match="unknown kinds"):
        draw_synthetic_anomalies(gaussian_normals, 10, 0, kinds=("noise",))


def test_global_anomalies_fill_the_widened_box(gaussian_normals, drawn) -> None:
    fit, held_out = gaussian_normals[:2000], gaussian_normals[2000:]
    low, high = fit.min(axis=0), fit.max(axis=0)
    margin = GLOBAL_RANGE_MARGIN * (high - low)
    anomalies = drawn["global"]
    assert (anomalies >= low - margin).all() and (anomalies <= high + margin).all()

    def outside(rows):
        return np.mean(((rows < low) | (rows > high)).any(axis=1))

    # four columns each widened by 20% of their range: 1 - (1/1.2)^4 of the box is outside
    assert outside(anomalies) == pytest.approx(1 - 1.2**-4, abs=0.04)
    assert outside(held_out) < 0.02


def test_dependency_anomalies_keep_marginals_and_break_correlation(gaussian_normals, drawn):
    held_out, anomalies = gaussian_normals[2000:], drawn["dependency"]
    for column in range(4):
        assert ks_2samp(anomalies[:, column], held_out[:, column]).statistic < 0.06
    normal_corr = np.corrcoef(held_out, rowvar=False)[np.triu_indices(4, 1)]
    anomaly_corr = np.corrcoef(anomalies, rowvar=False)[np.triu_indices(4, 1)]
    assert (normal_corr > 0.75).all() and (np.abs(anomaly_corr) < 0.08).all()


def test_local_anomalies_spread_around_the_normal_rows(gaussian_normals, drawn) -> None:
    held_out, anomalies = gaussian_normals[2000:], drawn["local"]
    std = held_out.std(axis=0)
    # one Gaussian component (BIC): same centre, covariance times LOCAL_COVARIANCE_SCALE
    assert np.all(np.abs(anomalies.mean(axis=0) - held_out.mean(axis=0)) < 0.15 * std)
    ratio = anomalies.std(axis=0) / std
    np.testing.assert_allclose(ratio, np.sqrt(LOCAL_COVARIANCE_SCALE), rtol=0.08)
    np.testing.assert_allclose(
        np.corrcoef(anomalies, rowvar=False), np.corrcoef(held_out, rowvar=False), atol=0.05
    )


def test_clustered_anomalies_are_the_normal_cloud_moved(gaussian_normals, drawn) -> None:
    held_out, anomalies = gaussian_normals[2000:], drawn["clustered"]
    # one Gaussian component (BIC): the same covariance, the mean moved by a Mahalanobis
    # distance of CLUSTERED_MEAN_SHIFT
    move = anomalies.mean(axis=0) - held_out.mean(axis=0)
    distance = np.sqrt(move @ np.linalg.solve(np.cov(held_out, rowvar=False), move))
    assert distance == pytest.approx(CLUSTERED_MEAN_SHIFT, rel=0.05)
    np.testing.assert_allclose(anomalies.std(axis=0) / held_out.std(axis=0), 1.0, atol=0.08)
    np.testing.assert_allclose(
        np.corrcoef(anomalies, rowvar=False), np.corrcoef(held_out, rowvar=False), atol=0.05
    )


def test_synthetic_anomalies_lie_further_from_the_normals(gaussian_normals, drawn) -> None:
    fit, held_out = gaussian_normals[:2000], gaussian_normals[2000:]
    scale = fit.std(axis=0)
    neighbours = NearestNeighbors(n_neighbors=5).fit(fit / scale)

    def distance(rows):
        return neighbours.kneighbors(rows / scale)[0][:, -1]

    normal_distance = distance(held_out)
    for kind in ("local", "global", "dependency", "clustered"):
        y = np.r_[np.zeros(len(held_out)), np.ones(len(drawn[kind]))]
        auc = roc_auc_score(y, np.r_[normal_distance, distance(drawn[kind])])
        assert auc > 0.75, kind


def test_synthetic_tasks_split(cardio) -> None:
    X, y = cardio
    kinds = ("global", "dependency")
    tasks = synthetic_tasks("6_cardio", 0, kinds=kinds, data=cardio)
    assert [task.name for task in tasks] == ["synthetic-global", "synthetic-dependency"]
    one_class = adbench_tasks("6_cardio", 0, fractions=(0.0,), data=cardio)[0]
    test_normals = one_class.X_test[one_class.y_test == 0]
    n_anomalies = max(int(one_class.y_test.sum()), SYNTHETIC_MIN_TEST_ANOMALIES)
    for task in tasks:
        np.testing.assert_array_equal(task.X_train, one_class.X_train)
        assert task.n_known == 0 and task.known_classes == ()
        assert len(task.y_test) == len(test_normals) + n_anomalies
        assert int(task.y_test.sum()) == n_anomalies
        np.testing.assert_array_equal(task.X_test[task.y_test == 0], test_normals)
        # no real anomaly anywhere
        real_anomalies = {row.tobytes() for row in X[y == 1]}
        assert not {row.tobytes() for row in task.X_test[task.y_test == 1]} & real_anomalies
    again = synthetic_tasks("6_cardio", 0, kinds=kinds, data=cardio)
    other = synthetic_tasks("6_cardio", 1, kinds=kinds, data=cardio)
    for first, second, third in zip(tasks, again, other, strict=True):
        np.testing.assert_array_equal(first.X_test, second.X_test)
        assert not np.array_equal(first.X_test[first.y_test == 1], third.X_test[third.y_test == 1])


# ----------------------------------------------------------------------- literature protocol


def test_literature_task_on_a_mid_sized_set(cardio_ids) -> None:
    X, y = cardio_ids
    task = literature_task("6_cardio", 0, data=cardio_ids)
    normals = np.flatnonzero(y == 0)
    n_train = round(0.5 * len(normals))
    assert task.name == "literature-oc" and task.n_known == 0
    assert len(task.y_train) == n_train
    assert len(task.y_test) == len(y) - n_train and int(task.y_test.sum()) == int(y.sum())
    # standardised with the training rows' statistics: the first column was the row number
    np.testing.assert_allclose(task.X_train.mean(axis=0), 0.0, atol=1e-9)
    ids = normals[:n_train]
    expected = (ids - ids.mean()) / ids.std()
    np.testing.assert_allclose(task.X_train[:, 0], expected)
    # 1,000 to 50,000 rows: the split does not depend on the seed
    np.testing.assert_array_equal(
        literature_task("6_cardio", 3, data=cardio_ids).X_test, task.X_test
    )


def test_literature_task_draws_large_and_small_sets() -> None:
    large = _toy(11_500, 500)
    task = literature_task("toy", 0, data=large, max_rows=10_000)
    assert len(task.y_train) + len(task.y_test) == 10_000
    assert task.y_train.sum() == 0 and 0 < task.y_test.sum() < 500
    # drawn without replacement: every row once
    both = np.r_[task.X_train[:, 0], task.X_test[:, 0]]
    assert len(np.unique(both)) == 10_000
    other = literature_task("toy", 1, data=large, max_rows=10_000)
    assert not np.array_equal(other.X_train, task.X_train)
    # the default cap (50,000 rows) keeps this set whole
    whole = literature_task("toy", 0, data=large)
    assert len(whole.y_train) + len(whole.y_test) == 12_000 and whole.y_test.sum() == 500
    with pytest.raises(ValueError, match="max_rows"):
        literature_task("toy", 0, data=large, max_rows=999)

    small = _toy(280, 20)
    task = literature_task("toy", 0, data=small)
    both = np.r_[task.X_train[:, 0], task.X_test[:, 0]]
    assert len(both) == 1000 and len(np.unique(both)) <= 300  # drawn with replacement


def test_literature_table() -> None:
    table = literature_table()
    assert set(table.index) == set(ADBENCH_SETS)
    assert table.shape == (10, 26) and {"KNN", "IForest", "DTE-C"} <= set(table.columns)
    assert ((table.to_numpy() >= 0) & (table.to_numpy() <= 1)).all()


def test_literature_task_reproduces_the_published_knn(cardio) -> None:
    # on a set of 1,000 to 50,000 rows the split is the same for every seed, so seed 0
    # reproduces the published mean of the kNN detector (5 neighbours, largest distance)
    task = literature_task("6_cardio", 0, data=cardio)
    neighbours = NearestNeighbors(n_neighbors=5).fit(task.X_train)
    auc = roc_auc_score(task.y_test, neighbours.kneighbors(task.X_test)[0][:, -1])
    assert auc == pytest.approx(literature_table().loc["6_cardio", "KNN"], abs=5e-4)


# ------------------------------------------------------------------------------ the dev suite


@pytest.fixture(scope="module")
def toy_suite() -> list:
    return dev_suite_tasks("toy", 0, data=_toy(1500, 80))


def test_dev_suite_names(toy_suite) -> None:
    assert [task.name for task in toy_suite] == list(DEV_SUITE_TASKS)
    assert len(set(DEV_SUITE_TASKS)) == len(DEV_SUITE_TASKS) == 15
    for name in DEV_SUITE_TASKS:
        assert name == "one-class" or re.fullmatch(DEV_TASK_PATTERN, name), name
    assert all(task.dataset == "toy" and task.seed == 0 for task in toy_suite)


def test_dev_suite_subset_is_the_same_tasks(toy_suite) -> None:
    by_name = {task.name: task for task in toy_suite}
    asked = ["synthetic-global", "n200-5.0%", "25%", "literature-oc"]
    subset = dev_suite_tasks("toy", 0, names=asked, data=_toy(1500, 80))
    assert [task.name for task in subset] == ["synthetic-global", "n200-5%", "25%", "literature-oc"]
    for task in subset:
        np.testing.assert_array_equal(task.X_train, by_name[task.name].X_train)
        np.testing.assert_array_equal(task.X_test, by_name[task.name].X_test)
        np.testing.assert_array_equal(task.y_test, by_name[task.name].y_test)
    with pytest.raises(ValueError, match="not a task of the development suite"):
        dev_suite_tasks("toy", 0, names=["k=1"], data=_toy(1500, 80))
