"""Planar and radial flows, paper section 2.1: stacks of ``tfp_flowad.bijectors``."""

import keras
import tensorflow_probability as tfp

from tfp_flowad.bijectors import Planar, Radial
from tfp_flowad.flows.base import Flow

tfb = tfp.bijectors

__all__ = ["PlanarFlow", "RadialFlow"]


class _StackedFlow(Flow):
    """``f = f_K o ... o f_1`` of one bijector family, weights stacked along a leading axis.

    Args:
        event_size: ``D``.
        num_layers: ``K``.
        **kwargs: ``Flow`` arguments and Keras ones.
    """

    def __init__(self, event_size: int, num_layers: int = 8, **kwargs):
        super().__init__(event_size, **kwargs)
        self.num_layers = int(num_layers)

    def _weight(self, name: str, shape: tuple[int, ...], stddev: float):
        initializer = (
            keras.initializers.RandomNormal(stddev=stddev, seed=self.seed) if stddev else "zeros"
        )
        return self.add_weight(shape=shape, initializer=initializer, name=name)

    def get_config(self):
        config = super().get_config()
        config.update(num_layers=self.num_layers)
        return config


@keras.saving.register_keras_serializable(package="tfp_flowad")
class PlanarFlow(_StackedFlow):
    """``K`` planar steps, eq. (14)-(17): ``z_k = z_{k-1} + u_hat_k tanh(w_k . z_{k-1} + b_k)``.

    Sampling is one pass; ``log_prob`` inverts each step numerically (``tfp_flowad.bijectors``).
    """

    def __init__(self, event_size: int, num_layers: int = 8, **kwargs):
        super().__init__(event_size, num_layers, **kwargs)
        shape = (self.num_layers, self.event_size)
        self.w = self._weight("w", shape, 0.5)
        self.u = self._weight("u", shape, 0.5)
        self.b = self._weight("b", (self.num_layers,), 0.0)
        self.build((None, self.event_size))

    def make_bijector(self) -> tfb.Bijector:
        steps = [Planar(self.w[k], self.u[k], self.b[k]) for k in range(self.num_layers)]
        return tfb.Chain(list(reversed(steps)))


@keras.saving.register_keras_serializable(package="tfp_flowad")
class RadialFlow(_StackedFlow):
    """``K`` radial steps, eq. (18)-(19):
    ``z_k = z_{k-1} + beta_k h(alpha_k, r) (z_{k-1} - x0_k)``, ``h = 1 / (alpha + r)``.

    Both directions are closed-form (``tfp_flowad.bijectors.Radial``).
    """

    def __init__(self, event_size: int, num_layers: int = 8, **kwargs):
        super().__init__(event_size, num_layers, **kwargs)
        self.x0 = self._weight("x0", (self.num_layers, self.event_size), 1.0)
        self.alpha_unconstrained = self._weight("alpha_unconstrained", (self.num_layers,), 0.0)
        self.beta_unconstrained = self._weight("beta_unconstrained", (self.num_layers,), 0.0)
        self.build((None, self.event_size))

    def make_bijector(self) -> tfb.Bijector:
        steps = [
            Radial(self.x0[k], self.alpha_unconstrained[k], self.beta_unconstrained[k])
            for k in range(self.num_layers)
        ]
        return tfb.Chain(list(reversed(steps)))
