"""NFADetector end to end on a small mixed table: fit, score, save/load, export, errors."""

import gc
import json
import logging
import subprocess
import sys
import warnings
import weakref

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from sklearn.exceptions import NotFittedError

from tfp_flowad import NFADetector
from tfp_flowad.base import scale_training_lengths
from tfp_flowad.detector import SCORES, stages
from tfp_flowad.nn.mlp import mean_logit

SMALL = dict(
    flow_layers=2,
    flow_hidden_units=(16, 16),
    flow_epochs=2,
    flow_min_steps=0,
    distillation_steps=30,
    classifier_hidden_units=(16,),
    classifier_epochs=15,
    classifier_min_steps=0,
    student_steps=50,
    batch_size=128,
    # The trees of the default ("auto") are tested on their own below; the MLP alone keeps
    # the many small fits here quick.
    classifier_model="mlp",
    random_state=0,
)


def make_table(n, rng, shift=0.0):
    return pd.DataFrame(
        {
            "bytes": rng.lognormal(5 + shift, 1, n),
            "count": rng.poisson(3 + 10 * shift, n).astype(float),
            "rate": rng.uniform(0, 1, n) + shift,
            "protocol": rng.choice(["tcp", "udp", "icmp"], n, p=[0.7, 0.2, 0.1]),
        }
    )


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    normal = make_table(1500, rng)
    anomalies = make_table(40, rng, shift=2.0)
    X = pd.concat([normal, anomalies], ignore_index=True)
    y = np.r_[np.zeros(len(normal), int), np.ones(len(anomalies), int)]
    test = pd.concat([make_table(300, rng), make_table(60, rng, shift=2.0)], ignore_index=True)
    y_test = np.r_[np.zeros(300, int), np.ones(60, int)]
    return X, y, test, y_test


@pytest.fixture(scope="module")
def fitted(data):
    X, y, _, _ = data
    return NFADetector(**SMALL).fit(X, y)


def test_fit_returns_self_with_learned_attributes(fitted):
    assert isinstance(fitted, NFADetector)
    assert fitted.feature_names_in_ == ["bytes", "count", "rate", "protocol"]
    # 40 known anomalies: enough for the held-out choice of the density's weight.
    stages = {"flow", "distillation", "classifier", "score_student"}
    assert set(fitted.history_) == stages
    assert set(fitted.fit_seconds_) == stages | {"neighbours", "weight_selection"}
    assert "bytes" in fitted.encoder_.log_columns


def test_scores_rank_shifted_rows_as_anomalies(fitted, data):
    from sklearn.metrics import roc_auc_score

    _, _, test, y_test = data
    scores = fitted.decision_function(test)
    assert scores.shape == (len(test),) and np.all(np.isfinite(scores))
    assert roc_auc_score(y_test, scores) > 0.8
    predictions = fitted.predict(test)
    assert set(np.unique(predictions)) <= {0, 1}
    proba = fitted.predict_proba(test)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-6)
    # predict_proba and predict come from the same score: P(anomaly) > 1/2 where flagged.
    np.testing.assert_array_equal(proba[:, 1] > 0.5, predictions == 1)
    assert np.all(np.diff(proba[np.argsort(scores), 1]) >= 0)
    assert fitted.log_prob(test).shape == (len(test),)


def test_classifier_score_is_the_papers_output(fitted, data):
    from sklearn.metrics import roc_auc_score

    X, y, test, y_test = data
    fitted.score_kind = "classifier"
    try:
        scores = fitted.decision_function(test)
        # One logit column per classifier kept (the MLP, and the trees where "auto" keeps
        # them); the classifier's logit is their mean.
        logits = fitted.classifier_(fitted.encoder_.transform(test)).numpy()
        assert logits.shape == (len(test), len(fitted.classifier_model_.split("+")))
        np.testing.assert_allclose(scores, -logits.mean(1), rtol=1e-5, atol=1e-5)
        assert roc_auc_score(y_test, scores) > 0.5
    finally:
        fitted.score_kind = "density"


def test_each_score_flags_the_contamination_share_with_its_own_threshold(fitted, data, tmp_path):
    X = data[0]
    original = fitted.score_kind
    try:
        assert fitted.available_scores() == SCORES
        for kind in SCORES:
            fitted.score_kind = kind
            assert fitted.threshold_ == fitted.thresholds_[kind]
            assert fitted.predict(X).mean() == pytest.approx(fitted.contamination, abs=0.003)
        assert len(set(fitted.thresholds_.values())) == 4
        loaded = NFADetector.load(fitted.save(tmp_path / "model"))
        assert loaded.score_kind == "student" and loaded.threshold_ == fitted.threshold_
        loaded.score_kind = "density"
        assert loaded.threshold_ == fitted.thresholds_["density"]
        with pytest.raises(ValueError, match="score_kind must be one of"):
            fitted.score_kind = "likelihood"
    finally:
        fitted.score_kind = original


def test_same_seed_gives_same_scores(data):
    X, y, test, _ = data
    first = NFADetector(**SMALL).fit(X, y).decision_function(test)
    second = NFADetector(**SMALL).fit(X, y).decision_function(test)
    np.testing.assert_allclose(first, second, atol=1e-6)


