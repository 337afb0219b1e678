"""Masked (MAF) and inverse (IAF) autoregressive flows, paper section 2.2.2-2.2.3."""

import weakref

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flowad.flows.base import PermutedStepsFlow, chain
from tfp_flowad.losses import jacobian_penalty
from tfp_flowad.nn.made import MADE
from tfp_flowad.training import distribute

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

    def _penalty_and_gradients(self, z) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """``L_J`` at base samples ``z`` (eq. 40) and its exact gradients, by implicit
        differentiation of the sequential sampling pass instead of autodiff through it.

        Step ``k`` maps its input ``u_{k-1}`` (``u_0 = z``, then ``u_k = P_k y_k``) to
        ``y_k``, the solution of ``g_k(y_k) = u_{k-1}`` for the one-pass inverse
        ``g_k(y) = (y - mu_k(y)) * exp(-alpha_k(y))``; ``log|det J(f|z)| = sum_k sum_i
        alpha_k(y_k)_i``. The ``y_k`` are found without gradients (``D`` fixed-point passes
        each, as TFP's forward does). By the implicit function theorem,
        ``dy_k = J_k^{-1} (du_{k-1} - dg_k/dtheta dtheta)`` with ``J_k = dg_k/dy`` at
        ``y_k``, so the adjoints run backwards through the steps: ``v_k`` solves
        ``J_k^T v_k = ybar_k`` (the total adjoint of ``y_k``), the weights get
        ``-v_k^T dg_k/dtheta`` and ``ubar_{k-1} = v_k``. ``J_k`` is triangular with diagonal
        ``exp(-alpha_k)``, so ``v_k`` is one triangular solve (``_solve_transposed``). The
        weights' gradient is then that of ``L_J(y, theta) - sum_k v_k . g_k(y_k; theta)``
        with ``y`` and ``v`` held fixed: autodiff's gradient, without differentiating a
        ``tf.while_loop`` (whose trace is slow to build).
        """
        outputs = self._step_outputs(z)
        scale = 1.0 / distribute.replicas() if distribute.in_replicas() else 1.0

        def penalty_at(points):
            log_det = tf.add_n(
                [
                    tf.reduce_sum(made(y)[1], axis=-1)
                    for made, y in zip(self.mades, points, strict=True)
                ]
            )
            return scale * jacobian_penalty(log_det)

        with tf.GradientTape() as tape:
            tape.watch(outputs)
            penalty = penalty_at(outputs)
        direct = tape.gradient(penalty, outputs)
        adjoints = [None] * len(outputs)
        total = direct[-1]
        for k in reversed(range(len(outputs))):
            adjoints[k] = _solve_transposed(self.mades[k], outputs[k], total)
            if k > 0:
                inverse = np.argsort(self.permutations[k - 1])
                total = direct[k - 1] + tf.gather(adjoints[k], inverse, axis=-1)
        with tf.GradientTape() as tape:
            surrogate = penalty_at(outputs) - tf.add_n(
                [
                    tf.reduce_sum(tf.stop_gradient(v) * _inverse_step(made, y))
                    for made, y, v in zip(self.mades, outputs, adjoints, strict=True)
                ]
            )
        gradients = tape.gradient(
            surrogate, self.trainable_variables, unconnected_gradients=tf.UnconnectedGradients.ZERO
        )
        return penalty, gradients

    def _step_outputs(self, z) -> list[tf.Tensor]:
        """The outputs ``y_1 .. y_K`` of the steps of ``x = f(z)``, without gradients."""
        outputs = []
        u = tf.convert_to_tensor(z, self.compute_dtype)
        for k, made in enumerate(self.mades):
            outputs.append(tf.stop_gradient(_solve_step(made, u)))
            if k < len(self.mades) - 1:
                u = tf.gather(outputs[-1], self.permutations[k], axis=-1)
        return outputs


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


def _inverse_step(made: MADE, y) -> tf.Tensor:
    """``g(y) = (y - mu(y)) * exp(-alpha(y))``: a MAF step's one-pass inverse, eq. (30)."""
    shift, log_scale = made(y)
    return (y - shift) * tf.exp(-log_scale)


def _solve_step(made: MADE, u) -> tf.Tensor:
    """``y`` with ``g(y) = u``: ``D`` passes of ``y <- u * exp(alpha(y)) + mu(y)`` from 0,
    the ``i``-th pass fixing coordinate ``i`` (eq. 28)."""

    def sweep(y):
        shift, log_scale = made(y)
        return (u * tf.exp(log_scale) + shift,)

    (y,) = tf.while_loop(
        lambda y: True, sweep, (tf.zeros_like(u),), maximum_iterations=made.event_size
    )
    return y


def _solve_transposed(made: MADE, y, adjoint) -> tf.Tensor:
    """``v`` with ``J^T v = adjoint``, ``J = dg/dy`` at ``y`` (``g`` of ``_inverse_step``).

    ``J`` is lower triangular (output ``i`` of the MADE sees inputs ``< i`` only). Its rows
    come from one vector-Jacobian product over ``D`` copies of the batch, copy ``i`` with the
    cotangent ``e_i``; then one triangular solve per row of the batch.
    """
    rows, dim = tf.shape(y)[0], made.event_size
    copies = tf.reshape(tf.repeat(y[None], dim, axis=0), [dim * rows, dim])
    units = tf.reshape(
        tf.repeat(tf.eye(dim, dtype=y.dtype)[:, None, :], rows, axis=1), [dim * rows, dim]
    )
    with tf.GradientTape() as tape:
        tape.watch(copies)
        image = _inverse_step(made, copies)
    gradient_rows = tape.gradient(image, copies, output_gradients=units)
    jacobian = tf.transpose(tf.reshape(gradient_rows, [dim, rows, dim]), [1, 0, 2])
    return tf.linalg.triangular_solve(jacobian, adjoint[..., None], lower=True, adjoint=True)[
        ..., 0
    ]
