"""The (1 + eps)-class loss, eq. (6), minimised by gradient boosting on a drawn surrogate pool."""

import keras
import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from tfp_flowad.nn.trees import boosted_trees_network

__all__ = ["centre_thresholds", "fit_boosted_trees", "quantile_bins", "weighted_boosting"]


def fit_boosted_trees(
    normal: np.ndarray,
    anomaly: np.ndarray,
    surrogates: np.ndarray,
    gamma: float,
    eps: float,
    seed: int | None,
    max_iter: int = 300,
    learning_rate: float = 0.05,
    max_leaf_nodes: int = 31,
    max_rows_per_term: int | None = 8192,
) -> keras.Model:
    """A gradient-boosted classifier of eq. (6), as a Keras ``BoostedTrees`` network.

    Eq. (6), ``1/2 (L+ + gamma L- + (1 - eps) L0)`` with each term the mean log loss over its
    rows (normal rows labelled C+, known anomalies and surrogates C-), is a weighted log loss:
    row weights ``1 / n+``, ``gamma / n-`` and ``(1 - eps) / n0``, rescaled to a mean of 1.
    Scikit-learn's ``HistGradientBoostingClassifier`` minimises it over the given rows; unlike
    ``OnePlusEpsTrainer`` the surrogates are one pool drawn before the fit, not fresh ones at
    every step. The network returns ``logit P(C+ | x)``, as the MLP does. Its split thresholds
    are centred between the training values (``centre_thresholds``), so a row whose
    features are computed with a little float rounding (the exported graph's encoder) takes
    the same branches as in training.

    Args:
        normal, anomaly, surrogates: encoded feature rows (``anomaly`` may be empty).
        gamma, eps: the weights of eq. (6).
        seed: the boosting's ``random_state``.
        max_iter, learning_rate, max_leaf_nodes: the boosting's trees, their shrinkage and
            size (no early stopping: every fit grows ``max_iter`` trees).
        max_rows_per_term: each term's rows (the normal rows, the known anomalies, the
            surrogates) are a random subset of at most this many (seeded by ``seed``). Each
            term of eq. (6) is a mean over its rows, so a subset estimates it without bias, and
            the boosting's time grows with the rows (KDD-99, 300 trees on 2 cores, with 459 /
            27,289 known anomalies: 4.1 / 5.8 s at 16,384 rows a term, 2.8 / 3.0 s at 8,192).
            ``None`` keeps every row.
    """
    rng = np.random.default_rng(seed)

    def subset(rows):
        if max_rows_per_term is None or len(rows) <= max_rows_per_term:
            return rows
        return rows[np.sort(rng.choice(len(rows), max_rows_per_term, replace=False))]

    normal, anomaly, surrogates = subset(normal), subset(anomaly), subset(surrogates)
    parts = [(normal, 1.0, 1.0), (anomaly, 0.0, gamma), (surrogates, 0.0, 1.0 - eps)]
    model, features = weighted_boosting(parts, seed, max_iter, learning_rate, max_leaf_nodes)
    real_rows = features[: len(normal) + (len(anomaly) if gamma > 0 else 0)]
    return boosted_trees_network(centre_thresholds(model, features, real_rows), normal.shape[1])


def weighted_boosting(
    parts: list[tuple[np.ndarray, float, float]],
    seed: int | None,
    max_iter: int,
    learning_rate: float,
    max_leaf_nodes: int,
) -> tuple[HistGradientBoostingClassifier, np.ndarray]:
    """Histogram gradient boosting on a sum of per-group mean log losses.

    ``parts`` holds ``(rows, label, weight)`` groups; the loss is ``sum_g weight_g * mean over
    group g of the log loss of label_g``: row weights ``weight_g / n_g``, rescaled to a mean of
    1 (groups that are empty or weigh 0 are left out). Eq. (6) is three such groups, eq. (3)
    two. No early stopping: every fit grows ``max_iter`` trees. The boosting runs on the rows'
    bins (``quantile_bins``, unweighted), and each split is then moved to its bin edge, so
    the classifier takes feature values.

    Returns:
        The fitted classifier and the float32 rows it was fitted on, group after group.
    """
    parts = [(rows, label, weight) for rows, label, weight in parts if len(rows) and weight > 0]
    features = np.concatenate([rows for rows, _, _ in parts]).astype(np.float32)
    labels = np.concatenate([np.full(len(rows), label) for rows, label, _ in parts])
    weights = np.concatenate([np.full(len(rows), weight / len(rows)) for rows, _, weight in parts])
    bins, edges = quantile_bins(features)
    # One OpenMP thread: scikit-learn's threads wait for each other at every step, and where
    # other work keeps the cores busy that waiting dominates (KDD-99 k=1, 2 cores busy with
    # other fits: 91 s with two threads, 5-11 s with one; the trees are the same either way).
    with threadpool_limits(limits=1, user_api="openmp"):
        model = HistGradientBoostingClassifier(
            learning_rate=learning_rate,
            max_iter=max_iter,
            max_leaf_nodes=max_leaf_nodes,
            early_stopping=False,
            random_state=seed,
        ).fit(bins, labels, sample_weight=weights * len(weights) / weights.sum())
    # A split of bin indices at ``i + 1/2`` sends bins ``0..i`` left: values ``<= edges[i]``.
    for (predictor,) in model._predictors:
        nodes = predictor.nodes
        for node in np.flatnonzero(nodes["is_leaf"] == 0):
            feature = nodes["feature_idx"][node]
            nodes["num_threshold"][node] = edges[feature][int(nodes["num_threshold"][node])]
    return model, features


