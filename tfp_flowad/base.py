"""The detector contract shared by ``NFADetector`` and every baseline.

It follows the convention users know from PyOD: detectors are scikit-learn estimators
(``get_params`` / ``set_params``, ``sklearn.base.clone``, grid search with a scorer that
calls ``decision_function``), ``fit(X, y=None)`` returns self, ``y = 1`` marks a known
anomaly and ``y = 0`` a normal row, ``decision_function(X)`` grows with abnormality, and
``predict(X)`` thresholds it at the ``(1 - contamination)`` quantile of the training rows'
scores. Learned attributes end in ``_``. ``X`` may be a 2-D array or a DataFrame
with numeric and categorical columns: a ``TabularEncoder`` learned on the training rows turns
it into features. ``fit`` also takes files, folders, globs and ``tf.data`` datasets, read as a
stream, and trains on a uniform sample of at most ``max_rows`` normal rows
(``tfp_flowad.io.training_rows``).
"""

import numpy as np
import pandas as pd
from scipy import special
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError

from tfp_flowad.io.training_rows import DEFAULT_MAX_ROWS, training_rows
from tfp_flowad.preprocessing import TabularEncoder, as_frame
from tfp_flowad.seeding import seeded
from tfp_flowad.tracing import releasing_finished_traces
from tfp_flowad.validation import check_min_normal_rows

__all__ = ["BaseDetector", "scale_training_lengths", "training_threshold"]

#: constructor arguments that set a training length besides those ending in ``epochs``.
_LENGTH_PARAMS = (
    "distillation_steps",
    "flow_min_steps",
    "classifier_min_steps",
    "student_steps",
)


def scale_training_lengths(detector: "BaseDetector", scale: float) -> "BaseDetector":
    """A new unfitted detector like ``detector`` with every training length times ``scale``.

    Training lengths are the integer constructor arguments whose name ends in ``epochs``, and
    those of ``_LENGTH_PARAMS``; each is rounded and kept at least 1, except that 0 (a stage
    turned off) stays 0 (for a quick look or a test run: ``scale=0.05``).
    """
    params = detector.get_params()
    scaled = {
        name: max(1, round(value * scale)) if value else 0
        for name, value in params.items()
        if (name.endswith("epochs") or name in _LENGTH_PARAMS) and isinstance(value, int)
    }
    return clone(detector).set_params(**scaled)


def training_threshold(training_scores: np.ndarray, contamination: float) -> float:
    """The score above which ``predict`` says 1: the ``1 - contamination`` quantile."""
    return float(np.quantile(training_scores, 1.0 - contamination))


