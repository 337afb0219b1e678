"""Pieces shared by the baselines: the detector mixin, dense networks and the Keras fit helpers.

Every baseline is a ``BaseDetector`` whose ``_fit`` sees the encoded float32 matrix ``X`` and
0/1 labels ``y``. Networks are Keras 3 models; the helpers here compile and fit them the same
way in every baseline (Adam, shuffled mini-batches, seeded by ``random_state``).
"""

import inspect

import keras
import numpy as np
import tensorflow as tf

from tfp_flowad.base import BaseDetector
from tfp_flowad.training.classifier import OnePlusEpsTrainer, make_classifier_dataset

__all__ = [
    "KerasBaseline",
    "NoSurrogates",
    "make_dense_network",
    "make_autoencoder",
    "fit_model",
    "fit_one_plus_eps",
    "predict_in_batches",
    "require_known_anomalies",
]


class KerasBaseline(BaseDetector):
    """``BaseDetector`` plus what every Keras baseline needs: seeding, batched scoring, params.

    Subclasses store their constructor arguments (including ``verbose``) and implement ``_fit``
    and ``_score``.
    """

    #: rows per forward pass when scoring.
    score_batch_size: int = 65536
    #: ``fit`` raises without a known anomaly (a two-class method).
    needs_known_anomalies: bool = False
    #: ``fit`` learns from known anomalies; ``False`` for one-class methods, which drop them.
    uses_known_anomalies: bool = True

    def get_params(self) -> dict:
        """The constructor arguments (as scikit-learn's ``get_params``)."""
        names = inspect.signature(type(self).__init__).parameters
        return {name: getattr(self, name) for name in names if name != "self"}

    def _seed_everything(self) -> None:
        """Seeds Python, NumPy, TensorFlow and Keras' global generator from ``random_state``."""
        if self.random_state is not None:
            keras.utils.set_random_seed(int(self.random_state))


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

    def sample(self, n):
        del n  # always empty
        return tf.zeros((0, self.dim), self.compute_dtype), None

    def get_config(self):
        config = super().get_config()
        config.update(dim=self.dim)
        return config


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


def fit_model(
    model: keras.Model,
    inputs: np.ndarray,
    targets: np.ndarray,
    *,
    loss,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    verbose: int = 0,
) -> dict:
    """Fits ``model`` to ``(inputs, targets)`` with Adam on shuffled mini-batches.

    The model is compiled on the first call only, so repeated calls (alternating schemes such
    as the robust autoencoder's) keep the optimiser's state. Shuffling uses NumPy's global
    generator, which ``keras.utils.set_random_seed`` seeds.

    Returns:
        The Keras history dict.
    """
    if not model.compiled:
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss)
    history = model.fit(
        inputs, targets, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=verbose
    )
    return history.history


def fit_one_plus_eps(
    trainer: OnePlusEpsTrainer,
    normal: np.ndarray,
    anomaly: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int | None,
    verbose: int = 0,
) -> dict:
    """Fits a (1 + eps)-class trainer, eq. (6), on batches of normals and known anomalies.

    Every step sees ``batch_size`` normal rows and ``min(batch_size, n-)`` known anomalies
    (``make_classifier_dataset``), so each class term is a mean over its own rows.

    Returns:
        The Keras history dict.
    """
    trainer.compile(optimizer=keras.optimizers.Adam(learning_rate))
    dataset = make_classifier_dataset(normal, anomaly, batch_size, seed)
    return trainer.fit(dataset, epochs=epochs, verbose=verbose).history


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
