"""Pieces shared by the baselines: the detector bases, dense networks and the Keras fit helpers.

Every baseline is a ``BaseDetector`` whose ``_fit`` sees the encoded float32 matrix ``X`` and
0/1 labels ``y``. Its constructor is generated from its fields (a keyword-only dataclass), so
the arguments every baseline takes (``contamination``, ``random_state``,
``categorical_columns``, ``log_transform``) are declared once, in ``Baseline``, those of every
network baseline (``epochs``, ``batch_size``, ``learning_rate``, ``verbose``) once, in
``KerasBaseline``, and ``__init__`` only stores its arguments. Networks are Keras 3
models; ``KerasBaseline`` compiles and fits them the same way in every baseline (Adam, shuffled
mini-batches, seeded by ``random_state``).
"""

import dataclasses
from collections.abc import Callable
from typing import ClassVar

import keras
import numpy as np
import tensorflow as tf

from tfp_flowad.base import BaseDetector
from tfp_flowad.nn.mlp import make_mlp
from tfp_flowad.training.classifier import (
    OnePlusEpsTrainer,
    make_classifier_dataset,
    reshuffled_passes,
    steps_per_pass,
)

__all__ = [
    "Baseline",
    "KerasBaseline",
    "ClassifierBaseline",
    "baseline",
    "NoSurrogates",
    "balanced_trainer",
    "make_dense_network",
    "make_autoencoder",
    "predict_in_batches",
    "require_known_anomalies",
]

#: ``@baseline`` on a class: its annotated fields become keyword-only constructor arguments.
baseline = dataclasses.dataclass(eq=False, kw_only=True)


@baseline
class Baseline(BaseDetector):
    """``BaseDetector`` with its arguments as dataclass fields, and what the benchmark runner
    reads of a baseline: whether it needs and whether it uses known anomalies.

    Subclasses are decorated with ``@baseline``, declare their own arguments as fields, and
    implement ``_fit`` and ``_score``.

    Args:
        contamination: expected fraction of anomalies; sets ``threshold_``.
        random_state: integer seed; the same seed gives the same scores on CPU.
        categorical_columns: names, or ``"auto"`` (see ``BaseDetector``).
        log_transform: ``"auto"``, ``True`` or ``False`` (see ``BaseDetector``).
    """

    contamination: float = 0.01
    random_state: int | None = None
    categorical_columns: object = "auto"
    log_transform: object = "auto"

    #: ``fit`` raises without a known anomaly (a two-class method).
    needs_known_anomalies: ClassVar[bool] = False
    #: ``fit`` learns from known anomalies; ``False`` for one-class methods, which drop them.
    uses_known_anomalies: ClassVar[bool] = True


@baseline
class KerasBaseline(Baseline):
    """``Baseline`` plus what every Keras baseline needs: seeding, fitting, batched scoring.

    Args:
        epochs: passes over the (normal) training rows.
        batch_size: rows per step.
        learning_rate: Adam learning rate.
        verbose: Keras verbosity.
        (and the arguments of ``Baseline``)
    """

    epochs: int = 10
    batch_size: int = 512
    learning_rate: float = 1e-3
    verbose: int = 0

    #: rows per forward pass when scoring.
    score_batch_size: ClassVar[int] = 65536

    def _seed_everything(self) -> None:
        """Seeds Python, NumPy, TensorFlow and Keras' global generator from ``random_state``."""
        if self.random_state is not None:
            keras.utils.set_random_seed(int(self.random_state))

    def _predict(self, model, X: np.ndarray) -> np.ndarray:
        """``model(X)`` as NumPy, ``score_batch_size`` rows at a time."""
        return predict_in_batches(model, X, self.score_batch_size)

    def _fit_keras(
        self, model: keras.Model, inputs: np.ndarray, targets: np.ndarray, *, loss, epochs: int
    ) -> dict:
        """Fits ``model`` to ``(inputs, targets)`` with Adam on shuffled mini-batches.

        The model is compiled on the first call only, so repeated calls (alternating schemes
        such as the robust autoencoder's) keep the optimiser's state. The rows come as one
        endless stream, reshuffled at every pass from ``random_state``, an epoch a pass
        (``reshuffled_passes``; ``make_classifier_dataset`` says why one stream).

        Returns:
            The Keras history dict.
        """
        if not model.compiled:
            model.compile(optimizer=keras.optimizers.Adam(self.learning_rate), loss=loss)
        rows = reshuffled_passes((inputs, targets), len(inputs), self.random_state)
        history = model.fit(
            rows.batch(self.batch_size).prefetch(tf.data.AUTOTUNE),
            epochs=epochs,
            steps_per_epoch=steps_per_pass(len(inputs), self.batch_size),
            shuffle=False,
            verbose=self.verbose,
        )
        return history.history


