"""Supervised baselines: a two-class classifier, and an autoencoder followed by a classifier.

Both need known anomalies (``y == 1``) and score a row by ``-logit f(x)``, ``f(x)`` the
classifier's estimate of ``P(C+ | x)`` (C+ = normal class), as the (1 + eps)-class detectors do.

References:
    Ryzhikov et al., "Normalizing flows for deep anomaly detection", arXiv 1912.09323, section 4
    (baselines "two-class" and "semi-supervised").
"""

import numpy as np

from tfp_flowad.baselines.common import (
    KerasBaseline,
    NoSurrogates,
    fit_model,
    fit_one_plus_eps,
    make_autoencoder,
    predict_in_batches,
    require_known_anomalies,
)
from tfp_flowad.nn.mlp import make_mlp
from tfp_flowad.training.classifier import OnePlusEpsTrainer

__all__ = ["TwoClassClassifier", "SemiSupervisedClassifier"]


def _fit_balanced_classifier(detector, features: np.ndarray, y: np.ndarray):
    """Fits ``make_mlp`` with ``L = 1/2 (L+ + L-)`` on ``features``; returns (network, history)."""
    network = make_mlp(features.shape[1], tuple(detector.hidden_units))
    trainer = OnePlusEpsTrainer(network, NoSurrogates(features.shape[1]), gamma=1.0, eps=1.0)
    history = fit_one_plus_eps(
        trainer,
        features[y == 0],
        features[y == 1],
        epochs=detector.epochs,
        batch_size=detector.batch_size,
        learning_rate=detector.learning_rate,
        seed=detector.random_state,
        verbose=detector.verbose,
    )
    return network, history


class TwoClassClassifier(KerasBaseline):
    """Two-class MLP: ``min 1/2 ( -E_{C+} log f(x) - E_{C-} log(1 - f(x)) )``, eq. (3).

    The class-balanced binary cross-entropy: each class's term is a mean over its own rows, so
    the few known anomalies weigh as much as all the normals (eq. (6) with ``gamma = 1`` and
    ``eps = 1``: no surrogate term). Score ``-logit f(x)``.

    Args:
        hidden_units: hidden widths of the classifier MLP.
        epochs: passes over the normal rows.
        batch_size: normal rows per step (anomalies are repeated to fill their half).
        learning_rate: Adam learning rate.
        verbose: Keras verbosity.
        contamination: expected fraction of anomalies; sets ``threshold_``.
        random_state: integer seed; the same seed gives the same scores on CPU.
        categorical_columns: names, or ``"auto"`` (see ``BaseDetector``).
        log_transform: ``"auto"``, ``True`` or ``False`` (see ``BaseDetector``).

    Attributes:
        classifier_: the Keras network ``x -> logit f(x)``.
        history_: the Keras history dict.

    Raises:
        ValueError: from ``fit``, when ``y`` marks no known anomaly.

    References:
        Ryzhikov et al., arXiv 1912.09323, section 4 ("conventional two-class classification").
    """

    needs_known_anomalies = True

    def __init__(
        self,
        hidden_units: tuple[int, ...] = (64, 32),
        epochs: int = 10,
        batch_size: int = 512,
        learning_rate: float = 1e-3,
        verbose: int = 0,
        contamination: float = 0.01,
        random_state: int | None = None,
        categorical_columns="auto",
        log_transform="auto",
    ):
        super().__init__(contamination, random_state, categorical_columns, log_transform)
        self.hidden_units = hidden_units
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.verbose = verbose

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        require_known_anomalies(y, "two-class")
        self._seed_everything()
        self.classifier_, self.history_ = _fit_balanced_classifier(self, X, y)

    def _score(self, X: np.ndarray) -> np.ndarray:
        return -predict_in_batches(self.classifier_, X, self.score_batch_size)[:, 0]


class SemiSupervisedClassifier(KerasBaseline):
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
        verbose: Keras verbosity.
        contamination: expected fraction of anomalies; sets ``threshold_``.
        random_state: integer seed; the same seed gives the same scores on CPU.
        categorical_columns: names, or ``"auto"`` (see ``BaseDetector``).
        log_transform: ``"auto"``, ``True`` or ``False`` (see ``BaseDetector``).

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

    needs_known_anomalies = True

    def __init__(
        self,
        hidden_units: tuple[int, ...] = (64, 32),
        autoencoder_hidden_units: tuple[int, ...] = (64,),
        code_units: int = 16,
        autoencoder_epochs: int = 5,
        epochs: int = 10,
        batch_size: int = 512,
        learning_rate: float = 1e-3,
        verbose: int = 0,
        contamination: float = 0.01,
        random_state: int | None = None,
        categorical_columns="auto",
        log_transform="auto",
    ):
        super().__init__(contamination, random_state, categorical_columns, log_transform)
        self.hidden_units = hidden_units
        self.autoencoder_hidden_units = autoencoder_hidden_units
        self.code_units = code_units
        self.autoencoder_epochs = autoencoder_epochs
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.verbose = verbose

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        require_known_anomalies(y, "semi-supervised")
        self._seed_everything()
        self.code_encoder_, self.autoencoder_ = make_autoencoder(
            X.shape[1], tuple(self.autoencoder_hidden_units), self.code_units
        )
        self.history_ = {
            "autoencoder": fit_model(
                self.autoencoder_,
                X,
                X,
                loss="mse",
                epochs=self.autoencoder_epochs,
                batch_size=self.batch_size,
                learning_rate=self.learning_rate,
                verbose=self.verbose,
            )
        }
        codes = predict_in_batches(self.code_encoder_, X, self.score_batch_size)
        self.classifier_, self.history_["classifier"] = _fit_balanced_classifier(self, codes, y)

    def _score(self, X: np.ndarray) -> np.ndarray:
        codes = predict_in_batches(self.code_encoder_, X, self.score_batch_size)
        return -predict_in_batches(self.classifier_, codes, self.score_batch_size)[:, 0]
