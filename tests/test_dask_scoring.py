"""Scoring with an exported SavedModel on a local Dask cluster (``tfp_flowad.engines``)."""

import os

import numpy as np
import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")

from conftest import TINY_FIT  # noqa: E402

from tfp_flowad import NFADetector  # noqa: E402
from tfp_flowad.cli import main  # noqa: E402
from tfp_flowad.engines import MARKER, score_with_dask  # noqa: E402


def rows(n, seed):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "bytes": rng.lognormal(5, 1, n),
            "rate": rng.uniform(0, 1, n),
            "protocol": rng.choice(["tcp", "udp", "icmp"], n),
        }
    )


@pytest.fixture(scope="module")
def setup(tmp_path_factory, client):
    """A tiny detector (saved, and its student score exported), and a folder of three Parquet
    files of row groups of 100 rows with an ``id`` and a ``ts`` column; the workers import
    TensorFlow meanwhile."""
    folder = tmp_path_factory.mktemp("dask")
    detector = NFADetector(**TINY_FIT).fit(rows(600, 0))
    detector.save(folder / "model")
    detector.score_kind = "student"
    export = detector.export_saved_model(folder / "serving")
    data = folder / "data"
    data.mkdir()
    frames = []
    for index in range(3):
        frame = rows(250, index + 1)
        frame.insert(0, "id", [f"{index}-{row:04d}" for row in range(len(frame))])
        frame["ts"] = pd.date_range("2024-01-01", periods=len(frame), freq="s") + pd.Timedelta(
            days=index
        )
        frame.to_parquet(data / f"part{index}.parquet", row_group_size=100, index=False)
        frames.append(frame)
    return detector, export, data, pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        for worker in client.scheduler_info()["workers"]:
            client.submit(exec, "import tensorflow", workers=[worker], pure=False)
        yield client


def test_scores_equal_decision_function(setup, client, tmp_path):
    detector, export, data, frame = setup
    out = tmp_path / "scores"
    summary = score_with_dask(
        export.parent, data, out, keep_columns=["id", "ts"], client=client, partition_rows=150
    )
    assert (summary.rows, summary.files, summary.parts) == (750, 3, 6)
    assert 1 <= summary.model_loads <= 2  # once per worker process, not once per piece
    names = sorted(os.listdir(out))
    assert names == [MARKER] + [f"part-{n:06d}.parquet" for n in range(6)]
    scores = pd.read_parquet(out)
    assert list(scores.columns) == ["id", "ts", "anomaly_score", "is_anomaly"]
    expected = detector.decision_function(frame[["bytes", "rate", "protocol"]])
    joined = frame.merge(scores, on=["id", "ts"], validate="one_to_one")
    np.testing.assert_allclose(joined.anomaly_score, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(scores.id, frame.id)  # in the rows' order, too
    np.testing.assert_array_equal(joined.is_anomaly, (expected > detector.threshold_) * 1)
    assert summary.flagged == int(scores.is_anomaly.sum())
    again = score_with_dask(export, data, out, keep_columns="id", client=client)  # replaces it
    assert again.parts == 3 and list(pd.read_parquet(out).columns)[0] == "id"


def test_a_bad_cell_leaves_no_output(setup, client, tmp_path):
    detector, export, data, frame = setup
    bad = tmp_path / "bad"
    bad.mkdir()
    for index in range(3):
        part = pd.read_parquet(data / f"part{index}.parquet")
        if index == 2:
            part.loc[230, "rate"] = np.nan
        part.to_parquet(bad / f"part{index}.parquet", row_group_size=100, index=False)
    before = {path: path.stat().st_mtime_ns for path in bad.iterdir()}
    out = tmp_path / "scores"
    with pytest.raises(ValueError) as error:
        score_with_dask(export, bad, out, keep_columns=["id"], client=client, chunk_rows=16)
    message = str(error.value)
    assert f"source {str(bad / 'part2.parquet')!r}, rows 224 to 239" in message
    assert "column 'rate' has empty cells (NaN): 1 of 16, the first at row 230: nan" in message
    assert sorted(os.listdir(tmp_path)) == ["bad"]  # no output, no temporary folder
    assert {path: path.stat().st_mtime_ns for path in bad.iterdir()} == before


def test_bad_arguments_are_named_before_any_task(setup, tmp_path):
    detector, export, data, _ = setup
    address = "tcp://127.0.0.1:9"  # no scheduler: a task sent there would fail otherwise
    cases = [
        (dict(model_dir=tmp_path / "model"), "model_dir: '"),
        (dict(model_dir=data.parent / "model"), "is not a SavedModel"),
        (dict(source=tmp_path / "nothing"), "source: file '"),
        (dict(source=str(data / "*.csv")), "source: no file matches"),
        (dict(keep_columns=["id", "host"]), "lacks the columns ['host'] that keep_columns needs"),
        (dict(keep_columns=["anomaly_score"]), "keep_columns must be distinct column names"),
        (dict(out=data / "scores"), "is inside the input folder"),
        (dict(out=data / "part0.parquet"), "exists and is not a folder of scores"),
        (dict(out=tmp_path / "no" / "scores"), "out: directory"),
        (dict(chunk_rows=0), "chunk_rows must be an integer >= 1; got 0"),
    ]
    for change, expected in cases:
        arguments = dict(model_dir=export, source=data, out=tmp_path / "scores")
        arguments.update(keep_columns=["id"], client=address, chunk_rows=64)
        with pytest.raises(ValueError) as error:
            score_with_dask(**(arguments | change))
        assert expected in str(error.value), (change, str(error.value))
    assert sorted(os.listdir(tmp_path)) == []


def test_command_line(setup, client, tmp_path, capsys):
    detector, export, data, _ = setup
    frame = rows(120, 7).assign(id=[f"{n:05d}" for n in range(120)])
    frame.to_csv(tmp_path / "new.csv", index=False)
    address = client.scheduler.address
    base = ["score", "--data", tmp_path / "new.csv", "--keep-columns", "id", "--quiet"]
    status = main([str(a) for a in [*base, "--model", data.parent / "model", "--score",
                   "student", "--engine", "dask", "--dask-scheduler", address,
                   "--out", tmp_path / "dask"]])  # fmt: skip
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "scored 120 rows" in out and "1 part file" in out
    status = main([str(a) for a in [*base, "--model", data.parent / "model", "--score",
                   "student", "--out", tmp_path / "stream.parquet"]])  # fmt: skip
    assert status == 0
    dask, stream = pd.read_parquet(tmp_path / "dask"), pd.read_parquet(tmp_path / "stream.parquet")
    assert dask.id.tolist() == frame.id.tolist()  # text exactly as written
    np.testing.assert_allclose(dask.anomaly_score, stream.anomaly_score, rtol=1e-5, atol=1e-6)
    status = main([str(a) for a in [*base, "--model", export.parent, "--score", "combined",
                   "--engine", "dask", "--out", tmp_path / "x"]])  # fmt: skip
    _, err = capsys.readouterr()
    assert status == 2 and err.startswith("tfp-flowad: error: --score:")
    status = main([str(a) for a in [*base, "--model", export.parent, "--dask-workers", "2",
                   "--out", tmp_path / "y"]])  # fmt: skip
    _, err = capsys.readouterr()
    assert status == 2 and "--dask-workers needs --engine dask" in err
    assert sorted(os.listdir(tmp_path)) == ["dask", "new.csv", "stream.parquet"]
