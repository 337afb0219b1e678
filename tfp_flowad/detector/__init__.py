"""``NFADetector`` and its parts, one module a job.

- ``parameters``: the constructor's parameters, declared once, grouped by stage, checked
  before any training; ``"auto"`` values resolved in one place;
- ``stages``: the stages of Algorithm 1 (flow, distillation, surrogates, classifier, student),
  each returning its fitted part;
- ``selection``: the choices made on held-out rows and the combined score's scaling;
- ``scoring``: the scores of encoded features (density, classifier, combined, student);
- ``persistence``: saving and loading a fitted detector;
- ``nfa``: the ``NFADetector`` class that users see.
"""

from .nfa import NFADetector
from .parameters import CLASSIFIER_MODELS, PARAMETERS, USER_FLOWS
from .scoring import SCORES, anomaly_score, combine_scores, score_terms
from .selection import DENSITY_SCALES, choose_near_default

__all__ = [
    "NFADetector",
    "PARAMETERS",
    "CLASSIFIER_MODELS",
    "USER_FLOWS",
    "SCORES",
    "DENSITY_SCALES",
    "anomaly_score",
    "combine_scores",
    "score_terms",
    "choose_near_default",
]
