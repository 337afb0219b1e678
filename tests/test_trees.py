"""Gradient-boosted trees as the classifier of eq. (6): the TensorFlow layer against
scikit-learn, the weighted loss, and the detector's ``classifier_model`` choice."""

import keras
import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

import tfp_flowad.nn.trees as trees_module
from tfp_flowad.nn.trees import BoostedTrees, boosted_trees_network, tree_arrays
from tfp_flowad.training.trees import (
    centre_thresholds,
    fit_boosted_trees,
    quantile_bins,
    weighted_boosting,
)


@pytest.fixture(scope="module")
def boosted():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 6)).astype(np.float32)
    x[:, 5] = rng.integers(0, 3, 3000)  # few values: thresholds fall between them
    y = (x[:, 0] + x[:, 1] ** 2 - x[:, 5] + 0.3 * rng.normal(size=3000) > 0.5).astype(int)
    # Trees of 20 to 27 leaves: the smaller ones are padded to the largest.
    model = HistGradientBoostingClassifier(max_iter=40, min_samples_leaf=100, random_state=0)
    return model.fit(x, y), x


def test_trees_in_tensorflow_give_the_sklearn_decision_function(boosted, tmp_path):
    model, x = boosted
    rng = np.random.default_rng(1)
    # Training rows (on the split grid), fresh rows and rows far outside the training range.
    rows = np.concatenate([x[:500], rng.normal(size=(500, 6)), 50 * rng.normal(size=(50, 6))])
    rows = rows.astype(np.float32)
    network = boosted_trees_network(model, 6)
    expected = model.decision_function(rows)
    np.testing.assert_allclose(network.predict(rows, verbose=0)[:, 0], expected, atol=1e-5)
    keras.saving.save_model(network, tmp_path / "trees.keras")
    loaded = keras.saving.load_model(tmp_path / "trees.keras")
    np.testing.assert_allclose(loaded.predict(rows, verbose=0)[:, 0], expected, atol=1e-5)


def test_tree_arrays_keep_comparisons_exact_in_float32(boosted):
    model, _ = boosted
    arrays = tree_arrays(model)
    nodes = np.concatenate([predictor.nodes for (predictor,) in model._predictors])
    splits = nodes[nodes["is_leaf"] == 0]["num_threshold"]
    rounded = np.sort(arrays["threshold"][np.isfinite(arrays["threshold"])].astype(np.float64))
    assert len(rounded) == len(splits)
    # Each float32 threshold is the largest float32 at or below the float64 one.
    assert (rounded <= np.sort(splits)).all()
    above = np.nextafter(rounded.astype(np.float32), np.float32(np.inf)).astype(np.float64)
    assert (above > np.sort(splits)).all()


def test_leaf_paths_pick_exactly_the_leaf_sklearn_reaches(boosted):
    model, x = boosted
    arrays = tree_arrays(model)
    goes_right = (x[:, arrays["feature"]] > arrays["threshold"]).astype(np.float32)
    reached = np.maximum(
        np.einsum("tls,nts->ntl", arrays["paths"], goes_right) + arrays["leaf_offset"], 0
    )
    # One leaf per tree and row, with weight exactly 1.
    np.testing.assert_array_equal(reached.sum(-1), 1.0)
    assert set(np.unique(reached)) == {0.0, 1.0}
    # Each tree's reached leaf value is its step of sklearn's staged decision function.
    staged = np.stack([stage for stage in model.staged_decision_function(x)])
    steps = np.diff(staged, axis=0, prepend=arrays["bias"][0])
    leaf_values = np.einsum("ntl,tl->tn", reached, arrays["value"])
    np.testing.assert_allclose(leaf_values, steps, atol=1e-5)
    # Padded splits never fire; padded leaves carry no value.
    padded = ~np.isfinite(arrays["threshold"])
    assert (arrays["paths"].transpose(0, 2, 1)[padded] == 0).all()
    padded_leaves = (arrays["paths"] == 0).all(-1) & (arrays["leaf_offset"] == 0)
    assert padded_leaves.any() and (arrays["value"][padded_leaves] == 0).all()


