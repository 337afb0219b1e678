"""The detector's scores of encoded features: density, classifier, combined and student.

Every function here is pure: it takes the fitted parts (flow, classifier, scaling, neighbour
references, student) and returns tensors, so the same code serves ``decision_function``, the
choices made on held-out rows during ``fit`` and the exported SavedModel.

- ``density = -log p_T(x)``: the flow's log-density (eq. 39) with its base Gaussian's scale set
  to the temperature ``T`` (``Flow.log_prob``; ``T = 1`` is the flow's own density);
- ``classifier = -logit f(x)``: ``f(x)`` the (1 + eps)-class classifier's estimate of
  ``P(C+ | x)`` (eq. 6), the mean logit of the MLP and the trees where both are kept;
- ``combined = w_d z_d + w_n z_n + w_c softplus(z_c)``, ``z_k = (score_k - median_k) / spread_k``
  with ``scaling[k] = [median_k, spread_k, w_k]`` measured on the normal training rows
  (``tfp_flowad.detector.selection.score_scaling``); ``score_n = d(x)`` is the distance to the
  nearest reference normal row (``NearestReference``), left out when there are no references.
  The softplus bounds how far the classifier can pull a row towards "normal" (to
  ``-w_c log 2``), so a region the classifier wrongly extrapolates as normal keeps the
  density's verdict;
- ``student = logit_S(x)``: the logit of the network fitted to rank rows like the combined
  score (``tfp_flowad.training.students.fit_score_student``).

Rows so far off that a network or the flow's inverse overflows score ``OVERFLOW_SCORE``, as
abnormal as it gets, so no score is NaN or infinite.
"""

import keras
import numpy as np
import tensorflow as tf

from tfp_flowad.nn.mlp import mean_logit

__all__ = [
    "SCORES",
    "OVERFLOW_SCORE",
    "anomaly_score",
    "score_terms",
    "combine_scores",
    "median_and_spread",
    "neighbour_distances",
    "check_score_kind",
]

#: the score kinds, in the order ``available_scores`` lists them.
SCORES = ("combined", "density", "classifier", "student")
#: the score of a row where the density, neighbour or a network's output is not finite.
OVERFLOW_SCORE = 1e30


def check_score_kind(kind) -> None:
    """Raises ``ValueError`` unless ``kind`` is one of ``SCORES``."""
    if kind not in SCORES:
        raise ValueError(f"score_kind must be one of {list(SCORES)}; got {kind!r}")


def anomaly_score(features, kind: str, *parts, **named_parts) -> tf.Tensor:
    """Anomaly scores of ``kind`` (higher = more abnormal) of encoded ``features``; the fitted
    parts are passed on to ``score_terms`` as given."""
    return score_terms(features, (kind,), *parts, **named_parts)[kind]


def score_terms(
    features,
    kinds,
    flow,
    classifier,
    scaling=None,
    temperature: float = 1.0,
    neighbours=None,
    student=None,
) -> dict[str, tf.Tensor]:
    """``{kind: scores}`` for each of ``kinds`` (see the module docstring), in one pass.

    The flow, the classifier, the neighbour references and the student each run once, and only
    if one of ``kinds`` needs them.
    """
    terms = {}
    if {"density", "combined"} & set(kinds):
        terms["density"] = _finite_or_overflow(-flow.log_prob(features, temperature))
    if {"classifier", "combined"} & set(kinds):
        terms["classifier"] = _bounded(-mean_logit(classifier, features))
    if "student" in kinds:
        terms["student"] = _bounded(student(features)[:, 0])
    if "combined" in kinds:
        neighbour = None
        if neighbours is not None:
            neighbour = _finite_or_overflow(neighbours(features))
        terms["combined"] = combine_scores(
            terms["density"], terms["classifier"], scaling, neighbour
        )
    return {kind: terms[kind] for kind in kinds}


def combine_scores(density, classifier, scaling, neighbour=None) -> tf.Tensor:
    """``w_d z_d + w_n z_n + w_c softplus(z_c)`` of the density, neighbour and classifier
    scores, ``z_k = (score_k - median_k) / spread_k`` with ``scaling[k] = [median_k, spread_k,
    w_k]``; without ``neighbour``, ``w_d z_d + w_c softplus(z_c)``."""

    def standardised(name, values):
        median, spread, weight = scaling[name]
        return weight, (values - median) / spread

    w_density, z_density = standardised("density", density)
    w_classifier, z_classifier = standardised("classifier", classifier)
    combined = w_density * z_density + w_classifier * tf.math.softplus(z_classifier)
    if neighbour is not None:
        w_neighbour, z_neighbour = standardised("neighbour", neighbour)
        combined += w_neighbour * z_neighbour
    return combined


def median_and_spread(values: np.ndarray) -> tuple[float, float]:
    """The median of ``values`` and their spread: the interquartile range, or where that is 0
    (a score with many tied values, such as distances on a grid) the 5-95 % range; at least
    ``1e-6``."""
    low, median, high = np.quantile(values, [0.25, 0.5, 0.75])
    spread = high - low
    if spread <= 0:
        low, high = np.quantile(values, [0.05, 0.95])
        spread = high - low
    return float(median), float(max(spread, 1e-6))


def neighbour_distances(network: keras.Model, features: np.ndarray) -> np.ndarray:
    """The neighbour term ``d(x)`` of encoded ``features`` (``NearestReference``)."""
    return network(tf.constant(features, "float32")).numpy()


def _bounded(scores: tf.Tensor) -> tf.Tensor:
    """``scores`` with NaN set to ``OVERFLOW_SCORE`` and infinities clipped to
    ``+-OVERFLOW_SCORE``."""
    return tf.where(
        tf.math.is_nan(scores),
        OVERFLOW_SCORE,
        tf.clip_by_value(scores, -OVERFLOW_SCORE, OVERFLOW_SCORE),
    )


def _finite_or_overflow(scores: tf.Tensor) -> tf.Tensor:
    """``scores`` with every non-finite value set to ``OVERFLOW_SCORE``."""
    return tf.where(tf.math.is_finite(scores), scores, OVERFLOW_SCORE)
