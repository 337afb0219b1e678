"""Streamed scoring of files (``tfp_flowad.files``): the scores of every row, in order, as the
in-memory ``decision_function`` gives them, whatever the source and the chunk size; kept
columns carried; the output whole or absent. One tiny model, fitted once, serves every test."""

import io

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_FIT

from tfp_flowad import NFADetector
from tfp_flowad.io import read_chunks, score_file

TINY = TINY_FIT
MODEL_COLUMNS = ["bytes", "rate", "protocol", "secure"]
N = 250


def table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "bytes": rng.lognormal(5, 1, n).round(),
            "rate": rng.uniform(0, 1, n),
            "protocol": rng.choice(["tcp", "udp"], n),
            "secure": rng.choice([True, False], n),
        }
    )


@pytest.fixture(scope="module")
def detector():
    return NFADetector(**TINY).fit(table(300, seed=0))


@pytest.fixture(scope="module")
def rows():
    """The rows to score, with an id and a timestamp; ``bytes`` holds whole numbers in the
    first 100 rows and decimals after."""
    frame = table(N, seed=1)
    frame.loc[100:, "bytes"] += 0.5
    frame.insert(0, "id", np.arange(1000, 1000 + N))
    frame["ts"] = [f"2024-01-01T{i // 60:02d}:{i % 60:02d}" for i in range(N)]
    return frame


def write_source(rows, folder, kind):
    """``rows`` as the source ``kind``; returns the path to give ``score_file``."""
    if kind in ("csv", "csv.gz", "parquet"):
        path = folder / f"rows.{kind}"
        rows.to_parquet(path) if kind == "parquet" else rows.to_csv(path, index=False)
        return path
    parts = folder / "parts"
    parts.mkdir()
    rows.iloc[:120].to_parquet(parts / "part-0.parquet")  # a range index: metadata alone
    second = rows.iloc[120:]
    second.index = list(second.index)  # any other index is stored as a column
    second.to_parquet(parts / "part-1.parquet")
    (parts / "_SUCCESS").write_text("")
    return parts if kind == "folder" else f"{parts}/part-*.parquet"


def hidden(folder):
    return sorted(path.name for path in folder.rglob(".*"))


