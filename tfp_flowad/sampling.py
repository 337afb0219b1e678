"""Samplers of surrogate anomalies: the Gaussian tail pushed through a flow, and a uniform box.

Every sampler is a Keras layer with ``sample(n) -> (x, weights)`` (``weights`` is ``None`` for
plain samples) and its own ``keras.random.SeedGenerator``, so the (1 + eps)-class trainer can
draw fresh samples inside each ``train_step``. Under ``N`` replicas (``tfp_flowad.training.
distribute``) each replica draws samples of its own.
"""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flowad.training import distribute

__all__ = [
    "sample_gaussian_tail",
    "tail_radius_squared",
    "TailSampler",
    "UniformBoxSampler",
    "MixtureSampler",
]


def tail_radius_squared(dim: int, p_value: float) -> float:
    """``q = chi2_D quantile(1 - p)``: the squared radius where the tail of ``N(0, I_D)`` begins."""
    gamma_quantile = tfp.math.igammacinv(
        tf.constant(dim / 2.0, tf.float64), tf.constant(p_value, tf.float64)
    )
    return float(2.0 * gamma_quantile)


def sample_gaussian_tail(
    n: int,
    dim: int,
    p_value: float,
    seed,
    dtype=tf.float32,
) -> tf.Tensor:
    """Draws ``z ~ N(0, I_D)`` restricted to the tail ``||z||^2 >= chi2_D quantile(1 - p)``.

    Exact, with no rejection loop: ``||z||^2`` of a standard Gaussian is ``chi2_D``, so
    ``||z||^2 / 2 ~ Gamma(D / 2)``; inverting its survival function at ``p * u``,
    ``u ~ U(0, 1]``, gives the truncated radius ``r^2 = 2 * igammacinv(D / 2, p * u)``. The
    direction ``g / ||g||``, ``g ~ N(0, I_D)``, is uniform on the sphere and independent of the
    radius, as in the Gaussian itself. The inversion runs in float64 (float32 underflows for
    small ``p``).

    Args:
        n: number of samples.
        dim: dimension ``D``.
        p_value: probability mass of the tail, in (0, 1]; 1 gives the whole Gaussian.
        seed: a ``keras.random.SeedGenerator`` or an int.
        dtype: dtype of the result.

    Returns:
        ``[n, D]`` tensor of tail samples.
    """
    if not 0.0 < p_value <= 1.0:
        raise ValueError(f"p_value must be in (0, 1]; got {p_value!r}")
    uniform = distribute.uniform((n,), "float64", seed)
    tail_mass = p_value * (1.0 - uniform)  # in (0, p]
    radius_sq = 2.0 * tfp.math.igammacinv(tf.constant(dim / 2.0, tf.float64), tail_mass)
    direction = distribute.normal((n, dim), "float64", seed)
    direction = direction / tf.norm(direction, axis=-1, keepdims=True)
    return tf.cast(direction * tf.sqrt(radius_sq)[:, None], dtype)


