"""``fit`` from files, folders, globs and ``tf.data`` datasets, read once as a stream: the
training rows are a uniform sample of at most ``max_rows`` normal rows that does not depend on
how, or from where, the rows are read (``tfp_flowad.io.training_rows``)."""

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from conftest import TINY_FIT
from scipy import stats

from tfp_flowad import NFADetector
from tfp_flowad.cli import main
from tfp_flowad.io import training_rows

N_ROWS = 1200


def table(n=N_ROWS, seed=0) -> pd.DataFrame:
    """Numeric (decimal and integer), text and boolean columns, and 0 / 1 labels."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "bytes": rng.lognormal(5, 1, n),
            "rate": rng.uniform(0, 1, n),
            "hops": rng.integers(0, 9, n),
            "protocol": rng.choice(["tcp", "udp", "icmp"], n),
            "urgent": rng.choice([True, False], n),
            "label": (rng.random(n) < 0.04).astype(np.int64),
        }
    )
    frame.loc[frame.label == 1, "rate"] += 3.0
    return frame


def dataset(frame: pd.DataFrame) -> tf.data.Dataset:
    """The rows of ``frame`` as a dataset of one row per element, dicts of column tensors."""
    columns = {
        column: frame[column].to_numpy(str if frame[column].dtype == "str" else None)
        for column in frame.columns
    }
    return tf.data.Dataset.from_tensor_slices(columns)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The rows of ``table()`` as CSV, gzip CSV, Parquet, and a folder of three Parquet parts."""
    folder = tmp_path_factory.mktemp("fit_from_files")
    frame = table()
    frame.to_csv(folder / "rows.csv", index=False)
    frame.to_csv(folder / "rows.csv.gz", index=False)
    frame.to_parquet(folder / "rows.parquet", index=False)
    (folder / "parts").mkdir()
    for part, start in enumerate(range(0, N_ROWS, 500)):
        frame.iloc[start : start + 500].to_parquet(folder / "parts" / f"{part}.parquet")
    return folder


def sources(folder, frame):
    """The same rows from memory, every kind of file source and tf.data."""
    parts = sorted((folder / "parts").iterdir())
    return {
        "memory": frame,
        "csv": folder / "rows.csv",
        "csv.gz": str(folder / "rows.csv.gz"),
        "parquet": folder / "rows.parquet",
        "folder": folder / "parts",
        "glob": str(folder / "parts" / "*.parquet"),
        "list": parts,
        "tf.data": dataset(frame),
        "tf.data batched": dataset(frame).batch(97),
    }


def assert_same_rows(a, b):
    pd.testing.assert_frame_equal(a.frame, b.frame, check_dtype=False, check_index_type=False)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.categorical_columns == b.categorical_columns == ["protocol", "urgent"]
    assert (a.rows_read, a.normal_rows_read) == (b.rows_read, b.normal_rows_read)


def test_the_sample_is_uniform():
    """Over 400 seeds, each row of 1000 is kept about as often as any other: a chi-square test
    of the counts per row and per block of 100 consecutive rows (fails for a sample biased
    toward early or late rows)."""
    rows = np.arange(1000).reshape(-1, 1).astype(np.float64)
    counts = np.zeros(1000)
    for seed in range(400):
        sample = training_rows(rows, max_rows=50, random_state=seed)
        kept = sample.frame["x0"].to_numpy().astype(int)
        assert len(kept) == 50 and np.all(np.diff(kept) > 0)  # distinct, in their order
        counts[kept] += 1
    assert stats.chisquare(counts).pvalue > 1e-3
    assert stats.chisquare(counts.reshape(10, 100).sum(1)).pvalue > 1e-3
    # the same from a stream: rows that arrive late are as likely to be kept
    streamed = np.zeros(1000)
    for seed in range(50):
        frame = pd.DataFrame({"x0": rows[:, 0]})
        kept = training_rows(dataset(frame), max_rows=50, random_state=seed, chunk_rows=128)
        streamed[kept.frame["x0"].to_numpy().astype(int)] += 1
    assert stats.chisquare(streamed.reshape(10, 100).sum(1)).pvalue > 1e-3


