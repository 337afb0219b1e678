"""Well-known detectors outside the paper's tables, for comparison on the same splits.

Users weigh this library against what they run today: PyOD's IsolationForest and kNN, a
gradient-boosted two-class classifier (XGBoost, LightGBM) and XGBOD, which boosts on the
features plus unsupervised outlier scores. These are those methods, built on scikit-learn
(histogram gradient boosting stands in for XGBoost; it grows the same kind of trees), behind
the same ``fit`` / ``decision_function`` API as every other baseline.

References:
    Liu, Ting, Zhou, "Isolation forest", ICDM 2008.
    Ramaswamy, Rastogi, Shim, "Efficient algorithms for mining outliers from large data sets",
    SIGMOD 2000 (distance to the k-th nearest neighbour).
    Zhao, Hryniewicki, "XGBOD: improving supervised outlier detection with unsupervised
    representation learning", IJCNN 2018, arXiv 1912.00290.
"""

from typing import ClassVar

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import NearestNeighbors

from tfp_flowad.base import training_threshold
from tfp_flowad.baselines.common import Baseline, baseline, require_known_anomalies
from tfp_flowad.training.trees import weighted_boosting

__all__ = [
    "IsolationForestDetector",
    "KNNDetector",
    "BoostedTreesClassifier",
    "XGBODDetector",
    "knn_distances",
]


def knn_distances(neighbours: NearestNeighbors, X: np.ndarray, ks, exclude_self: bool = False):
    """``[n, len(ks)]``: each row's Euclidean distance to its ``k``-th nearest fitted row, for
    each ``k`` of ``ks``.

    With ``exclude_self`` the rows of ``X`` are the fitted rows themselves, and each row's own
    zero distance is not counted (its ``k``-th neighbour is the ``k``-th other row).
    """
    largest = max(ks) + int(exclude_self)
    distances, _ = neighbours.kneighbors(X, n_neighbors=largest)
    return distances[:, [k - 1 + int(exclude_self) for k in ks]]


@baseline
class IsolationForestDetector(Baseline):
    """Isolation forest (Liu et al. 2008): random trees split the normal rows at random
    features and thresholds; anomalies are isolated in fewer splits. Score ``-s(x)``,
    scikit-learn's ``score_samples`` (``s = -2^{-E h(x) / c(psi)}``, ``h`` the path length and
    ``c(psi)`` its mean for ``psi`` rows). One-class: known anomalies are dropped.

    Args:
        n_estimators: trees.
        max_samples: rows per tree (``psi``), or ``"auto"`` (``min(256, n)``).
        (and the arguments of ``Baseline``)

    Attributes:
        forest_: the fitted ``sklearn.ensemble.IsolationForest``.
    """

    n_estimators: int = 100
    max_samples: object = "auto"

    uses_known_anomalies: ClassVar[bool] = False

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        self.forest_ = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=self.max_samples,
            random_state=self.random_state,
        ).fit(X[y == 0])

    def _score(self, X: np.ndarray) -> np.ndarray:
        return -self.forest_.score_samples(X)


@baseline
class _NeighbourBaseline(Baseline):
    """A baseline scored by distances to fitted rows. A fitted row is its own nearest
    neighbour (distance 0), so ``_fit`` scores the training rows without it and sets
    ``decision_scores_`` itself; ``threshold_`` then follows those scores, as it would for
    rows the detector never saw."""

    def _set_training_scores(self, frame) -> None:
        del frame  # the training rows were scored in _fit
        self.threshold_ = training_threshold(self.decision_scores_, self.contamination)