def quantile_bins(rows: np.ndarray, max_bins: int = 255) -> tuple[np.ndarray, list[np.ndarray]]:
    """Each column of ``rows`` cut into at most ``max_bins`` bins, its rows unweighted.

    A column's edges are the midpoints between its distinct values where it has at most
    ``max_bins`` of them, else its quantiles at ``k / max_bins`` (``k = 1 .. max_bins - 1``,
    repeats dropped). A value ``x`` falls in bin ``i`` when ``edges[i - 1] < x <= edges[i]``.
    This is how scikit-learn bins rows given without weights. Given weights (the per-group
    weights of ``weighted_boosting``), recent scikit-learn finds each quantile by a weighted
    search of its own, 254 per column: 8 of a KDD-99 fit's 10 seconds of boosting. Boosting
    on the bin indices, whose few distinct values scikit-learn keeps as they are, skips that.

    Returns:
        The bin index of every value (float32, ``rows``' shape) and each column's edges.
    """
    bins = np.empty(rows.shape, dtype=np.float32)
    edges = []
    for column in range(rows.shape[1]):
        values = rows[:, column]
        distinct = np.unique(values)
        if len(distinct) <= max_bins:
            cuts = (distinct[:-1] + distinct[1:]) / 2
        else:
            levels = np.linspace(0, 100, max_bins + 1)[1:-1]
            cuts = np.unique(np.percentile(values, levels, method="averaged_inverted_cdf"))
        bins[:, column] = np.searchsorted(cuts, values, side="left")
        edges.append(cuts)
    return bins, edges


def centre_thresholds(model, rows: np.ndarray, real_rows: np.ndarray):
    """Move every split of a fitted ``HistGradientBoostingClassifier`` to the midpoint between
    the nearest training values on either side of it, in place; returns ``model``.

    Scikit-learn puts a split of a feature with many distinct values at a quantile of the
    training values, often a value that many rows share (``x <= t`` sends them left), or at
    the largest value of the real rows. Rows scored through a differently compiled encoder
    (the exported graph's) differ from the training rows by a few float32 ulps, enough to
    send such rows right. The new split is ``(lo + hi) / 2``: ``lo`` the largest value of
    ``real_rows`` at or below the threshold, ``hi`` the smallest above it, each taken from
    all training ``rows`` where ``real_rows`` (the normal rows and known anomalies, without
    the surrogates) have none on that side. Every real row takes the same branch as before,
    with the widest margin the data allow.
    """

    def column_values(matrix):
        return [np.unique(column) for column in np.asarray(matrix, dtype=np.float64).T]

    real_values, all_values = column_values(real_rows), column_values(rows)

    def nearest(values, threshold):
        """Largest of ``values`` at or below ``threshold`` and smallest above (or None)."""
        above = np.searchsorted(values, threshold, side="right")
        return (
            values[above - 1] if above > 0 else None,
            values[above] if above < len(values) else None,
        )

    for (predictor,) in model._predictors:
        nodes = predictor.nodes
        for node in np.flatnonzero(nodes["is_leaf"] == 0):
            feature, threshold = nodes["feature_idx"][node], nodes["num_threshold"][node]
            real = nearest(real_values[feature], threshold)
            fallback = nearest(all_values[feature], threshold)
            lo, hi = (r if r is not None else f for r, f in zip(real, fallback, strict=True))
            if lo is not None and hi is not None:
                nodes["num_threshold"][node] = (lo + hi) / 2
    return model
