"""Energy (1 + eps)-class training, eq. (8)-(11): L0 by importance sampling from ``P_f``.

The classifier ``f = sigmoid(logit)`` of the previous step induces the energy model, eq. (9),

    ``P_f(x) = 1[x in Omega] * f(x) / (1 - f(x)) / Z = 1[x in Omega] * exp(logit(x)) / Z``

over the box ``Omega`` (the data's bounding box, widened). With samples ``x ~ P_f`` the
surrogate term becomes ``L0_E = -Z * E_{P_f} [ C (1 - f) / f * log(1 - f) ]``, eq. (10),
``C = 1 / |Omega|``; ``Z`` is estimated at each step from uniform samples ``u_j`` over
``Omega``: ``Z ~ |Omega| * mean_j exp(logit(u_j))``.

``EnergyOnePlusEpsTrainer`` minimises ``1/2 (L+ + gamma * L- + (1 - eps) * L0_E)``, eq. (11),
with a pluggable sampler of ``P_f`` (``tfp_flowad.baselines.energy_samplers``).

References:
    Borisyak, Ryzhikov, Kaledin, Ustyuzhanin, Derkach, "(1 + eps)-class classification: an
    anomaly detection method for highly imbalanced or incomplete data sets", arXiv 1906.06096.
    Ryzhikov et al., "Normalizing flows for deep anomaly detection", arXiv 1912.09323, eq. (8)-(11).
"""

import keras
import tensorflow as tf

from tfp_flowad.baselines.energy_samplers import EnergySampler
from tfp_flowad.losses import one_plus_eps_loss
from tfp_flowad.training.classifier import OnePlusEpsTrainer

__all__ = [
    "estimate_log_normaliser",
    "energy_surrogate_loss",
    "EnergyOnePlusEpsTrainer",
]


def estimate_log_normaliser(uniform_logits: tf.Tensor, log_volume: float) -> tf.Tensor:
    """``log Z ~ log |Omega| + log mean_j exp(logit(u_j))``, ``u_j ~ U(Omega)``, eq. (9).

    ``Z = int_Omega f / (1 - f) dx = |Omega| * E_{U(Omega)} exp(logit)``; the mean is formed
    with ``logsumexp``.

    Args:
        uniform_logits: ``[m]`` logits at uniform samples over ``Omega``.
        log_volume: ``log |Omega|``.

    Returns:
        Scalar estimate of ``log Z``.
    """
    count = tf.cast(tf.size(uniform_logits), uniform_logits.dtype)
    return log_volume + tf.reduce_logsumexp(uniform_logits) - tf.math.log(count)


def energy_surrogate_loss(
    logits: tf.Tensor, log_volume: float, log_normaliser: tf.Tensor
) -> tf.Tensor:
    """``L0_E = -Z * E_{x ~ P_f} [ C * (1 - f(x)) / f(x) * log(1 - f(x)) ]``, eq. (10), in log space.

    The value and gradient of ``tfp_flowad.losses.energy_surrogate_term``, evaluated without
    overflow. Per sample, with the importance weight ``w = Z C exp(-logit)`` held fixed:
    ``w * softplus(logit) = exp(log w + log softplus(logit))`` and its derivative
    ``w * sigmoid(logit) = exp(log w + log sigmoid(logit))``. Both are at most ``Z C`` (as
    ``log(1 + u) <= u``), even where ``w`` alone overflows float32 (``logit < log(Z C) - 88``:
    samples that an inexact sampler leaves deep in the anomalous region).

    Args:
        logits: ``[n]`` classifier logits at the samples of ``P_f``.
        log_volume: ``log |Omega|``.
        log_normaliser: ``log Z``.

    Returns:
        Scalar estimate of ``L0_E`` whose gradient is ``mean(w * sigmoid(logit) * dlogit)``.
    """
    log_weights = tf.stop_gradient(log_normaliser - log_volume - logits)
    held = tf.stop_gradient(logits)
    # softplus(l) = e^l (1 - e^l / 2 + ...) for l << 0: below -15, log softplus(l) = l to float32
    # precision, and this form does not underflow as softplus itself does (l < -88).
    log_softplus = tf.where(
        held < -15.0, held, tf.math.log(tf.nn.softplus(tf.maximum(held, -15.0)))
    )
    value = tf.exp(log_weights + log_softplus)
    slope = tf.exp(log_weights + tf.math.log_sigmoid(held))
    return tf.reduce_mean(value + slope * (logits - held))


