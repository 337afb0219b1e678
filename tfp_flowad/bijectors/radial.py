"""The radial flow of Rezende and Mohamed (2015), paper section 2.1.2, eq. (18)-(19)."""

from __future__ import annotations

import tensorflow as tf

from tfp_flowad.bijectors.base import TensorParameterBijector

__all__ = ["Radial"]


def _norm(vector: tf.Tensor) -> tf.Tensor:
    """``||vector||`` over the last axis, with a zero (not NaN) gradient at the origin."""
    squared = tf.reduce_sum(tf.square(vector), axis=-1)
    positive = squared > 0
    safe = tf.where(positive, squared, tf.ones_like(squared))
    return tf.where(positive, tf.sqrt(safe), tf.zeros_like(squared))


class Radial(TensorParameterBijector):
    """y = x + beta * h(alpha, r) * (x - x0), h = 1 / (alpha + r), r = ||x - x0||; eq. (18).

    The map contracts or expands space radially around ``x0``. Its Jacobian determinant is
    eq. (19) with the factor ``beta`` on the ``h'`` term that the paper's print omits:

        det J = (1 + beta h)^(D - 1) * (1 + beta h + beta h'(r) r),  h'(r) = -1 / (alpha + r)^2.

    Invertibility is built in by reparameterisation (Rezende and Mohamed 2015, app. A.2):

        alpha = softplus(alpha_unconstrained) > 0,
        beta = -alpha + softplus(beta_unconstrained) > -alpha,

    which makes ``r -> r (1 + beta / (alpha + r))`` strictly increasing from 0 to infinity and
    both factors of ``det J`` positive. The inverse is closed-form: ``||y - x0||`` determines
    ``r`` through a quadratic, and then ``x = x0 + (y - x0) / (1 + beta h(alpha, r))``.

    The parameters are tensors, read when the bijector is built; the bijector owns no
    variables. Build it inside the computation that needs gradients.

    Args:
        x0: Float tensor of shape ``[..., D]``; the centre.
        alpha_unconstrained: Float tensor of shape ``[...]``; ``alpha = softplus(.)``.
        beta_unconstrained: Float tensor of shape ``[...]``;
            ``beta = -alpha + softplus(.)``.
        validate_args: Python bool; passed to ``tfp.bijectors.Bijector``.
        name: Name of the bijector's name scope.

    Examples:
        >>> radial = Radial(tf.zeros([3]), tf.constant(0.0), tf.constant(1.0))
        >>> y = radial.forward(tf.ones([5, 3]))
        >>> x = radial.inverse(y)

    References:
        D. J. Rezende, S. Mohamed. Variational inference with normalizing flows. ICML 2015.
        A. Ryzhikov et al. Normalizing flows for deep anomaly detection. arXiv 1912.09323,
        eq. (18)-(19).
    """

    vector_parameters = ("x0",)
    scalar_parameters = ("alpha_unconstrained", "beta_unconstrained")

    def __init__(
        self,
        x0: tf.Tensor,
        alpha_unconstrained: tf.Tensor,
        beta_unconstrained: tf.Tensor,
        validate_args: bool = False,
        name: str = "radial",
    ) -> None:
        super().__init__(dict(locals()), validate_args, name)

    @property
    def x0(self) -> tf.Tensor:
        """The centre ``x0`` of eq. (18)."""
        return self._x0

    @property
    def alpha_unconstrained(self) -> tf.Tensor:
        """``alpha = softplus(alpha_unconstrained)``."""
        return self._alpha_unconstrained

    @property
    def beta_unconstrained(self) -> tf.Tensor:
        """``beta = -alpha + softplus(beta_unconstrained)``."""
        return self._beta_unconstrained

    def alpha(self) -> tf.Tensor:
        """``alpha = softplus(alpha_unconstrained) > 0``."""
        return tf.math.softplus(tf.convert_to_tensor(self._alpha_unconstrained))

    def beta(self) -> tf.Tensor:
        """``beta = -alpha + softplus(beta_unconstrained) > -alpha``."""
        return tf.math.softplus(tf.convert_to_tensor(self._beta_unconstrained)) - self.alpha()

    # ----------------------------------------------------------------------------- helpers
    def _params(self):
        """Returns ``(x0, alpha, alpha + beta)``; ``alpha + beta = softplus(beta_u) > 0``."""
        x0 = tf.convert_to_tensor(self._x0)
        alpha = self.alpha()
        # alpha + beta is formed directly, never as alpha + (-alpha + ...), so it stays
        # positive and exact when beta is close to -alpha.
        alpha_plus_beta = tf.math.softplus(tf.convert_to_tensor(self._beta_unconstrained))
        return x0, alpha, alpha_plus_beta

    @staticmethod
    def _log_det(radius, alpha, alpha_plus_beta, event_size):
        """``log det J`` as a function of ``r = ||x - x0||``; eq. (19)."""
        # With d = x - x0 and grad r = d / r,
        #   J = (1 + beta h) I + beta h'(r) d d^T / r.
        # Its eigenvalues are 1 + beta h on the (D - 1)-dimensional complement of d and
        # 1 + beta h + beta h'(r) r along d, hence
        #   log det J = (D - 1) log(1 + beta h) + log(1 + beta h + beta h'(r) r).
        # Both factors are ratios of sums of positive terms (alpha > 0, alpha + beta > 0):
        #   1 + beta h = (alpha + beta + r) / (alpha + r),
        #   1 + beta h + beta h' r = 1 + alpha beta / (alpha + r)^2
        #                          = (r (2 alpha + r) + alpha (alpha + beta)) / (alpha + r)^2.
        log_alpha_plus_r = tf.math.log(alpha + radius)
        log_radial_scale = tf.math.log(alpha_plus_beta + radius) - log_alpha_plus_r
        log_along = (
            tf.math.log(radius * (2.0 * alpha + radius) + alpha * alpha_plus_beta)
            - 2.0 * log_alpha_plus_r
        )
        return (event_size - 1.0) * log_radial_scale + log_along

    @staticmethod
    def _event_size(x):
        return tf.cast(tf.shape(x)[-1], x.dtype)

    # ------------------------------------------------------------------------- bijector hooks
    def _forward(self, x):
        x0, alpha, alpha_plus_beta = self._params()
        offset = x - x0
        radius = _norm(offset)
        # 1 + beta h = (alpha + beta + r) / (alpha + r).
        radial_scale = (alpha_plus_beta + radius) / (alpha + radius)
        return x0 + radial_scale[..., tf.newaxis] * offset

    def _inverse_radius(self, y):
        x0, alpha, alpha_plus_beta = self._params()
        offset_y = y - x0
        radius_y = _norm(offset_y)
        # r_y = r (alpha + beta + r) / (alpha + r)  <=>  r^2 + p r - alpha r_y = 0 with
        # p = alpha + beta - r_y. The roots have product -alpha r_y <= 0; the non-negative one
        # is r = (-p + sqrt(p^2 + 4 alpha r_y)) / 2, written without cancellation as
        # 2 alpha r_y / (p + sqrt(...)) when p >= 0.
        p = alpha_plus_beta - radius_y
        sqrt_discriminant = tf.sqrt(tf.square(p) + 4.0 * alpha * radius_y)
        p_nonnegative = p >= 0
        denominator = p + sqrt_discriminant
        safe_denominator = tf.where(p_nonnegative, denominator, tf.ones_like(denominator))
        radius = tf.where(
            p_nonnegative,
            2.0 * alpha * radius_y / safe_denominator,
            0.5 * (sqrt_discriminant - p),
        )
        return x0, offset_y, radius, alpha, alpha_plus_beta

    def _inverse(self, y):
        x0, offset_y, radius, alpha, alpha_plus_beta = self._inverse_radius(y)
        # x - x0 = (y - x0) / (1 + beta h(r)) = (y - x0) (alpha + r) / (alpha + beta + r).
        inverse_scale = (alpha + radius) / (alpha_plus_beta + radius)
        return x0 + inverse_scale[..., tf.newaxis] * offset_y

    def _forward_log_det_jacobian(self, x):
        x0, alpha, alpha_plus_beta = self._params()
        radius = _norm(x - x0)
        return self._log_det(radius, alpha, alpha_plus_beta, self._event_size(x))

    def _inverse_log_det_jacobian(self, y):
        _, _, radius, alpha, alpha_plus_beta = self._inverse_radius(y)
        return -self._log_det(radius, alpha, alpha_plus_beta, self._event_size(y))
