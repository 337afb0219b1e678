"""Synthetic anomalies of ADBench's four kinds, drawn from a set's normal rows.

ADBench (Han et al., NeurIPS 2022, section 3.3) judges detectors on anomalies made from the
normal rows of each set, one kind at a time. This module reimplements the four kinds from their
published description, with the rules below (every constant is a module constant).

The generators learn only from the normal rows they are given (the tasks give them the
*training* normal rows, so the test normal rows play no part). Three of the kinds work on the
rows standardised by scikit-learn's ``StandardScaler`` fitted to those rows (a constant column
keeps scale 1) and map the draws back to the original units:

* the mixture: ``GaussianMixture(n_components=k, covariance_type="full",
  reg_covar=GMM_REG_COVAR, random_state=seed)`` fitted to the standardised rows, with ``k`` in
  ``1..GMM_MAX_COMPONENTS`` chosen by the lowest BIC (ties: the fewest components). It is fitted
  to at most :data:`GMM_FIT_ROWS` rows: when there are more, ``GMM_FIT_ROWS`` distinct rows
  chosen by ``np.random.default_rng([seed, SYNTHETIC_SEED_KEY]).choice(n_rows, GMM_FIT_ROWS,
  replace=False)``.
* **local**: the mixture with every covariance multiplied by :data:`LOCAL_COVARIANCE_SCALE`
  (means and weights kept): anomalies near the normal rows but more spread out.
* **clustered**: the mixture with every component's mean moved by a Mahalanobis distance of
  :data:`CLUSTERED_MEAN_SHIFT` under that component's covariance, in a random direction:
  ``mean + CLUSTERED_MEAN_SHIFT * L @ u`` with ``L`` the Cholesky factor of the covariance and
  ``u`` uniform on the unit sphere (covariances and weights kept): clusters shaped like the
  normal ones, beside them. (Measured in the component's own covariance, the move leaves the
  normal cloud however its columns correlate; a move of so many column deviations could run
  along the cloud's long axis.)
* **global**: each column uniform on the range of the normal rows widened by
  :data:`GLOBAL_RANGE_MARGIN` of that range on each side (original units, columns independent).
* **dependency**: each column drawn independently, with replacement, from the normal rows' own
  values of that column (the product of the empirical marginals): every column keeps its
  marginal distribution while the dependence between columns is broken.

Draws of a kind come from ``rng = np.random.default_rng([seed, SYNTHETIC_SEED_KEY, i])`` with
``i`` the kind's position in :data:`SYNTHETIC_KINDS`, so a kind's anomalies do not depend on
which other kinds are asked for. A mixture kind first draws the component counts
``rng.multinomial(n, weights)`` (clustered: after the directions, rows of
``rng.standard_normal((k, d))`` divided by their norms) and then, component by component,
``rng.multivariate_normal(mean, covariance, size=count)``; its rows come grouped by component. Global draws ``rng.uniform(low, high, size=(n, d))``;
dependency draws ``rng.integers(0, n_rows, size=(n, d))`` and takes column ``j`` of the row
numbers in column ``j``.

The mixture and uniform draws are continuous even where a column of the data holds a few
discrete values; a detector can notice such values without modelling the normal rows.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from tfp_flowad.datasets.sources import adbench_source, adbench_split
from tfp_flowad.datasets.tasks import Task, _check_seed, _shuffled

__all__ = [
    "CLUSTERED_MEAN_SHIFT",
    "GLOBAL_RANGE_MARGIN",
    "GMM_FIT_ROWS",
    "GMM_MAX_COMPONENTS",
    "GMM_REG_COVAR",
    "LOCAL_COVARIANCE_SCALE",
    "SYNTHETIC_KINDS",
    "SYNTHETIC_MIN_TEST_ANOMALIES",
    "SYNTHETIC_SEED_KEY",
    "draw_synthetic_anomalies",
    "synthetic_tasks",
]

#: The four kinds, in the order that numbers their random streams.
SYNTHETIC_KINDS: tuple[str, ...] = ("local", "global", "dependency", "clustered")

#: Local anomalies: factor on every covariance of the fitted mixture (ADBench's alpha).
LOCAL_COVARIANCE_SCALE = 5.0

#: Clustered anomalies: Mahalanobis distance by which every component mean is moved.
CLUSTERED_MEAN_SHIFT = 5.0

#: Global anomalies: each column's range is widened by this share of itself on each side.
GLOBAL_RANGE_MARGIN = 0.1

#: The mixture has 1 to this many components, the number chosen by BIC.
GMM_MAX_COMPONENTS = 6

#: At most this many normal rows are used to fit the mixture.
GMM_FIT_ROWS = 10_000

#: ``reg_covar`` of the mixture, in standardised units: a floor on each component's variances.
GMM_REG_COVAR = 1e-3

#: The second entry of every seed sequence of this module.
SYNTHETIC_SEED_KEY = 3_003

#: Fewest synthetic anomalies in a test set (sets with very few real anomalies get this many).
SYNTHETIC_MIN_TEST_ANOMALIES = 100


def _fit_mixture(Z: np.ndarray, seed: int):
    """The BIC-chosen ``GaussianMixture`` of the standardised rows ``Z`` (rules: module doc)."""
    from sklearn.mixture import GaussianMixture

    if len(Z) > GMM_FIT_ROWS:
        rows = np.random.default_rng([seed, SYNTHETIC_SEED_KEY]).choice(
            len(Z), GMM_FIT_ROWS, replace=False
        )
        Z = Z[rows]
    best, best_bic = None, np.inf
    for k in range(1, min(GMM_MAX_COMPONENTS, len(Z)) + 1):
        mixture = GaussianMixture(
            n_components=k, covariance_type="full", reg_covar=GMM_REG_COVAR, random_state=seed
        ).fit(Z)
        bic = mixture.bic(Z)
        if bic < best_bic:
            best, best_bic = mixture, bic
    return best


def _draw_mixture(
    rng: np.random.Generator,
    weights: np.ndarray,
    means: np.ndarray,
    covariances: np.ndarray,
    n: int,
) -> np.ndarray:
    counts = rng.multinomial(n, weights / weights.sum())
    parts = [
        rng.multivariate_normal(mean, covariance, size=count)
        for mean, covariance, count in zip(means, covariances, counts, strict=True)
    ]
    return np.concatenate(parts)


def draw_synthetic_anomalies(
    X_normal: np.ndarray,
    n: int,
    seed: int,
    kinds: Sequence[str] = SYNTHETIC_KINDS,
) -> dict[str, np.ndarray]:
    """``n`` synthetic anomalies of each of ``kinds``, made from the normal rows ``X_normal``.

    The rules and the draws are those of the module docstring; the mixture is fitted once and
    shared by ``local`` and ``clustered``.

    Args:
        X_normal: the normal rows, 2-D numeric, at least two rows.
        n: number of anomalies of each kind, positive.
        seed: non-negative integer.
        kinds: a subset of :data:`SYNTHETIC_KINDS`.

    Returns:
        ``{kind: float64 array of shape (n, d)}`` in the order of ``kinds``.

    Raises:
        ValueError: an unknown kind, a bad seed or ``n``, or ``X_normal`` that is not 2-D with at
            least two rows.
    """
    from sklearn.preprocessing import StandardScaler

    seed = _check_seed(seed)
    kinds = list(dict.fromkeys(kinds))
    unknown = [kind for kind in kinds if kind not in SYNTHETIC_KINDS]
    if unknown:
        raise ValueError(f"unknown kinds {unknown}; known: {', '.join(SYNTHETIC_KINDS)}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    X_normal = np.asarray(X_normal, dtype=np.float64)
    if X_normal.ndim != 2 or len(X_normal) < 2:
        raise ValueError(f"X_normal must be 2-D with at least two rows, got {X_normal.shape}")
    n_rows, d = X_normal.shape

    scaler = StandardScaler().fit(X_normal)
    mixture = None
    if {"local", "clustered"} & set(kinds):
        mixture = _fit_mixture(scaler.transform(X_normal), seed)

    drawn = {}
    for kind in kinds:
        rng = np.random.default_rng([seed, SYNTHETIC_SEED_KEY, SYNTHETIC_KINDS.index(kind)])
        if kind == "local":
            Z = _draw_mixture(
                rng,
                mixture.weights_,
                mixture.means_,
                mixture.covariances_ * LOCAL_COVARIANCE_SCALE,
                n,
            )
            drawn[kind] = scaler.inverse_transform(Z)
        elif kind == "clustered":
            directions = rng.standard_normal(mixture.means_.shape)
            directions /= np.linalg.norm(directions, axis=1, keepdims=True)
            factors = np.linalg.cholesky(mixture.covariances_)
            moves = CLUSTERED_MEAN_SHIFT * np.einsum("kij,kj->ki", factors, directions)
            Z = _draw_mixture(
                rng, mixture.weights_, mixture.means_ + moves, mixture.covariances_, n
            )
            drawn[kind] = scaler.inverse_transform(Z)
        elif kind == "global":
            low, high = X_normal.min(axis=0), X_normal.max(axis=0)
            margin = GLOBAL_RANGE_MARGIN * (high - low)
            drawn[kind] = rng.uniform(low - margin, high + margin, size=(n, d))
        else:  # dependency
            rows = rng.integers(0, n_rows, size=(n, d))
            drawn[kind] = X_normal[rows, np.arange(d)]
    return drawn


def synthetic_tasks(
    path_or_name: str | os.PathLike,
    seed: int,
    kinds: Sequence[str] = SYNTHETIC_KINDS,
    data: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[Task]:
    """One-class tasks whose test anomalies are synthetic, one task per kind.

    The split is the ADBench protocol's (:func:`~tfp_flowad.datasets.adbench_split`) and the
    real anomalies are dropped from both parts:

    * train: the train normal rows, in the order of the one-class task of
      :func:`~tfp_flowad.datasets.adbench_tasks` (the same rows, the same order);
    * test: the test normal rows (in split order), then ``max(a, SYNTHETIC_MIN_TEST_ANOMALIES)``
      anomalies of the kind, ``a`` being the number of real anomalies in the test part (so the
      anomaly share of the test set is the real set's unless it has very few anomalies).

    The anomalies are drawn by :func:`draw_synthetic_anomalies` from the train normal rows
    with this ``seed``.

    Args:
        path_or_name: a shipped set's name (``"6_cardio"``) or the path of an ``.npz`` file.
        seed: non-negative integer.
        kinds: a subset of :data:`SYNTHETIC_KINDS`.
        data: a pre-loaded ``(X, y)``; ``path_or_name`` then only names the set.

    Returns:
        Tasks named ``"synthetic-local"``, ``"synthetic-global"``, ``"synthetic-dependency"``,
        ``"synthetic-clustered"`` (those of ``kinds``, in its order), sharing ``X_train``.

    Raises:
        FileNotFoundError: unknown name or missing file.
        ValueError: a bad file, seed or kind, or fewer than two train normal rows.
    """
    seed = _check_seed(seed)
    dataset, X, y = adbench_source(path_or_name, data)
    train_idx, test_idx = adbench_split(y, seed)
    train_normals = train_idx[y[train_idx] == 0]
    test_normals = test_idx[y[test_idx] == 0]
    n_anomalies = max(int(y[test_idx].sum()), SYNTHETIC_MIN_TEST_ANOMALIES)
    anomalies = draw_synthetic_anomalies(X[train_normals], n_anomalies, seed, kinds)

    X_train = X[_shuffled(train_normals, seed, 0)]
    y_train = np.zeros(len(X_train), dtype=np.int64)
    y_test = np.r_[np.zeros(len(test_normals), np.int64), np.ones(n_anomalies, np.int64)]
    return [
        Task(
            dataset=dataset,
            name=f"synthetic-{kind}",
            seed=seed,
            X_train=X_train,
            y_train=y_train,
            X_test=np.concatenate([X[test_normals], rows]),
            y_test=y_test,
        )
        for kind, rows in anomalies.items()
    ]
