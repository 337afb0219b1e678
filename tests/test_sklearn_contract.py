"""The PyOD / scikit-learn contract of ``NFADetector``.

scikit-learn's own estimator checks run on a detector fitted with tiny settings. They pass class
labels ``0 .. k`` as ``y`` to every estimator that is not a classifier, which mean nothing to a
detector whose ``y`` marks known anomalies, so the checks run on ``OneClassNFADetector``, which
fits on ``X`` alone; the labelled path is covered by tests/test_detector.py.

Checks left out, and why:
- ``check_fit2d_1sample``, ``check_estimators_empty_data_messages``,
  ``check_fit2d_predict1d``, ``check_complex_data``, the sparse checks: they want
  scikit-learn's wording; our messages name the argument and the value in our own words (and a
  fit needs at least ``min_normal_rows`` normal rows, not one);
- ``check_dtype_object``: a column of strings is a categorical column here, not an error;
- ``check_methods_sample_order_invariance``: scores are float32 network outputs; a row's score
  may differ in its last bits with the batch it is computed in;
- ``check_n_features_in_after_fitting``: it wants scikit-learn's message for a wrong number of
  columns; ours names the missing or unknown columns (tests/test_detector.py);
- scikit-learn's outlier-detector checks: like PyOD, ``predict`` says 1 for an anomaly and 0
  for a normal row, and ``decision_function`` grows with abnormality (scikit-learn's outlier
  detectors say -1 / 1 and score the other way).
"""

import numpy as np
import pytest
from conftest import TINY_FIT
from sklearn.utils import estimator_checks

from tfp_flowad import NFADetector

#: smaller still: the checks fit on tables of a few dozen rows.
TINY = {
    **TINY_FIT,
    "flow_layers": 1,
    "flow_hidden_units": (4,),
    "distillation_steps": 2,
    "classifier_hidden_units": (4,),
    "classifier_epochs": 1,
    "classifier_model": "auto",
    "student_steps": 2,
    "neighbour_rows": 16,
    "batch_size": 32,
}

CHECKS = (
    "check_no_attributes_set_in_init",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
    "check_estimator_repr",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_estimators_unfitted",
    "check_fit_check_is_fitted",
    "check_estimators_fit_returns_self",
    "check_estimators_overwrite_params",
    "check_dont_overwrite_parameters",
    "check_dict_unchanged",
    "check_n_features_in",
    "check_fit_idempotent",
    "check_methods_subset_invariance",
    "check_estimators_nan_inf",
    "check_estimators_pickle",
    "check_pipeline_consistency",
    "check_fit1d",
)


class OneClassNFADetector(NFADetector):
    """``NFADetector`` fitted on ``X`` alone, whatever ``y`` a check passes."""

    def fit(self, X, y=None):
        return super().fit(X)


@pytest.mark.parametrize("check", CHECKS)
def test_scikit_learn_estimator_check(check):
    getattr(estimator_checks, check)("NFADetector", OneClassNFADetector(**TINY))


def test_fit_predict_labels_and_proba_agree():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 3)).astype(np.float32)
    X[:5] += 6.0  # a few far-off rows
    detector = NFADetector(**TINY, contamination=0.02)
    labels = detector.fit_predict(X)
    np.testing.assert_array_equal(labels, detector.labels_)
    np.testing.assert_array_equal(labels, detector.predict(X))
    assert labels.mean() == pytest.approx(0.02, abs=0.01)
    assert labels[:5].all()
    proba = detector.predict_proba(X)
    np.testing.assert_array_equal(proba[:, 1] > 0.5, labels == 1)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_array_equal(detector.decision_scores_, detector.decision_function(X))


def test_no_parameter_is_named_after_a_scikit_learn_method():
    methods = {"score", "predict", "transform", "fit", "decision_function", "score_samples"}
    assert not methods & set(NFADetector().get_params())