@baseline
class KNNDetector(_NeighbourBaseline):
    """Distance to the ``k``-th nearest normal training row (Ramaswamy et al. 2000), in the
    encoded feature space. One-class: known anomalies are dropped.

    Args:
        n_neighbors: ``k``.
        (and the arguments of ``Baseline``)

    Attributes:
        neighbours_: the fitted ``sklearn.neighbors.NearestNeighbors`` over the normal rows.
    """

    n_neighbors: int = 5

    uses_known_anomalies: ClassVar[bool] = False

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        normal = y == 0
        if not 1 <= self.n_neighbors < normal.sum():
            raise ValueError(
                f"n_neighbors must be in [1, {normal.sum() - 1}] (below the normal rows); "
                f"got {self.n_neighbors!r}"
            )
        self.neighbours_ = NearestNeighbors(algorithm="brute").fit(X[normal])
        k = [self.n_neighbors]
        self.decision_scores_ = np.empty(len(X))
        self.decision_scores_[normal] = knn_distances(self.neighbours_, X[normal], k, True)[:, 0]
        if not normal.all():
            self.decision_scores_[~normal] = self._score(X[~normal])

    def _score(self, X: np.ndarray) -> np.ndarray:
        return knn_distances(self.neighbours_, X, [self.n_neighbors])[:, 0]


@baseline
class BoostedTreesClassifier(Baseline):
    """Two-class gradient-boosted trees, normal rows against known anomalies, on the
    class-balanced log loss of eq. (3), ``1/2 (L+ + L-)``, each class's term a mean over its
    own rows (``weighted_boosting``), so a handful of known anomalies weigh as much as all the
    normal rows. Score: ``-logit P(C+ | x)``, as for the other two-class baselines.

    Args:
        max_iter: trees (boosting rounds; no early stopping).
        learning_rate: shrinkage.
        max_leaf_nodes: leaves per tree.
        (and the arguments of ``Baseline``)

    Attributes:
        model_: the fitted ``sklearn.ensemble.HistGradientBoostingClassifier``.

    Raises:
        ValueError: from ``fit``, when ``y`` marks no known anomaly.
    """

    max_iter: int = 100
    learning_rate: float = 0.1
    max_leaf_nodes: int = 31

    needs_known_anomalies: ClassVar[bool] = True

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        require_known_anomalies(y, type(self).__name__)
        parts = [(X[y == 0], 1.0, 1.0), (X[y == 1], 0.0, 1.0)]
        self.model_, _ = weighted_boosting(
            parts, self.random_state, self.max_iter, self.learning_rate, self.max_leaf_nodes
        )

    def _score(self, X: np.ndarray) -> np.ndarray:
        return -self.model_.decision_function(X)


@baseline
class XGBODDetector(BoostedTreesClassifier, _NeighbourBaseline):
    """XGBOD's recipe (Zhao & Hryniewicki 2018): unsupervised outlier scores of every row
    appended to its features, then two-class boosting on the result.

    The outlier scores (XGBOD's "transformed outlier scores") come from an isolation forest and
    from the distances to the 1st, 5th, 10th and 20th nearest training rows (their
    ``log1p``), all fitted on every training row without its label. XGBOD proper draws on more
    unsupervised detectors (LOF, HBOS and OCSVM among them) and selects among their scores;
    this keeps two of its families, isolation and nearest-neighbour distance. A training row's
    own zero distance is not counted, so training rows and new rows get alike features.

    Args:
        neighbours: the ``k`` of the nearest-neighbour distances.
        n_estimators: trees of the isolation forest.
        (and the arguments of ``BoostedTreesClassifier``)

    Attributes:
        forest_, neighbours_: the fitted unsupervised detectors; ``model_``: the boosting.
    """

    neighbours: tuple[int, ...] = (1, 5, 10, 20)
    n_estimators: int = 100

    def _augmented(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        """``[X, -isolation score, log1p(k-th neighbour distance) for k in neighbours]``."""
        distances = knn_distances(self.neighbours_, X, self.neighbours, exclude_self=training)
        forest = -self.forest_.score_samples(X)[:, None]
        return np.hstack([X, forest, np.log1p(distances)]).astype(np.float32)

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        require_known_anomalies(y, type(self).__name__)
        if max(self.neighbours) >= len(X):
            raise ValueError(
                f"neighbours must stay below the {len(X)} training rows; got {self.neighbours!r}"
            )
        self.forest_ = IsolationForest(
            n_estimators=self.n_estimators, random_state=self.random_state
        ).fit(X)
        self.neighbours_ = NearestNeighbors(algorithm="brute").fit(X)
        features = self._augmented(X, training=True)
        super()._fit(features, y)
        self.decision_scores_ = super()._score(features)

    def _score(self, X: np.ndarray) -> np.ndarray:
        return super()._score(self._augmented(X))