def test_the_sample_does_not_depend_on_the_chunk_size(files):
    cap = dict(max_rows=300, max_anomaly_rows=20, random_state=5)
    first = training_rows(files / "rows.csv", "label", chunk_rows=65536, **cap)
    assert len(first.frame) == 320 and first.sampled
    for chunk_rows in (7, 256):
        for source in (files / "rows.csv", files / "parts", dataset(table())):
            again = training_rows(source, "label", chunk_rows=chunk_rows, **cap)
            assert_same_rows(first, again)
    other_seed = training_rows(files / "rows.csv", "label", **{**cap, "random_state": 6})
    assert not other_seed.frame.index.equals(first.frame.index)


def test_every_source_gives_the_same_sample(files):
    frame = table()
    cap = dict(max_rows=400, max_anomaly_rows=30, random_state=1)
    reference = training_rows(frame, "label", **cap)
    assert reference.labels.sum() == 30 and (reference.labels == 0).sum() == 400
    assert reference.anomaly_rows_read == int(frame.label.sum()) > 30
    for name, source in sources(files, frame).items():
        sample = training_rows(source, "label", chunk_rows=128, **cap)
        assert_same_rows(reference, sample)
        np.testing.assert_array_equal(sample.frame["bytes"], frame["bytes"][sample.frame.index])
        assert sample.frame["urgent"].dtype == bool, name
    # below the caps: every row, in order, from any source
    everything = training_rows(files / "parts", "label", random_state=1)
    assert everything.frame.index.tolist() == list(range(N_ROWS)) and not everything.sampled


def test_below_the_cap_a_fit_is_the_fit_of_every_row(files):
    """With fewer normal rows than ``max_rows``, a CSV file, tf.data and the rows in memory
    (labels as an array) give the same scores, as every row is trained on."""
    frame = table()
    X, y = frame.drop(columns=["label"]), frame["label"].to_numpy()
    probe = table(200, seed=4).drop(columns=["label"])
    in_memory = NFADetector(**TINY_FIT).fit(X, y).decision_function(probe)
    for source in (files / "rows.csv", dataset(frame).batch(200)):
        streamed = NFADetector(**TINY_FIT).fit(source, "label").decision_function(probe)
        assert np.abs(in_memory - streamed).max() == 0.0


def test_the_command_line_fits_a_sample_like_python_from_memory(files, tmp_path, capsys):
    """``tfp-flowad fit --data FOLDER --max-rows 700`` trains on the sample that ``fit`` of
    the same rows in memory draws with the same seed: the same scores."""
    out = tmp_path / "model"
    argv = ["fit", "--data", files / "parts", "--label-column", "label", "--max-rows", "700"]
    argv += ["--out", out, "--epochs-scale", "0.01", "--student-steps", "10"]
    argv += ["--classifier-model", "mlp", "--neighbour-rows", "0"]
    assert main([str(a) for a in argv]) == 0
    printed = capsys.readouterr().out
    n_known = int(table().label.sum())
    assert f"fitted on {700 + n_known} rows ({n_known} known anomalies)" in printed
    assert f"a uniform sample of the {N_ROWS} rows read" in printed
    from_file = NFADetector.load(out)
    assert len(from_file.decision_scores_) == 700 + n_known
    in_memory = NFADetector(**from_file.get_params()).fit(table(), "label", max_rows=700)
    probe = table(300, seed=9).drop(columns=["label"])
    difference = from_file.decision_function(probe) - in_memory.decision_function(probe)
    assert np.abs(difference).max() == 0.0


def _bad_files(folder):
    frame = table(300)
    bad = {}
    for name, column, row, value in [
        ("nan_late", "rate", 250, np.nan),
        ("text_late", "bytes", 290, "many"),
        ("label_text", "label", 120, "attack"),
        ("label_two", "label", 7, 2),
        ("label_empty", "label", 9, None),
    ]:
        rows = frame.astype(object)
        rows.loc[row, column] = value
        rows.to_csv(folder / f"{name}.csv", index=False)
        bad[name] = folder / f"{name}.csv"
    (folder / "mixed").mkdir()
    frame.to_parquet(folder / "mixed" / "a.parquet")
    frame.drop(columns=["hops"]).to_parquet(folder / "mixed" / "b.parquet")
    frame.iloc[:0].to_csv(folder / "header_only.csv", index=False)
    frame.to_json(folder / "rows.json")
    (folder / "empty_folder").mkdir()
    return bad