@pytest.mark.parametrize("chunk_rows", [50, 64])
@pytest.mark.parametrize("kind", ["csv", "csv.gz", "parquet", "folder", "glob"])
def test_streamed_scores_equal_the_in_memory_scores(detector, rows, tmp_path, kind, chunk_rows):
    source = write_source(rows, tmp_path, kind)
    out = tmp_path / "scores.parquet"
    summary = score_file(
        detector, source, out, keep_columns=["ts", "id"], chunk_rows=chunk_rows, progress=False
    )
    scores = pd.read_parquet(out)
    assert list(scores.columns) == ["ts", "id", "anomaly_score", "is_anomaly"]
    expected = detector.decision_function(rows[MODEL_COLUMNS])
    np.testing.assert_allclose(scores.anomaly_score, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(scores.is_anomaly, expected > detector.threshold_)
    assert scores.ts.tolist() == rows.ts.tolist()
    assert scores.id.astype(str).tolist() == rows.id.astype(str).tolist()  # text from CSV
    assert (summary.rows, summary.flagged) == (N, int((expected > detector.threshold_).sum()))
    assert summary.files == (2 if kind in ("folder", "glob") else 1)
    assert summary.rows_per_second > 0 and hidden(tmp_path) == []


def test_several_kinds_and_every_output_format_agree(detector, rows, tmp_path):
    rows.to_parquet(tmp_path / "rows.parquet")
    kinds = ["student", "combined", "density"]
    read = {}
    for name in ("scores.csv", "scores.csv.gz", "scores.parquet"):
        score_file(
            detector, tmp_path / "rows.parquet", tmp_path / name, keep_columns=["id"],
            kinds=kinds, chunk_rows=64, progress=False,
        )  # fmt: skip
        read[name] = pd.read_parquet(tmp_path / name) if "parquet" in name else None
        read[name] = pd.read_csv(tmp_path / name) if read[name] is None else read[name]
    expected = detector.anomaly_scores(rows[MODEL_COLUMNS], kinds)
    scores = read["scores.parquet"]
    assert list(scores.columns) == [
        "id", "anomaly_score", "combined_score", "density_score", "is_anomaly",
    ]  # fmt: skip
    np.testing.assert_allclose(scores.anomaly_score, expected["student"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(scores.combined_score, expected["combined"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(scores.density_score, expected["density"], rtol=1e-5, atol=1e-5)
    flags = expected["student"] > detector.thresholds_["student"]
    np.testing.assert_array_equal(scores.is_anomaly, flags)
    assert scores.id.tolist() == rows.id.tolist()
    pd.testing.assert_frame_equal(read["scores.csv"], scores)
    pd.testing.assert_frame_equal(read["scores.csv.gz"], scores)
    assert (tmp_path / "scores.csv").read_text().startswith("id,anomaly_score,combined_score,")
    stream = io.StringIO()
    score_file(detector, tmp_path / "rows.parquet", stream, ["id"], kinds, 64, progress=False)
    assert stream.getvalue() == (tmp_path / "scores.csv").read_text()


def test_column_types_are_fixed_by_the_model_across_chunks(detector, rows, tmp_path):
    """``bytes`` reads as whole numbers in the first chunk and decimals later; ``secure``,
    booleans at training, is written ``true`` / ``FALSE`` as pandas reads booleans; both are
    scored as pandas reads the whole file."""
    text = rows.assign(secure=rows.secure.map({True: "true", False: "FALSE"}))
    text.to_csv(tmp_path / "rows.csv", index=False)
    whole = pd.read_csv(tmp_path / "rows.csv")
    assert whole.secure.dtype == bool
    chunks = list(read_chunks(tmp_path / "rows.csv", detector.encoder_, ["id"], chunk_rows=100))
    assert [chunk.start for chunk in chunks] == [0, 100, 200]
    assert all(chunk.frame.bytes.dtype == np.float64 for chunk in chunks)
    assert chunks[0].frame.bytes.eq(chunks[0].frame.bytes.round()).all()
    assert set(chunks[1].frame.secure) == {"True", "False"}
    assert chunks[2].frame.index[0] == 200 and chunks[2].where() == (
        f"source {str(tmp_path / 'rows.csv')!r}, rows 200 to 249"
    )
    score_file(detector, tmp_path / "rows.csv", tmp_path / "s.csv", ["id"], None, 100, False)
    expected = detector.decision_function(whole[MODEL_COLUMNS])
    np.testing.assert_allclose(
        pd.read_csv(tmp_path / "s.csv").anomaly_score, expected, rtol=1e-5, atol=1e-5
    )


def test_a_named_parquet_index_and_a_csv_byte_order_mark(detector, rows, tmp_path):
    """A named pandas index stored in Parquet is a column to keep; a CSV header that starts
    with a byte order mark reads as pandas reads it."""
    rows = rows.assign(id=np.random.default_rng(0).permutation(N))  # no range: stored
    rows.set_index("id").to_parquet(tmp_path / "indexed.parquet")
    rows.to_csv(tmp_path / "marked.csv", index=False, encoding="utf-8-sig")
    expected = detector.decision_function(rows[MODEL_COLUMNS])
    for source in ("indexed.parquet", "marked.csv"):
        out = tmp_path / f"{source}.scores.parquet"
        score_file(detector, tmp_path / source, out, ["id", "ts"], progress=False)
        scores = pd.read_parquet(out)
        assert scores.id.astype(int).tolist() == rows.id.tolist()
        np.testing.assert_allclose(scores.anomaly_score, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_a_failure_mid_stream_leaves_the_previous_output(detector, rows, tmp_path, suffix):
    bad = rows.astype(object)
    bad.loc[130, "rate"] = "abc"  # in the third chunk of 50 rows
    bad.to_csv(tmp_path / "rows.csv", index=False)
    out = tmp_path / f"scores.{suffix}"
    out.write_bytes(b"previous scores\n")
    seen = []
    with pytest.raises(ValueError) as info:
        score_file(
            detector, tmp_path / "rows.csv", out, ["id"], chunk_rows=50, progress=False,
            on_chunk=lambda chunk, scores: seen.append(chunk.start),
        )  # fmt: skip
    assert str(info.value).startswith(
        f"source {str(tmp_path / 'rows.csv')!r}, rows 100 to 149: column 'rate' has cells that "
        "are not numbers, though most of its values are: 1 of 50, the first at row 130: 'abc'"
    )
    assert seen == [0, 50]
    assert out.read_bytes() == b"previous scores\n" and hidden(tmp_path) == []

    def refuse():
        raise RuntimeError("not committed")

    rows.to_csv(tmp_path / "good.csv", index=False)
    with pytest.raises(RuntimeError, match="not committed"):
        score_file(
            detector, tmp_path / "good.csv", out, ["id"], progress=False, before_commit=refuse
        )
    assert out.read_bytes() == b"previous scores\n" and hidden(tmp_path) == []


def test_an_input_file_is_never_the_output(detector, rows, tmp_path):
    parts = write_source(rows, tmp_path, "folder")
    rows.to_csv(tmp_path / "rows.csv", index=False)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    for source, out in [
        (tmp_path / "rows.csv", tmp_path / "rows.csv"),
        (parts, parts / "part-1.parquet"),
        (f"{tmp_path}/*.csv", tmp_path / "rows.csv"),
    ]:
        with pytest.raises(ValueError, match="refusing to write .*: it is the input"):
            score_file(detector, source, out, ["id"], progress=False)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_bad_sources_and_arguments_are_named(detector, rows, tmp_path):
    rows.to_csv(tmp_path / "rows.csv", index=False)
    rows.drop(columns=["ts"]).to_csv(tmp_path / "no_ts.csv", index=False)
    rows.drop(columns=["rate"]).to_csv(tmp_path / "missing_rate.csv", index=False)
    (tmp_path / "empty").mkdir()
    source, out = tmp_path / "rows.csv", tmp_path / "s.csv"
    cases = {
        "has no column 'idd'; its columns are ['id', 'bytes'": dict(keep_columns=["ts", "idd"]),
        f"source {str(tmp_path / 'missing_rate.csv')!r} must have the training columns; missing "
        "['rate'] (it has ['id', 'bytes', 'protocol', 'secure', 'ts'])": dict(
            source=tmp_path / "missing_rate.csv"
        ),
        "kinds must be distinct score kinds of this detector": dict(kinds=["cosine"]),
        "chunk_rows must be an integer >= 1; got 0": dict(chunk_rows=0),
        "other than the score columns ['anomaly_score', 'is_anomaly']; got ['anomaly_score']": (
            dict(keep_columns=["anomaly_score"])
        ),
        "source: no file matches": dict(source=f"{tmp_path}/*.parquet"),
        "source: file": dict(source=tmp_path / "missing.csv"),
        "holds no .csv, .csv.gz, .parquet file": dict(source=tmp_path / "empty"),
        f"source {str(tmp_path / 'no_ts.csv')!r} has no column 'ts'": dict(
            source=f"{tmp_path}/[nr]*.csv", keep_columns=["id", "ts"]
        ),
    }
    for expected, arguments in cases.items():
        arguments = {"source": source, "keep_columns": ["id", "ts"], **arguments}
        with pytest.raises(ValueError) as info:
            score_file(detector, out=out, progress=False, **arguments)
        assert expected in str(info.value), (expected, str(info.value))
    assert not out.exists() and hidden(tmp_path) == []


def test_progress_lines_on_stderr(detector, rows, tmp_path, capsys):
    rows.to_parquet(tmp_path / "rows.parquet")
    score_file(detector, tmp_path / "rows.parquet", tmp_path / "s.parquet", ["id", "ts"], None, 64)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("scored 64 of 250 rows, ") and lines[0].endswith("rows.parquet")
    assert lines[-1].startswith("scored 250 of 250 rows, ") and lines[-1].endswith("; done")
