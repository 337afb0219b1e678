"""The baselines (the paper's and the reference detectors): contract, a real detection check,
determinism, and their math."""

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.neighbors import NearestNeighbors

from tfp_flowad import NFADetector
from tfp_flowad.baselines import BASELINES, REFERENCE_BASELINES, KerasBaseline, group_soft_threshold
from tfp_flowad.baselines.deep_svdd import deep_sad_loss
from tfp_flowad.baselines.energy_samplers import HMCEnergySampler
from tfp_flowad.baselines.eope import (
    EnergyOnePlusEpsTrainer,
    energy_surrogate_loss,
    estimate_log_normaliser,
)
from tfp_flowad.baselines.reference import knn_distances
from tfp_flowad.losses import energy_surrogate_term
from tfp_flowad.sampling import UniformBoxSampler
from tfp_flowad.training.classifier import OnePlusEpsTrainer

DIM = 5
SHIFT = 4.0
#: baselines that learn only "normal vs known anomaly": far rows must lie on the anomalies' side.
SUPERVISED = {"two-class", "semi-supervised", "boosted-trees", "xgbod"}
#: baselines that raise without a known anomaly.
NEED_KNOWN = sorted(name for name, cls in BASELINES.items() if cls.needs_known_anomalies)
#: small, fast settings of the network baselines; the learning rate is high so that a few
#: epochs suffice.
FAST = dict(epochs=5, batch_size=32, learning_rate=1e-2)
EXTRA = {"semi-supervised": dict(autoencoder_epochs=3), "rae-oc": dict(update_every=1)}