class BaseDetector(BaseEstimator):
    """Base class of all detectors.

    Subclasses implement ``_fit(X, y)`` and ``_score(X)`` on encoded float matrices (or override
    ``_fit_rows`` / ``_score_rows`` to see the raw rows); this class validates inputs, learns
    the encoder, and sets ``n_features_in_``, ``feature_names_in_``, ``decision_scores_`` and
    ``threshold_``.

    Args:
        contamination: expected fraction of anomalies; sets ``threshold_`` for ``predict``.
        random_state: integer seed; the same seed gives the same scores on CPU.
        categorical_columns: names of categorical columns, or ``"auto"`` (string-like dtypes).
        log_transform: ``"auto"``, ``True`` or ``False``: ``log1p`` of heavy-tailed columns
            (see ``TabularEncoder.fit``).
    """

    #: fewest normal rows that ``fit`` accepts.
    min_normal_rows: int = 10
    #: learn the encoder (scaling, vocabularies) from the normal rows only.
    encode_from_normal_rows: bool = False

    def __init__(
        self,
        contamination: float = 0.01,
        random_state: int | None = None,
        categorical_columns="auto",
        log_transform="auto",
    ):
        self.contamination = contamination
        self.random_state = random_state
        self.categorical_columns = categorical_columns
        self.log_transform = log_transform

    @releasing_finished_traces
    def fit(self, X, y=None, *, max_rows: int = DEFAULT_MAX_ROWS) -> "BaseDetector":
        """Fits on rows ``X``; ``y`` marks known anomalies with 1 (``None``: one-class).

        Args:
            X: the training rows: a 2-D array or a DataFrame; or a source read as a stream in
                one pass with bounded memory: a CSV (also ``.csv.gz``) or Parquet file, a
                folder or a glob of them, a list of those, or a ``tf.data.Dataset`` of dicts
                ``{column: tensor}`` (scalars, or vectors of a batch of rows); see
                ``tfp_flowad.io.training_rows``.
            y: 0 / 1 labels of the rows in memory; or the name of the label column of a
                source (or of a DataFrame), 1 = known anomaly, 0 = normal; ``None``: every
                row is normal.
            max_rows: the most normal rows trained on (an integer >= 1, default 1,000,000).
                With more, a uniform sample of ``max_rows`` of them is drawn (reservoir
                sampling, seeded by ``random_state``), and up to ``MAX_ANOMALY_ROWS`` known
                anomalies apart from them; the sample does not depend on whether the rows
                come from memory or a file, nor on how they are read. The encoder is fitted
                on the sampled rows, and ``decision_scores_`` (and ``labels_``) are theirs.
        """
        self._check_parameters()
        seed = None if self.random_state is None else int(self.random_state)
        sample = training_rows(
            X,
            y,
            max_rows=max_rows,
            random_state=seed,
            categorical_columns=self.categorical_columns,
        )
        frame, y = sample.frame, sample.labels
        check_min_normal_rows(y, self.min_normal_rows, "y")
        rows = frame[y == 0] if self.encode_from_normal_rows else frame
        self.encoder_ = TabularEncoder.fit(rows, sample.categorical_columns, self.log_transform)
        self.feature_names_in_ = list(self.encoder_.input_columns)
        self.n_features_in_ = len(self.feature_names_in_)
        # Every global seed set for the fit is put back afterwards (``seeded``).
        with seeded(seed):
            self._fit_rows(frame, y)
        self._set_training_scores(frame)
        return self

    def _check_parameters(self) -> None:
        """Raises ``ValueError`` naming the first invalid parameter; ``fit`` calls it before
        anything else."""
        if not 0.0 < self.contamination < 0.5:
            raise ValueError(f"contamination must be in (0, 0.5); got {self.contamination!r}")

    def _set_training_scores(self, frame: pd.DataFrame) -> None:
        """Sets ``decision_scores_`` (the training rows' scores) and ``threshold_``.

        ``threshold_`` is their ``1 - contamination`` quantile.
        """
        self.decision_scores_ = self._score_rows(frame)
        self.threshold_ = training_threshold(self.decision_scores_, self.contamination)

    @releasing_finished_traces
    def decision_function(self, X) -> np.ndarray:
        """Anomaly scores of ``X``, ``[n_rows]``, higher = more abnormal."""
        return self._score_rows(self._check_rows(X))

    def predict(self, X) -> np.ndarray:
        """0 (normal) / 1 (anomaly) for each row: score above ``threshold_``."""
        return (self.decision_function(X) > self.threshold_).astype(np.int64)

    def fit_predict(self, X, y=None) -> np.ndarray:
        """Fits on ``X`` (and ``y``) and returns ``labels_``, the training rows' 0/1 flags."""
        return self.fit(X, y).labels_

    @property
    def labels_(self) -> np.ndarray:
        """0 / 1 for each training row: its score (``decision_scores_``) above ``threshold_``."""
        return (self.decision_scores_ > self.threshold_).astype(np.int64)

    def predict_proba(self, X) -> np.ndarray:
        """``[n, 2]``: ``[P(normal), P(anomaly)]`` of each row, from ``decision_function``.

        ``P(anomaly) = sigmoid((s - threshold_) / iqr)``, ``s`` the row's score and ``iqr``
        the interquartile range of the training rows' scores (``decision_scores_``): 1/2 at
        the threshold, so ``predict`` says 1 exactly where ``P(anomaly) > 1/2``.
        """
        scores = self.decision_function(X)
        low, high = np.quantile(self.decision_scores_, [0.25, 0.75])
        scale = max(float(high - low), 1e-12)
        p_anomaly = special.expit((scores - self.threshold_) / scale)
        return np.stack([1.0 - p_anomaly, p_anomaly], axis=1)

    def _check_rows(self, X) -> pd.DataFrame:
        if not hasattr(self, "threshold_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit(X, y) first")
        return as_frame(X, "X", self.feature_names_in_)

    def _fit_rows(self, frame: pd.DataFrame, y: np.ndarray) -> None:
        self._fit(self.encoder_.transform(frame), y)

    def _score_rows(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self._score(self.encoder_.transform(frame)), dtype=np.float64)

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        """Learns from encoded float32 ``X`` and 0/1 labels ``y`` (subclasses implement it)."""
        raise NotImplementedError(f"{type(self).__name__} must implement _fit or _fit_rows")

    def _score(self, X: np.ndarray) -> np.ndarray:
        """Scores encoded ``X``; higher = more abnormal (subclasses implement it)."""
        raise NotImplementedError(f"{type(self).__name__} must implement _score or _score_rows")
