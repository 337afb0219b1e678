"""The choices ``fit`` makes on held-out rows, and the scaling of the combined score.

The flow never sees the known anomalies, so how well its density separates them from held-out
normal rows (``density_auc``) is an honest check of the paper's premise that anomalies lie where
the normal rows' density is low. That separation sets the density's weight in the combined
score (``score_scaling``) and the weight of eq. (6)'s surrogate term
(``classifier_adaptive_eps``). With enough known anomalies a
share of them is held out from a second classifier (``selection_rows``), and the density's
weight multiplier and the classifier model are chosen on them (``select_classifier``).

Every choice is ``choose_near_default``: the default unless another candidate is better by
more than a tolerance, since small differences on few rows are noise.
"""

import numpy as np
from sklearn.metrics import roc_auc_score

from tfp_flowad.nn.neighbours import nearest_reference_network

from .scoring import anomaly_score, combine_scores, median_and_spread, neighbour_distances

__all__ = [
    "DENSITY_SCALES",
    "MIN_SELECTION_ROWS",
    "choose_near_default",
    "separation_weight",
    "distance_weight",
    "score_scaling",
    "density_scores",
    "density_auc",
    "fit_neighbours",
    "selection_rows",
    "select_classifier",
]

#: the multipliers of the density's weight that ``select_density_scale`` tries.
DENSITY_SCALES = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
#: the fewest known anomalies held out for, and kept from, the second classifier.
MIN_SELECTION_ROWS = 10


def choose_near_default(
    aucs: dict[str, float], candidates: tuple[float, ...], default: float, tolerance: float = 1e-3
) -> float:
    """The one of ``candidates`` with the best ROC AUC (``aucs`` keyed by ``str(candidate)``),
    except that any within ``tolerance`` of the best and nearer ``default`` in the tuple's
    order wins."""
    best = max(aucs[str(candidate)] for candidate in candidates)
    near_best = [c for c in candidates if aucs[str(c)] >= best - tolerance]
    anchor = candidates.index(default)
    return min(near_best, key=lambda c: abs(candidates.index(c) - anchor))


def separation_weight(auc: float) -> float:
    """``clip(2 AUC - 1, 0, 1)``: 0 for a score that cannot separate two sets, 1 for one that
    separates them perfectly."""
    return float(np.clip(2.0 * auc - 1.0, 0.0, 1.0))


def distance_weight(auc: float | None, density_scale: float, paired: bool) -> float:
    """The combined-score weight of a term that measures distance from the normal rows (the
    density, the neighbour term) and separates the known anomalies from held-out normal rows
    with ROC AUC ``auc``: ``density_scale * clip(2 auc - 1, 0, 1)`` (``auc`` is ``None``
    one-class: ``density_scale``), halved when the two terms are ``paired``, so that their
    mean stands where the density alone would."""
    weight = density_scale * (1.0 if auc is None else separation_weight(auc))
    return weight / 2 if paired else weight


def score_scaling(
    density: np.ndarray,
    classifier: np.ndarray,
    classifier_weight: float,
    density_auc: float | None,
    neighbour: np.ndarray | None = None,
    neighbour_auc: float | None = None,
    density_scale: float = 1.0,
) -> dict[str, list[float]]:
    """``{kind: [median, spread, weight]}`` of each term of the combined score.

    Median and spread (``median_and_spread``) are those of ``density``, ``classifier`` and
    ``neighbour`` (``None``: no neighbour term), the scores of normal training rows. The
    classifier's weight is ``classifier_weight``; the density's and the neighbour term's,
    ``distance_weight`` of ``density_auc`` and ``neighbour_auc`` with ``density_scale``.
    """
    paired = neighbour is not None
    terms = [
        ("density", density, distance_weight(density_auc, density_scale, paired)),
        ("classifier", classifier, classifier_weight),
    ]
    if paired:
        terms.append(("neighbour", neighbour, distance_weight(neighbour_auc, density_scale, True)))
    scaling = {}
    for kind, values, weight in terms:
        median, spread = median_and_spread(values)
        scaling[kind] = [median, spread, float(weight)]
    return scaling


def density_scores(flow, features: np.ndarray, temperature: float) -> np.ndarray:
    """The density score ``-log p_T(x)`` of encoded ``features``."""
    return anomaly_score(features, "density", flow, None, temperature=temperature).numpy()


def _separation_auc(scores_of, held_out: np.ndarray, anomaly: np.ndarray) -> float:
    """ROC AUC of ``scores_of(rows)`` ranking ``anomaly`` above ``held_out`` (encoded)."""
    scores = scores_of(np.concatenate([held_out, anomaly]))
    labels = np.r_[np.zeros(len(held_out)), np.ones(len(anomaly))]
    return float(roc_auc_score(labels, scores))