def _blobs(n_normal: int, n_anomaly: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Normals ``N(0, I)``; anomalies ``N(SHIFT * e_0, I)``; ``y = 1`` marks the anomalies."""
    rng = np.random.default_rng(seed)
    normal = rng.normal(size=(n_normal, DIM))
    anomaly = rng.normal(size=(n_anomaly, DIM)) + SHIFT * np.eye(DIM)[0]
    X = np.vstack([normal, anomaly]).astype(np.float32)
    return X, np.r_[np.zeros(n_normal), np.ones(n_anomaly)].astype(np.int64)


def _far_rows(n: int, anomaly_side: bool, seed: int) -> np.ndarray:
    """Rows at distance 6 from the normals' centre: any direction, or within 30 deg of e_0."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(n, DIM))
    if anomaly_side:
        directions = 0.5 * directions / np.linalg.norm(directions, axis=1, keepdims=True)
        directions[:, 0] += 1.0
    return (6.0 * directions / np.linalg.norm(directions, axis=1, keepdims=True)).astype(np.float32)


TRAIN = _blobs(300, 30, seed=0)
TEST_NORMAL = np.random.default_rng(1).normal(size=(200, DIM)).astype(np.float32)


def _make(name: str):
    cls = BASELINES[name]
    fast = FAST if issubclass(cls, KerasBaseline) else {}
    return cls(random_state=0, **fast, **EXTRA.get(name, {}))


@functools.cache
def _fitted(name: str):
    detector = _make(name)
    assert detector.fit(*TRAIN) is detector
    return detector


def test_registry_uses_the_papers_names_then_the_reference_detectors():
    paper = [
        "two-class",
        "semi-supervised",
        "deep-svdd-oc",
        "rae-oc",
        "brute-force-ope",
        "hmc-eope",
        "rmsprop-eope",
        "deep-eope",
    ]
    reference = ["iforest-oc", "knn-oc", "boosted-trees", "xgbod", "deep-sad"]
    assert list(BASELINES) == paper + reference
    assert list(REFERENCE_BASELINES) == reference


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_init_only_stores_arguments(name):
    detector = _make(name)
    params = detector.get_params()
    assert params["random_state"] == 0
    assert params.get("epochs", 5) == 5
    assert not [key for key in vars(detector) if key.endswith("_")]
    assert type(detector)(**params).get_params() == params


@pytest.mark.parametrize("name", sorted(BASELINES) + ["normalising-flow"])
def test_detectors_are_scikit_learn_estimators(name):
    detector = NFADetector(classifier_gamma=0.5) if name == "normalising-flow" else _make(name)
    copy = clone(detector)
    assert type(copy) is type(detector) and copy.get_params() == detector.get_params()
    assert detector.set_params(random_state=7) is detector and detector.random_state == 7
    assert copy.random_state != 7
    with pytest.raises(ValueError, match="'no_such_option'"):
        detector.set_params(no_such_option=1)


def test_grid_search_tunes_a_detector_by_roc_auc():
    search = GridSearchCV(
        _make("two-class"),
        {"learning_rate": [1e-2, 1e-5]},
        scoring=lambda detector, X, y: roc_auc_score(y, detector.decision_function(X)),
        cv=StratifiedKFold(2, shuffle=True, random_state=0),
    ).fit(*TRAIN)
    assert search.best_params_ == {"learning_rate": 1e-2}
    assert search.best_score_ > 0.9
    assert hasattr(search.best_estimator_, "threshold_")
    assert not hasattr(clone(search.best_estimator_), "threshold_")


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_fit_scores_far_rows_above_normal_rows(name):
    detector = _fitted(name)
    far = _far_rows(200, anomaly_side=name in SUPERVISED, seed=2)
    normal_scores = detector.decision_function(TEST_NORMAL)
    far_scores = detector.decision_function(far)
    assert normal_scores.shape == (len(TEST_NORMAL),)
    assert np.isfinite(normal_scores).all() and np.isfinite(far_scores).all()
    labels = np.r_[np.zeros(len(normal_scores)), np.ones(len(far_scores))]
    auc = roc_auc_score(labels, np.r_[normal_scores, far_scores])
    assert auc > 0.8, f"{name}: AUC {auc:.3f} of normal rows vs rows at distance 6"
    predictions = detector.predict(np.vstack([TEST_NORMAL, far]))
    assert set(np.unique(predictions)) <= {0, 1}
    assert predictions.dtype.kind == "i"


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_random_state_gives_identical_scores(name):
    first = _fitted(name).decision_function(TEST_NORMAL)
    second = _make(name).fit(*TRAIN).decision_function(TEST_NORMAL)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("name", NEED_KNOWN)
def test_supervised_baselines_need_known_anomalies(name):
    X, y = TRAIN
    with pytest.raises(ValueError, match=r"\by\b.*no known anomalies"):
        _make(name).fit(X[y == 0], y[y == 0])
    with pytest.raises(ValueError, match=r"\by\b"):
        _make(name).fit(X)


def test_group_soft_threshold_shrinks_rows_by_threshold():
    residual = np.array([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0], [-6.0, 8.0]])
    shrunk = group_soft_threshold(residual, 1.0)
    # Rows longer than t lose t of their length along their own direction, the others vanish.
    np.testing.assert_allclose(shrunk, [[2.4, 3.2], [0.0, 0.0], [0.0, 0.0], [-5.4, 7.2]])
    np.testing.assert_allclose(group_soft_threshold(residual, 0.0), residual)
    # It is the prox: no nearby S has a lower 1/2 ||S - R||^2 + t * sum_i ||S_i||.
    rng = np.random.default_rng(0)
    residual = rng.normal(size=(20, 4))

    def objective(outliers):
        penalty = np.linalg.norm(outliers, axis=1).sum()
        return 0.5 * np.sum((outliers - residual) ** 2) + 1.5 * penalty

    best = objective(group_soft_threshold(residual, 1.5))
    for _ in range(200):
        nudged = group_soft_threshold(residual, 1.5) + 1e-2 * rng.normal(size=residual.shape)
        assert objective(nudged) >= best
    with pytest.raises(ValueError, match="threshold"):
        group_soft_threshold(residual, -1.0)


def _constant_network(value: float) -> keras.Sequential:
    """``logit(x) = value`` for every ``x``."""
    dense = keras.layers.Dense(
        1, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(value)
    )
    return keras.Sequential([keras.Input((DIM,)), dense])