@baseline
class ClassifierBaseline(KerasBaseline):
    """A baseline whose output is an MLP classifier ``f(x) ~ P(C+ | x)``; score ``-logit f(x)``.

    Args:
        hidden_units: hidden widths of the classifier MLP.
        (and the arguments of ``KerasBaseline``)

    Attributes:
        classifier_: the Keras network ``x -> logit f(x)`` (set by the subclass's ``_fit``).
    """

    hidden_units: tuple[int, ...] = (64, 32)

    def _fit_classifier(
        self,
        features: np.ndarray,
        y: np.ndarray,
        make_trainer: Callable[[keras.Model], OnePlusEpsTrainer],
    ) -> tuple[keras.Model, OnePlusEpsTrainer, dict]:
        """Trains a new ``make_mlp`` classifier by ``make_trainer(network)``, eq. (6).

        Every step sees ``batch_size`` normal rows and ``min(batch_size, n-)`` known anomalies
        (``make_classifier_dataset``), so each class term is a mean over its own rows.

        Returns:
            ``(network, trainer, Keras history dict)``.
        """
        network = make_mlp(features.shape[1], tuple(self.hidden_units))
        trainer = make_trainer(network)
        trainer.compile(optimizer=keras.optimizers.Adam(self.learning_rate))
        normal = features[y == 0]
        dataset = make_classifier_dataset(
            normal, features[y == 1], self.batch_size, self.random_state
        )
        # The dataset shuffles itself: shuffle=False keeps Keras from warning that it cannot.
        history = trainer.fit(
            dataset,
            epochs=self.epochs,
            steps_per_epoch=steps_per_pass(len(normal), self.batch_size),
            shuffle=False,
            verbose=self.verbose,
        )
        return network, trainer, history.history

    def _score(self, X: np.ndarray) -> np.ndarray:
        return -self._predict(self.classifier_, X)[:, 0]


@keras.saving.register_keras_serializable(package="tfp_flowad")
class NoSurrogates(keras.layers.Layer):
    """``L = 1/2 (L+ + gamma * L-)``: an empty surrogate sample for ``OnePlusEpsTrainer``.

    With no surrogates (and ``eps = 1``), eq. (6) reduces to ``1/2 (L+ + gamma * L-)``: the
    class-balanced binary cross-entropy, each class averaged on its own (eq. (3) for
    ``gamma = 1``).

    Args:
        dim: number of features.
    """

    def __init__(self, dim: int, **kwargs):
        super().__init__(**kwargs)
        self.dim = int(dim)
        self.built = True  # no weights: nothing to build (Keras warns about unbuilt layers)

    def sample(self, n):
        del n  # always empty
        return tf.zeros((0, self.dim), self.compute_dtype), None

    def get_config(self):
        config = super().get_config()
        config.update(dim=self.dim)
        return config


def balanced_trainer(network: keras.Model) -> OnePlusEpsTrainer:
    """``L = 1/2 (L+ + L-)``: eq. (6) with ``gamma = 1``, ``eps = 1`` and no surrogates."""
    return OnePlusEpsTrainer(network, NoSurrogates(network.input_shape[-1]), gamma=1.0, eps=1.0)


def make_dense_network(
    input_dim: int,
    hidden_units: tuple[int, ...],
    output_units: int,
    activation: str = "relu",
    use_bias: bool = True,
    weight_decay: float = 0.0,
    name: str = "dense_network",
) -> keras.Sequential:
    """``h(x) = W_L a(... a(W_1 x + b_1) ...) + b_L`` with a linear output of ``output_units``.

    Args:
        input_dim: number of input features.
        hidden_units: width of each hidden layer.
        output_units: width of the (linear) output layer.
        activation: Keras activation of the hidden layers.
        use_bias: ``False`` drops every bias term (Deep SVDD needs that).
        weight_decay: ``lambda`` of the penalty ``lambda / 2 * sum_l ||W_l||_F^2`` on kernels.
        name: model name.

    Returns:
        ``keras.Sequential`` mapping ``[batch, input_dim]`` to ``[batch, output_units]``.
    """
    regulariser = keras.regularizers.L2(weight_decay / 2.0) if weight_decay > 0 else None
    layers = [keras.Input((input_dim,))]
    for units in hidden_units:
        layers.append(
            keras.layers.Dense(
                units, activation=activation, use_bias=use_bias, kernel_regularizer=regulariser
            )
        )
    layers.append(
        keras.layers.Dense(output_units, use_bias=use_bias, kernel_regularizer=regulariser)
    )
    return keras.Sequential(layers, name=name)


def make_autoencoder(
    input_dim: int, hidden_units: tuple[int, ...], code_units: int, name: str = "autoencoder"
) -> tuple[keras.Sequential, keras.Sequential]:
    """``x_hat = D(E(x))``: a dense encoder to ``code_units`` and its mirror-image decoder.

    Args:
        input_dim: number of features.
        hidden_units: hidden widths of the encoder (the decoder uses them reversed).
        code_units: width of the (linear) code.
        name: name of the autoencoder model.

    Returns:
        ``(encoder, autoencoder)``; ``autoencoder`` shares the encoder's weights.
    """
    encoder = make_dense_network(input_dim, hidden_units, code_units, name=f"{name}_encoder")
    decoder = make_dense_network(
        code_units, tuple(reversed(hidden_units)), input_dim, name=f"{name}_decoder"
    )
    autoencoder = keras.Sequential([keras.Input((input_dim,)), encoder, decoder], name=name)
    return encoder, autoencoder


def predict_in_batches(model, X: np.ndarray, batch_size: int = 65536) -> np.ndarray:
    """``model(X)`` as NumPy, evaluated ``batch_size`` rows at a time (inference mode)."""
    parts = [
        np.asarray(model(X[start : start + batch_size], training=False))
        for start in range(0, len(X), batch_size)
    ]
    return np.concatenate(parts, axis=0)


def require_known_anomalies(y: np.ndarray, method: str) -> None:
    """Raises ``ValueError`` naming ``y`` when it marks no known anomaly (label 1)."""
    if not np.any(y == 1):
        raise ValueError(
            f"y marks no known anomalies (no label 1 among {len(y)} rows); {method} is a "
            "two-class method and needs at least one labelled anomaly in y"
        )