def count_func_graphs() -> int:
    gc.collect()
    return sum(type(o).__name__ == "FuncGraph" for o in gc.get_objects())


def test_a_dropped_detector_frees_its_models_and_traced_graphs(data, tmp_path):
    """Nothing global keeps a fit's models or the graphs of its traces (training steps, score
    functions, the export) once the detector is gone."""
    X, y, test, _ = data
    graphs_before = count_func_graphs()
    detector = NFADetector(**SMALL).fit(X, y)
    detector.decision_function(test)
    detector.export_saved_model(tmp_path / "export")
    parts = [detector.flow_, detector.sampler_flow_, detector.classifier_, detector.student_]
    models = [weakref.ref(part) for part in parts if part is not None]
    del parts
    del detector
    assert count_func_graphs() <= graphs_before
    assert all(model() is None for model in models)


def test_unseen_category_encodes_as_all_zeros(fitted, data):
    test = data[2].head(3).copy()
    test["protocol"] = "never-seen"
    features = fitted.encoder_.transform(test)
    assert np.all(features[:, -3:] == 0)
    assert np.all(np.isfinite(fitted.decision_function(test)))


def test_save_load_round_trip_gives_same_scores(fitted, data, tmp_path):
    test = data[2]
    with warnings.catch_warnings():
        # Keras warns on saving an unbuilt model and on loading one with a custom compile.
        warnings.simplefilter("error", UserWarning)
        path = fitted.save(tmp_path / "model")
        loaded = NFADetector.load(path)
    np.testing.assert_allclose(
        loaded.decision_function(test), fitted.decision_function(test), atol=1e-6
    )
    np.testing.assert_allclose(loaded.log_prob(test), fitted.log_prob(test), atol=1e-4)
    assert loaded.threshold_ == fitted.threshold_
    assert (loaded.density_auc_, loaded.eps_) == (fitted.density_auc_, fitted.eps_)
    assert loaded.neighbour_auc_ == fitted.neighbour_auc_
    fitted.save(path)  # replacing a saved detector works
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_detectors_in_one_process_trace_without_retracing_warnings(fitted, data, tmp_path):
    """Every loaded detector traces its own scoring function once; TensorFlow counts those
    traces together (one code object) and would warn of retracing after five."""
    path = fitted.save(tmp_path / "model")
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    tf.get_logger().addHandler(handler)
    try:
        for _ in range(7):
            NFADetector.load(path).decision_function(data[2].iloc[:5])
    finally:
        tf.get_logger().removeHandler(handler)
    assert not [r.getMessage() for r in records if "retracing" in r.getMessage()]


def test_load_errors_name_the_problem(fitted, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        NFADetector.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="detector.json"):
        NFADetector.load(tmp_path / "empty")
    path = fitted.save(tmp_path / "model")
    (path / "classifier.keras").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="corrupt"):
        NFADetector.load(path)
    (path / "classifier.keras").unlink()
    with pytest.raises(FileNotFoundError, match="partial"):
        NFADetector.load(path)
    (path / "detector.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupt"):
        NFADetector.load(path)


def test_save_refuses_to_overwrite_a_foreign_directory(fitted, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="not a saved NFADetector"):
        fitted.save(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_bad_input_gets_clear_errors(fitted, data):
    X, y, test, _ = data
    with pytest.raises(ValueError, match="only 0 .normal. and 1"):
        NFADetector(**SMALL).fit(X, np.where(y == 1, 2, 0))
    with pytest.raises(ValueError, match="labels"):
        NFADetector(**SMALL).fit(X, y[:-1])
    with pytest.raises(ValueError, match="at least 10 are needed"):
        NFADetector(**SMALL).fit(X.head(5), np.zeros(5))
    broken = X.copy()
    broken.loc[3, "rate"] = np.nan
    with pytest.raises(ValueError, match="column 'rate' has empty cells"):
        NFADetector(**SMALL).fit(broken, y)
    with pytest.raises(ValueError, match=r"missing \['count'\]"):
        fitted.decision_function(test.drop(columns=["count"]))
    with pytest.raises(ValueError, match=r"unknown \['extra'\]"):
        fitted.decision_function(test.assign(extra=1.0))
    with pytest.raises(ValueError, match="flow must be one of"):
        NFADetector(flow="glow").fit(X, y)
    with pytest.raises(
        ValueError,
        match="combined_classifier_weight must be a number in .0.0, inf. or None; got -1",
    ):
        NFADetector(combined_classifier_weight=-1).fit(X, y)
    with pytest.raises(ValueError, match="selection_min_known must be an integer >= 1 or None"):
        NFADetector(selection_min_known=0).fit(X, y)
    with pytest.raises(
        ValueError, match=r"selection_share must be a number in \(0.0, 1.0\); got 1.0"
    ):
        NFADetector(selection_share=1.0).fit(X, y)
    with pytest.raises(ValueError, match=r"classifier_averaging must be .*; got 1.0"):
        NFADetector(classifier_averaging=1.0).fit(X, y)
    for temperature in (0, -1.0, "hot", "auto"):
        with pytest.raises(
            ValueError,
            match=f"density_temperature must be a number in .0.0, inf.; got {temperature!r}",
        ):
            NFADetector(density_temperature=temperature).fit(X, y)
    for rows in (1, -1, 2.5, True):
        with pytest.raises(
            ValueError, match=f"neighbour_rows must be an integer >= 2 or 0; got {rows!r}"
        ):
            NFADetector(neighbour_rows=rows).fit(X, y)
    with pytest.raises(NotFittedError, match="not fitted"):
        NFADetector().decision_function(test)


def test_numpy_input_works(data):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(600, 4)).astype("float32")
    detector = NFADetector(**SMALL).fit(X)
    assert detector.feature_names_in_ == ["x0", "x1", "x2", "x3"]
    assert detector.decision_function(X[:7]).shape == (7,)
    with pytest.raises(ValueError, match="got 3 columns"):
        detector.decision_function(X[:, :3])