def density_auc(flow, held_out, anomaly, temperature: float) -> float | None:
    """The density's ROC AUC of the known anomalies against held-out normal rows (encoded
    features), ``None`` without known anomalies."""
    if len(anomaly) == 0:
        return None
    return _separation_auc(lambda rows: density_scores(flow, rows, temperature), held_out, anomaly)


def fit_neighbours(clean_normal: np.ndarray, held_out, anomaly, rows: int):
    """The neighbour term's network over the first ``rows`` of ``clean_normal`` (normal
    training rows in a random order, the held-out ones not among them), its ROC AUC of the
    known anomalies against held-out normal rows (``None`` one-class), and its scores of
    ``clean_normal``."""
    network = nearest_reference_network(clean_normal[:rows])
    normal_neighbour = neighbour_distances(network, clean_normal)
    if len(anomaly) == 0:
        return network, None, normal_neighbour
    auc = _separation_auc(lambda r: neighbour_distances(network, r), held_out, anomaly)
    return network, auc, normal_neighbour


def selection_rows(
    n_anomalies: int, rng: np.random.Generator, min_known: int | None, share: float
) -> np.ndarray | None:
    """The mask of the known anomalies held out for ``select_classifier``: a ``share`` of them
    (at least ``MIN_SELECTION_ROWS``, and as many kept), or ``None`` with fewer than
    ``min_known`` (or ``2 * MIN_SELECTION_ROWS``)."""
    if min_known is None or n_anomalies < max(min_known, 2 * MIN_SELECTION_ROWS):
        return None
    n_held = max(MIN_SELECTION_ROWS, round(share * n_anomalies))
    n_held = min(n_held, n_anomalies - MIN_SELECTION_ROWS)
    held = np.zeros(n_anomalies, dtype=bool)
    held[rng.permutation(n_anomalies)[:n_held]] = True
    return held


def select_classifier(second_classifiers: dict, held_rows: np.ndarray, context: dict):
    """The classifier model whose combined score ranks the held-out known anomalies best
    against the held-out normal rows.

    ``second_classifiers`` maps each candidate (``"mlp+boosted_trees"`` first, then ``"mlp"``
    under ``classifier_model="auto"``; or the one configured) to its classifier trained
    without the held-out anomalies ``held_rows`` (encoded features). Each gets its own
    ``select_density_scale``; its held-out ROC AUC is that of the scale chosen. The first
    candidate keeps ties. ``context`` holds the ``flow`` and its ``temperature`` and what
    ``select_density_scale`` needs besides.

    Returns:
        The chosen name, every candidate's held-out ROC AUC, and the chosen candidate's
        ``(density scale, ROC AUC of each scale)``.
    """
    context = dict(context)
    flow, temperature = context.pop("flow"), context.pop("temperature")
    density = density_scores(flow, np.concatenate([context["held_out"], held_rows]), temperature)
    selections = {
        name: select_density_scale(classifier, held_rows, density, **context)
        for name, classifier in second_classifiers.items()
    }
    held_aucs = {name: aucs[str(scale)] for name, (scale, aucs) in selections.items()}
    chosen = max(held_aucs, key=held_aucs.get)  # the first of equals
    return chosen, held_aucs, selections[chosen]


def select_density_scale(
    classifier,
    held_rows: np.ndarray,
    density: np.ndarray,
    *,
    held_out: np.ndarray,
    clean_normal: np.ndarray,
    normal_density: np.ndarray,
    density_auc_value: float | None,
    classifier_weight: float,
):
    """The multiplier of the density's weight in the combined score, and the held-out ROC AUC
    of each candidate multiplier in ``DENSITY_SCALES``.

    ``classifier`` was trained without the known anomalies ``held_rows``; each candidate's
    combined score (with that classifier, the density as the only distance term; ``density``
    holds the density scores of ``held_out`` then ``held_rows``) ranks them against the
    ``held_out`` normal rows, and ``choose_near_default`` picks one (default 1). The held-out
    anomalies are of the known kinds only, so the density, which guards against unseen kinds,
    is never dropped on a near tie. The chosen multiplier then scales the neighbour term's
    weight alike.
    """
    rows = np.concatenate([held_out, held_rows])
    labels = np.r_[np.zeros(len(held_out)), np.ones(len(held_rows))]
    classifier_scores = anomaly_score(rows, "classifier", None, classifier)
    normal_classifier = anomaly_score(clean_normal, "classifier", None, classifier).numpy()
    scaling = score_scaling(normal_density, normal_classifier, classifier_weight, density_auc_value)
    median, spread, weight = scaling["density"]
    aucs = {}
    for scale in DENSITY_SCALES:
        scaled = {**scaling, "density": [median, spread, scale * weight]}
        scores = combine_scores(density, classifier_scores, scaled)
        aucs[str(scale)] = float(roc_auc_score(labels, scores.numpy()))
    return choose_near_default(aucs, DENSITY_SCALES, 1.0), aucs
