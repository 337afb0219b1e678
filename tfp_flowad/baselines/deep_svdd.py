"""One-class Deep SVDD (Ruff et al., ICML 2018): normal rows mapped close to a fixed centre."""

from typing import ClassVar

import numpy as np
from keras import ops

from tfp_flowad.baselines.common import KerasBaseline, baseline, make_dense_network

__all__ = ["DeepSVDD", "svdd_centre", "squared_distance"]


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
        normal = X[y == 0]
        self.network_ = make_dense_network(
            X.shape[1],
            tuple(self.hidden_units),
            self.representation_units,
            activation="leaky_relu",
            use_bias=False,
            weight_decay=self.weight_decay,
            name="deep_svdd",
        )
        initial = self._predict(self.network_, normal)
        self.centre_ = svdd_centre(initial, self.centre_eps)
        targets = np.broadcast_to(self.centre_, initial.shape)
        self.history_ = self._fit_keras(
            self.network_, normal, targets, loss=squared_distance, epochs=self.epochs
        )

    def _score(self, X: np.ndarray) -> np.ndarray:
        features = self._predict(self.network_, X)
        return np.sum(np.square(features - self.centre_), axis=1)