def test_distilled_sampler_agrees_with_the_flow(fitted):
    # KL(student || teacher) on the student's own samples, the quantity distillation lowers
    samples, student_log_prob = fitted.sampler_flow_.sample_and_log_prob(4000)
    gap = student_log_prob.numpy() - fitted.flow_.log_prob(samples).numpy()
    assert np.all(np.isfinite(gap))
    assert np.mean(gap) < 1.0 and np.quantile(np.abs(gap), 0.99) < 10.0, (
        np.mean(gap),
        np.quantile(np.abs(gap), 0.99),
    )


def test_classifier_trains_at_least_min_steps_on_few_rows():
    X = np.random.default_rng(2).normal(size=(600, 3)).astype("float32")
    params = {**SMALL, "classifier_epochs": 1, "classifier_min_steps": 20, "flow_epochs": 1}
    detector = NFADetector(**params).fit(X)
    # 540 rows (10 % held out) in batches of 128: a pass is 5 steps, 4 passes make 20 steps,
    # all in one Keras epoch (fewer than 50 steps).
    assert stages.planned_passes(540, 128, 1, 20) == (5, 4)
    assert stages.grouped_passes(5, 4) == (20, 1)
    assert len(detector.history_["classifier"]["loss"]) == 1


def test_passes_are_grouped_into_epochs_of_at_least_fifty_steps():
    assert stages.grouped_passes(1, 300) == (50, 6)
    assert stages.grouped_passes(5, 60) == (50, 6)
    assert stages.grouped_passes(62, 4) == (62, 4)
    assert stages.grouped_passes(3, 7) == (21, 1)
    assert stages.grouped_passes(7, 12) == (84, 1)
    for steps, passes in ((1, 300), (5, 60), (62, 4), (3, 7), (7, 12), (4, 30)):
        per_epoch, epochs = stages.grouped_passes(steps, passes)
        assert per_epoch * epochs == steps * passes and per_epoch % steps == 0


def test_flow_plans_min_steps_in_passes_and_validates_after_each_pass():
    X = np.random.default_rng(3).normal(size=(600, 3)).astype("float32")
    params = {**SMALL, "flow_epochs": 2, "flow_min_steps": 30, "classifier_epochs": 1}
    # 540 rows (10 % held out) in batches of 128: a pass is 5 steps, so 2 epochs would be 10
    # steps; the fit plans ceil(30 / 5) = 6 passes, each one Keras epoch with its held-out NLL.
    patient = NFADetector(**params, flow_patience=100).fit(X)
    assert len(patient.history_["flow"]["val_nll"]) == 6
    assert int(patient.flow_.optimizer.iterations) == 30
    stopping = NFADetector(**params, flow_patience=1).fit(X)
    val_nll = stopping.history_["flow"]["val_nll"]
    passes = len(val_nll)
    assert int(stopping.flow_.optimizer.iterations) == passes * 5
    # it ran every planned pass or stopped one pass after its best held-out NLL
    assert passes == 6 or passes == int(np.argmin(val_nll)) + 2


def test_density_auc_measures_separation_of_known_anomalies(fitted, data):
    X, y, _, _ = data
    features = fitted.encoder_.transform(X)
    normal, shifted = features[y == 0], features[y == 1]
    from tfp_flowad.detector.selection import density_auc

    assert density_auc(fitted.flow_, normal[500:], shifted, 1.0) > 0.9
    assert abs(density_auc(fitted.flow_, normal[500:1000], normal[1000:], 1.0) - 0.5) < 0.1
    assert density_auc(fitted.flow_, normal[500:], normal[:0], 1.0) is None


