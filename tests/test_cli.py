"""The ``tfp-flowad`` command line: fit -> score -> export on a CSV, and its errors."""

import io

import numpy as np
import pandas as pd
import pytest

from tfp_flowad.cli import main


def write_table(path, n=400, seed=0, labels=True):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "bytes": rng.lognormal(5, 1, n),
            "rate": rng.uniform(0, 1, n),
            "protocol": rng.choice(["tcp", "udp"], n),
        }
    )
    if labels:
        frame["label"] = np.where(np.arange(n) < n - 10, "normal", "attack")
        frame.loc[frame.label == "attack", "rate"] += 3.0
    frame.to_csv(path, index=False)
    return frame


def run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    write_table(folder / "train.csv")
    model = folder / "model"
    status = main(
        ["fit", "--data", str(folder / "train.csv"), "--label-column", "label"]
        + ["--normal-value", "normal", "--out", str(model), "--epochs-scale", "0.05"]
    )
    assert status == 0
    return model


def test_fit_score_export(model_dir, tmp_path, capsys):
    from tfp_flowad import NFADetector

    assert NFADetector.load(model_dir).flow_epochs == 1  # round(6 * 0.05), at least 1
    frame = write_table(tmp_path / "new.csv", n=50, seed=1)
    status, out, _ = run(
        capsys, "score", "--model", model_dir, "--data", tmp_path / "new.csv",
        "--label-column", "label", "--out", tmp_path / "scores.csv",
    )  # fmt: skip
    assert status == 0 and "scored 50 rows" in out
    assert "give --normal-value to compare the scores with 'label'" in out
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert list(scores.columns) == ["anomaly_score", "is_anomaly"] and len(scores) == len(frame)
    assert np.isfinite(scores.anomaly_score).all()
    status, out, _ = run(capsys, "export", "--model", model_dir, "--out", tmp_path / "serving")
    assert status == 0 and (tmp_path / "serving" / "1" / "saved_model.pb").is_file()


def test_score_compares_with_labels(model_dir, tmp_path, capsys):
    from sklearn.metrics import roc_auc_score

    frame = write_table(tmp_path / "new.csv", n=60, seed=3)
    argv = ["score", "--model", model_dir, "--data", tmp_path / "new.csv"]
    status, out, err = run(capsys, *argv, "--label-column", "label", "--normal-value", "normal")
    assert status == 0
    scores = pd.read_csv(io.StringIO(out))  # the CSV alone on stdout, the summary on stderr
    labels = (frame.label != "normal").to_numpy()
    auc = roc_auc_score(labels, scores.anomaly_score)
    assert f"labels: 10 anomalies in 60 rows; ROC AUC {auc:.4f}, average precision" in err
    caught = int((scores.is_anomaly.to_numpy() == 1)[labels].sum())
    assert f"the flags catch {caught} of 10 anomalies" in err
    frame[frame.label == "normal"].to_csv(tmp_path / "normal.csv", index=False)
    argv[-1] = tmp_path / "normal.csv"
    status, _, err = run(capsys, *argv, "--label-column", "label", "--normal-value", "normal")
    assert status == 0 and "one class" in err


def test_score_and_export_with_another_score(model_dir, tmp_path, capsys):
    import tensorflow as tf

    from tfp_flowad import NFADetector

    frame = write_table(tmp_path / "new.csv", n=50, seed=2, labels=False)
    argv = ["--model", model_dir, "--score", "classifier"]
    status, _, _ = run(
        capsys, "score", *argv, "--data", tmp_path / "new.csv", "--out", tmp_path / "s.csv"
    )
    assert status == 0
    detector = NFADetector.load(model_dir)
    detector.score_kind = "classifier"
    expected = detector.decision_function(frame)
    np.testing.assert_allclose(pd.read_csv(tmp_path / "s.csv").anomaly_score, expected, atol=1e-5)
    status, _, _ = run(capsys, "export", *argv, "--out", tmp_path / "serving")
    serve = tf.saved_model.load(str(tmp_path / "serving" / "1")).signatures["serving_default"]
    served = serve(**detector.encoder_.to_tensors(frame))
    np.testing.assert_allclose(served["anomaly_score"].numpy(), expected, atol=1e-5)
    np.testing.assert_array_equal(served["is_anomaly"].numpy(), expected > detector.threshold_)
    with pytest.raises(SystemExit) as exit_info:  # argparse rejects an unknown choice
        main(["export", "--model", str(model_dir), "--out", str(tmp_path / "x"), "--score", "no"])
    assert exit_info.value.code == 2 and "--score" in capsys.readouterr().err


