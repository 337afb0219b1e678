"""Bad input and faults, case by case: one clear error, inputs untouched, outputs whole or absent.

Each CLI case must exit with status 2 and print exactly one line, ``tfp-flowad: error: ...``,
holding the expected words; the files it was given (data and model) keep their bytes and
modification times, and no hidden temporary file is left in its folder. Each Python case must
raise the expected exception type with a message naming the argument. One small model, fitted
once for the module, serves every case.
"""

import os
import resource
import signal

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from conftest import TINY_FIT

from tfp_flowad import NFADetector
from tfp_flowad.cli import main

TINY = {**TINY_FIT, "student_steps": 0}


def table(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "bytes": rng.lognormal(5, 1, n).round(),
            "rate": rng.uniform(0, 1, n),
            "protocol": rng.choice(["tcp", "udp"], n),
        }
    )


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A folder with ``model/`` (fitted on ``train.csv``) and the data files of the cases."""
    folder = tmp_path_factory.mktemp("errors")
    train = table()
    train.to_csv(folder / "train.csv", index=False)
    NFADetector(**TINY).fit(train).save(folder / "model")
    rows = table(40, seed=1)
    rows.to_csv(folder / "rows.csv", index=False)
    labelled = rows.assign(label=np.where(np.arange(40) < 35, "normal", "attack"))
    labelled.to_csv(folder / "labelled.csv", index=False)
    few_normal = np.where(np.arange(40) < 5, "normal", "attack")
    labelled.assign(label=few_normal).to_csv(folder / "few_normal.csv", index=False)
    labelled.loc[4, "label"] = None
    labelled.to_csv(folder / "empty_label.csv", index=False)
    for name, column, row, value in [
        ("huge", "bytes", 3, 1e308),
        ("infinite", "rate", 5, np.inf),
        ("nan", "rate", 6, np.nan),
        ("text", "rate", 7, "abc"),
        ("empty_category", "protocol", 2, None),
    ]:
        bad = rows.astype(object)
        bad.loc[row, column] = value
        bad.to_csv(folder / f"{name}.csv", index=False)
    (folder / "repeated.csv").write_text("bytes,bytes,protocol\n1,2,tcp\n3,4,udp\n")
    rows.drop(columns=["rate"]).to_csv(folder / "no_rate.csv", index=False)
    (folder / "not_a_model").mkdir()
    (folder / "not_a_model" / "notes.txt").write_text("mine")
    (folder / "serving" / "1").mkdir(parents=True)
    (folder / "old_scores.csv").write_text("anomaly_score,is_anomaly\n")
    return folder


def snapshot(folder) -> dict:
    """Every file under ``folder``: its bytes and modification time."""
    return {
        path: (path.read_bytes(), path.stat().st_mtime_ns)
        for path in folder.rglob("*")
        if path.is_file()
    }


def hidden(folder) -> list:
    return [path for path in folder.rglob(".*")]


SCORE = ["score", "--model", "{model}"]
CLI_CASES = {
    # score: the output
    "out is the data": (SCORE + ["--data", "{rows}", "--out", "{rows}"], "is --data"),
    "out is a model file": (
        SCORE + ["--data", "{rows}", "--out", "{model}/detector.json"],
        "is --model or a file of it",
    ),
    "out in a missing directory": (
        SCORE + ["--data", "{rows}", "--out", "{folder}/missing/s.csv"],
        "--out: directory",
    ),
    "out is a directory": (SCORE + ["--data", "{rows}", "--out", "{folder}"], "is a directory"),
    "out is a device": (SCORE + ["--data", "{rows}", "--out", "/dev/full"], "not a regular file"),
    # score: the rows
    "value beyond float32": (SCORE + ["--data", "{folder}/huge.csv"], "'bytes' has values beyond"),
    "infinite value": (SCORE + ["--data", "{folder}/infinite.csv"], "'rate' has infinite values"),
    "empty numeric cell": (SCORE + ["--data", "{folder}/nan.csv"], "'rate' has empty cells"),
    "text in a numeric column": (
        SCORE + ["--data", "{folder}/text.csv"],
        "'rate' has cells that are not numbers, though most of its values are: 1 of 40, the "
        "first at row 7: 'abc'",
    ),
    "empty category": (
        SCORE + ["--data", "{folder}/empty_category.csv"],
        "'protocol' has empty cells: 1 of 40, the first at row 2",
    ),
    "repeated column names": (
        SCORE + ["--data", "{folder}/repeated.csv"],
        "repeats the column names ['bytes']",
    ),
    "missing column": (SCORE + ["--data", "{folder}/no_rate.csv"], "missing ['rate']"),
    "empty label": (
        SCORE
        + ["--data", "{folder}/empty_label.csv", "--label-column", "label"]
        + ["--normal-value", "normal"],
        "--label-column 'label' has empty labels: 1 of 40, the first at row 4",
    ),
    "misspelt label column": (
        SCORE + ["--data", "{folder}/labelled.csv", "--label-column", "lable"],
        "--label-column: 'lable' is not a column",
    ),
    "normal value without labels": (
        SCORE + ["--data", "{rows}", "--normal-value", "normal"],
        "--normal-value needs --label-column",
    ),
    "missing data file": (SCORE + ["--data", "{folder}/nowhere.csv"], "does not exist"),
    # export
    "negative version": (
        ["export", "--model", "{model}", "--out", "{folder}/serving", "--version", "-1"],
        "argument --version: expected an integer >= 1; got '-1'",
    ),
    "version zero": (
        ["export", "--model", "{model}", "--out", "{folder}/serving", "--version", "0"],
        "argument --version",
    ),
    "version taken": (
        ["export", "--model", "{model}", "--out", "{folder}/serving", "--version", "1"],
        "exists already",
    ),
    "export onto a file": (
        ["export", "--model", "{model}", "--out", "{rows}"],
        "is a file",
    ),
    # fit: refused before any fitting
    "fit out is a file": (
        ["fit", "--data", "{rows}", "--out", "{rows}"],
        "--out: '{rows}' exists and is not a saved model",
    ),
    "fit out is another directory": (
        ["fit", "--data", "{rows}", "--out", "{folder}/not_a_model"],
        "exists and is not a saved model",
    ),
    "fit out holds the data": (
        ["fit", "--data", "{model}/detector.json", "--out", "{model}"],
        "holds --data",
    ),
    "fit value beyond float32": (
        ["fit", "--data", "{folder}/huge.csv", "--out", "{folder}/new"],
        "--data: column 'bytes' has values beyond the float32 range",
    ),
    "fit text in a numeric column": (
        ["fit", "--data", "{folder}/text.csv", "--out", "{folder}/new"],
        "--data: column 'rate' has cells that are not numbers",
    ),
    "fit empty category": (
        ["fit", "--data", "{folder}/empty_category.csv", "--out", "{folder}/new"],
        "--data: column 'protocol' has empty cells",
    ),
    "fit empty label": (
        ["fit", "--data", "{folder}/empty_label.csv", "--out", "{folder}/new"]
        + ["--label-column", "label", "--normal-value", "normal"],
        "--label-column 'label' has empty labels",
    ),
    "fit no normal rows": (
        ["fit", "--data", "{folder}/few_normal.csv", "--out", "{folder}/new"]
        + ["--label-column", "label", "--normal-value", "normal"],
        "--data holds 5 normal rows (labelled 'normal'); at least 10 are needed to fit",
    ),
    "fit repeated column names": (
        ["fit", "--data", "{folder}/repeated.csv", "--out", "{folder}/new"],
        "repeats the column names",
    ),
    "fit contamination": (
        ["fit", "--data", "{rows}", "--out", "{folder}/new", "--contamination", "2"],
        "argument --contamination: expected a number in (0, 0.5); got '2'",
    ),
    "fit epochs scale": (
        ["fit", "--data", "{rows}", "--out", "{folder}/new", "--epochs-scale", "0"],
        "argument --epochs-scale",
    ),
    "fit negative count": (
        ["fit", "--data", "{rows}", "--out", "{folder}/new", "--neighbour-rows", "-1"],
        "argument --neighbour-rows: expected an integer >= 0",
    ),
}


@pytest.mark.parametrize("case", CLI_CASES)
def test_cli_case_is_one_error_line_and_touches_nothing(case, folder, capsys):
    argv, expected = CLI_CASES[case]
    names = dict(folder=folder, model=folder / "model", rows=folder / "rows.csv")
    before = snapshot(folder)
    try:
        status = main([part.format(**names) for part in argv])
    except SystemExit as exit_info:  # argparse's errors
        status = exit_info.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("tfp-flowad")]
    assert status == 2, (case, err)
    assert len(lines) == 1 and lines[0].startswith("tfp-flowad: error: "), (case, err)
    assert expected.format(**names) in lines[0], (case, lines[0])
    assert snapshot(folder) == before, case
    assert hidden(folder) == [], case
    assert not (folder / "new").exists()


def test_a_failed_write_keeps_the_previous_scores(folder, capsys):
    out = folder / "old_scores.csv"
    argv = ["score", "--model", folder / "model", "--data", folder / "rows.csv", "--out", out]
    before = snapshot(folder)
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (200, limits[1]))
    try:
        status = main([str(a) for a in argv])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, handler)
    err = capsys.readouterr().err
    assert status == 2
    assert f"tfp-flowad: error: --out: cannot write {str(out)!r}: File too large" in err
    assert snapshot(folder) == before and hidden(folder) == []
    assert main([str(a) for a in argv]) == 0
    assert len(pd.read_csv(out)) == 40


@pytest.fixture(scope="module")
def detector(folder):
    return NFADetector.load(folder / "model")


def bad_rows(column, row, value) -> pd.DataFrame:
    rows = table(20, seed=2).astype(object)
    rows.loc[row, column] = value
    return rows


PYTHON_CASES = {
    "fit: value beyond float32": (
        lambda d: NFADetector(**TINY).fit(bad_rows("bytes", 3, 1e308)),
        ValueError,
        "X: column 'bytes' has values beyond the float32 range",
    ),
    "fit: text in a numeric column": (
        lambda d: NFADetector(**TINY).fit(bad_rows("rate", 3, "abc")),
        ValueError,
        "X: column 'rate' has cells that are not numbers",
    ),
    "fit: empty category": (
        lambda d: NFADetector(**TINY).fit(bad_rows("protocol", 3, None)),
        ValueError,
        "X: column 'protocol' has empty cells",
    ),
    "fit: repeated column names": (
        lambda d: NFADetector(**TINY).fit(table(20).set_axis(["a", "a", "p"], axis=1)),
        ValueError,
        "X has duplicated column names ['a']",
    ),
    "fit: ragged rows": (
        lambda d: NFADetector(**TINY).fit([[1.0, "tcp"], [2.0]]),
        ValueError,
        "X must be 2-D",
    ),
    "fit: a missing label": (
        lambda d: NFADetector(**TINY).fit(table(20), [0] * 19 + [None]),
        ValueError,
        "y has 1 missing labels (None or NaN), the first at row 19",
    ),
    "fit: labels of text and numbers": (
        lambda d: NFADetector(**TINY).fit(table(20), [0] * 19 + ["attack"]),
        ValueError,
        "y must hold only 0 (normal) and 1 (known anomaly); got other values ['attack']",
    ),
    "score: NaN": (
        lambda d: d.decision_function(bad_rows("rate", 5, np.nan)),
        ValueError,
        "X: column 'rate' has empty cells (NaN): 1 of 20, the first at row 5",
    ),
    "score: infinite": (
        lambda d: d.anomaly_scores(bad_rows("rate", 5, -np.inf)),
        ValueError,
        "X: column 'rate' has infinite values",
    ),
    "score: text": (
        lambda d: d.predict(bad_rows("bytes", 1, "many")),
        ValueError,
        "X: column 'bytes' has cells that are not numbers",
    ),
    "score: empty category": (
        lambda d: d.predict_proba(bad_rows("protocol", 1, None)),
        ValueError,
        "X: column 'protocol' has empty cells",
    ),
    "export: version 0": (
        lambda d: d.export_saved_model(d.tmp / "serving", version=0),
        ValueError,
        "version must be an integer >= 1; got 0",
    ),
    "export: version not an integer": (
        lambda d: d.export_saved_model(d.tmp / "serving", version="2"),
        ValueError,
        "version must be an integer >= 1; got '2'",
    ),
}


@pytest.mark.parametrize("case", PYTHON_CASES)
def test_python_case_names_the_argument(case, detector, tmp_path):
    call, error, expected = PYTHON_CASES[case]
    detector.tmp = tmp_path
    with pytest.raises(error) as info:
        call(detector)
    assert expected in str(info.value), (case, str(info.value))
    assert list(tmp_path.iterdir()) == []


def test_served_rows_are_checked_like_scored_rows(detector, tmp_path):
    """The SavedModel refuses what ``decision_function`` refuses, naming the same column;
    the export appears whole, with the umask's modes and nothing else in its folder."""
    target = detector.export_saved_model(tmp_path / "serving")
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o777 & ~umask
    assert [p.name for p in (tmp_path / "serving").iterdir()] == ["1"]
    serve = tf.saved_model.load(str(target)).signatures["serving_default"]
    rows = table(5, seed=3)
    inputs = detector.encoder_.to_tensors(rows)
    np.testing.assert_allclose(
        serve(**inputs)["anomaly_score"].numpy(), detector.decision_function(rows), rtol=1e-5
    )
    for value in (np.nan, np.inf):
        bad = rows.copy()
        bad.loc[2, "rate"] = value
        with pytest.raises(ValueError, match="column 'rate' has"):
            detector.decision_function(bad)
        served = dict(inputs, rate=tf.constant(bad.rate.to_numpy(), tf.float32))
        with pytest.raises(tf.errors.InvalidArgumentError, match="column `rate` holds NaN or inf"):
            serve(**served)
    for rate in (inputs["rate"][:3], tf.reshape(inputs["rate"], [5, 1])):
        with pytest.raises(
            tf.errors.InvalidArgumentError,
            match="column `rate` must be a \\[batch\\] vector with as many values as column `b",
        ):
            serve(**dict(inputs, rate=rate))
