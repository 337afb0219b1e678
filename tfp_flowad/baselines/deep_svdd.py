"""Deep SVDD (Ruff et al., ICML 2018): normal rows mapped close to a fixed centre; and Deep
SAD (Ruff et al., ICLR 2020), which also pushes the known anomalies away from it."""

from typing import ClassVar

import numpy as np
from keras import ops

from tfp_flowad.baselines.common import (
    KerasBaseline,
    baseline,
    make_dense_network,
    require_known_anomalies,
)

__all__ = ["DeepSAD", "DeepSVDD", "deep_sad_loss", "svdd_centre", "squared_distance"]


def svdd_centre(features: np.ndarray, eps: float = 0.1) -> np.ndarray:
    """``c = mean_i phi(x_i)``, with entries ``|c_k| < eps`` moved to ``sign(c_k) * eps``.

    An entry of ``c`` near 0 lets a bias-free network reach it trivially through dead units;
    pushing it to ``+-eps`` (``+eps`` for an exact 0) avoids that (Ruff et al. 2018).

    Args:
        features: ``[n, k]`` outputs ``phi(x_i)`` of the initial network on normal rows.
        eps: smallest allowed ``|c_k|``.

    Returns:
        ``[k]`` float32 centre.
    """
    centre = features.mean(axis=0).astype(np.float32)
    small = np.abs(centre) < eps
    centre[small] = np.where(centre[small] < 0, -eps, eps)
    return centre


def squared_distance(centre, features):
    """``||phi(x) - c||^2`` per row, a Keras loss ``(y_true = c, y_pred = phi(x)) -> [batch]``."""
    return ops.sum(ops.square(features - centre), axis=-1)


def deep_sad_loss(eta: float, eps: float = 1e-6):
    """Deep SAD's per-row loss as a Keras loss: ``y_true`` is ``[c, label]`` (the centre, then
    1 for a known anomaly and 0 otherwise), ``y_pred`` is ``phi(x)``; the loss is ``d`` for a
    normal row and ``eta / (d + eps)`` for a known anomaly, ``d = ||phi(x) - c||^2``."""

    def loss(targets, features):
        distance = squared_distance(targets[:, :-1], features)
        return ops.where(targets[:, -1] > 0.5, eta / (distance + eps), distance)

    return loss


@baseline
class DeepSVDD(KerasBaseline):
    """One-class Deep SVDD, the one-class objective of Ruff et al. (ICML 2018).

    ``min_W 1/n sum_i ||phi(x_i; W) - c||^2 + lambda/2 sum_l ||W_l||_F^2`` over normal rows
    ``x_i``, with ``phi`` a network without bias terms (so that ``phi = c`` is not a trivial
    solution) and ``c`` fixed as the mean of ``phi`` on an initial forward pass. Score
    ``||phi(x) - c||^2``. Known anomalies are ignored (one-class).

    Args:
        hidden_units: hidden widths of ``phi`` (leaky ReLU, no bias).
        representation_units: output width of ``phi``.
        weight_decay: ``lambda`` of the weight penalty.
        centre_eps: entries of ``c`` with ``|c_k| < centre_eps`` are moved to ``+-centre_eps``.
        epochs: passes over the normal rows.
        batch_size, learning_rate, verbose, contamination, random_state, categorical_columns,
            log_transform: see ``KerasBaseline``.

    Attributes:
        network_: the Keras network ``phi``; ``centre_``: ``c``; ``history_``: Keras history.

    References:
        Ruff et al., "Deep One-Class Classification", ICML 2018.
        Ryzhikov et al., arXiv 1912.09323, section 4 (baseline "deep-svdd-oc").
    """

    hidden_units: tuple[int, ...] = (64,)
    representation_units: int = 32
    weight_decay: float = 1e-6
    centre_eps: float = 0.1

    uses_known_anomalies: ClassVar[bool] = False

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        self._seed_everything()
        self.network_ = make_dense_network(
            X.shape[1],
            tuple(self.hidden_units),
            self.representation_units,
            activation="leaky_relu",
            use_bias=False,
            weight_decay=self.weight_decay,
            name="deep_svdd",
        )
        self.centre_ = svdd_centre(self._predict(self.network_, X[y == 0]), self.centre_eps)
        inputs, targets, loss = self._objective(X, y)
        self.history_ = self._fit_keras(
            self.network_, inputs, targets, loss=loss, epochs=self.epochs
        )

    def _objective(self, X: np.ndarray, y: np.ndarray):
        """The rows, Keras targets and loss of the fit: the normal rows, pulled to ``c``."""
        normal = X[y == 0]
        return (
            normal,
            np.broadcast_to(self.centre_, (len(normal), len(self.centre_))),
            squared_distance,
        )

    def _score(self, X: np.ndarray) -> np.ndarray:
        features = self._predict(self.network_, X)
        return np.sum(np.square(features - self.centre_), axis=1)


@baseline
class DeepSAD(DeepSVDD):
    """Deep SAD (Ruff et al., ICLR 2020): Deep SVDD that also learns from known anomalies.

    ``min_W 1/(n+m) [sum_i ||phi(x_i) - c||^2 + eta sum_j (||phi(x~_j) - c||^2)^{-1}] +
    lambda/2 sum_l ||W_l||_F^2`` over the normal rows ``x_i`` and the known anomalies
    ``x~_j`` (the paper's eq. 6 for labelled anomalies; its unlabelled rows are our normal
    rows), the network and centre as in ``DeepSVDD``. Batches mix both at their share of the
    training rows. Score ``||phi(x) - c||^2``. The paper pretrains ``phi`` as an autoencoder's
    encoder; here ``phi`` starts from its random initial weights, as in ``DeepSVDD``.

    Args:
        eta: weight of the known anomalies' term.
        (and the arguments of ``DeepSVDD``)

    Raises:
        ValueError: from ``fit``, when ``y`` marks no known anomaly.

    References:
        Ruff et al., "Deep Semi-Supervised Anomaly Detection", ICLR 2020, arXiv 1906.02694.
    """

    eta: float = 1.0

    needs_known_anomalies: ClassVar[bool] = True
    uses_known_anomalies: ClassVar[bool] = True

    def _objective(self, X: np.ndarray, y: np.ndarray):
        """All training rows; targets ``[c, label]`` (``deep_sad_loss``)."""
        require_known_anomalies(y, "deep-sad")
        centres = np.broadcast_to(self.centre_, (len(X), len(self.centre_)))
        targets = np.hstack([centres, y[:, None]]).astype(np.float32)
        return X, targets, deep_sad_loss(self.eta)