ERROR_CASES = {
    "no file": (lambda f: ({"X": f / "nowhere.csv"}), "X: file '{f}/nowhere.csv' does not exist"),
    "glob matching nothing": (lambda f: {"X": f"{f}/*.parquet"}, "X: no file matches"),
    "empty folder": (lambda f: {"X": f / "empty_folder"}, "holds no .csv, .csv.gz, .parquet"),
    "unknown suffix": (lambda f: {"X": f / "rows.json"}, "is not a table file"),
    "label column missing": (
        lambda f: {"X": f / "nan_late.csv", "y": "kind"},
        "y: 'kind' is not a column of X",
    ),
    "labels other than 0/1": (
        lambda f: {"X": f / "label_text.csv", "y": "label"},
        "y 'label' must hold only 0 (normal) and 1 (known anomaly); got other values "
        "['attack'], the first at row 120",
    ),
    "label 2": (lambda f: {"X": f / "label_two.csv", "y": "label"}, "other values ['2']"),
    "empty label": (
        lambda f: {"X": f / "label_empty.csv", "y": "label"},
        "y 'label' has empty labels: 1 of 300, the first at row 9",
    ),
    "mixed columns": (lambda f: {"X": f / "mixed"}, "X: the files have different columns"),
    "empty source": (lambda f: {"X": f / "header_only.csv"}, "X holds no rows"),
    "max_rows 0": (
        lambda f: {"X": f / "nan_late.csv", "max_rows": 0},
        "max_rows must be an integer >= 1; got 0",
    ),
    "max_rows not an integer": (
        lambda f: {"X": f / "nan_late.csv", "max_rows": 2.5},
        "max_rows must be an integer >= 1; got 2.5",
    ),
    "NaN in a late chunk": (
        lambda f: {"X": f / "nan_late.csv"},
        "X: column 'rate' has empty cells (NaN): 1 of 300, the first at row 250",
    ),
    "text in a numeric column": (
        lambda f: {"X": f / "text_late.csv"},
        "X: column 'bytes' has cells that are not numbers, though most of its values are: "
        "1 of 300, the first at row 290: 'many'",
    ),
}


@pytest.mark.parametrize("case", ERROR_CASES)
def test_bad_input_is_one_error_naming_it_and_writes_nothing(case, tmp_path):
    _bad_files(tmp_path)
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.rglob("*.*")}
    arguments, expected = ERROR_CASES[case]
    kwargs = arguments(tmp_path)
    X, y = kwargs.pop("X"), kwargs.pop("y", None)
    with pytest.raises(ValueError) as info:
        NFADetector(**TINY_FIT).fit(X, y, **kwargs)
    assert expected.format(f=tmp_path) in str(info.value), str(info.value)
    if "NaN" in case or "text" in case:
        assert f"(in '{tmp_path}/" in str(info.value)  # the file
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.rglob("*.*")}
    assert after == before


def test_wrong_kinds_of_argument_are_type_errors(files):
    with pytest.raises(TypeError, match="y must be None or the name of X's label column"):
        NFADetector(**TINY_FIT).fit(files / "rows.csv", np.zeros(N_ROWS))
    tuples = tf.data.Dataset.from_tensor_slices((np.zeros((20, 2)), np.zeros(20)))
    with pytest.raises(TypeError, match="elements must be dicts"):
        NFADetector(**TINY_FIT).fit(tuples)
    matrices = tf.data.Dataset.from_tensor_slices({"a": np.zeros((20, 2, 2))})
    with pytest.raises(TypeError, match="all be scalars .* or all vectors"):
        NFADetector(**TINY_FIT).fit(matrices)