def test_density_temperature_sets_the_density_score(data, tmp_path):
    """A fixed ``T`` is used one-class too; the density score is ``-log p_T(x)`` in process,
    after save / load, and inside the combined score's scaling."""
    X, y, test, _ = data
    params = {**SMALL, "flow_epochs": 1, "classifier_epochs": 1}
    normal = X[y == 0]
    cold = NFADetector(**params, density_temperature=0.5, score_kind="density").fit(normal)
    features = cold.encoder_.transform(test)
    expected = -cold.flow_.log_prob(features, 0.5).numpy()
    np.testing.assert_allclose(cold.decision_function(test), expected, rtol=1e-5, atol=1e-4)
    assert not np.allclose(expected, -cold.flow_.log_prob(features).numpy(), atol=1e-2)
    training = -cold.flow_.log_prob(cold.encoder_.transform(normal), 0.5).numpy()
    assert cold.score_scaling_["density"][0] < np.median(training) + 1.0
    loaded = NFADetector.load(cold.save(tmp_path / "cold"))
    assert loaded.density_temperature == 0.5
    np.testing.assert_allclose(loaded.decision_function(test), expected, rtol=1e-5, atol=1e-4)


def normal_scores(fitted, X):
    """The density and classifier scores that ``score_scaling`` takes."""
    from tfp_flowad.detector import anomaly_score

    features = fitted.encoder_.transform(X)
    return [
        anomaly_score(features, kind, fitted.flow_, fitted.classifier_).numpy()
        for kind in ("density", "classifier")
    ]


def test_density_weight_is_the_separation_of_known_anomalies(fitted, data):
    from tfp_flowad.detector.selection import score_scaling

    scores = normal_scores(fitted, data[0])
    neighbour = np.linspace(0.0, 1.0, len(scores[0]))
    for auc, weight in ((0.9, 0.8), (0.4, 0.0), (None, 1.0)):
        assert score_scaling(*scores, 1.0, auc)["density"][2] == pytest.approx(weight)
        # Beside the neighbour term, halved: the two share the weight of distance.
        paired = score_scaling(*scores, 1.0, auc, neighbour, auc)
        assert paired["density"][2] == pytest.approx(weight / 2)


def test_neighbour_weight_is_its_own_separation_of_known_anomalies(fitted, data):
    from tfp_flowad.detector.scoring import neighbour_distances
    from tfp_flowad.detector.selection import score_scaling

    X, y, _, _ = data
    scores = normal_scores(fitted, X[y == 0])
    neighbour = neighbour_distances(fitted.neighbours_, fitted.encoder_.transform(X[y == 0]))
    # Far-off known anomalies: the neighbour term separates them as well as the density.
    assert fitted.neighbour_auc_ > 0.9
    for auc, scale, weight in ((0.9, 1.0, 0.4), (0.4, 1.0, 0.0), (0.8, 2.0, 0.6)):
        scaling = score_scaling(*scores, 1.0, fitted.density_auc_, neighbour, auc, scale)
        assert scaling["neighbour"][2] == pytest.approx(weight)
        assert scaling["neighbour"][:2] == pytest.approx(
            [np.median(neighbour), np.subtract(*np.quantile(neighbour, [0.75, 0.25]))]
        )
    # one-class: no AUCs, half of 1
    assert score_scaling(*scores, 0.25, None, neighbour, None)["neighbour"][2] == 0.5


def test_without_neighbour_rows_the_combined_score_has_no_neighbour_term(data, tmp_path):
    from tfp_flowad.detector import anomaly_score

    X, y, test, _ = data
    plain = NFADetector(**SMALL, neighbour_rows=0).fit(X, y)
    assert plain.neighbours_ is None and plain.neighbour_auc_ is None
    assert set(plain.score_scaling_) == {"density", "classifier"}
    assert "neighbours" not in plain.fit_seconds_
    features = plain.encoder_.transform(test)
    expected = anomaly_score(
        features, "combined", plain.flow_, plain.classifier_, plain.score_scaling_
    ).numpy()
    np.testing.assert_allclose(plain.decision_function(test), expected, rtol=1e-5, atol=1e-5)
    loaded = NFADetector.load(plain.save(tmp_path / "plain"))
    assert loaded.neighbours_ is None
    np.testing.assert_allclose(loaded.decision_function(test), expected, rtol=1e-5, atol=1e-5)


def test_classifier_weight_defaults_to_a_quarter_without_known_anomalies(fitted):
    from tfp_flowad.detector.parameters import resolve_auto

    params = fitted.get_params()
    assert fitted.score_scaling_["classifier"][2] == 1.0
    assert resolve_auto(params, 40)["combined_classifier_weight"] == 1.0
    assert resolve_auto(params, 0)["combined_classifier_weight"] == 0.25
    params["combined_classifier_weight"] = 0.5
    assert resolve_auto(params, 0)["combined_classifier_weight"] == 0.5