def test_trees_without_a_split_score_their_single_leaf():
    x = np.ones((200, 2), np.float32)  # nothing to split on: every tree is one leaf
    y = np.r_[np.zeros(60), np.ones(140)]
    model = HistGradientBoostingClassifier(max_iter=3).fit(x, y)
    network = boosted_trees_network(model, 2)
    np.testing.assert_allclose(
        network.predict(x[:3], verbose=0)[:, 0], model.decision_function(x[:3]), atol=1e-5
    )


def test_boosted_trees_layer_rejects_empty_shapes_and_the_old_layout():
    with pytest.raises(ValueError, match=r"num_splits must be a positive count; got 0"):
        BoostedTrees(num_trees=5, num_splits=0, num_leaves=3)
    old_layout = {"name": "boosted_trees", "num_nodes": 20, "num_trees": 5, "depth": 3}
    with pytest.raises(ValueError, match="saved by an older tfp_flowad.*refit the detector"):
        BoostedTrees.from_config(old_layout)


def test_boosted_trees_score_in_chunks_of_any_size(boosted, monkeypatch):
    model, x = boosted
    monkeypatch.setattr(trees_module, "ROWS_PER_CHUNK", 64)
    network = boosted_trees_network(model, 6)
    for rows in (x[:1], x[:64], x[:1050]):  # one row, one full chunk, 17 chunks with padding
        np.testing.assert_allclose(
            network.predict(rows, verbose=0)[:, 0], model.decision_function(rows), atol=1e-5
        )


def test_tree_arrays_reject_other_models():
    x, y = np.random.default_rng(0).normal(size=(100, 2)), np.r_[np.zeros(50), np.ones(50)]
    with pytest.raises(ValueError, match="binary HistGradientBoostingClassifier; got Logistic"):
        tree_arrays(LogisticRegression().fit(x, y))
    three = HistGradientBoostingClassifier(max_iter=2).fit(x, np.arange(100) % 3)
    with pytest.raises(ValueError, match="binary"):
        tree_arrays(three)


def test_boosted_trees_learn_the_weighted_loss_of_eq_6():
    rng = np.random.default_rng(0)
    normal = rng.normal(size=(800, 3))
    anomaly = rng.normal(size=(20, 3)) + [3.0, 0.0, 0.0]
    surrogates = rng.uniform(-6, 6, size=(800, 3))
    network = fit_boosted_trees(normal, anomaly, surrogates, 1.0, 0.05, seed=0, max_iter=60)
    logit = network.predict(np.concatenate([normal, anomaly, surrogates]), verbose=0)[:, 0]
    # logit P(C+ | x): normal rows above the known anomalies and the far surrogates.
    assert np.median(logit[:800]) > np.median(logit[800:820]) + 2
    far = np.abs(surrogates).max(axis=1) > 4
    assert np.median(logit[:800]) > np.median(logit[820:][far]) + 2
    # eps = 1 drops the surrogate term: far rows are no longer taught to be anomalies.
    two_class = fit_boosted_trees(normal, anomaly, surrogates, 1.0, 1.0, seed=0, max_iter=60)
    far_rows = np.array([[0.0, 5.5, 5.5], [0.0, -5.5, -5.5]])
    assert (two_class.predict(far_rows, verbose=0) > network.predict(far_rows, verbose=0)).all()


def test_boosted_trees_on_a_subset_of_the_rows_still_learn_eq_6():
    rng = np.random.default_rng(1)
    normal = rng.normal(size=(3000, 3))
    anomaly = rng.normal(size=(20, 3)) + [3.0, 0.0, 0.0]
    surrogates = rng.uniform(-6, 6, size=(3000, 3))
    args = (normal, anomaly, surrogates, 1.0, 0.05)
    every_row = fit_boosted_trees(*args, seed=0, max_iter=30, max_rows_per_term=None)
    subset = fit_boosted_trees(*args, seed=0, max_iter=30, max_rows_per_term=300)
    rows = np.concatenate([normal, anomaly, surrogates])
    # Fewer rows per term: other trees, but the same ranking of normal rows above the rest.
    logits = [m.predict(rows, verbose=0)[:, 0] for m in (every_row, subset)]
    assert not np.allclose(logits[0], logits[1])
    for logit in logits:
        assert np.median(logit[:3000]) > np.median(logit[3000:3020]) + 2
    assert np.corrcoef(logits)[0, 1] > 0.8