def test_score_streams_a_glob_to_parquet_with_kept_columns(model_dir, tmp_path, capsys):
    from tfp_flowad import NFADetector

    parts = tmp_path / "parts"
    parts.mkdir()
    frames = [write_table(tmp_path / f"{i}.csv", n=30, seed=10 + i, labels=False) for i in (0, 1)]
    for i, frame in enumerate(frames):  # 'host' is neither kept nor scored: it is not read
        frame.assign(id=np.arange(30) + 30 * i, host="h").to_parquet(parts / f"day-{i}.parquet")
    argv = ["score", "--model", model_dir, "--data", f"{parts}/day-*.parquet", "--out"]
    argv += [tmp_path / "s.parquet", "--keep-columns", "id", "--chunk-rows", "7"]
    status, out, err = run(capsys, *argv)
    assert status == 0 and out.startswith("scored 60 rows in ") and "wrote" in out
    assert err.startswith("scored 7 of 60 rows, ") and err.splitlines()[-1].endswith("; done")
    scores = pd.read_parquet(tmp_path / "s.parquet")
    assert list(scores.columns) == ["id", "anomaly_score", "is_anomaly"]
    assert scores.id.tolist() == list(range(60))
    expected = NFADetector.load(model_dir).decision_function(pd.concat(frames, ignore_index=True))
    np.testing.assert_allclose(scores.anomaly_score, expected, atol=1e-5)
    status, _, err = run(capsys, *argv, "--quiet")
    assert status == 0 and err == ""


def test_score_compares_with_labels_across_chunks(model_dir, tmp_path, capsys):
    write_table(tmp_path / "new.csv", n=60, seed=3)
    argv = ["score", "--model", model_dir, "--data", tmp_path / "new.csv", "--quiet"]
    argv += ["--label-column", "label", "--normal-value", "normal"]
    _, whole, summary = run(capsys, *argv)
    status, chunked, chunked_summary = run(capsys, *argv, "--chunk-rows", "7")
    assert status == 0 and chunked_summary == summary and "ROC AUC" in summary
    pd.testing.assert_frame_equal(
        pd.read_csv(io.StringIO(chunked)), pd.read_csv(io.StringIO(whole)), rtol=1e-5, atol=1e-5
    )
    out = tmp_path / "s.csv"
    status, _, err = run(
        capsys, *argv, "--normal-value", "benign", "--chunk-rows", "7", "--out", out
    )
    assert status == 2 and not out.exists()
    assert "--normal-value 'benign' does not occur in column 'label'; values are" in err


def test_score_stream_options_are_checked(model_dir, tmp_path, capsys):
    write_table(tmp_path / "new.csv", n=20, seed=4, labels=False)
    score = ["score", "--model", model_dir, "--data", tmp_path / "new.csv"]
    cases = {
        "--keep-columns: 'idd' is not a column of the data": score + ["--keep-columns", "idd"],
        "argument --keep-columns: expected distinct column names separated by commas; got "
        "'rate,,bytes'": score + ["--keep-columns", "rate,,bytes"],
        "argument --keep-columns: 'anomaly_score' is a column of the scores": score
        + ["--keep-columns", "anomaly_score"],
        "argument --chunk-rows: expected an integer >= 1; got '0'": score + ["--chunk-rows", "0"],
        "--data: no file matches": ["score", "--model", model_dir, "--data", tmp_path / "*.pq"],
    }
    for message, argv in cases.items():
        try:
            status, _, err = run(capsys, *argv)
        except SystemExit as exit_info:  # argparse's errors
            status, err = exit_info.code, capsys.readouterr().err
        assert status == 2 and err.startswith("tfp-flowad: error: ") and message in err, err
        assert len(err.splitlines()) == 1