def test_surrogate_term_fades_when_the_density_cannot_see_the_known_anomalies(fitted):
    # Far-off known anomalies (the fixture): eps_ follows the density's separation of them.
    weight = max(0.0, 2 * fitted.density_auc_ - 1)
    assert fitted.density_auc_ > 0.9
    assert fitted.eps_ == pytest.approx(1 - (1 - fitted.classifier_eps) * weight)
    # Known anomalies drawn like the normal rows: the density cannot see them.
    rng = np.random.default_rng(4)
    X = rng.normal(size=(700, 3)).astype("float32")
    y = np.r_[np.zeros(600, int), np.ones(100, int)]
    params = {**SMALL, "classifier_epochs": 1, "flow_epochs": 1}
    alike = NFADetector(**params).fit(X, y)
    assert abs(alike.density_auc_ - 0.5) < 0.15
    assert alike.eps_ > 0.7
    fixed = NFADetector(**params, classifier_adaptive_eps=False).fit(X, y)
    assert fixed.eps_ == fixed.classifier_eps
    one_class = NFADetector(**params).fit(X[:600])
    assert one_class.density_auc_ is None and one_class.eps_ == one_class.classifier_eps


@pytest.mark.parametrize("option, plain, other", [("classifier_averaging", None, 0.5)])
def test_auto_options_keep_one_plain_classifier_one_class(data, option, plain, other):
    """``"auto"`` weight averaging: one-class the fit is that of the network's last iterate
    (``None``); another value changes it."""
    X, y, test, _ = data
    normal = X[y == 0].iloc[:600]
    params = {**SMALL, "flow_epochs": 1, "distillation_steps": 5, "classifier_epochs": 3}
    scores = {
        value: NFADetector(**{option: value}, score_kind="classifier", **params)
        .fit(normal)
        .decision_function(test)
        for value in ("auto", plain, other)
    }
    np.testing.assert_array_equal(scores["auto"], scores[plain])
    assert not np.allclose(scores["auto"], scores[other])


def test_averaging_momentum_spans_at_most_the_last_third_of_the_fit():
    from tfp_flowad.detector.stages import averaging_momentum

    assert averaging_momentum(0.99, 310) == 0.99  # the default fits keep the momentum
    assert averaging_momentum(0.99, 30) == pytest.approx(0.9)
    assert averaging_momentum(0.99, 2) == 0.0
    assert averaging_momentum(0.5, 1000) == 0.5


def test_choose_near_default_prefers_the_default_within_the_tolerance():
    from tfp_flowad.detector import DENSITY_SCALES, choose_near_default

    flat = {str(scale): 0.9 for scale in DENSITY_SCALES}

    def choose(aucs, **kwargs):
        return choose_near_default(aucs, DENSITY_SCALES, 1.0, **kwargs)

    assert choose(flat) == 1.0
    assert choose({**flat, "0.0": 0.95}) == 0.0
    assert choose({**flat, "0.0": 0.95, "0.25": 0.9495}) == 0.25
    assert choose({**flat, "4.0": 0.9005}) == 1.0
    assert choose({**flat, "4.0": 0.9005}, tolerance=0.0) == 4.0


def test_density_scale_is_chosen_on_held_out_known_anomalies(data, tmp_path):
    from tfp_flowad.detector import DENSITY_SCALES, choose_near_default

    X, y, test, _ = data
    detector = NFADetector(**SMALL, selection_min_known=40).fit(X, y)
    aucs = detector.density_scale_aucs_
    assert set(aucs) == {str(scale) for scale in DENSITY_SCALES}
    assert all(0.0 <= auc <= 1.0 for auc in aucs.values())
    assert detector.density_scale_ == choose_near_default(aucs, DENSITY_SCALES, 1.0)
    assert "weight_selection" in detector.fit_seconds_
    # The multiplier scales both distance terms, each halved beside the other.
    for kind, auc in (("density", detector.density_auc_), ("neighbour", detector.neighbour_auc_)):
        assert detector.score_scaling_[kind][2] == pytest.approx(
            max(0.0, 2 * auc - 1) * detector.density_scale_ / 2
        )
    loaded = NFADetector.load(detector.save(tmp_path / "model"))
    assert (loaded.density_scale_, loaded.density_scale_aucs_) == (detector.density_scale_, aucs)
    np.testing.assert_allclose(
        loaded.decision_function(test), detector.decision_function(test), atol=1e-6
    )
    # Fewer known anomalies than selection_min_known (the fixture has 40): no choice.
    fewer = NFADetector(**SMALL, selection_min_known=41).fit(X, y)
    assert (fewer.density_scale_, fewer.density_scale_aucs_) == (1.0, None)
    assert "weight_selection" not in fewer.fit_seconds_
    # The second MLP trains beside the classifier and leaves it as it would be alone.
    from tfp_flowad.detector import anomaly_score

    features = detector.encoder_.transform(test)
    np.testing.assert_allclose(
        anomaly_score(features, "classifier", None, detector.classifier_).numpy(),
        anomaly_score(features, "classifier", None, fewer.classifier_).numpy(),
        atol=1e-3,
    )
    # Never with fewer than 10 rows to hold out and 10 to keep, whatever the minimum says.
    keep = np.r_[np.flatnonzero(y == 0), np.flatnonzero(y == 1)[:19]]
    too_few = NFADetector(**SMALL, selection_min_known=1).fit(X.iloc[keep], y[keep])
    assert too_few.density_scale_aucs_ is None


