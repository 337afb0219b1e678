"""Supervised baselines: a two-class classifier, and an autoencoder followed by a classifier.

Both need known anomalies (``y == 1``) and score a row by ``-logit f(x)``, ``f(x)`` the
classifier's estimate of ``P(C+ | x)`` (C+ = normal class), as the (1 + eps)-class detectors do.

References:
    Ryzhikov et al., "Normalizing flows for deep anomaly detection", arXiv 1912.09323, section 4
    (baselines "two-class" and "semi-supervised").
"""

from typing import ClassVar

import numpy as np

from tfp_flowad.baselines.common import (
    ClassifierBaseline,
    balanced_trainer,
    baseline,
    make_autoencoder,
    require_known_anomalies,
)

__all__ = ["TwoClassClassifier", "SemiSupervisedClassifier"]


@baseline
class TwoClassClassifier(ClassifierBaseline):
    """Two-class MLP: ``min 1/2 ( -E_{C+} log f(x) - E_{C-} log(1 - f(x)) )``, eq. (3).

    The class-balanced binary cross-entropy: each class's term is a mean over its own rows, so
    the few known anomalies weigh as much as all the normals (eq. (6) with ``gamma = 1`` and
    ``eps = 1``: no surrogate term). Score ``-logit f(x)``.

    Args:
        hidden_units: hidden widths of the classifier MLP.
        epochs: passes over the normal rows.
        batch_size: normal rows per step (anomalies are repeated to fill their half).
        learning_rate, verbose, contamination, random_state, categorical_columns,
            log_transform: see ``KerasBaseline``.

    Attributes:
        classifier_: the Keras network ``x -> logit f(x)``.
        history_: the Keras history dict.

    Raises:
        ValueError: from ``fit``, when ``y`` marks no known anomaly.

    References:
        Ryzhikov et al., arXiv 1912.09323, section 4 ("conventional two-class classification").
    """

    needs_known_anomalies: ClassVar[bool] = True

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        require_known_anomalies(y, "two-class")
        self._seed_everything()
        self.classifier_, _, self.history_ = self._fit_classifier(X, y, balanced_trainer)


@baseline
class SemiSupervisedClassifier(ClassifierBaseline):
    """Autoencoder codes, then a two-class MLP on them.

    Step 1: ``min_{E, D} E_x ||x - D(E(x))||^2`` over all training rows (normals and known
    anomalies: no labels needed). Step 2: ``min 1/2 ( -E_{C+} log f(E(x)) - E_{C-} log(1 -
    f(E(x))) )``, the class-balanced cross-entropy of ``TwoClassClassifier`` on the codes
    ``E(x)``. Score ``-logit f(E(x))``.

    Args:
        hidden_units: hidden widths of the classifier MLP.
        autoencoder_hidden_units: hidden widths of the encoder (the decoder mirrors them).
        code_units: width of the code ``E(x)``.
        autoencoder_epochs: epochs of step 1.
        epochs: epochs of step 2 (passes over the normal rows).
        batch_size: rows per step in both steps.
        learning_rate: Adam learning rate of both steps.
        verbose, contamination, random_state, categorical_columns, log_transform: see
            ``KerasBaseline``.

    Attributes:
        code_encoder_: the Keras encoder ``E``; ``autoencoder_``: ``D o E``.
        classifier_: the Keras network ``code -> logit f``.
        history_: Keras history dicts, keys ``autoencoder`` and ``classifier``.

    Raises:
        ValueError: from ``fit``, when ``y`` marks no known anomaly.

    References:
        Ryzhikov et al., arXiv 1912.09323, section 4 ("dimensionality reduction by a Deep
        AutoEncoder followed by two-class classification").
    """

    autoencoder_hidden_units: tuple[int, ...] = (64,)
    code_units: int = 16
    autoencoder_epochs: int = 5

    needs_known_anomalies: ClassVar[bool] = True

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        require_known_anomalies(y, "semi-supervised")
        self._seed_everything()
        self.code_encoder_, self.autoencoder_ = make_autoencoder(
            X.shape[1], tuple(self.autoencoder_hidden_units), self.code_units
        )
        self.history_ = {
            "autoencoder": self._fit_keras(
                self.autoencoder_, X, X, loss="mse", epochs=self.autoencoder_epochs
            )
        }
        codes = self._predict(self.code_encoder_, X)
        self.classifier_, _, self.history_["classifier"] = self._fit_classifier(
            codes, y, balanced_trainer
        )

    def _score(self, X: np.ndarray) -> np.ndarray:
        return super()._score(self._predict(self.code_encoder_, X))