def test_fit_takes_the_flow_and_the_density_temperature(tmp_path, capsys):
    import warnings

    from tfp_flowad import NFADetector

    write_table(tmp_path / "train.csv")
    argv = ["fit", "--data", tmp_path / "train.csv", "--label-column", "label"]
    argv += ["--normal-value", "normal", "--epochs-scale", "0.05"]
    status, out, _ = run(
        capsys, *argv, "--out", tmp_path / "m", "--flow", "realnvp",
        "--density-temperature", "0.5",
    )  # fmt: skip
    assert status == 0 and "(10 known anomalies)" in out
    assert "density separates the known anomalies from held-out normal rows with ROC AUC" in out
    assert "best of 6 candidates" not in out  # 10 known anomalies: too few to hold any out
    with warnings.catch_warnings():  # the flow, which samples itself, saves trainable
        warnings.simplefilter("error", UserWarning)
        loaded = NFADetector.load(tmp_path / "m")
    assert loaded.flow == "realnvp" and loaded.density_temperature == 0.5
    assert loaded.flow_.trainable
    status, out, _ = run(
        capsys, "score", "--model", tmp_path / "m", "--data", tmp_path / "train.csv",
        "--label-column", "label",
    )  # fmt: skip
    assert status == 0 and len(out.splitlines()) == 1 + 400  # a header, then one line per row
    with pytest.raises(SystemExit) as exit_info:  # argparse rejects an unknown flow
        main([str(a) for a in argv] + ["--out", str(tmp_path / "x"), "--flow", "glow"])
    assert exit_info.value.code == 2 and "--flow" in capsys.readouterr().err
    for bad in ("0", "warm", "auto"):
        with pytest.raises(SystemExit) as exit_info:
            main(
                [str(a) for a in argv]
                + ["--out", str(tmp_path / "x"), "--density-temperature", bad]
            )
        assert exit_info.value.code == 2
        assert f"expected a number > 0; got '{bad}'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_fit_errors_name_the_problem_and_write_nothing(tmp_path, capsys):
    write_table(tmp_path / "train.csv")
    out = tmp_path / "model"
    fit = ["fit", "--data", tmp_path / "train.csv", "--out", out]
    nan = write_table(tmp_path / "nan.csv", labels=False)
    nan.loc[3, "bytes"] = np.nan
    nan.to_csv(tmp_path / "nan.csv", index=False)
    all_attacks = pd.read_csv(tmp_path / "train.csv").assign(label=1)
    all_attacks.to_csv(tmp_path / "attacks.csv", index=False)
    cases = {
        "does not exist": ["fit", "--data", tmp_path / "missing.csv", "--out", out],
        "'kind' is not a column": fit + ["--label-column", "kind"],
        "give --normal-value": fit + ["--label-column", "label"],
        "'benign' does not occur": fit + ["--label-column", "label", "--normal-value", "benign"],
        "normal": ["fit", "--data", tmp_path / "attacks.csv", "--label-column", "label"]
        + ["--out", out],
        "NaN": ["fit", "--data", tmp_path / "nan.csv", "--out", out],
    }
    for message, argv in cases.items():
        status, _, err = run(capsys, *argv)
        assert status == 2, message
        assert err.startswith("tfp-flowad: error:") and message in err, (message, err)
        assert not out.exists()


def test_score_errors_name_the_problem(model_dir, tmp_path, capsys):
    frame = write_table(tmp_path / "rows.csv", n=20).drop(columns=["rate"])
    frame.to_csv(tmp_path / "rows.csv", index=False)
    status, _, err = run(capsys, "score", "--model", model_dir, "--data", tmp_path / "rows.csv")
    assert status == 2 and "rate" in err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "detector.json").write_text("{not json")
    status, _, err = run(capsys, "score", "--model", broken, "--data", tmp_path / "rows.csv")
    assert status == 2 and "corrupt" in err
    status, _, err = run(
        capsys, "score", "--model", model_dir, "--data", tmp_path / "rows.csv",
        "--normal-value", "normal",
    )  # fmt: skip
    assert status == 2 and "--normal-value needs --label-column" in err
    status, _, err = run(capsys, "export", "--model", tmp_path / "nowhere", "--out", tmp_path)
    assert status == 2 and "does not exist" in err


def test_demo_fits_both_tasks_and_exports(tmp_path, capsys):
    status, out, _ = run(capsys, "demo", "--epochs-scale", "0.02", "--out", tmp_path / "served")
    assert status == 0
    assert "one-class: ROC AUC combined" in out and "k=1: ROC AUC combined" in out
    assert out.count(", student 0.") == 2 and "student score as a SavedModel" in out
    assert (tmp_path / "served" / "1" / "saved_model.pb").is_file()


def test_fit_offers_the_detectors_flows_and_classifier_models():
    import argparse

    from tfp_flowad.cli import build_parser
    from tfp_flowad.detector import CLASSIFIER_MODELS, SCORES, USER_FLOWS

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    options = {a.dest: a for a in commands.choices["fit"]._actions}
    assert sorted(options["flow"].choices) == sorted(USER_FLOWS)
    assert tuple(options["classifier_model"].choices) == CLASSIFIER_MODELS
    for command in ("score", "export"):
        score = next(a for a in commands.choices[command]._actions if a.dest == "score")
        assert tuple(score.choices) == SCORES


def test_fit_takes_the_classifier_model(tmp_path, capsys):
    write_table(tmp_path / "train.csv")
    argv = ["fit", "--data", tmp_path / "train.csv", "--epochs-scale", "0.05"]
    status, _, _ = run(
        capsys, *argv, "--out", tmp_path / "m", "--classifier-model", "boosted_trees"
    )
    assert status == 0
    from tfp_flowad import NFADetector

    loaded = NFADetector.load(tmp_path / "m")
    assert loaded.classifier_model == "boosted_trees" and "boosted_trees" in loaded.fit_seconds_
