"""Samplers of the energy model ``P_f(x) = 1[x in Omega] exp(logit(x)) / Z``, eq. (9), for the
energy (1 + eps)-class trainer of ``tfp_flowad.baselines.eope``:

* ``HMCEnergySampler``: persistent Hamiltonian Monte Carlo chains (hmc-eope);
* ``RMSPropEnergySampler``: RMSProp-preconditioned noisy ascent (Langevin) on ``log P_f``
  from uniform starts (rmsprop-eope);
* ``GeneratorEnergySampler``: a generator network trained to match ``P_f`` (deep-eope), with
  a nearest-neighbour entropy term (``nearest_neighbour_entropy``).
"""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flowad.baselines.common import make_dense_network
from tfp_flowad.sampling import UniformBoxSampler

__all__ = [
    "nearest_neighbour_entropy",
    "EnergySampler",
    "HMCEnergySampler",
    "RMSPropEnergySampler",
    "GeneratorEnergySampler",
]

tfb = tfp.bijectors


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
