"""Masked (MAF) and inverse (IAF) autoregressive flows, paper section 2.2.2-2.2.3."""

import weakref

import keras
import tensorflow_probability as tfp

from tfp_flowad.flows.base import PermutedStepsFlow, chain
from tfp_flowad.nn.made import MADE

tfb = tfp.bijectors

__all__ = ["MAF", "IAF"]


class _AutoregressiveFlow(PermutedStepsFlow):
    """A stack of affine autoregressive steps with fixed permutations between them.

    Args:
        event_size: ``D``.
        num_layers: number of autoregressive steps.
        hidden_units: widths of each MADE's hidden layers.
        activation: MADE activation.
        permutations: ``num_layers - 1`` permutations of ``range(D)`` (default: seeded random,
            the first a reversal).
        **kwargs: ``Flow`` arguments (``jacobian_penalty``, ``seed``, ...) and Keras ones.
    """

    def __init__(self, event_size: int, num_layers: int = 5, **kwargs):
        super().__init__(event_size, num_layers, **kwargs)
        self.mades = [
            MADE(
                self.event_size,
                self.hidden_units,
                self.activation,
                dtype=self.dtype_policy,
                name=f"made_{index}",
            )
            for index in range(self.num_layers)
        ]
        for made in self.mades:
            made.build((None, self.event_size))
        self.build((None, self.event_size))

    def _steps(self) -> list[tfb.Bijector]:
        # A fresh callable per build: TFP shares its forward/inverse cache between bijectors
        # with equal parameters, which would leak tensors across Keras' graphs.
        return [
            tfb.MaskedAutoregressiveFlow(shift_and_log_scale_fn=_reusing_last_call(made))
            for made in self.mades
        ]


def _reusing_last_call(made: MADE):
    """``made`` as a function that, called again on the very tensor of its last call, returns
    that call's outputs instead of running the network again.

    TFP's affine autoregressive step calls its conditioner once for a point's image and again
    for the log-determinant at the same point (``inverse`` then ``inverse_log_det_jacobian``
    in ``log_prob``; ``forward`` then ``forward_log_det_jacobian`` of an inverted step in
    ``sample_and_log_prob``). Reusing the first call's outputs computes the same numbers with
    half the network passes.

    The last input is held by a weak reference, and its outputs are dropped with it: TFP's
    shared bijector cache keeps this function (through its bijector) for as long as an entry
    keyed by that input lives, so a strong reference would keep both alive forever.
    """
    last = {}

    def shift_and_log_scale(x):
        if "input" not in last or last["input"]() is not x:
            last["input"] = weakref.ref(x, lambda _: last.clear())
            last["outputs"] = made(x)
        return last["outputs"]

    return shift_and_log_scale


@keras.saving.register_keras_serializable(package="tfp_flowad")
class MAF(_AutoregressiveFlow):
    """Masked autoregressive flow, eq. (28)-(30): fast density, sequential sampling.

    Each step samples ``x_i = z_i * exp(log_scale_i(x_{<i})) + shift_i(x_{<i})`` (``D``
    sequential passes) and inverts in one pass, ``z_i = (x_i - shift_i(x_{<i})) /
    exp(log_scale_i(x_{<i}))``, so ``log p(x)`` costs one MADE call per step. The teacher of
    probability distillation.
    """

    def make_bijector(self) -> tfb.Bijector:
        return chain(self._steps(), self.permutations)


@keras.saving.register_keras_serializable(package="tfp_flowad")
class IAF(_AutoregressiveFlow):
    """Inverse autoregressive flow, eq. (31)-(33): fast sampling, sequential density.

    Each step samples in one pass,
    ``x_i = (z_i - shift_i(z_{<i})) * exp(-log_scale_i(z_{<i}))``, with
    ``log|det J| = -sum_i log_scale_i(z_{<i})`` at no extra cost; the inverse is sequential.
    The student of probability distillation and the sampler of surrogate anomalies.
    """

    def make_bijector(self) -> tfb.Bijector:
        return chain([tfb.Invert(step) for step in self._steps()], self.permutations)
