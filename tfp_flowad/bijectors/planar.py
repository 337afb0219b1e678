"""The planar flow of Rezende and Mohamed (2015), paper section 2.1.1, eq. (14)-(17)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfp_flowad.bijectors.base import TensorParameterBijector

__all__ = ["Planar"]

_NEWTON_STEPS = 2


class Planar(TensorParameterBijector):
    """y = x + u_hat * tanh(w . x + b), the planar flow of eq. (14).

    The Jacobian is the rank-one update of eq. (15)-(16),
    ``J = I + u_hat psi(x)^T`` with ``psi(x) = tanh'(w . x + b) w``, so
    ``log|det J| = log|1 + u_hat . psi(x)|`` costs ``O(D)`` (the per-step term of eq. (17)).

    Invertibility is built in by reparameterising ``u`` (Rezende and Mohamed 2015, app. A.1):

        u_hat = u + (m(w . u) - w . u) * w / ||w||^2,    m(a) = -1 + softplus(a),

    so that ``w . u_hat = m(w . u) > -1`` for every real ``w, u``. Since
    ``0 < tanh' <= 1``, ``1 + u_hat . psi(x) = 1 + (w . u_hat) tanh'(w . x + b) > 0``: the
    map is a strictly increasing bijection along ``w`` and the identity on the plane
    orthogonal to it. (For ``w = 0`` the map is the translation ``y = x + u tanh(b)``.)

    The inverse has no closed form. Writing ``a = w . x`` and taking ``w .`` of eq. (14),
    ``w . y = a + (w . u_hat) tanh(a + b)``, a strictly increasing scalar equation whose root
    lies in ``[w . y - |w . u_hat|, w . y + |w . u_hat|]``. It is solved by bisection to float
    precision, polished by safeguarded Newton steps, and then ``x = y - u_hat tanh(a + b)``.
    Gradients of the inverse with respect to ``w, u, b`` come from the implicit function
    theorem (one Newton step taken on the differentiable graph), not from the iterations.

    The parameters are tensors, read when the bijector is built; the bijector owns no
    variables. Build it inside the computation that needs gradients.

    Args:
        w: Float tensor of shape ``[..., D]``; the normal of the hyperplane.
        u: Float tensor of shape ``[..., D]``; the unconstrained direction of the update.
        b: Float tensor of shape ``[...]`` (a scalar for one bijector); the offset.
        validate_args: Python bool; check the shapes of the parameters at run time too.
        name: Name of the bijector's name scope.

    Raises:
        ValueError: If the static event sizes of ``w`` and ``u`` differ.

    Examples:
        >>> w, u, b = tf.constant([1.0, 0.5]), tf.constant([-2.0, 0.3]), tf.constant(0.1)
        >>> planar = Planar(w, u, b)
        >>> y = planar.forward(tf.zeros([4, 2]))
        >>> x = planar.inverse(y)

    References:
        D. J. Rezende, S. Mohamed. Variational inference with normalizing flows. ICML 2015.
        A. Ryzhikov et al. Normalizing flows for deep anomaly detection. arXiv 1912.09323,
        eq. (14)-(17).
    """

    vector_parameters = ("w", "u")
    scalar_parameters = ("b",)

    def __init__(
        self,
        w: tf.Tensor,
        u: tf.Tensor,
        b: tf.Tensor,
        validate_args: bool = False,
        name: str = "planar",
    ) -> None:
        super().__init__(dict(locals()), validate_args, name)

    @property
    def w(self) -> tf.Tensor:
        """The normal ``w`` of eq. (14)."""
        return self._w

    @property
    def u(self) -> tf.Tensor:
        """The unconstrained ``u``; the map uses ``u_hat`` (see ``reparameterized_u``)."""
        return self._u

    @property
    def b(self) -> tf.Tensor:
        """The offset ``b`` of eq. (14)."""
        return self._b

    # ----------------------------------------------------------------------------- helpers
    def _params(self):
        """Returns ``(w, u_hat, b, w . u_hat, 1 + w . u_hat)``; the last two have shape [...]."""
        w = tf.convert_to_tensor(self._w)
        u = tf.convert_to_tensor(self._u)
        b = tf.convert_to_tensor(self._b)
        w_dot_u = tf.reduce_sum(w * u, axis=-1)
        w_norm_sq = tf.reduce_sum(tf.square(w), axis=-1)
        # m(w . u) = -1 + softplus(w . u); keep 1 + m = softplus(w . u) separately so that
        # 1 + w . u_hat is never formed by cancellation (it is tiny when w . u << 0).
        softplus_w_dot_u = tf.math.softplus(w_dot_u)
        w_dot_u_hat = softplus_w_dot_u - 1.0
        correction = tf.math.divide_no_nan(w_dot_u_hat - w_dot_u, w_norm_sq)
        u_hat = u + correction[..., tf.newaxis] * w
        # For w = 0, psi = 0 and the map is a translation: w . u_hat = 0 exactly.
        nonzero = w_norm_sq > 0
        w_dot_u_hat = tf.where(nonzero, w_dot_u_hat, tf.zeros_like(w_dot_u_hat))
        one_plus_w_dot_u_hat = tf.where(nonzero, softplus_w_dot_u, tf.ones_like(w_dot_u))
        return w, u_hat, b, w_dot_u_hat, one_plus_w_dot_u_hat

    def reparameterized_u(self) -> tf.Tensor:
        """``u_hat = u + (m(w . u) - w . u) w / ||w||^2``, so that ``w . u_hat > -1``."""
        return self._params()[1]

    @staticmethod
    def _det_terms(pre_activation, w_dot_u_hat, one_plus_w_dot_u_hat):
        """``(m s, 1 + m s)`` at ``z = w . x + b``: ``det J = 1 + m s``, computed stably.

        ``u_hat . psi(x) = tanh'(z) (w . u_hat)``, so ``det J = 1 + m s`` with
        ``s = tanh'(z) = sech^2(z)`` in ``(0, 1]`` and ``m = w . u_hat > -1``; ``det J`` is
        also ``dF/da`` of the inverse's scalar equation.
        """
        # sech^2(z) = 4 e^{-2|z|} / (1 + e^{-2|z|})^2, evaluated in logs so it does not
        # underflow to 0 through 1 - tanh^2(z) for moderate |z|.
        abs_z = tf.abs(pre_activation)
        sech_sq = tf.exp(2.0 * (np.log(2.0) - abs_z - tf.math.softplus(-2.0 * abs_z)))
        m_s = w_dot_u_hat * sech_sq
        # Where m s is near -1, 1 + m s cancels; rewrite it as a sum of positives,
        #   1 + m s = (1 - s) + (1 + m) s = tanh^2(z) + softplus(w . u) s.
        sum_of_positives = tf.square(tf.tanh(pre_activation)) + one_plus_w_dot_u_hat * sech_sq
        return m_s, sum_of_positives

    @classmethod
    def _log_det(cls, pre_activation, w_dot_u_hat, one_plus_w_dot_u_hat):
        """``log(1 + u_hat . psi(x)) = log(1 + (w . u_hat) tanh'(w . x + b))``; eq. (16)."""
        m_s, sum_of_positives = cls._det_terms(pre_activation, w_dot_u_hat, one_plus_w_dot_u_hat)
        # log1p(m s) is accurate for |m s| <= 1/2; below that use log(sum of positives).
        # Each branch gets a harmless value where it is not selected (NaN-free gradients).
        use_log1p = m_s > -0.5
        safe_m_s = tf.where(use_log1p, m_s, tf.zeros_like(m_s))
        safe_sum = tf.where(use_log1p, tf.ones_like(sum_of_positives), sum_of_positives)
        return tf.where(use_log1p, tf.math.log1p(safe_m_s), tf.math.log(safe_sum))

    @classmethod
    def _solve_projection(cls, w_dot_y, w_dot_u_hat, one_plus_w_dot_u_hat, b):
        """Root ``a`` of ``F(a) = a + m tanh(a + b) - w . y = 0`` (``m = w . u_hat > -1``).

        Elementwise over the broadcast shape of the arguments.
        """
        dtype = w_dot_y.dtype
        tiny = np.finfo(dtype.as_numpy_dtype).tiny
        shape = tf.broadcast_dynamic_shape(
            tf.broadcast_dynamic_shape(tf.shape(w_dot_y), tf.shape(w_dot_u_hat)), tf.shape(b)
        )
        target, slope, one_plus_slope, offset = (
            tf.broadcast_to(tf.stop_gradient(t), shape)
            for t in (w_dot_y, w_dot_u_hat, one_plus_w_dot_u_hat, b)
        )

        def residual(a):
            return a + slope * tf.tanh(a + offset) - target

        # F is strictly increasing and |tanh| < 1 brackets its root in target -+ |m|. Halving
        # the bracket (width 2|m|) this many times reaches one ulp of the root even for |m| in
        # the thousands; the Newton steps then polish within the bracket.
        num_bisections = 72 if dtype == tf.float64 else 44
        half_width = tf.abs(slope)
        lower, upper = target - half_width, target + half_width

        def bisect(step, lower, upper):
            middle = 0.5 * (lower + upper)
            positive = residual(middle) > 0
            return step + 1, tf.where(positive, lower, middle), tf.where(positive, middle, upper)

        _, lower, upper = tf.while_loop(
            lambda step, *_: step < num_bisections,
            bisect,
            (tf.constant(0), lower, upper),
        )
        a = 0.5 * (lower + upper)
        for _ in range(_NEWTON_STEPS):
            _, derivative = cls._det_terms(a + offset, slope, one_plus_slope)
            candidate = a - residual(a) / tf.maximum(derivative, tiny)
            inside = (candidate >= lower) & (candidate <= upper)
            a = tf.where(inside, candidate, a)
        a = tf.stop_gradient(a)
        # One Newton step on the differentiable graph: its value is a (the residual is ~0) and
        # its gradient is the implicit one, da/dtheta = -(dF/dtheta) / (dF/da).
        pre_activation = a + b
        _, derivative = cls._det_terms(pre_activation, w_dot_u_hat, one_plus_w_dot_u_hat)
        residual_value = a + w_dot_u_hat * tf.tanh(pre_activation) - w_dot_y
        return a - residual_value / tf.maximum(derivative, tiny)

    # ------------------------------------------------------------------------- bijector hooks
    def _forward(self, x):
        w, u_hat, b, _, _ = self._params()
        pre_activation = tf.reduce_sum(w * x, axis=-1) + b
        return x + u_hat * tf.tanh(pre_activation)[..., tf.newaxis]

    def _inverse(self, y):
        w, u_hat, b, w_dot_u_hat, one_plus = self._params()
        w_dot_y = tf.reduce_sum(w * y, axis=-1)
        a = self._solve_projection(w_dot_y, w_dot_u_hat, one_plus, b)
        return y - u_hat * tf.tanh(a + b)[..., tf.newaxis]

    def _forward_log_det_jacobian(self, x):
        w, _, b, w_dot_u_hat, one_plus = self._params()
        pre_activation = tf.reduce_sum(w * x, axis=-1) + b
        return self._log_det(pre_activation, w_dot_u_hat, one_plus)

    def _inverse_log_det_jacobian(self, y):
        # -fldj at x = f^{-1}(y). The public `inverse` reuses TFP's cache, so the root finding
        # runs once when a caller (e.g. `TransformedDistribution.log_prob`) needs both.
        return -self._forward_log_det_jacobian(self.inverse(y))
