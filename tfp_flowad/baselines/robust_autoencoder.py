"""One-class robust deep autoencoder (Chalapathy, Menon, Chawla 2017, arXiv 1704.06743)."""

from typing import ClassVar

import numpy as np

from tfp_flowad.baselines.common import KerasBaseline, baseline, make_autoencoder

__all__ = ["RobustAutoencoder", "group_soft_threshold"]


def group_soft_threshold(residual: np.ndarray, threshold: float) -> np.ndarray:
    """``prox_{t ||.||_{2,1}}(R)``: row-wise ``S_i = R_i * max(0, 1 - t / ||R_i||_2)``.

    The minimiser of ``1/2 ||S - R||_F^2 + t * sum_i ||S_i||_2`` (the L2,1 norm over rows):
    every row shrinks towards 0 by ``t`` in Euclidean length, rows shorter than ``t`` vanish.

    Args:
        residual: ``[n, D]`` matrix ``R``.
        threshold: ``t >= 0``.

    Returns:
        ``[n, D]`` row-sparse ``S`` of the dtype of ``residual``.

    Raises:
        ValueError: ``threshold`` is negative.
    """
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0; got {threshold!r}")
    norms = np.linalg.norm(residual, axis=1, keepdims=True)
    scale = np.maximum(0.0, 1.0 - threshold / np.maximum(norms, np.finfo(np.float64).tiny))
    return (residual * scale).astype(residual.dtype)


@baseline
class RobustAutoencoder(KerasBaseline):
    """Robust deep autoencoder: ``X = L + S`` with a row-sparse outlier matrix ``S``.

    ``min_{theta, S} 1/2 ||X - S - D(E(X - S))||_F^2 + lambda ||S||_{2,1}`` over the normal
    rows, ``||S||_{2,1} = sum_i ||S_i||_2``, by alternating updates: train the autoencoder
    ``D o E`` on ``X - S`` for ``update_every`` epochs (``S`` fixed), then set
    ``S = prox_{lambda ||.||_{2,1}}(X - D(E(X - S)))`` (``theta`` fixed; see
    ``group_soft_threshold``). Rows that the autoencoder cannot reconstruct move into ``S`` and
    stop pulling the autoencoder towards them. ``S`` exists for training rows only, so the score
    of a new row is its reconstruction error ``||x - D(E(x))||^2``.

    ``lambda = outlier_penalty * sqrt(D)``: a row gets a non-zero ``S_i`` when its residual's
    root mean square over the ``D`` (standardised) features exceeds ``outlier_penalty``.

    Args:
        hidden_units: hidden widths of the encoder (the decoder mirrors them).
        code_units: width of the code.
        outlier_penalty: ``lambda / sqrt(D)``.
        epochs: total autoencoder epochs.
        update_every: epochs between two updates of ``S``.
        batch_size, learning_rate, verbose, contamination, random_state, categorical_columns,
            log_transform: see ``KerasBaseline``.

    Attributes:
        autoencoder_: the Keras model ``D o E``.
        outlier_norms_: ``||S_i||_2`` of the training normal rows after the last update.
        history_: the Keras history dicts of the autoencoder phases.

    References:
        Chalapathy, Menon, Chawla, "Robust, Deep and Inductive Anomaly Detection",
        arXiv 1704.06743 (2017).
        Ryzhikov et al., arXiv 1912.09323, section 4 (baseline "rae-oc").
    """

    hidden_units: tuple[int, ...] = (64,)
    code_units: int = 16
    outlier_penalty: float = 0.5
    update_every: int = 2

    uses_known_anomalies: ClassVar[bool] = False

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        if self.update_every < 1:
            raise ValueError(f"update_every must be >= 1; got {self.update_every!r}")
        self._seed_everything()
        normal = X[y == 0]
        _, self.autoencoder_ = make_autoencoder(
            X.shape[1], tuple(self.hidden_units), self.code_units, name="robust_autoencoder"
        )
        penalty = self.outlier_penalty * np.sqrt(X.shape[1])
        outliers = np.zeros_like(normal)
        self.history_ = []
        epochs_done = 0
        while epochs_done < self.epochs:
            phase = min(self.update_every, self.epochs - epochs_done)
            clean = normal - outliers
            self.history_.append(
                self._fit_keras(self.autoencoder_, clean, clean, loss="mse", epochs=phase)
            )
            epochs_done += phase
            reconstruction = self._predict(self.autoencoder_, clean)
            outliers = group_soft_threshold(normal - reconstruction, penalty)
        self.outlier_norms_ = np.linalg.norm(outliers, axis=1)

    def _score(self, X: np.ndarray) -> np.ndarray:
        reconstruction = self._predict(self.autoencoder_, X)
        return np.sum(np.square(X - reconstruction), axis=1)
