"""Energy (1 + eps)-class training, eq. (8)-(11): L0 by importance sampling from ``P_f``.

The classifier ``f = sigmoid(logit)`` of the previous step induces the energy model, eq. (9),

    ``P_f(x) = 1[x in Omega] * f(x) / (1 - f(x)) / Z = 1[x in Omega] * exp(logit(x)) / Z``

over the box ``Omega`` (the data's bounding box, widened). With samples ``x ~ P_f`` the
surrogate term becomes ``L0_E = -Z * E_{P_f} [ C (1 - f) / f * log(1 - f) ]``, eq. (10),
``C = 1 / |Omega|``; ``Z`` is estimated at each step from uniform samples ``u_j`` over
``Omega``: ``Z ~ |Omega| * mean_j exp(logit(u_j))``.

``EnergyOnePlusEpsTrainer`` minimises ``1/2 (L+ + gamma * L- + (1 - eps) * L0_E)``, eq. (11),
with a pluggable sampler of ``P_f``:

* ``HMCEnergySampler``: persistent Hamiltonian Monte Carlo chains (hmc-eope);
* ``RMSPropEnergySampler``: RMSProp-preconditioned noisy ascent (Langevin) on ``log P_f``
  from uniform starts (rmsprop-eope);
* ``GeneratorEnergySampler``: a generator network trained to match ``P_f`` (deep-eope).

References:
    Borisyak, Ryzhikov, Kaledin, Ustyuzhanin, Derkach, "(1 + eps)-class classification: an
    anomaly detection method for highly imbalanced or incomplete data sets", arXiv 1906.06096.
    Ryzhikov et al., "Normalizing flows for deep anomaly detection", arXiv 1912.09323, eq. (8)-(11).
"""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flowad.baselines.common import make_dense_network
from tfp_flowad.losses import one_plus_eps_loss
from tfp_flowad.sampling import UniformBoxSampler
from tfp_flowad.training.classifier import OnePlusEpsTrainer

__all__ = [
    "estimate_log_normaliser",
    "energy_surrogate_loss",
    "nearest_neighbour_entropy",
    "EnergySampler",
    "HMCEnergySampler",
    "RMSPropEnergySampler",
    "GeneratorEnergySampler",
    "EnergyOnePlusEpsTrainer",
]

tfb = tfp.bijectors


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


def nearest_neighbour_entropy(samples: tf.Tensor) -> tf.Tensor:
    """``H ~ D / n * sum_i log rho_i`` (+ const): Kozachenko-Leonenko entropy estimate.

    ``rho_i = min_{j != i} ||x_i - x_j||``. The omitted constant does not depend on the samples,
    so the value serves as a differentiable entropy term of a generator's loss.

    Args:
        samples: ``[n, D]`` samples, ``n >= 2``.

    Returns:
        Scalar entropy estimate up to an additive constant.
    """
    squared_norms = tf.reduce_sum(tf.square(samples), axis=1)
    squared = (
        squared_norms[:, None]
        + squared_norms[None, :]
        - 2.0 * tf.matmul(samples, samples, transpose_b=True)
    )
    n = tf.shape(samples)[0]
    squared = squared + tf.linalg.diag(tf.fill([n], tf.constant(np.inf, samples.dtype)))
    nearest = tf.maximum(tf.reduce_min(squared, axis=1), 1e-12)
    dim = tf.cast(tf.shape(samples)[1], samples.dtype)
    return dim * tf.reduce_mean(0.5 * tf.math.log(nearest))