def test_combined_score_is_weighted_density_plus_softplus_of_classifier(fitted, data):
    from tfp_flowad.detector import anomaly_score

    features = fitted.encoder_.transform(data[2])
    parts = {"flow": fitted.flow_, "classifier": fitted.classifier_}
    density = anomaly_score(features, "density", **parts).numpy().astype(np.float64)
    classifier = anomaly_score(features, "classifier", **parts).numpy().astype(np.float64)
    scaling = {"density": [1.5, 2.0, 0.7], "classifier": [-0.5, 4.0, 0.25]}
    expected = 0.7 * (density - 1.5) / 2.0 + 0.25 * np.logaddexp(0.0, (classifier + 0.5) / 4.0)
    combined = anomaly_score(features, "combined", scaling=scaling, **parts).numpy()
    np.testing.assert_allclose(combined, expected, rtol=1e-4, atol=1e-4)
    # With the neighbour term: plus w_n (d(x) - median_n) / spread_n.
    neighbour = fitted.neighbours_(features).numpy().astype(np.float64)
    scaling["neighbour"] = [0.3, 0.5, 0.4]
    with_neighbour = anomaly_score(
        features, "combined", scaling=scaling, neighbours=fitted.neighbours_, **parts
    ).numpy()
    expected += 0.4 * (neighbour - 0.3) / 0.5
    np.testing.assert_allclose(with_neighbour, expected, rtol=1e-4, atol=1e-4)


def test_rows_beyond_the_flows_range_score_as_most_abnormal(fitted):
    from tfp_flowad.detector import anomaly_score

    far = np.full((2, fitted.encoder_.output_dim), 3e38, np.float32)
    scores = anomaly_score(far, "density", fitted.flow_, fitted.classifier_).numpy()
    np.testing.assert_array_equal(scores, np.float32([1e30, 1e30]))
    parts = (fitted.flow_, fitted.classifier_, fitted.score_scaling_)
    combined = anomaly_score(far, "combined", *parts, neighbours=fitted.neighbours_).numpy()
    assert np.isfinite(combined).all() and combined.min() > 1e20


@pytest.mark.parametrize("flow", ["realnvp"])
def test_other_flows_sample_surrogates_without_distillation(flow, data):
    X, y, test, _ = data
    detector = NFADetector(**{**SMALL, "flow": flow}).fit(X, y)
    assert "distillation" not in detector.history_
    assert np.all(np.isfinite(detector.decision_function(test)))


SERVE_SCRIPT = """
import json, sys
import numpy as np, pandas as pd, tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
frame = pd.read_json(sys.argv[2], orient="split")
numeric = pd.api.types.is_numeric_dtype
inputs = {c: tf.constant(frame[c].to_numpy(dtype=np.float32 if numeric(frame[c]) else object))
          for c in frame.columns}
out = model.signatures["serving_default"](**inputs)
print(json.dumps({k: v.numpy().astype(float).tolist() for k, v in out.items()}))
"""


def test_export_serves_the_same_scores_in_a_fresh_process(fitted, data, tmp_path):
    test = data[2].head(50)
    target = fitted.export_saved_model(tmp_path / "serving")
    assert target.name == "1"
    assert fitted.export_saved_model(tmp_path / "serving").name == "2"
    served = serve_in_fresh_process(target, test, tmp_path)
    expected = fitted.decision_function(test)
    np.testing.assert_allclose(served["anomaly_score"], expected, atol=1e-5)
    np.testing.assert_array_equal(np.array(served["is_anomaly"]) > 0, expected > fitted.threshold_)


def assert_loads_and_exports_alike(detector, test, tmp_path) -> NFADetector:
    """Checks that ``detector`` saved and loaded, and its SavedModel served in a fresh process,
    give its scores of ``test``; returns the loaded detector."""
    expected = detector.decision_function(test)
    loaded = NFADetector.load(detector.save(tmp_path / "model"))
    np.testing.assert_allclose(loaded.decision_function(test), expected, atol=1e-6)
    served = serve_in_fresh_process(
        detector.export_saved_model(tmp_path / "serving"), test.head(50), tmp_path
    )
    np.testing.assert_allclose(served["anomaly_score"], expected[:50], atol=1e-5)
    return loaded


