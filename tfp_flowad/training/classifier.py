"""Training of a classifier with the (1 + eps)-class loss, eq. (6).

``OnePlusEpsTrainer`` wraps a classifier network ``logit(x)`` (with ``f = sigmoid(logit)`` the
estimate of ``P(C+ | x)``) and a sampler of surrogate anomalies; each ``train_step`` draws fresh
surrogates (paper Algorithm 1: "while not converged do sample surrogate anomalies, update f").
"""

import math

import keras
import numpy as np
import tensorflow as tf

from tfp_flowad.losses import one_plus_eps_loss
from tfp_flowad.nn.mlp import mean_logit
from tfp_flowad.training import distribute
from tfp_flowad.training.base import StepModel

__all__ = [
    "OnePlusEpsTrainer",
    "make_classifier_dataset",
    "reshuffled_passes",
    "steps_per_pass",
]


@keras.saving.register_keras_serializable(package="tfp_flowad")
class OnePlusEpsTrainer(StepModel):
    """Minimises ``1/2 (L+ + gamma * L- + (1 - eps) * L0)``, eq. (6), with fresh surrogates.

    Fit it on a dataset of dicts ``{"normal": [b, D], "anomaly": [b-, D]}`` (the ``anomaly`` key
    absent in the one-class case; see ``make_classifier_dataset``), optionally with
    ``"anomaly_members": [b-, members]`` (0/1: which members train on each known anomaly; by
    default all of them). Logs ``loss``, ``normal`` (L+), ``anomaly`` (L-) and ``surrogate``
    (L0).

    Args:
        network: Keras model ``[batch, D] -> [batch, members]``: the logits of ``P(C+ | x)`` of
            one classifier or of an ensemble's members (``make_mlp(..., members=m)``).
        sampler: a layer with ``sample(n) -> (x, weights or None)`` (``tfp_flowad.sampling``).
        gamma: weight of the known-anomaly term ``L-``.
        eps: weight ``1 - eps`` of the surrogate term ``L0``; ``eps`` in [0, 1].
        surrogates_per_step: surrogate rows drawn per step (default: the normal batch size).
    """

    def __init__(
        self,
        network: keras.Model,
        sampler: keras.layers.Layer,
        gamma: float = 1.0,
        eps: float = 0.05,
        surrogates_per_step: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not 0.0 <= eps <= 1.0:
            raise ValueError(f"eps must be in [0, 1]; got {eps!r}")
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0; got {gamma!r}")
        self.network = network
        self.sampler = sampler
        self.gamma = gamma
        self.eps = eps
        self.surrogates_per_step = surrogates_per_step
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.logged_names()}
        self.build()

    def logged_names(self) -> tuple[str, ...]:
        """The values each step logs, one ``Mean`` tracker each (created before ``build``,
        which locks the model's state)."""
        return ("loss", "normal", "anomaly", "surrogate")

    @property
    def metrics(self):
        return list(self.trackers.values())

    def build(self, input_shape=None):
        """Nothing to create: the network and the sampler arrive built (so Keras, which builds
        a model before a fit under a strategy, does not call it on a batch)."""

    def call(self, x, training=False):
        """``logit f(x)``, ``[batch]``: the mean of the members' logits."""
        return mean_logit(self.network, x, training=training)

    def _loss_terms(self, data, training: bool) -> dict[str, tf.Tensor]:
        normal = data["normal"]
        anomaly = data.get("anomaly")
        n_surrogates = tf.shape(normal)[0]
        if self.surrogates_per_step:
            n_surrogates = distribute.replica_rows(self.surrogates_per_step)
        surrogate, weights = self.sampler.sample(n_surrogates)
        surrogate = tf.stop_gradient(surrogate)
        parts = [normal, surrogate] + ([anomaly] if anomaly is not None else [])
        # [rows, members]: every member sees the same rows and is trained on its own loss.
        logits = self.network(tf.concat(parts, axis=0), training=training)
        members = tf.shape(logits)[1]

        def each_member(rows):
            """The members' logits of ``rows`` one member after another, ``[members * n]``."""
            return tf.reshape(tf.transpose(rows), [-1])

        n_normal, n_surrogate = tf.shape(normal)[0], tf.shape(surrogate)[0]
        normal_logits = each_member(logits[:n_normal])
        surrogate_logits = each_member(logits[n_normal : n_normal + n_surrogate])
        anomaly_logits = each_member(logits[n_normal + n_surrogate :])
        if weights is not None:
            weights = tf.tile(weights, [members])
        anomaly_weights = None
        if "anomaly_members" in data:
            # Member k's rows weigh n / n_k, so its share of L- is the mean over its own n_k
            # rows, as if it had trained alone on them.
            # Under replicas, n and n_k count the rows of the global batch.
            mask = data["anomaly_members"]
            n_rows = distribute.sum_over_replicas(tf.cast(tf.shape(mask)[0], mask.dtype))
            n_member_rows = distribute.sum_over_replicas(tf.reduce_sum(mask, axis=0))
            anomaly_weights = each_member(mask * tf.math.divide_no_nan(n_rows, n_member_rows))
        # Each term is the mean of the members' terms, so each member's gradient is that of
        # its own eq. (6) divided by the number of members (Adam does not see the factor).
        # Under N replicas each term is this replica's part of the global batch's term, and the
        # layers' own losses count 1 / N on each (tfp_flowad.training.distribute).
        replicated = distribute.in_replicas()
        terms = one_plus_eps_loss(
            normal_logits,
            anomaly_logits,
            surrogate_logits,
            self.gamma,
            self.eps,
            weights,
            anomaly_weights,
            part=distribute.contribution if replicated else None,
        )
        if self.losses:
            extra = tf.add_n(self.losses)
            terms["loss"] = terms["loss"] + (extra / distribute.replicas() if replicated else extra)
        return terms

    @property
    def trained_variables(self) -> list:
        return self.network.trainable_variables

    def train_step(self, data):
        """One step on eq. (6); a step whose loss or gradient is not finite (a surrogate drawn
        out of float32 range) is skipped, and left out of the logged means."""
        with tf.GradientTape() as tape:
            terms = self._loss_terms(data, training=True)
        variables = self.trained_variables
        weight = self.apply_finite_step(
            terms["loss"], tape.gradient(terms["loss"], variables), variables
        )
        terms = distribute.sum_over_replicas(terms)
        terms = {k: tf.where(weight > 0, v, tf.zeros_like(v)) for k, v in terms.items()}
        return self._record(terms, weight)

    def test_step(self, data):
        return self._record(distribute.sum_over_replicas(self._loss_terms(data, training=False)))

    def get_config(self):
        config = super().get_config()
        config.update(
            network=keras.saving.serialize_keras_object(self.network),
            sampler=keras.saving.serialize_keras_object(self.sampler),
            gamma=self.gamma,
            eps=self.eps,
            surrogates_per_step=self.surrogates_per_step,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["network"] = keras.saving.deserialize_keras_object(config["network"])
        config["sampler"] = keras.saving.deserialize_keras_object(config["sampler"])
        return cls(**config)


def steps_per_pass(rows: int, batch_size: int, passes: int = 1) -> int:
    """``ceil(passes * rows / batch_size)``: the steps of ``passes`` passes over ``rows`` rows
    of a ``make_classifier_dataset`` stream, whose batches run across pass boundaries."""
    return max(1, math.ceil(passes * rows / batch_size))


def reshuffled_passes(rows, size: int, seed: int | None) -> tf.data.Dataset:
    """``rows`` (arrays, or a structure of them, ``size`` long) as an endless stream of passes,
    each in a fresh order drawn from ``seed``: one iterator of it is one fit's whole stream
    (``make_classifier_dataset`` says why)."""
    rows = tf.data.Dataset.from_tensor_slices(rows)
    return rows.shuffle(size, seed=seed, reshuffle_each_iteration=True).repeat()


def make_classifier_dataset(
    normal,
    anomaly=None,
    batch_size: int = 512,
    seed: int | None = None,
    transform=None,
    anomaly_members=None,
    training: bool = True,
) -> tf.data.Dataset:
    """Batches of ``{"normal": ..., "anomaly": ...}`` for ``OnePlusEpsTrainer.fit``.

    For training (``training=True``) it is one endless stream for the whole fit: the normal
    rows reshuffled at every pass, batches running across pass boundaries, and the (few) known
    anomalies reshuffled and repeated so that every step sees ``min(batch_size, n-)`` of them.
    Fit it with ``steps_per_epoch`` (``steps_per_pass``): Keras then keeps one iterator for
    every epoch, so the order depends on ``seed`` alone. (A finite dataset gets a new iterator
    every epoch, and Keras makes and drops one more at each epoch's end; their prefetch threads
    draw the next passes' shuffle seeds, from a generator that all iterators share, as far as
    they get first. The order then hung on thread timing: two fits with one seed differed
    about once in a hundred on a loaded machine.) For evaluation (``training=False``) it is
    one pass over the normal rows in their order, so every evaluation sees the same batches.

    Args:
        normal: ``[n+, D]`` normal rows.
        anomaly: ``[n-, D]`` known anomalies, or ``None`` / empty for one-class.
        batch_size: normal rows per step.
        seed: shuffle seed (and the seed of ``transform``'s stateless seeds).
        transform: optional ``transform(batch, stateless_seed) -> batch`` applied to the rows of
            every batch (e.g. dequantisation noise and scaling).
        anomaly_members: optional ``[n-, members]`` 0/1 matrix: which members of an ensemble
            train on each known anomaly; batched with its rows as ``"anomaly_members"``.
        training: an endless reshuffled stream (``True``) or one pass in order (``False``).
    """

    def passes(rows, size):
        """The rows, endlessly and reshuffled at every pass when training, else once in order."""
        if training:
            return reshuffled_passes(rows, size, seed)
        return tf.data.Dataset.from_tensor_slices(rows)

    parts = {"normal": passes(normal, len(normal)).batch(batch_size)}
    if anomaly is not None and len(anomaly) > 0:
        rows = {"anomaly": anomaly}
        if anomaly_members is not None:
            rows["anomaly_members"] = np.asarray(anomaly_members, dtype="float32")
        anomalies = passes(rows, len(anomaly)).repeat()  # as long as the normal rows last
        parts["anomaly"] = anomalies.batch(min(batch_size, len(anomaly)))
    dataset = tf.data.Dataset.zip(parts).map(_flatten_anomalies)
    if transform is not None:
        seeds = tf.data.Dataset.random(seed=seed).batch(2 * len(parts))

        def apply(batch, seed_pairs):
            rows = sorted(key for key in batch if key in ("normal", "anomaly"))
            return {
                **batch,
                **{
                    key: transform(batch[key], seed_pairs[2 * index : 2 * index + 2])
                    for index, key in enumerate(rows)
                },
            }

        dataset = tf.data.Dataset.zip(dataset, seeds).map(apply)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _flatten_anomalies(batch: dict) -> dict:
    """``{"normal", "anomaly": {"anomaly", "anomaly_members"}}`` -> one flat dict."""
    flat = {"normal": batch["normal"]}
    if "anomaly" in batch:
        flat.update(batch["anomaly"])
    return flat