@keras.saving.register_keras_serializable(package="tfp_flowad")
class TailSampler(keras.layers.Layer):
    """Surrogate anomalies ``x = f(z)``, ``z`` from the Gaussian tail (paper section 3.1).

    ``f`` is a flow's sampling map (an IAF after distillation: fast in this direction).

    Args:
        flow: a ``tfp_flowad.flows.Flow``.
        p_value: mass of the base Gaussian's tail that is sampled.
        seed: integer seed of the layer's ``SeedGenerator``.
    """

    def __init__(self, flow, p_value: float = 0.01, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.flow = flow
        self.p_value = p_value
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.build()

    def build(self, input_shape=None):
        """Nothing to create (see ``MixtureSampler.build``)."""

    def sample(self, n: int):
        z = sample_gaussian_tail(
            n, self.flow.event_size, self.p_value, self.seed_generator, dtype=self.compute_dtype
        )
        return self.flow.forward(z), None

    def get_config(self):
        config = super().get_config()
        config.update(
            flow=keras.saving.serialize_keras_object(self.flow),
            p_value=self.p_value,
            seed=self.seed,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["flow"] = keras.saving.deserialize_keras_object(config["flow"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="tfp_flowad")
class UniformBoxSampler(keras.layers.Layer):
    """Uniform samples over the box ``Omega = [low, high]`` (the L0 of eq. (6) as first posed).

    Args:
        low: ``[D]`` lower corner.
        high: ``[D]`` upper corner.
        seed: integer seed of the layer's ``SeedGenerator``.
    """

    def __init__(self, low, high, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.low = np.asarray(low, dtype=np.float64).tolist()
        self.high = np.asarray(high, dtype=np.float64).tolist()
        if len(self.low) != len(self.high):
            raise ValueError(
                f"low and high must have the same length; got {len(self.low)} and {len(self.high)}"
            )
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.build()

    def build(self, input_shape=None):
        """Nothing to create (see ``MixtureSampler.build``)."""

    @staticmethod
    def around(X: np.ndarray, margin: float = 0.1, seed: int | None = None) -> "UniformBoxSampler":
        """The data's bounding box widened by ``margin`` times its width on each side."""
        low, high = X.min(axis=0), X.max(axis=0)
        width = np.maximum(high - low, 1e-6)
        return UniformBoxSampler(low - margin * width, high + margin * width, seed=seed)

    @property
    def log_volume(self) -> float:
        """``log |Omega|``."""
        return float(np.sum(np.log(np.asarray(self.high) - np.asarray(self.low))))

    def sample(self, n: int):
        low = tf.constant(self.low, self.compute_dtype)
        high = tf.constant(self.high, self.compute_dtype)
        u = distribute.uniform((n, len(self.low)), self.compute_dtype, self.seed_generator)
        return low + u * (high - low), None

    def get_config(self):
        config = super().get_config()
        config.update(low=self.low, high=self.high, seed=self.seed)
        return config


@keras.saving.register_keras_serializable(package="tfp_flowad")
class MixtureSampler(keras.layers.Layer):
    """Surrogates from several samplers in fixed shares, optionally requantised.

    ``sample(n)`` takes ``round(share_k * n)`` rows from sampler ``k`` (the last one takes the
    rest) and concatenates them. With ``quantiser`` (a ``TabularEncoder``) the rows pass through
    ``quantiser.requantise``, so discrete columns of generated rows sit on the same grid as real
    rows. Samplers must return ``weights=None``.

    Args:
        samplers: layers with ``sample(n) -> (x, None)``.
        shares: one non-negative share per sampler, summing to 1.
        quantiser: optional ``TabularEncoder``.
    """

    def __init__(self, samplers, shares, quantiser=None, **kwargs):
        super().__init__(**kwargs)
        if len(samplers) != len(shares) or not samplers:
            raise ValueError(
                f"samplers and shares must be non-empty and of equal length; got {len(samplers)} "
                f"and {len(shares)}"
            )
        if min(shares) < 0 or abs(sum(shares) - 1.0) > 1e-6:
            raise ValueError(f"shares must be >= 0 and sum to 1; got {list(shares)}")
        self.samplers = list(samplers)
        self.shares = [float(s) for s in shares]
        self.quantiser = quantiser
        self.build()

    def build(self, input_shape=None):
        """Nothing to create: a sampler is never called on a batch, so it is built here, and
        its quantiser with it. (Keras builds a model before a fit under a strategy by calling
        it on a symbolic batch, unless every layer it holds is built.)"""
        if self.quantiser is not None and not self.quantiser.built:
            self.quantiser.build(None)

    def sample(self, n):
        counts = [int(round(share * n)) for share in self.shares[:-1]]
        counts.append(n - sum(counts))
        parts = [s.sample(c)[0] for s, c in zip(self.samplers, counts, strict=True) if c > 0]
        x = tf.concat(parts, axis=0)
        if self.quantiser is not None:
            x = self.quantiser.requantise(x)
        return x, None

    def get_config(self):
        config = super().get_config()
        config.update(
            samplers=[keras.saving.serialize_keras_object(s) for s in self.samplers],
            shares=self.shares,
            quantiser=keras.saving.serialize_keras_object(self.quantiser)
            if self.quantiser is not None
            else None,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["samplers"] = [keras.saving.deserialize_keras_object(s) for s in config["samplers"]]
        if config.get("quantiser") is not None:
            config["quantiser"] = keras.saving.deserialize_keras_object(config["quantiser"])
        return cls(**config)
