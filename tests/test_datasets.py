"""Tests of tfp_flowad.datasets: the loaders and the benchmark tasks (BENCHMARK.md)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tfp_flowad import datasets
from tfp_flowad.datasets import (
    KDD99_CATEGORICAL,
    Task,
    adbench_paths,
    adbench_tasks,
    benchmark_data_dir,
    full_uci_split,
    kdd99_tasks,
    load_adbench,
    load_higgs,
    load_kdd99,
    load_moons,
    load_susy,
    physics_tasks,
    physics_tasks_full,
)

# --------------------------------------------------------------------------------------- KDD-99


@pytest.fixture(scope="module")
def kdd() -> tuple[pd.DataFrame, pd.Series]:
    return load_kdd99()


@pytest.fixture(scope="module")
def kdd_tasks_seed0(kdd) -> list[Task]:
    return kdd99_tasks(0, data=kdd)


def test_no_tensorflow_import() -> None:
    # the subpackage itself stays numpy / pandas / scikit-learn only
    for module in ("kdd99", "physics", "adbench", "moons", "tasks"):
        source = (Path(datasets.__file__).parent / f"{module}.py").read_text()
        assert "import tensorflow" not in source and "import keras" not in source


def test_kdd99_counts(kdd) -> None:
    X, labels = kdd
    assert X.shape == (145_586, 41)
    assert int((labels == "normal").sum()) == 87_832
    assert int((labels != "normal").sum()) == 57_754
    assert labels[labels != "normal"].nunique() == 22
    assert list(X.columns) == list(datasets.kdd99_columns())
    assert X.index.equals(pd.RangeIndex(len(X)))
    assert labels.index.equals(X.index)
    counts = labels.value_counts()
    assert counts["neptune"] == 51_820 and counts["smurf"] == 641 and counts["spy"] == 2


def test_kdd99_labels_stripped(kdd) -> None:
    _, labels = kdd
    assert not labels.str.endswith(".").any()
    assert {"normal", "smurf", "neptune", "back"} <= set(labels)


def test_kdd99_dtypes(kdd) -> None:
    X, labels = kdd
    for column in KDD99_CATEGORICAL:
        assert pd.api.types.is_string_dtype(X[column]), column
    numeric = [column for column in X.columns if column not in KDD99_CATEGORICAL]
    assert len(numeric) == 38
    assert all(X[column].dtype == np.float64 for column in numeric)
    assert pd.api.types.is_string_dtype(labels)
    assert set(X["protocol_type"]) == {"tcp", "udp", "icmp"}


def test_kdd99_without_dedup_and_custom_path(tmp_path) -> None:
    source = datasets.packaged_data_dir() / "kddcup.data_10_percent.gz"
    with gzip.open(source, "rt") as handle:
        head = [next(handle) for _ in range(50)]
    path = tmp_path / "head.csv"
    path.write_text("".join(head + head[:10]))  # 10 exact duplicates
    X_all, labels_all = load_kdd99(path, drop_duplicates=False)
    X_dedup, labels_dedup = load_kdd99(path)
    assert len(X_all) == 60
    assert len(X_dedup) == len(pd.concat([X_all, labels_all], axis=1).drop_duplicates()) == 50
    pd.testing.assert_frame_equal(X_dedup, X_all.iloc[:50])
    assert (labels_dedup == "normal").all()


def test_kdd99_missing_and_bad_file(tmp_path) -> None:
    missing = tmp_path / "nope.gz"
    with pytest.raises(FileNotFoundError, match="nope.gz"):
        load_kdd99(missing)
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2,3\n4,5,6\n")
    with pytest.raises(ValueError, match="bad.csv"):
        load_kdd99(bad)


def test_kdd99_tasks_names_and_split_sizes(kdd, kdd_tasks_seed0) -> None:
    _, labels = kdd
    tasks = kdd_tasks_seed0
    assert [task.name for task in tasks] == ["one-class", "k=1", "k=2", "k=4", "k=8"]
    n_normal = 87_832
    n_test_normal = round(0.2 * n_normal)
    for task in tasks:
        assert task.dataset == "kdd99" and task.seed == 0
        assert int((task.y_train == 0).sum()) == n_normal - n_test_normal == 70_266
        assert int((task.y_test == 0).sum()) == n_test_normal == 17_566
        assert task.X_train.shape[1] == task.X_test.shape[1] == 41
        assert task.y_train.dtype == task.y_test.dtype == np.int64
    # every attack class: n // 2 rows in the pool, the rest in the test (a lone row: test)
    test_labels = labels.to_numpy()[tasks[0].X_test.index]
    for name, count in labels[labels != "normal"].value_counts().items():
        assert int((test_labels == name).sum()) == count - count // 2, name
    assert int(tasks[0].y_test.sum()) == sum(
        count - count // 2 for count in labels[labels != "normal"].value_counts()
    )


def test_kdd99_tasks_train_test_disjoint(kdd_tasks_seed0) -> None:
    test_index = set(kdd_tasks_seed0[0].X_test.index)
    for task in kdd_tasks_seed0:
        assert task.X_test is kdd_tasks_seed0[0].X_test
        assert not test_index & set(task.X_train.index)
        assert task.X_train.index.is_unique and task.X_test.index.is_unique


def test_kdd99_tasks_known_classes(kdd, kdd_tasks_seed0) -> None:
    _, labels = kdd
    label_values = labels.to_numpy()
    for task, k in zip(kdd_tasks_seed0, (0, 1, 2, 4, 8), strict=True):
        assert len(task.known_classes) == len(set(task.known_classes)) == k
        train_labels = label_values[task.X_train.index]
        np.testing.assert_array_equal(task.y_train, train_labels != "normal")
        assert set(train_labels[task.y_train == 1]) == set(task.known_classes)
        # the known rows of a class are its whole pool: count // 2 rows
        for name in task.known_classes:
            assert int((train_labels == name).sum()) == int((labels == name).sum()) // 2
        assert task.n_known == int(task.y_train.sum())
        if k:
            assert task.n_known > 0
        # unseen test: test normals + test rows of the classes not chosen
        X_unseen, y_unseen = task.extra_tests["unseen"]
        unseen_labels = label_values[X_unseen.index]
        assert not set(unseen_labels) & set(task.known_classes)
        np.testing.assert_array_equal(y_unseen, unseen_labels != "normal")
        test_labels = label_values[task.X_test.index]
        expected = ~np.isin(test_labels, task.known_classes)
        assert len(y_unseen) == int(expected.sum())
        assert int((y_unseen == 0).sum()) == int((task.y_test == 0).sum())
    # k = 0: unseen is the full test
    X_unseen, y_unseen = kdd_tasks_seed0[0].extra_tests["unseen"]
    assert X_unseen.index.equals(kdd_tasks_seed0[0].X_test.index)
    # nested choice of classes across k
    chosen = [task.known_classes for task in kdd_tasks_seed0]
    assert all(chosen[i] == chosen[i + 1][: len(chosen[i])] for i in range(len(chosen) - 1))


def test_kdd99_tasks_deterministic(kdd, kdd_tasks_seed0) -> None:
    again = kdd99_tasks(0, ks=(4, 0), data=kdd)
    by_name = {task.name: task for task in kdd_tasks_seed0}
    for task in again:
        reference = by_name[task.name]
        assert task.known_classes == reference.known_classes
        assert task.X_train.index.equals(reference.X_train.index)
        assert task.X_test.index.equals(reference.X_test.index)
        np.testing.assert_array_equal(task.y_train, reference.y_train)
        pd.testing.assert_frame_equal(task.X_train, reference.X_train)
    other = kdd99_tasks(1, ks=(0,), data=kdd)[0]
    assert set(other.X_test.index) != set(by_name["one-class"].X_test.index)
    # the split does not depend on k
    splits = {frozenset(task.X_test.index) for task in kdd_tasks_seed0}
    assert len(splits) == 1


def test_kdd99_tasks_errors(kdd) -> None:
    with pytest.raises(ValueError, match="k=23"):
        kdd99_tasks(0, ks=(23,), data=kdd)
    with pytest.raises(ValueError, match="seed"):
        kdd99_tasks(-1, data=kdd)
    X, labels = kdd
    with pytest.raises(ValueError, match="rows"):
        kdd99_tasks(0, data=(X.iloc[:10], labels))


def test_kdd99_tasks_corrected_extra_test(kdd) -> None:
    X_small = pd.DataFrame({"a": np.arange(6.0)})
    labels_small = pd.Series(["normal", "smurf", "normal", "neptune", "normal", "apache2"])
    task = kdd99_tasks(0, ks=(1,), data=kdd, corrected=(X_small, labels_small))[0]
    X_c, y_c = task.extra_tests["corrected"]
    assert X_c is X_small
    np.testing.assert_array_equal(y_c, [0, 1, 0, 1, 0, 1])


# ------------------------------------------------------------------------------ HIGGS and SUSY


@pytest.mark.parametrize(
    ("name", "loader", "shape", "n_signal"),
    [("higgs", load_higgs, (15_977, 28), 8_501), ("susy", load_susy, (10_000, 18), 4_553)],
)
def test_physics_samples_and_tasks(name, loader, shape, n_signal) -> None:
    X, y = loader()
    assert X.shape == shape and int(y.sum()) == n_signal
    assert all(dtype == np.float64 for dtype in X.dtypes) and y.dtype == np.int64
    assert "label" not in X.columns
    tasks = physics_tasks(name, 3, data=(X, y))
    assert [task.name for task in tasks] == ["one-class", "100", "1000"]
    n_background = shape[0] - n_signal
    for task, n in zip(tasks, (0, 100, 1000), strict=True):
        assert task.n_known == n and task.dataset == name
        assert task.known_classes == (("signal",) if n else ())
        # stratified 50/50 split: each class halved (within one row)
        assert abs(int((task.y_train == 0).sum()) - n_background / 2) <= 1
        assert len(task.y_test) == shape[0] - shape[0] // 2
        assert abs(int(task.y_test.sum()) - n_signal / 2) <= 1
        assert not set(task.X_train.index) & set(task.X_test.index)
        np.testing.assert_array_equal(task.y_train, y[task.X_train.index])
    # nested known signal, deterministic
    signal_100 = set(tasks[1].X_train.index[tasks[1].y_train == 1])
    assert signal_100 <= set(tasks[2].X_train.index[tasks[2].y_train == 1])
    again = physics_tasks(name, 3, n_known=(100,), data=(X, y))[0]
    assert again.X_train.index.equals(tasks[1].X_train.index)
    other = physics_tasks(name, 4, n_known=(0,), data=(X, y))[0]
    assert not other.X_test.index.equals(tasks[0].X_test.index)


def test_physics_tasks_skip_too_many_known() -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(400, 3)), columns=["a", "b", "c"])
    y = np.r_[np.zeros(300, int), np.ones(100, int)]
    with pytest.warns(UserWarning, match="1000"):
        tasks = physics_tasks("susy", 0, n_known=(0, 10, 1000), data=(X, y))
    assert [task.name for task in tasks] == ["one-class", "10"]
    with pytest.raises(ValueError, match="name"):
        physics_tasks("mnist", 0, data=(X, y))


def _write_uci_file(path: Path, n_rows: int, n_features: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n_rows)
    X = rng.normal(size=(n_rows, n_features))
    with gzip.open(path, "wt") as handle:
        for label, row in zip(y, X, strict=True):
            handle.write(",".join(f"{value:.18e}" for value in (float(label), *row)) + "\n")
    return X, y


def test_chunked_reader_headerless_file(tmp_path) -> None:
    path = tmp_path / "SUSY.csv.gz"
    X, y = _write_uci_file(path, 1000, 18)
    X_part, y_part = load_susy(path, max_rows=300, chunksize=128)
    assert X_part.shape == (300, 18) and y_part.shape == (300,)
    assert all(dtype == np.float32 for dtype in X_part.dtypes)
    assert list(X_part.columns) == list(datasets.SUSY_FEATURES)
    np.testing.assert_array_equal(y_part, y[:300])
    np.testing.assert_allclose(X_part.to_numpy(), X[:300], rtol=1e-6)
    X_all, y_all = load_susy(path, chunksize=128)  # 8 chunks, the last one short
    assert X_all.shape == (1000, 18)
    assert X_all.index.equals(pd.RangeIndex(1000))
    np.testing.assert_array_equal(y_all, y)
    np.testing.assert_allclose(X_all.to_numpy(), X, rtol=1e-6)
    X_one, _ = load_susy(path, chunksize=5000)  # one chunk
    np.testing.assert_array_equal(X_one.to_numpy(), X_all.to_numpy())
    with pytest.raises(ValueError, match="19 columns"):
        load_higgs(path)
    with pytest.raises(ValueError, match="max_rows"):
        load_susy(path, max_rows=0)


def test_full_uci_split_and_tasks(tmp_path) -> None:
    path = tmp_path / "HIGGS.csv.gz"
    _write_uci_file(path, 600, 28, seed=1)
    X, y = load_higgs(path, chunksize=100)
    X_train, X_test, y_train, y_test = full_uci_split(X, y, n_test=200)
    assert len(X_train) == len(y_train) == 400 and len(X_test) == len(y_test) == 200
    assert X_test.index[0] == 400 and X_test.index[-1] == 599
    with pytest.raises(ValueError, match="n_test"):
        full_uci_split(X, y, n_test=600)
    n_signal = int(y[:400].sum())
    with pytest.warns(UserWarning):
        tasks = list(
            physics_tasks_full(X, y, 0, n_known=(0, 50, 10**6), name="higgs-full", n_test=200)
        )
    assert [task.name for task in tasks] == ["one-class", "50"]
    for task in tasks:
        assert task.dataset == "higgs-full"
        assert task.X_test.index.equals(pd.RangeIndex(400, 600))
        assert int((task.y_train == 0).sum()) == 400 - n_signal
        assert task.X_train.index.max() < 400
    assert tasks[1].n_known == 50


def test_missing_physics_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="HIGGS.csv.gz"):
        load_higgs(tmp_path / "HIGGS.csv.gz")


def test_benchmark_data_dir_env(tmp_path, monkeypatch) -> None:
    assert (benchmark_data_dir() / "corrected.gz").is_file()
    monkeypatch.setenv(datasets.BENCHMARK_DATA_ENV, str(tmp_path / "elsewhere"))
    with pytest.raises(FileNotFoundError, match="TFP_FLOWAD_BENCHMARK_DATA") as info:
        benchmark_data_dir()
    assert "elsewhere" in str(info.value)
    monkeypatch.setenv(datasets.BENCHMARK_DATA_ENV, str(tmp_path))
    assert benchmark_data_dir() == tmp_path


# ------------------------------------------------------------------------------------ ADBench


def test_adbench_paths_and_load() -> None:
    paths = adbench_paths()
    assert list(paths) == list(datasets.ADBENCH_SETS)
    X, y = load_adbench(paths["6_cardio"])
    assert X.shape == (1831, 21) and X.dtype == np.float64
    assert y.dtype == np.int64 and int(y.sum()) == 176


@pytest.mark.parametrize("name", ["6_cardio", "34_smtp"])
def test_adbench_tasks(name) -> None:
    X, y = load_adbench(adbench_paths()[name])
    tasks = adbench_tasks(name, 2, data=(X, y))
    assert [task.name for task in tasks] == ["one-class", "5%", "25%"]
    n_anomalies = int(y.sum())
    n_test = int(np.ceil(0.3 * len(y)))
    n_train_anomalies = n_anomalies - int(tasks[0].y_test.sum())
    assert abs(n_train_anomalies - 0.7 * n_anomalies) <= 1
    for task, fraction in zip(tasks, (0.0, 0.05, 0.25), strict=True):
        assert task.dataset == name and isinstance(task.X_train, np.ndarray)
        assert len(task.y_test) == n_test
        expected = 0 if fraction == 0 else max(1, round(fraction * n_train_anomalies))
        assert task.n_known == expected
        assert int((task.y_train == 0).sum()) == len(y) - n_test - n_train_anomalies
    if name == "34_smtp":  # 21 train anomalies: 5% rounds to 1
        assert tasks[1].n_known == 1
    # the file path gives the same tasks as the name and as pre-loaded data
    again = adbench_tasks(adbench_paths()[name], 2, fractions=(0.25,))[0]
    np.testing.assert_array_equal(again.X_train, tasks[2].X_train)
    np.testing.assert_array_equal(again.y_train, tasks[2].y_train)


def test_adbench_at_least_one_known() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    y = np.r_[np.zeros(290, int), np.ones(10, int)]  # 7 train anomalies
    tasks = adbench_tasks("toy", 0, fractions=(0.0, 0.01, 0.5, 1.0), data=(X, y))
    assert [task.name for task in tasks] == ["one-class", "1%", "50%", "100%"]
    assert [task.n_known for task in tasks] == [0, 1, 4, 7]
    assert tasks[1].known_classes == ("anomaly",) and tasks[0].known_classes == ()
    with pytest.raises(ValueError, match="fractions"):
        adbench_tasks("toy", 0, fractions=(1.5,), data=(X, y))


def test_adbench_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_adbench(tmp_path / "missing.npz")
    with pytest.raises(FileNotFoundError, match="known sets"):
        adbench_tasks("no_such_set", 0)
    cases = {
        "no_y.npz": ({"X": np.zeros((4, 2))}, "lacks"),
        "shapes.npz": ({"X": np.zeros((4, 2)), "y": np.zeros(3)}, "3"),
        "labels.npz": ({"X": np.zeros((4, 2)), "y": np.array([0, 1, 2, 0])}, "0 \\(normal\\)"),
        "flat.npz": ({"X": np.zeros(4), "y": np.zeros(4)}, "2-D"),
        "nan.npz": ({"X": np.full((4, 2), np.nan), "y": np.zeros(4)}, "NaN"),
    }
    for file_name, (arrays, message) in cases.items():
        path = tmp_path / file_name
        np.savez(path, **arrays)
        with pytest.raises(ValueError, match=message) as info:
            load_adbench(path)
        assert file_name in str(info.value)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip archive at all")
    with pytest.raises(ValueError, match="garbage.npz"):
        load_adbench(garbage)


# -------------------------------------------------------------------------------------- moons


def test_moons() -> None:
    X, moon = load_moons(101, noise=0.1, seed=3)
    assert X.shape == (101, 2) and X.dtype == np.float32
    assert set(moon) == {0, 1}
    np.testing.assert_array_equal(X, load_moons(101, noise=0.1, seed=3)[0])
    assert not np.array_equal(X, load_moons(101, noise=0.1, seed=4)[0])
    with pytest.raises(ValueError, match="n"):
        load_moons(0)