@keras.saving.register_keras_serializable(package="tfp_flowad")
class EnergyOnePlusEpsTrainer(OnePlusEpsTrainer):
    """Minimises ``1/2 (L+ + gamma * L- + (1 - eps) * L0_E)``, eq. (11).

    Each step: draw ``x ~ P_f`` from the sampler (``f`` the classifier before the step) and
    estimate ``log Z`` from ``normaliser_samples`` uniform samples over ``Omega``; take the
    classifier's gradient step on eq. (11), with ``L0_E`` of eq. (10) by
    ``energy_surrogate_loss`` (importance weights ``Z C (1 - f) / f`` held fixed); then let the
    sampler update itself (``sampler.update``: the generator's step in deep-eope). Logs
    ``loss``, ``normal`` (L+), ``anomaly`` (L-), ``surrogate`` (L0_E), ``log_normaliser`` and
    the sampler's diagnostics.

    Args:
        network: Keras model ``[batch, D] -> [batch, 1]`` logits of ``P(C+ | x)``.
        sampler: an ``EnergySampler``.
        gamma: weight of the known-anomaly term ``L-``.
        eps: weight ``1 - eps`` of the surrogate term ``L0_E``.
        normaliser_samples: uniform samples per estimate of ``log Z``.
    """

    def __init__(
        self,
        network: keras.Model,
        sampler: EnergySampler,
        gamma: float = 1.0,
        eps: float = 0.05,
        normaliser_samples: int = 512,
        **kwargs,
    ):
        kwargs.pop("surrogates_per_step", None)
        super().__init__(network, sampler, gamma, eps, sampler.n_samples, **kwargs)
        self.normaliser_samples = int(normaliser_samples)

    def logged_names(self) -> tuple[str, ...]:
        return (*super().logged_names(), "log_normaliser", *self.sampler.metric_names)

    def logit(self, x: tf.Tensor) -> tf.Tensor:
        """``logit f(x)`` in inference mode, ``[batch]``."""
        return self.network(x, training=False)[:, 0]

    def draw(self) -> tuple[tf.Tensor, tf.Tensor, dict]:
        """``(x ~ P_f, log Z estimate, sampler diagnostics)`` under the current classifier."""
        surrogate, info = self.sampler.sample(self.logit)
        uniform, _ = self.sampler.box.sample(self.normaliser_samples)
        log_normaliser = estimate_log_normaliser(self.logit(uniform), self.sampler.log_volume)
        return tf.stop_gradient(surrogate), tf.stop_gradient(log_normaliser), info

    def energy_terms(self, data, surrogate, log_normaliser, training: bool) -> dict:
        """The terms of eq. (11) for a batch and given samples of ``P_f``."""
        normal = data["normal"]
        anomaly = data.get("anomaly")
        parts = [normal, surrogate] + ([anomaly] if anomaly is not None else [])
        logits = self(tf.concat(parts, axis=0), training=training)
        n_normal, n_surrogate = tf.shape(normal)[0], tf.shape(surrogate)[0]
        surrogate_logits = logits[n_normal : n_normal + n_surrogate]
        # eps = 1 drops the uniform L0 of eq. (6): what remains is 1/2 (L+ + gamma * L-).
        terms = one_plus_eps_loss(
            logits[:n_normal], logits[n_normal + n_surrogate :], surrogate_logits, self.gamma, 1.0
        )
        terms["surrogate"] = energy_surrogate_loss(
            surrogate_logits, self.sampler.log_volume, log_normaliser
        )
        terms["loss"] = terms["loss"] + 0.5 * (1.0 - self.eps) * terms["surrogate"]
        if self.losses:
            terms["loss"] = terms["loss"] + tf.add_n(self.losses)
        terms["log_normaliser"] = log_normaliser
        return terms

    def _loss_terms(self, data, training: bool) -> dict:
        surrogate, log_normaliser, info = self.draw()
        return {**self.energy_terms(data, surrogate, log_normaliser, training), **info}

    def train_step(self, data):
        surrogate, log_normaliser, info = self.draw()
        with tf.GradientTape() as tape:
            terms = self.energy_terms(data, surrogate, log_normaliser, training=True)
        variables = self.trained_variables
        self.optimizer.apply(tape.gradient(terms["loss"], variables), variables)
        info.update(self.sampler.update(self.logit))
        return self._record({**terms, **info})

    def test_step(self, data):
        terms = self._loss_terms(data, training=False)
        for name in self.sampler.metric_names:
            terms.setdefault(name, tf.constant(0.0))
        return self._record(terms)

    def get_config(self):
        config = super().get_config()
        config.pop("surrogates_per_step", None)
        config.update(normaliser_samples=self.normaliser_samples)
        return config