def serve_in_fresh_process(target, frame, tmp_path) -> dict:
    """The exported model's ``serving_default`` outputs for ``frame``, from a new process."""
    records = tmp_path / "records.json"
    frame.to_json(records, orient="split")
    result = subprocess.run(
        [sys.executable, "-c", SERVE_SCRIPT, str(target), str(records)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_boosted_trees_classifier_saves_loads_and_exports_alike(data, tmp_path):
    X, y, test, _ = data
    detector = NFADetector(**{**SMALL, "classifier_model": "mlp+boosted_trees"}).fit(X, y)
    assert {"classifier", "boosted_trees"} <= set(detector.fit_seconds_)
    # Its classifier logit is the mean of the MLP's and the trees'.
    mlp, trees = (layer for layer in detector.classifier_.layers if isinstance(layer, keras.Model))
    features = detector.encoder_.transform(test)
    np.testing.assert_allclose(
        mean_logit(detector.classifier_, features),
        (mean_logit(mlp, features) + mean_logit(trees, features)) / 2,
        atol=1e-5,
    )
    loaded = assert_loads_and_exports_alike(detector, test, tmp_path)
    assert loaded.classifier_model == "mlp+boosted_trees"


def test_auto_classifier_model_keeps_the_trees_unless_held_out_anomalies_say_otherwise(
    data, tmp_path
):
    X, y, test, _ = data
    detector = NFADetector(**{**SMALL, "classifier_model": "auto"}).fit(X, y)
    assert {"classifier", "boosted_trees", "weight_selection"} <= set(detector.fit_seconds_)
    aucs = detector.classifier_model_aucs_
    assert list(aucs) == ["mlp+boosted_trees", "mlp"]
    assert aucs[detector.classifier_model_] == max(aucs.values())
    with_trees = detector.classifier_model_ == "mlp+boosted_trees"
    assert with_trees == (aucs["mlp+boosted_trees"] >= aucs["mlp"])
    parts = {layer.name for layer in detector.classifier_.layers}
    assert ("boosted_trees" in parts) == with_trees
    loaded = NFADetector.load(detector.save(tmp_path / "model"))
    assert (loaded.classifier_model_, loaded.classifier_model_aucs_) == (
        detector.classifier_model_,
        aucs,
    )
    np.testing.assert_allclose(
        loaded.decision_function(test), detector.decision_function(test), atol=1e-5
    )
    # Too few known anomalies to hold any out: both, unchecked. One-class: the MLP alone.
    unchecked = NFADetector(**{**SMALL, "classifier_model": "auto", "selection_min_known": 41})
    unchecked.fit(X, y)
    assert (unchecked.classifier_model_, unchecked.classifier_model_aucs_) == (
        "mlp+boosted_trees",
        None,
    )
    one_class = NFADetector(**{**SMALL, "classifier_model": "auto"}).fit(X[y == 0])
    assert one_class.classifier_model_ == "mlp"
    assert "boosted_trees" not in one_class.fit_seconds_


def test_classifier_choice_takes_the_better_held_out_ranking_and_keeps_ties(fitted, data):
    from tfp_flowad.detector.selection import density_scores, select_classifier

    X, y, _, _ = data
    encoder = fitted.encoder_
    normal = encoder.finish(encoder.raw_matrix(X[y == 0])).numpy()
    # Anomalies nearer the normal rows than the fitted ones: the density alone misses some.
    anomalies = encoder.raw_matrix(make_table(200, np.random.default_rng(1), shift=0.5))
    held = encoder.finish(anomalies).numpy()
    context = dict(
        flow=fitted.flow_,
        held_out=normal,
        clean_normal=normal,
        normal_density=density_scores(fitted.flow_, normal, 1.0),
        temperature=1.0,
        density_auc_value=fitted.density_auc_,
        classifier_weight=1.0,
    )
    good = fitted.classifier_
    inputs = keras.Input((good.input_shape[-1],))
    reversed_ = keras.Model(inputs, -good(inputs))  # calls normal rows anomalous
    chosen, aucs, _ = select_classifier({"reversed": reversed_, "good": good}, held, context)
    assert chosen == "good" and aucs["good"] > aucs["reversed"]
    chosen, aucs, _ = select_classifier({"first": good, "second": good}, held, context)
    assert chosen == "first" and aucs["first"] == aucs["second"]


def test_classifier_model_rejects_unknown_values(data):
    X, y, _, _ = data
    with pytest.raises(ValueError, match="classifier_model must be one of .*; got 'xgboost'"):
        NFADetector(**{**SMALL, "classifier_model": "xgboost"}).fit(X, y)


def test_saved_model_cli_shows_the_signature(fitted, data, tmp_path):
    cli = [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    target = fitted.export_saved_model(tmp_path / "serving")
    shown = subprocess.run(
        [*cli, "show", "--dir", str(target), "--all"], capture_output=True, text=True, check=True
    ).stdout
    for name in ("serving_default", "anomaly_score", "is_anomaly", "protocol", "bytes"):
        assert name in shown


def test_saved_model_cli_runs_the_signature_with_the_same_score(fitted, data, tmp_path):
    cli = [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    target = fitted.export_saved_model(tmp_path / "serving")
    row = data[2].iloc[:1]
    exprs = ";".join(
        f"{c}=[{float(row[c].iloc[0])!r}]" if c != "protocol" else f"{c}=[{row[c].iloc[0]!r}]"
        for c in row.columns
    )
    ran = subprocess.run(
        [
            *cli,
            "run",
            "--dir",
            str(target),
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
            "--input_exprs",
            exprs,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    served = float(ran.split("Result for output key anomaly_score:")[1].split("[")[1].split("]")[0])
    assert served == pytest.approx(fitted.decision_function(row)[0], abs=1e-4)


def test_student_score_is_its_networks_logit_and_saves_and_exports_alike(fitted, data, tmp_path):
    from sklearn.metrics import roc_auc_score

    _, _, test, y_test = data
    original = fitted.score_kind
    try:
        fitted.score_kind = "student"
        scores = fitted.decision_function(test)
        logits = fitted.student_(fitted.encoder_.transform(test)).numpy()[:, 0]
        np.testing.assert_allclose(scores, logits, rtol=1e-5, atol=1e-5)
        # 50 steps on a toy table: already a detector (test_method checks the ranking).
        assert roc_auc_score(y_test, scores) > 0.8
        assert assert_loads_and_exports_alike(fitted, test, tmp_path).score_kind == "student"
    finally:
        fitted.score_kind = original


def test_without_score_student_steps_there_is_no_student_score(data, tmp_path):
    X, y, test, _ = data
    detector = NFADetector(**{**SMALL, "student_steps": 0}).fit(X[y == 0])
    assert detector.student_ is None and "score_student" not in detector.fit_seconds_
    assert detector.available_scores() == ("combined", "density", "classifier")
    loaded = NFADetector.load(detector.save(tmp_path / "model"))
    assert loaded.student_ is None and not (tmp_path / "model" / "student.keras").exists()
    for model in (detector, loaded):
        with pytest.raises(ValueError, match="score_kind 'student' is not available"):
            model.score_kind = "student"
    with pytest.raises(ValueError, match="score_kind='student' needs student_steps >= 1"):
        NFADetector(**{**SMALL, "student_steps": 0}, score_kind="student").fit(X, y)
    for steps in (-1, 2.5, True):
        with pytest.raises(ValueError, match=f"student_steps must be .*; got {steps}"):
            NFADetector(**{**SMALL, "student_steps": steps}).fit(X, y)
    # a quick look scales the student's steps like every training length, but 0 stays 0
    assert scale_training_lengths(detector, 0.5).student_steps == 0
    assert scale_training_lengths(NFADetector(), 0.01).student_steps == 30


def test_refit_student_replaces_the_student_and_nothing_else(data, tmp_path):
    X, y, test, _ = data
    detector = NFADetector(**{**SMALL, "student_steps": 0}).fit(X, y)
    combined = detector.decision_function(test)
    with pytest.raises(ValueError, match="refit_student needs student_steps >= 1; got 0"):
        detector.refit_student(X, y)
    with pytest.raises(NotFittedError, match="not fitted"):
        NFADetector(**SMALL).refit_student(X, y)
    detector.set_params(student_steps=50).refit_student(X, y)
    assert "score_student" in detector.fit_seconds_

    def student_scores():
        detector.score_kind = "student"
        try:
            scores = detector.decision_function(test)
        finally:
            detector.score_kind = "combined"
        logits = detector.student_(detector.encoder_.transform(test)).numpy()[:, 0]
        np.testing.assert_allclose(scores, logits, rtol=1e-5, atol=1e-5)
        return scores

    first = student_scores()
    np.testing.assert_array_equal(detector.decision_function(test), combined)
    assert detector.thresholds_["student"] == pytest.approx(
        np.quantile(detector.training_scores_["student"], 1 - detector.contamination)
    )
    # Another target centre: a new network, and the scores are its own (no stale trace).
    detector.set_params(student_target_quantile=0.5).refit_student(X, y)
    second = student_scores()
    assert not np.allclose(first, second, atol=1e-3)
    loaded = NFADetector.load(detector.save(tmp_path / "model"))
    assert loaded.student_target_quantile == 0.5
    loaded.score_kind = "student"
    np.testing.assert_allclose(loaded.decision_function(test), second, atol=1e-6)
    # A bad value is refused before anything changes.
    for quantile in (0.0, 1.0, "high"):
        detector.set_params(student_target_quantile=quantile)
        with pytest.raises(
            ValueError, match=f"student_target_quantile must be a number in .*{quantile}"
        ):
            detector.refit_student(X, y)
    assert student_scores() == pytest.approx(second)
    # From a file the same rows give the same student, as fit reads them.
    path = tmp_path / "train.parquet"
    X.assign(label=y).to_parquet(path)
    detector.set_params(student_target_quantile=0.5).refit_student(path, "label")
    np.testing.assert_allclose(student_scores(), second, rtol=1e-5, atol=1e-5)


def test_verbose_one_shows_one_progress_line_per_stage(data, capsys):
    X, y, _, _ = data
    NFADetector(**{**SMALL, "verbose": 1}).fit(X, y)
    err = capsys.readouterr().err
    finished = [
        line.split("\r")[-1].split(":")[0] for line in err.splitlines() if "done in" in line
    ]
    assert finished == [
        "flow",
        "distillation",
        "neighbours",
        "classifier",
        "weight_selection",
        "student",
    ]


def test_a_seeded_fit_leaves_the_process_random_numbers_alone(data):
    import random

    import tensorflow as tf
    from tensorflow.python.eager import context

    X, y, _, _ = data
    random.seed(7)
    np.random.seed(7)
    tf.random.set_seed(7)
    expected = (random.random(), np.random.random())
    random.seed(7)
    np.random.seed(7)
    NFADetector(**{**SMALL, "random_state": 3}).fit(X, y)
    assert (random.random(), np.random.random()) == expected
    assert context.global_seed() == 7
