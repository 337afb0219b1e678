"""The method's losses, one pure function per formula.

Every function takes tensors and returns a scalar tensor (a mean over the batch), so the same
function serves a ``train_step``, a ``test_step`` and a test. Probabilities enter as logits:
``f(x) = sigmoid(logit)`` is the classifier's estimate of ``P(C+ | x)`` (C+ = normal class), and
``log f = -softplus(-logit)``, ``log(1 - f) = -softplus(logit)`` are evaluated stably.

References:
    Ryzhikov et al., "Normalizing flows for deep anomaly detection", arXiv 1912.09323.
    Borisyak et al., "(1 + eps)-class classification", arXiv 1906.06096.
"""

import tensorflow as tf

__all__ = [
    "negative_log_likelihood",
    "jacobian_penalty",
    "distillation_kl",
    "one_plus_eps_loss",
    "energy_surrogate_term",
]


def negative_log_likelihood(log_prob: tf.Tensor) -> tf.Tensor:
    """``-L_NF = -E_x log p(x)``, eq. (38)-(39).

    Args:
        log_prob: ``[batch]`` log-densities of training rows under the flow.

    Returns:
        Scalar mean negative log-likelihood.
    """
    return -tf.reduce_mean(log_prob)


def jacobian_penalty(log_det_jacobian: tf.Tensor) -> tf.Tensor:
    """``L_J = E_{z ~ N(0, I)} [ log|det J(f|z)| ^ 2 ]``, eq. (40).

    Args:
        log_det_jacobian: ``[batch]`` values of ``log|det J(f|z)|`` of the flow's sampling map
            ``f: z -> x`` at base samples ``z ~ N(0, I)``.

    Returns:
        Scalar mean of the squared log-determinants.
    """
    return tf.reduce_mean(tf.square(log_det_jacobian))


def distillation_kl(student_log_prob: tf.Tensor, teacher_log_prob: tf.Tensor) -> tf.Tensor:
    """``KL(P_S || P_T) = E_{x ~ P_S} [ log P_S(x) - log P_T(x) ]``, eq. (34)-(36).

    The student's entropy term ``H(P_S) ~ -mean log P_S(x_i)`` (eq. 35) and the cross-entropy
    ``H(P_S, P_T) ~ -mean log P_T(x_i)`` (eq. 36) are both evaluated at the student's own samples
    ``x_i``.

    Args:
        student_log_prob: ``[batch]`` ``log P_S(x_i)`` at the student's samples.
        teacher_log_prob: ``[batch]`` ``log P_T(x_i)`` at the same samples.

    Returns:
        Scalar Monte Carlo estimate of the KL divergence.
    """
    return tf.reduce_mean(student_log_prob - teacher_log_prob)


def _weighted_mean(values: tf.Tensor, weights: tf.Tensor | None) -> tf.Tensor:
    """Mean of ``values``, weighted when ``weights`` is given; 0 for an empty batch."""
    if weights is None:
        weights = tf.ones_like(values)
    return tf.math.divide_no_nan(tf.reduce_sum(values * weights), tf.reduce_sum(weights))


def _total_weight(values: tf.Tensor, weights: tf.Tensor | None) -> tf.Tensor:
    """The weight ``_weighted_mean`` divides by: the sum of ``weights``, else the count."""
    if weights is None:
        return tf.cast(tf.size(values), values.dtype)
    return tf.reduce_sum(weights)


def one_plus_eps_loss(
    normal_logits: tf.Tensor,
    anomaly_logits: tf.Tensor,
    surrogate_logits: tf.Tensor,
    gamma: float,
    eps: float,
    surrogate_weights: tf.Tensor | None = None,
    anomaly_weights: tf.Tensor | None = None,
    part=None,
) -> dict[str, tf.Tensor]:
    """The (1 + eps)-class loss, eq. (6).

    ``L = 1/2 ( L+ + gamma * L- + (1 - eps) * L0 )`` with
    ``L+ = -E_{C+} log f``, ``L- = -E_{C-} log(1 - f)``, ``L0 = -E_{surrogate} log(1 - f)``.

    An empty ``anomaly_logits`` (the one-class case) gives ``L- = 0``. ``surrogate_weights``
    (importance weights, eq. (8)-(10)) turn ``L0`` into a weighted mean, ``anomaly_weights``
    ``L-`` (networks side by side that train on different known anomalies weight each row by
    its network's share, see ``OnePlusEpsTrainer``).

    Args:
        normal_logits: ``[n+]`` logits of normal rows.
        anomaly_logits: ``[n-]`` logits of known anomalies (``n-`` may be 0).
        surrogate_logits: ``[n0]`` logits of surrogate (generated) anomalies.
        gamma: weight of the known-anomaly term, compensating the class prior.
        eps: trade-off between the two-class (``eps = 1``) and one-class (``eps = 0``) solutions.
        surrogate_weights: optional ``[n0]`` non-negative weights of the surrogate rows.
        anomaly_weights: optional ``[n-]`` non-negative weights of the known anomalies.
        part: optional ``part(mean, total_weight)``: each term's part of a larger batch's term
            from its mean over these rows and their total weight (their count when unweighted),
            e.g. ``tfp_flowad.training.distribute.contribution`` for one replica's slice of a
            global batch; the loss then combines the parts.

    Returns:
        Dict with ``loss`` and its terms ``normal`` (L+), ``anomaly`` (L-), ``surrogate`` (L0).
    """
    normal_term = tf.reduce_mean(tf.nn.softplus(-normal_logits))
    anomaly_term = _weighted_mean(tf.nn.softplus(anomaly_logits), anomaly_weights)
    surrogate_term = _weighted_mean(tf.nn.softplus(surrogate_logits), surrogate_weights)
    if part is not None:
        normal_term = part(normal_term, _total_weight(normal_logits, None))
        anomaly_term = part(anomaly_term, _total_weight(anomaly_logits, anomaly_weights))
        surrogate_term = part(surrogate_term, _total_weight(surrogate_logits, surrogate_weights))
    loss = 0.5 * (normal_term + gamma * anomaly_term + (1.0 - eps) * surrogate_term)
    return {
        "loss": loss,
        "normal": normal_term,
        "anomaly": anomaly_term,
        "surrogate": surrogate_term,
    }


def energy_surrogate_term(
    logits: tf.Tensor, log_volume: tf.Tensor, log_normaliser: tf.Tensor
) -> tf.Tensor:
    """Importance-sampled ``L0`` of the energy (1 + eps)-class loss, eq. (10).

    With samples ``x ~ P_f = 1[x in Omega] f / (1 - f) / Z`` (eq. (9)) and ``C = 1 / |Omega|`` the
    uniform density,
    ``L0_E = -Z * E_{x ~ P_f} [ C * (1 - f(x)) / f(x) * log(1 - f(x)) ]``.
    In logits, ``(1 - f) / f = exp(-logit)``; the product ``Z * C`` is formed in log space.

    Args:
        logits: ``[n]`` classifier logits at the importance samples.
        log_volume: ``log |Omega|`` of the sampling box.
        log_normaliser: ``log Z``, an estimate of ``int_Omega f / (1 - f) dx``.

    Returns:
        Scalar estimate of ``L0_E``.
    """
    log_weights = log_normaliser - log_volume - logits
    weights = tf.stop_gradient(tf.exp(log_weights))
    return tf.reduce_mean(weights * tf.nn.softplus(logits))