def test_energy_l0_of_a_constant_classifier_is_the_uniform_l0():
    # f constant: P_f is uniform over Omega, Z = |Omega| e^a, every importance weight is 1,
    # so eq. (10) equals the uniform L0 = softplus(a) of eq. (6), and so do the two losses.
    constant = 0.7
    box = UniformBoxSampler.around(TRAIN[0], 0.1, seed=0)
    network = _constant_network(constant)
    energy = EnergyOnePlusEpsTrainer(network, HMCEnergySampler(box, 16, seed=0), eps=0.2)
    uniform = OnePlusEpsTrainer(network, box, eps=0.2, surrogates_per_step=16)
    batch = {"normal": tf.constant(TRAIN[0][:8]), "anomaly": tf.constant(TRAIN[0][-4:])}

    samples, log_normaliser, _ = energy.draw()
    np.testing.assert_allclose(float(log_normaliser), box.log_volume + constant, rtol=1e-6)
    energy_terms = energy.energy_terms(batch, samples, log_normaliser, training=False)
    uniform_terms = uniform._loss_terms(batch, training=False)
    softplus = np.log1p(np.exp(constant))
    np.testing.assert_allclose(float(energy_terms["surrogate"]), softplus, rtol=1e-5)
    for name in ("loss", "normal", "anomaly", "surrogate"):
        np.testing.assert_allclose(
            float(energy_terms[name]), float(uniform_terms[name]), rtol=1e-5, err_msg=name
        )


def test_energy_surrogate_loss_matches_losses_module_and_stays_finite():
    log_volume, log_normaliser = 3.0, tf.constant(2.5)
    logits = tf.constant([-3.0, -0.5, 0.0, 1.0, 4.0])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(logits)
        ours = energy_surrogate_loss(logits, log_volume, log_normaliser)
        reference = energy_surrogate_term(logits, log_volume, log_normaliser)
    np.testing.assert_allclose(float(ours), float(reference), rtol=1e-5)
    np.testing.assert_allclose(
        tape.gradient(ours, logits), tape.gradient(reference, logits), rtol=1e-5
    )
    # Deep in the anomalous region w * softplus(logit) -> Z C: finite where w overflows.
    extreme = tf.constant([-300.0, -120.0])
    with tf.GradientTape() as tape:
        tape.watch(extreme)
        value = energy_surrogate_loss(extreme, log_volume, log_normaliser)
    np.testing.assert_allclose(float(value), np.exp(2.5 - 3.0), rtol=1e-4)
    assert np.isfinite(tape.gradient(value, extreme).numpy()).all()


def test_log_normaliser_estimate_is_a_log_mean_exp():
    logits = tf.constant([0.0, np.log(3.0)], tf.float32)
    np.testing.assert_allclose(float(estimate_log_normaliser(logits, 2.0)), 2.0 + np.log(2.0))


def test_hmc_chains_persist_and_stay_in_the_box():
    box = UniformBoxSampler.around(TRAIN[0], 0.1, seed=0)
    sampler = HMCEnergySampler(box, 32, seed=0)
    network = _constant_network(0.0)
    before = sampler.chain_state.numpy().copy()
    samples, info = sampler.sample(lambda x: network(x)[:, 0])
    assert not np.array_equal(before, sampler.chain_state.numpy())
    assert 0.0 <= float(info["acceptance"]) <= 1.0
    assert (samples.numpy() >= np.asarray(box.low, np.float32)).all()
    assert (samples.numpy() <= np.asarray(box.high, np.float32)).all()


def _kth_other_distance(rows: np.ndarray, k: int) -> np.ndarray:
    """Each row's distance to its k-th nearest OTHER row, by brute force."""
    distances = np.linalg.norm(rows[:, None, :] - rows[None, :, :], axis=-1)
    np.fill_diagonal(distances, np.inf)
    return np.sort(distances, axis=1)[:, k - 1]