def test_boosting_on_bins_gives_sklearns_own_unweighted_fit():
    rng = np.random.default_rng(0)
    # A continuous column (quantile edges), a discrete one (midpoints), a constant one.
    x = np.c_[rng.normal(size=3000), rng.integers(0, 7, 3000), np.ones(3000)].astype(np.float32)
    label = (x[:, 0] + 0.3 * x[:, 1] + rng.normal(size=3000) > 1.5).astype(float)
    bins, edges = quantile_bins(x)
    assert [len(e) for e in edges] == [254, 6, 0]
    for column in range(3):  # edges[i - 1] < x <= edges[i] is bin i
        index = bins[:, column].astype(int)
        padded = np.r_[-np.inf, edges[column], np.inf]
        assert ((padded[index] < x[:, column]) & (x[:, column] <= padded[index + 1])).all()
    # Equal groups weigh every row 1: the same trees as scikit-learn's fit without weights.
    parts = [(x[label == 1][:900], 1.0, 1.0), (x[label == 0][:900], 0.0, 1.0)]
    model, rows = weighted_boosting(parts, 0, 20, 0.1, 15)
    reference = HistGradientBoostingClassifier(
        max_iter=20, learning_rate=0.1, max_leaf_nodes=15, early_stopping=False, random_state=0
    ).fit(rows, np.r_[np.ones(900), np.zeros(900)])
    probe = rng.normal(size=(500, 3)).astype(np.float32) * [1, 3, 1]
    np.testing.assert_allclose(
        model.decision_function(probe), reference.decision_function(probe), atol=1e-9
    )


def test_centred_thresholds_keep_real_rows_branches_and_survive_rounding():
    rng = np.random.default_rng(0)
    # Many distinct values (quantile splits) with heavy ties, as in KDD-99's byte counts.
    x = np.round(rng.lognormal(size=(4000, 3)), 2).astype(np.float32)
    x[rng.random(4000) < 0.4, 0] = 1.0
    y = (x[:, 0] + 0.5 * x[:, 1] + 0.3 * rng.normal(size=4000) > 2.0).astype(int)
    model = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(x, y)
    # The real rows stop below the others' largest values (surrogates reach further out).
    real = x[(x < np.quantile(x, 0.9, axis=0)).all(axis=1)]

    def thresholds_on_real_values(fitted):
        nodes = np.concatenate([p.nodes for (p,) in fitted._predictors])
        splits = nodes[nodes["is_leaf"] == 0]
        return sum(np.isin(s["num_threshold"], real[:, s["feature_idx"]]) for s in splits)

    assert thresholds_on_real_values(model) > 0  # sklearn splits at shared values
    before = model.decision_function(real)
    centre_thresholds(model, x, real)
    assert thresholds_on_real_values(model) == 0
    np.testing.assert_allclose(model.decision_function(real), before, atol=1e-12)
    # Every real row, one float32 ulp up or down, takes the same branches: also those at the
    # real rows' largest values, with only other rows above.
    network = boosted_trees_network(model, 3)
    for direction in (np.inf, -np.inf):
        nudged = np.nextafter(real, np.float32(direction))
        np.testing.assert_allclose(network.predict(nudged, verbose=0)[:, 0], before, atol=1e-5)


def test_a_split_at_the_real_rows_largest_value_moves_towards_the_surrogates():
    rng = np.random.default_rng(0)
    real = np.r_[np.full(3000, 2.0), rng.uniform(0, 2, 1000)].astype(np.float32)[:, None]
    surrogates = rng.uniform(2.01, 5, size=(1000, 1)).astype(np.float32)
    x, y = np.r_[real, surrogates], np.r_[np.ones(4000), np.zeros(1000)]
    model = HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(x, y)
    thresholds = [p.nodes[p.nodes["is_leaf"] == 0]["num_threshold"] for (p,) in model._predictors]
    assert 2.0 in np.concatenate(thresholds)  # the split sits on 3000 real rows
    centre_thresholds(model, x, real)
    centred = np.concatenate(
        [p.nodes[p.nodes["is_leaf"] == 0]["num_threshold"] for (p,) in model._predictors]
    )
    assert 2.0 not in centred
    assert np.isclose(centred, (2.0 + surrogates.min()) / 2).any()
