"""The base class of all flows: a Keras model that owns the weights and builds its TFP
distribution on every call, and the density trainer of eq. (41).
"""

import abc

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flowad.losses import jacobian_penalty, negative_log_likelihood
from tfp_flowad.training import distribute
from tfp_flowad.training.base import StepModel

tfd = tfp.distributions
tfb = tfp.bijectors

__all__ = ["Flow", "PermutedStepsFlow", "random_permutations", "chain"]


class Flow(StepModel, abc.ABC):
    """``x = f(z)``, ``z ~ N(0, I_D)``; ``log p(x) = log N(f^{-1}(x)) - log|det J(f|f^{-1}(x))|``.

    Subclasses create their Keras weights in ``__init__`` and implement ``make_bijector()``,
    which returns the TFP bijector of the sampling map ``f: z -> x`` built from the current
    weight tensors. It is rebuilt on every call (Keras owns the variables, TFP the math), so
    gradients reach every weight and nothing is cached across steps.

    Training (``compile`` then ``fit(x)``) maximises eq. (41),
    ``L_NF - lambda * L_J = E_x log p(x) - lambda * E_{z ~ N(0, I)} [ log|det J(f|z)| ^ 2 ]``,
    i.e. minimises ``loss = nll + lambda * jacobian_penalty``, and logs both terms; validation
    (``evaluate``) logs the held-out ``nll`` only.

    The penalty estimator: every ``penalty_every``-th step, ``penalty_batch_size`` fresh base
    samples ``z`` give an unbiased estimate of ``L_J`` (eq. 40), weighted by ``penalty_every``
    so that its expected gradient per step is that of ``lambda * L_J``. For flows whose sampling
    direction is sequential (MAF), this bounds the penalty's cost; see ``benchmarks/``.

    Args:
        event_size: ``D``.
        jacobian_penalty: ``lambda >= 0``; 0 turns the regulariser off.
        penalty_batch_size: base samples per penalty estimate.
        penalty_every: estimate the penalty every this many steps.
        seed: integer seed of the flow's ``SeedGenerator`` (sampling and penalty draws).
    """

    def __init__(
        self,
        event_size: int,
        jacobian_penalty: float = 0.0,
        penalty_batch_size: int = 64,
        penalty_every: int = 1,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(event_size) < 1:
            raise ValueError(f"event_size must be >= 1; got {event_size!r}")
        if jacobian_penalty < 0:
            raise ValueError(f"jacobian_penalty must be >= 0; got {jacobian_penalty!r}")
        if penalty_every < 1 or penalty_batch_size < 1:
            raise ValueError(
                "penalty_every and penalty_batch_size must be >= 1; got "
                f"{penalty_every!r} and {penalty_batch_size!r}"
            )
        self.event_size = int(event_size)
        self.jacobian_penalty = float(jacobian_penalty)
        self.penalty_batch_size = int(penalty_batch_size)
        self.penalty_every = int(penalty_every)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.trackers = {
            name: keras.metrics.Mean(name=name) for name in ("loss", "nll", "jacobian_penalty")
        }

    # ----------------------------------------------------------------------------- the math
    @abc.abstractmethod
    def make_bijector(self) -> tfb.Bijector:
        """The sampling map ``f: z -> x`` as a TFP bijector, built from the current weights."""

    def base_distribution(self, temperature: float = 1.0) -> tfd.Distribution:
        """``N(0, T^2 I_D)``, ``T = temperature`` (1: the flow's own base distribution)."""
        return tfd.Sample(
            tfd.Normal(
                tf.constant(0.0, self.compute_dtype), tf.constant(temperature, self.compute_dtype)
            ),
            sample_shape=[self.event_size],
        )

    def distribution(self) -> tfd.TransformedDistribution:
        """The flow's distribution of ``x``, built anew from the current weights."""
        return tfd.TransformedDistribution(self.base_distribution(), self.make_bijector())

    def log_prob(self, x, temperature: float = 1.0) -> tf.Tensor:
        """``log p_T(x) = log N(f^{-1}(x); 0, T^2 I) + log|det J(f^{-1}|x)|``; ``[batch]``.

        ``T = 1`` is the flow's density, eq. (39). ``T < 1`` is the density of ``x = f(T z)``
        (a "tempered" flow, as in Glow's sampling): up to a constant and the factor
        ``1 / T^2``, ``-log p_T(x) = ||f^{-1}(x)||^2 / 2 - T^2 log|det J(f^{-1}|x)|``, so a
        lower temperature ranks rows more by their distance from the centre of the base space
        and less by the flow's change of volume there (the quantity eq. (40)'s regulariser
        keeps small).
        """
        x = tf.convert_to_tensor(x, self.compute_dtype)
        bijector = self.make_bijector()
        z = bijector.inverse(x)
        return self.base_distribution(temperature).log_prob(z) + bijector.inverse_log_det_jacobian(
            x, event_ndims=1
        )

    def forward(self, z) -> tf.Tensor:
        """``x = f(z)``."""
        return self.make_bijector().forward(tf.convert_to_tensor(z, self.compute_dtype))

    def inverse(self, x) -> tf.Tensor:
        """``z = f^{-1}(x)``."""
        return self.make_bijector().inverse(tf.convert_to_tensor(x, self.compute_dtype))

    def forward_log_det_jacobian(self, z) -> tf.Tensor:
        """``log|det J(f|z)|``, ``[batch]``."""
        z = tf.convert_to_tensor(z, self.compute_dtype)
        return self.make_bijector().forward_log_det_jacobian(z, event_ndims=1)

    def sample_base(self, n: int) -> tf.Tensor:
        """``z ~ N(0, I_D)``, ``[n, D]``, drawn from the flow's ``SeedGenerator``."""
        return distribute.normal((n, self.event_size), self.compute_dtype, self.seed_generator)

    def sample_and_log_prob(self, n: int) -> tuple[tf.Tensor, tf.Tensor]:
        """``x = f(z)`` and ``log p(x) = log N(z) - log|det J(f|z)|`` in one forward pass."""
        z = self.sample_base(n)
        bijector = self.make_bijector()
        x = bijector.forward(z)
        log_det = bijector.forward_log_det_jacobian(z, event_ndims=1)
        return x, self.base_distribution().log_prob(z) - log_det

    def sample(self, n: int) -> tf.Tensor:
        """``[n, D]`` samples ``x = f(z)``."""
        return self.forward(self.sample_base(n))

    def build(self, input_shape=None):
        """Nothing to create: each flow makes its weights in ``__init__``, then calls this so
        that Keras counts it built (and saves it without warning)."""

    def call(self, x):
        return self.log_prob(x)

    # ------------------------------------------------------------------------- the trainer
    @property
    def metrics(self):
        return list(self.trackers.values())

    def _penalty_and_gradients(self, z) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """``L_J`` at base samples ``z`` (eq. 40) and its gradients in every trainable weight.

        Taken by a tape of its own, so the caller can run it under a ``tf.cond`` that no outer
        tape differentiates. Autodiff through the sampling pass here; a flow whose sampling
        pass is sequential (the MAF) overrides this with a cheaper exact gradient.
        """
        with tf.GradientTape() as tape:
            penalty = jacobian_penalty(self.forward_log_det_jacobian(z))
            if distribute.in_replicas():
                penalty = penalty / distribute.replicas()  # equal draws on every replica
        gradients = tape.gradient(
            penalty, self.trainable_variables, unconnected_gradients=tf.UnconnectedGradients.ZERO
        )
        return penalty, gradients

    def _weighted_penalty_and_gradients(self) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """``penalty_every * L_J`` and its gradients on this step's draw; zeros between draws.

        A draw of ``z`` is made at every step (drawn or not, the random stream stays the same);
        under ``N`` replicas each draws ``ceil(penalty_batch_size / N)`` of its own. The step
        counter is the optimizer's ``iterations``, one count per global step on every replica.
        """
        z = self.sample_base(distribute.replica_rows(self.penalty_batch_size))
        if self.penalty_every == 1:
            return self._penalty_and_gradients(z)

        def weighted():
            penalty, gradients = self._penalty_and_gradients(z)
            return self.penalty_every * penalty, [self.penalty_every * g for g in gradients]

        def skipped():
            zero = tf.constant(0.0, self.compute_dtype)
            return zero, [tf.zeros_like(v) for v in self.trainable_variables]

        iterations = self.optimizer.iterations if self.optimizer is not None else 0
        due = tf.equal(tf.math.floormod(iterations, self.penalty_every), 0)
        return tf.cond(due, weighted, skipped)

    def train_step(self, data):
        """One step on ``nll + lambda * L_J``; the two gradients are taken apart and summed.

        Under ``N`` replicas each differentiates its part of the global batch's terms
        (``tfp_flowad.training.distribute``) and the logs are the global means."""
        x = data[0] if isinstance(data, tuple) else data
        variables = self.trained_variables
        with tf.GradientTape() as tape:
            nll = negative_log_likelihood(self.log_prob(x))
            if distribute.in_replicas():
                nll = distribute.contribution(nll, tf.shape(x)[0])
        grads = tape.gradient(nll, variables)
        penalty = tf.constant(0.0, self.compute_dtype)
        if self.jacobian_penalty > 0:
            penalty, penalty_grads = self._weighted_penalty_and_gradients()
            grads = [
                None if g is None else g + self.jacobian_penalty * pg
                for g, pg in zip(grads, penalty_grads, strict=True)
            ]
        terms = {
            "nll": nll,
            "jacobian_penalty": penalty,
            "loss": nll + self.jacobian_penalty * penalty,
        }
        # A batch whose loss or gradient norm is not finite would turn every weight into NaN:
        # it is skipped, and left out of the logged means too.
        weight = self.apply_finite_step(terms["loss"], grads, variables)
        terms = distribute.sum_over_replicas(terms)
        terms = {k: tf.where(weight > 0, v, tf.zeros_like(v)) for k, v in terms.items()}
        return self._record(terms, weight=weight)

    def test_step(self, data):
        """Held-out ``nll`` only (what early stopping watches, as ``val_nll``).

        ``L_J`` does not depend on the data, so a validation pass adds nothing to the estimate
        that the training logs carry; drawing it would cost a sequential MAF pass and its trace
        (about 9 s of a 50 s KDD-99 fit). No random draw is made, so validating does not shift
        the flow's random stream.
        """
        x = data[0] if isinstance(data, tuple) else data
        tracker = self.trackers["nll"]
        nll = negative_log_likelihood(self.log_prob(x))
        if distribute.in_replicas():
            nll = distribute.sum_over_replicas(distribute.contribution(nll, tf.shape(x)[0]))
        tracker.update_state(nll)
        return distribute.loggable({"nll": tracker.result()})

    def get_config(self):
        config = super().get_config()
        config.update(
            event_size=self.event_size,
            jacobian_penalty=self.jacobian_penalty,
            penalty_batch_size=self.penalty_batch_size,
            penalty_every=self.penalty_every,
            seed=self.seed,
        )
        return config


class PermutedStepsFlow(Flow):
    """``f = s_K o P_{K-1} o ... o P_1 o s_1``: ``K`` steps, each with its own MLP conditioner,
    and fixed permutations ``P_k`` of the coordinates between them (see ``chain``).

    Holds what such flows share: the step count, the conditioners' hidden widths and
    activation, the permutations and their Keras config. A subclass creates its conditioner
    networks in ``__init__`` and implements ``make_bijector``.

    Args:
        event_size: ``D``.
        num_layers: ``K``, the number of steps.
        hidden_units: widths of each conditioner's hidden layers.
        activation: conditioner activation.
        permutations: ``K - 1`` permutations of ``range(D)`` (default: ``random_permutations``
            seeded by ``seed``, the first a reversal).
        **kwargs: ``Flow`` arguments (``jacobian_penalty``, ``seed``, ...) and Keras ones.
    """

    def __init__(
        self,
        event_size: int,
        num_layers: int,
        hidden_units: tuple[int, ...] = (64, 64),
        activation: str = "relu",
        permutations: list[list[int]] | None = None,
        **kwargs,
    ):
        super().__init__(event_size, **kwargs)
        self.num_layers = int(num_layers)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.activation = activation
        self.permutations = permutations or random_permutations(
            self.num_layers - 1, self.event_size, self.seed
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            num_layers=self.num_layers,
            hidden_units=list(self.hidden_units),
            activation=self.activation,
            permutations=self.permutations,
        )
        return config


def random_permutations(n: int, dim: int, seed: int | None) -> list[list[int]]:
    """``n`` permutations of ``range(dim)`` from ``numpy.random.default_rng(seed)``.

    The first is the reversal (so two layers already see every pair of coordinates).
    """
    rng = np.random.default_rng(seed)
    perms = [list(range(dim))[::-1]]
    perms += [rng.permutation(dim).tolist() for _ in range(n - 1)]
    return perms[:n]


def chain(steps: list[tfb.Bijector], permutations: list[list[int]]) -> tfb.Bijector:
    """``f = s_K o P_{K-1} o ... o P_1 o s_1``: flow steps with fixed permutations between them.

    ``steps[0]`` acts first on ``z``; ``permutations[k]`` follows ``steps[k]``.
    """
    ordered = []
    for index, step in enumerate(steps):
        ordered.append(step)
        if index < len(steps) - 1:
            ordered.append(tfb.Permute(permutation=permutations[index]))
    return tfb.Chain(list(reversed(ordered)))