def test_knn_distances_leave_out_each_fitted_rows_own_distance():
    rows = np.random.default_rng(3).normal(size=(40, DIM))
    neighbours = NearestNeighbors(algorithm="brute").fit(rows)
    for k in (1, 5):
        own = knn_distances(neighbours, rows, [k], exclude_self=True)[:, 0]
        np.testing.assert_allclose(own, _kth_other_distance(rows, k), rtol=1e-6)
    new = rows[:3] + 0.5
    brute = np.sort(np.linalg.norm(new[:, None] - rows[None], axis=-1), axis=1)
    np.testing.assert_allclose(knn_distances(neighbours, new, [1, 5]), brute[:, [0, 4]], rtol=1e-6)


def test_knn_training_scores_are_distances_to_other_rows():
    detector = _fitted("knn-oc")
    normal = detector.encoder_.transform(TRAIN[0][TRAIN[1] == 0])  # distances are in features
    np.testing.assert_allclose(
        detector.decision_scores_[TRAIN[1] == 0], _kth_other_distance(normal, 5), rtol=1e-5
    )
    # The known anomalies are not fitted: theirs are plain distances, as for any new row.
    anomalies = TRAIN[0][TRAIN[1] == 1]
    np.testing.assert_allclose(
        detector.decision_scores_[TRAIN[1] == 1], detector.decision_function(anomalies), rtol=1e-6
    )
    assert detector.threshold_ == np.quantile(detector.decision_scores_, 0.99)
    with pytest.raises(ValueError, match=r"n_neighbors.*got 300"):
        BASELINES["knn-oc"](n_neighbors=300).fit(*TRAIN)


def test_xgbod_features_are_the_rows_and_their_outlier_scores():
    detector = _fitted("xgbod")
    X = detector.encoder_.transform(TRAIN[0])
    features = detector._augmented(X, training=True)
    np.testing.assert_array_equal(features[:, :DIM], X)
    np.testing.assert_allclose(features[:, DIM], -detector.forest_.score_samples(X), rtol=1e-5)
    for column, k in enumerate(detector.neighbours, start=DIM + 1):
        np.testing.assert_allclose(
            features[:, column], np.log1p(_kth_other_distance(X, k)), rtol=1e-5
        )
    np.testing.assert_allclose(
        detector.decision_scores_, -detector.model_.decision_function(features), rtol=1e-6
    )


def test_boosted_trees_weigh_both_classes_alike():
    # Eq. (3): with 300 normal rows against 30 anomalies, the class-balanced fit's mean
    # probability of the anomaly class over the training rows, weighted per class, is 1/2.
    detector = _fitted("boosted-trees")
    X, y = TRAIN
    probability = detector.model_.predict_proba(X)[:, 0]  # class 0 = known anomaly
    balanced = 0.5 * (probability[y == 0].mean() + probability[y == 1].mean())
    assert abs(balanced - 0.5) < 0.05
    assert probability[y == 1].mean() > 0.9 > 0.1 > probability[y == 0].mean()


def test_deep_sad_loss_pulls_normal_rows_in_and_pushes_known_anomalies_out():
    centre = np.array([1.0, -1.0], np.float32)
    features = np.array([[1.0, -1.0], [3.0, -1.0], [1.0, 1.0]], np.float32)
    labels = np.array([0.0, 0.0, 1.0], np.float32)
    targets = np.hstack([np.broadcast_to(centre, (3, 2)), labels[:, None]])
    loss = np.asarray(deep_sad_loss(eta=2.0, eps=1e-6)(targets, features))
    np.testing.assert_allclose(loss, [0.0, 4.0, 2.0 / (4.0 + 1e-6)], rtol=1e-6)
    # Fitted, the known anomalies end up farther from the centre than the normal rows.
    detector = _fitted("deep-sad")
    scores = detector.decision_scores_
    assert np.median(scores[TRAIN[1] == 1]) > np.quantile(scores[TRAIN[1] == 0], 0.9)