class EnergySampler(keras.layers.Layer):
    """Base of the samplers of ``P_f(x) ~ 1[x in Omega] exp(logit(x))``, eq. (9).

    A subclass implements ``sample(logit_fn) -> (x [n_samples, D], info)`` (``info``: dict of
    scalar diagnostics named in ``metric_names``) and may override ``update(logit_fn) -> info``,
    which the trainer calls once per step after updating the classifier (a generator's step).

    A sampler creates all its state in ``__init__``, so it is built from the start.

    Args:
        box: the ``UniformBoxSampler`` of ``Omega`` (also draws the uniform samples for ``Z``).
        n_samples: samples per call.
        num_steps: steps per call (what a step is, each subclass says).
        seed: integer seed of the layer's ``SeedGenerator``.
    """

    #: names of the diagnostics returned by ``sample`` and ``update``.
    metric_names: tuple[str, ...] = ()

    def __init__(
        self, box: UniformBoxSampler, n_samples: int = 128, num_steps: int = 1, seed=None, **kwargs
    ):
        super().__init__(**kwargs)
        self.box = box
        self.n_samples = int(n_samples)
        self.num_steps = int(num_steps)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.dim = len(box.low)
        self.built = True  # no build step (Keras warns when a trainer holds an unbuilt layer)

    @property
    def log_volume(self) -> float:
        """``log |Omega|``."""
        return self.box.log_volume

    def _bounds(self) -> tuple[tf.Tensor, tf.Tensor]:
        return (
            tf.constant(self.box.low, self.compute_dtype),
            tf.constant(self.box.high, self.compute_dtype),
        )

    def _into_box(self) -> tfb.Bijector:
        """``z -> low + (high - low) * sigmoid(z)``: unconstrained space onto ``Omega``."""
        low, high = self._bounds()
        return tfb.Sigmoid(low=low, high=high)

    def _unconstrained_target(self, logit_fn):
        """``(log p(z) = logit(T(z)) + log|det dT/dz|, T)``: ``P_f`` in ``T``'s input space."""
        into_box = self._into_box()

        def target_log_prob(z):
            return logit_fn(into_box.forward(z)) + into_box.forward_log_det_jacobian(
                z, event_ndims=1
            )

        return target_log_prob, into_box

    def _inside(self, x: tf.Tensor) -> tf.Tensor:
        """``x`` moved off the walls of ``Omega`` by 1e-4 of its width (``T^-1`` is finite)."""
        low, high = self._bounds()
        margin = 1e-4 * (high - low)
        return tf.clip_by_value(x, low + margin, high - margin)

    def _stateless_seed(self) -> tf.Tensor:
        return tf.cast(self.seed_generator.next(), tf.int32)

    def sample(self, logit_fn):
        raise NotImplementedError(f"{type(self).__name__} must implement sample")

    def update(self, logit_fn) -> dict:
        del logit_fn
        return {}

    def get_config(self):
        config = super().get_config()
        config.update(
            box=keras.saving.serialize_keras_object(self.box),
            n_samples=self.n_samples,
            num_steps=self.num_steps,
            seed=self.seed,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["box"] = keras.saving.deserialize_keras_object(config["box"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="tfp_flowad")
class HMCEnergySampler(EnergySampler):
    """Persistent HMC chains on ``P_f``, run in the unconstrained space of ``Omega``.

    With ``x = T(z) = low + (high - low) * sigmoid(z)``, the chains target
    ``log p(z) = logit(T(z)) + log|det dT/dz|``, so ``T(z) ~ P_f`` restricted to ``Omega``
    exactly, with no reflection or clipping at the walls. Each call runs ``num_steps``
    ``tfp.mcmc.HamiltonianMonteCarlo`` transitions (``num_leapfrog_steps`` leapfrog steps each,
    Metropolis-corrected) from the chains' last state, which persists across calls as in
    persistent contrastive divergence (the target moves slowly with the classifier).

    Args:
        box: ``Omega``.
        n_samples: number of chains (samples per call).
        num_steps: HMC transitions per call.
        num_leapfrog_steps: leapfrog steps per transition.
        step_size: leapfrog step size in the unconstrained ``z`` space.
        seed: integer seed (initial chains and transitions).
    """

    metric_names = ("acceptance",)

    def __init__(
        self,
        box: UniformBoxSampler,
        n_samples: int = 128,
        num_steps: int = 1,
        num_leapfrog_steps: int = 5,
        step_size: float = 0.25,
        seed=None,
        **kwargs,
    ):
        super().__init__(box, n_samples, num_steps, seed, **kwargs)
        self.num_leapfrog_steps = int(num_leapfrog_steps)
        self.step_size = float(step_size)
        # Chains start uniform over Omega: z = logit(u), u ~ U(0, 1), is logistic.
        uniform = np.random.default_rng(seed).uniform(1e-3, 1.0 - 1e-3, (self.n_samples, self.dim))
        self.chain_state = self.add_weight(
            shape=(self.n_samples, self.dim),
            initializer=keras.initializers.Constant(np.log(uniform) - np.log1p(-uniform)),
            trainable=False,
            name="chain_state",
        )

    def sample(self, logit_fn):
        target_log_prob, into_box = self._unconstrained_target(logit_fn)
        kernel = tfp.mcmc.HamiltonianMonteCarlo(
            target_log_prob, step_size=self.step_size, num_leapfrog_steps=self.num_leapfrog_steps
        )
        state = tf.convert_to_tensor(self.chain_state)
        # The classifier changed since the last call: bootstrap against the current target.
        results = kernel.bootstrap_results(state)
        acceptance = []
        for _ in range(self.num_steps):
            state, results = kernel.one_step(state, results, seed=self._stateless_seed())
            acceptance.append(tf.reduce_mean(tf.cast(results.is_accepted, self.compute_dtype)))
        self.chain_state.assign(state)
        return into_box.forward(state), {"acceptance": tf.add_n(acceptance) / self.num_steps}

    def get_config(self):
        config = super().get_config()
        config.update(num_leapfrog_steps=self.num_leapfrog_steps, step_size=self.step_size)
        return config


@keras.saving.register_keras_serializable(package="tfp_flowad")
class RMSPropEnergySampler(EnergySampler):
    """Noisy RMSProp-preconditioned ascent on ``log P_f`` from uniform starts in ``Omega``.

    In the unconstrained space of ``HMCEnergySampler`` (``x = T(z)``, target
    ``log p(z) = logit(T(z)) + log|det dT/dz|``), from ``z_0 = T^-1(u)``, ``u ~ U(Omega)``:
    ``g_t = grad log p(z_t)``, ``v_t = rho v_{t-1} + (1 - rho) g_t^2`` (``v_0 = g_0^2``),
    ``G_t = 1 / (damping + sqrt(v_t))``,
    ``z_{t+1} = z_t + step_size / 2 * G_t g_t + sqrt(step_size * G_t) * n_t``, ``n_t ~ N(0, I)``.
    This is preconditioned Langevin dynamics (pSGLD, Li et al., AAAI 2016): RMSProp steps up
    ``log P_f`` plus noise scaled so that the stationary law is ``P_f`` rather than its modes.
    A few steps from uniform starts give approximate samples (no Metropolis correction).

    Args:
        box: ``Omega``.
        n_samples: samples per call.
        num_steps: steps per call.
        step_size: ``step_size`` above (in the unconstrained space).
        rho: decay of the running mean of squared gradients.
        damping: added to ``sqrt(v_t)``; bounds the preconditioner by ``1 / damping``.
        seed: integer seed.
    """

    metric_names = ("sample_logit",)

    def __init__(
        self,
        box: UniformBoxSampler,
        n_samples: int = 64,
        num_steps: int = 20,
        step_size: float = 0.5,
        rho: float = 0.9,
        damping: float = 0.1,
        seed=None,
        **kwargs,
    ):
        super().__init__(box, n_samples, num_steps, seed, **kwargs)
        self.step_size = float(step_size)
        self.rho = float(rho)
        self.damping = float(damping)

    def sample(self, logit_fn):
        target_log_prob, into_box = self._unconstrained_target(logit_fn)
        uniform, _ = self.box.sample(self.n_samples)
        start = into_box.inverse(self._inside(uniform))
        seed = self._stateless_seed()

        def gradient(z):
            with tf.GradientTape() as tape:
                tape.watch(z)
                total = tf.reduce_sum(target_log_prob(z))
            return tape.gradient(total, z)

        def step(index, z, mean_square):
            grad = gradient(z)
            square = tf.square(grad)
            # v_0 = g_0^2: the first step is already scaled like the later ones.
            mean_square = tf.where(
                index == 0, square, self.rho * mean_square + (1.0 - self.rho) * square
            )
            preconditioner = 1.0 / (self.damping + tf.sqrt(mean_square))
            noise = tf.random.stateless_normal(
                tf.shape(z), tf.random.experimental.stateless_fold_in(seed, index), dtype=z.dtype
            )
            z = (
                z
                + 0.5 * self.step_size * preconditioner * grad
                + tf.sqrt(self.step_size * preconditioner) * noise
            )
            return index + 1, z, mean_square

        _, z, _ = tf.while_loop(
            lambda index, *_: index < self.num_steps,
            step,
            (tf.constant(0), start, tf.zeros_like(start)),
        )
        x = into_box.forward(z)
        return x, {"sample_logit": tf.reduce_mean(logit_fn(x))}

    def get_config(self):
        config = super().get_config()
        config.update(step_size=self.step_size, rho=self.rho, damping=self.damping)
        return config


@keras.saving.register_keras_serializable(package="tfp_flowad")
class GeneratorEnergySampler(EnergySampler):
    """A generator ``x = T(G(noise))`` trained to match ``P_f``: ``min KL(P_G || P_f)``.

    ``KL(P_G || P_f) = -E_G logit(x) - H(P_G) + log Z``; each ``update`` takes ``num_steps`` Adam steps on
    ``-mean logit(x_i) - entropy_weight * H_KL(x)`` with ``H_KL`` the nearest-neighbour entropy
    estimate (``nearest_neighbour_entropy``), which keeps the batch spread out.
    ``T(z) = low + (high - low) * sigmoid(z)`` keeps samples inside ``Omega``.

    With a batch of ~100 samples in ~100 dimensions, the nearest-neighbour estimate rewards
    spreading samples towards the corners of ``Omega`` (the generator's outputs saturate); the
    samples then match ``P_f`` only loosely, which is the known weakness of this variant.

    Args:
        box: ``Omega``.
        n_samples: samples per call.
        latent_units: width of the generator's Gaussian noise input.
        hidden_units: hidden widths of the generator.
        learning_rate: Adam learning rate of the generator.
        entropy_weight: weight of the entropy term (1: the KL divergence).
        num_steps: generator steps per ``update`` (per classifier step).
        seed: integer seed.
    """

    metric_names = ("generator_loss",)

    def __init__(
        self,
        box: UniformBoxSampler,
        n_samples: int = 128,
        latent_units: int = 16,
        hidden_units: tuple[int, ...] = (64,),
        learning_rate: float = 1e-3,
        entropy_weight: float = 1.0,
        num_steps: int = 1,
        seed=None,
        **kwargs,
    ):
        super().__init__(box, n_samples, num_steps, seed, **kwargs)
        self.latent_units = int(latent_units)
        self.hidden_units = tuple(hidden_units)
        self.learning_rate = float(learning_rate)
        self.entropy_weight = float(entropy_weight)
        self.generator = make_dense_network(
            self.latent_units, self.hidden_units, self.dim, name="generator"
        )
        self.generator_optimizer = keras.optimizers.Adam(self.learning_rate)
        self.generator_optimizer.build(self.generator.trainable_variables)

    def _generate(self) -> tf.Tensor:
        noise = keras.random.normal(
            (self.n_samples, self.latent_units), dtype=self.compute_dtype, seed=self.seed_generator
        )
        low, high = self._bounds()
        # T(z) written out: where sigmoid saturates its gradient is 0 (the bijector gave NaN).
        return low + (high - low) * tf.sigmoid(self.generator(noise, training=True))

    def sample(self, logit_fn):
        del logit_fn
        return self._generate(), {}

    def update(self, logit_fn) -> dict:
        variables = self.generator.trainable_variables
        for _ in range(self.num_steps):
            with tf.GradientTape() as tape:
                samples = self._generate()
                loss = -tf.reduce_mean(logit_fn(samples))
                loss = loss - self.entropy_weight * nearest_neighbour_entropy(samples)
            self.generator_optimizer.apply(tape.gradient(loss, variables), variables)
        return {"generator_loss": loss}

    def get_config(self):
        config = super().get_config()
        config.update(
            latent_units=self.latent_units,
            hidden_units=self.hidden_units,
            learning_rate=self.learning_rate,
            entropy_weight=self.entropy_weight,
        )
        return config


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
