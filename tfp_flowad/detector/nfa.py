"""``NFADetector``: the paper's Algorithm 1 behind the PyOD / scikit-learn detector API.

``fit`` runs the stages of ``tfp_flowad.detector.stages`` in order, makes the choices of
``tfp_flowad.detector.selection`` on held-out rows, and keeps every fitted part as an attribute
ending in ``_``; scoring is ``tfp_flowad.detector.scoring``, persistence
``tfp_flowad.detector.persistence``.
"""

import inspect
import sys
import time

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from tfp_flowad.base import BaseDetector, training_threshold
from tfp_flowad.io.training_rows import DEFAULT_MAX_ROWS, training_rows
from tfp_flowad.nn.mlp import mean_of_classifiers
from tfp_flowad.seeding import seeded
from tfp_flowad.tracing import releasing_finished_traces
from tfp_flowad.validation import check_min_normal_rows

from . import persistence, selection, stages
from .parameters import PARAMETERS, args_section, check_parameters, resolve_auto
from .scoring import SCORES, anomaly_score, check_score_kind, score_terms

__all__ = ["NFADetector"]

_CLASS_DOC = """Normalizing-flow anomaly detector (Ryzhikov et al., arXiv 1912.09323, Algorithm 1).

    1. a flow (MAF by default) is fitted to the normal rows by maximum likelihood with the
       Jacobian regulariser, eq. (41);
    2. it is distilled into an IAF, eq. (34) (skipped for flows that sample fast themselves);
    3. surrogate anomalies are drawn from the base Gaussian's tail pushed through the IAF, and
       uniformly from a box around the normal rows;
    4. a classifier is trained with the (1 + eps)-class loss, eq. (6), on the normal rows, the
       known anomalies and the surrogates.

    Scores (``score_kind``; higher = more abnormal): ``"density"`` is ``-log p(x)`` of the flow,
    ``"classifier"`` is ``-logit f(x)`` of the classifier (the paper's output), ``"combined"``
    (the default) adds the two, and the distance to the nearest of ``neighbour_rows`` normal
    training rows, after scaling each by its median and spread on the normal training rows
    (``tfp_flowad.detector.scoring``); ``"student"`` is one small network fitted last to rank
    rows like the combined score, for serving at the cost of one network.

    ``X`` is a numpy array or a pandas DataFrame with numeric and string columns; ``y = 1``
    marks a known anomaly, ``y = 0`` a normal row, ``fit(X)`` alone is one-class.

    {args}

    Attributes:
        decision_scores_: the training rows' scores of ``score_kind``; ``labels_``: their 0 / 1
            flags; ``threshold_``: the score above which ``predict`` says 1 (the
            ``1 - contamination`` quantile of ``decision_scores_``); ``thresholds_`` and
            ``training_scores_``: the same for every score kind.
        encoder_: the ``TabularEncoder`` learned on the normal training rows.
        flow_: the fitted flow; ``sampler_flow_``: the flow that samples surrogates (the IAF).
        classifier_: the classifier network, ``[n, k]`` logits of ``P(C+ | x)`` (``k = 2`` with
            the trees beside the MLP), averaged by ``mean_logit``.
        neighbours_: the neighbour term's ``NearestReference`` network (``None`` without it).
        student_: the ``"student"`` score's network (``None`` with ``student_steps = 0``).
        score_scaling_: ``{{term: [median, spread, weight]}}`` of the combined score.
        density_auc_, neighbour_auc_: ROC AUC of the known anomalies against held-out normal
            rows under the density and the neighbour term (``None`` one-class).
        eps_: the ``eps`` the classifier trained with (see ``classifier_adaptive_eps``).
        density_scale_: the multiplier of the density's weight (1 unless chosen on held-out
            known anomalies); ``density_scale_aucs_``: held-out ROC AUC of each candidate.
        classifier_model_: the classifier kept (``"mlp"`` or ``"mlp+boosted_trees"``, ...);
            ``classifier_model_aucs_``: held-out ROC AUC of each candidate.
        history_: Keras histories per stage; ``fit_seconds_``: wall seconds per stage.

    Examples:
        >>> detector = NFADetector(random_state=0).fit(X_train, y_train)  # doctest: +SKIP
        >>> scores = detector.decision_function(X_test)  # doctest: +SKIP
    """


class NFADetector(BaseDetector):
    #: the flow models normal rows, so their statistics define the features; known anomalies
    #: (which may outnumber them) must not move the scaling.
    encode_from_normal_rows = True

    def __init__(self, **params):
        unknown = sorted(set(params) - {p.name for p in PARAMETERS})
        if unknown:
            raise TypeError(f"NFADetector got unexpected parameters {unknown}")
        for parameter in PARAMETERS:
            setattr(self, parameter.name, params.get(parameter.name, parameter.default))

    # ----------------------------------------------------------------------------------- fit
    def _fit_rows(self, frame: pd.DataFrame, y: np.ndarray) -> None:
        """Algorithm 1 on the encoded training rows (``BaseDetector.fit`` sets the global seeds
        of ``random_state`` around it); sets every fitted attribute."""
        params = self.get_params()
        seed = self.random_state
        rng = np.random.default_rng(seed)
        normal, validation, anomaly = self._training_rows(frame, y, rng)
        p = {**params, **resolve_auto(params, len(anomaly))}
        encoder = self.encoder_
        self.history_, self.fit_seconds_ = {}, {}

        self.flow_ = self._stage("flow", stages.fit_flow, encoder, normal, validation, seed, p)
        self.sampler_flow_ = self._stage(
            "distillation", stages.fit_sampler_flow, self.flow_, encoder, seed, p
        )
        clean_normal = encoder.finish(normal[: 2**15]).numpy()
        held_out = encoder.finish(validation[: 2**15]).numpy() if len(validation) else clean_normal
        known = encoder.finish(anomaly).numpy()

        # The density's separation of the known anomalies: its weight and eps_.
        temperature = self.density_temperature
        self.density_auc_ = selection.density_auc(self.flow_, held_out, known, temperature)
        normal_density = selection.density_scores(self.flow_, clean_normal, temperature)
        self.neighbours_, self.neighbour_auc_, normal_neighbour = None, None, None
        if self.neighbour_rows and len(clean_normal) >= 2:
            self.neighbours_, self.neighbour_auc_, normal_neighbour = self._timed(
                "neighbours",
                selection.fit_neighbours,
                clean_normal,
                held_out,
                known,
                self.neighbour_rows,
            )
        self.eps_ = self.classifier_eps
        if self.classifier_adaptive_eps and self.density_auc_ is not None:
            separation = selection.separation_weight(self.density_auc_)
            self.eps_ = 1.0 - (1.0 - self.classifier_eps) * separation

        # Step 4: each classifier, with a second one without the held-out known anomalies.
        held = selection.selection_rows(
            len(anomaly), rng, self.selection_min_known, self.selection_share
        )
        fitted = {}
        for part, fit_part, stage in (
            ("mlp", stages.fit_mlp_classifier, "classifier"),
            ("boosted_trees", stages.fit_tree_classifier, "boosted_trees"),
        ):
            if part in p["classifier_parts"]:
                fitted[part] = self._stage(
                    stage,
                    fit_part,
                    encoder,
                    normal,
                    anomaly,
                    self.sampler_flow_,
                    seed,
                    p,
                    self.eps_,
                    held,
                    history_key="classifier",
                )
        candidates = {"+".join(p["classifier_parts"]): _mean_of_pairs(fitted.values())}
        if self.classifier_model == "auto" and held is not None and len(fitted) > 1:
            candidates["mlp"] = fitted["mlp"]
        chosen = next(iter(candidates))
        self.density_scale_, self.density_scale_aucs_, self.classifier_model_aucs_ = 1.0, None, None
        if held is not None:
            context = dict(
                flow=self.flow_,
                temperature=temperature,
                held_out=held_out,
                clean_normal=clean_normal,
                normal_density=normal_density,
                density_auc_value=self.density_auc_,
                classifier_weight=p["combined_classifier_weight"],
            )
            chosen, self.classifier_model_aucs_, (self.density_scale_, self.density_scale_aucs_) = (
                self._timed(
                    "weight_selection",
                    selection.select_classifier,
                    {name: second for name, (_, second) in candidates.items()},
                    known[held],
                    context,
                )
            )
        self.classifier_model_ = chosen
        self.classifier_ = candidates[chosen][0]
        self.score_scaling_ = selection.score_scaling(
            normal_density,
            anomaly_score(clean_normal, "classifier", None, self.classifier_).numpy(),
            p["combined_classifier_weight"],
            self.density_auc_,
            normal_neighbour,
            self.neighbour_auc_,
            self.density_scale_,
        )
        self._scorers = {}
        self.student_ = None
        if self.student_steps:
            self._fit_student(normal, anomaly, seed, p)

    def _check_parameters(self) -> None:
        check_parameters(self.get_params())

    def _training_rows(self, frame, y, rng):
        """``(normal, validation, anomaly)`` raw matrices: the normal rows shuffled by ``rng``,
        their first ``validation_fraction`` held out."""
        raw = self.encoder_.raw_matrix(frame)
        normal = raw[y == 0][rng.permutation(int((y == 0).sum()))]
        n_val = int(len(normal) * self.validation_fraction)
        return normal[n_val:], normal[:n_val], raw[y == 1]

    def _fit_student(self, normal, anomaly, seed, p) -> None:
        def combined(features):
            return self._feature_scores(features, "combined")

        self.student_ = self._stage(
            "score_student",
            stages.fit_student,
            self.encoder_,
            normal,
            anomaly,
            self.sampler_flow_,
            seed,
            p,
            combined,
        )

    def _timed(self, stage: str, function, *args, report: bool = True):
        """``function(*args)``, its wall seconds recorded in ``fit_seconds_[stage]`` (and, with
        ``verbose=1`` and ``report``, written as one line on stderr)."""
        start = time.perf_counter()
        result = function(*args)
        self.fit_seconds_[stage] = time.perf_counter() - start
        if report:
            self._report(stage)
        return result

    def _report(self, stage: str) -> None:
        """With ``verbose=1``, the line ``<stage>: done in <seconds> s`` on stderr."""
        if self.verbose == 1:
            print(f"{stage}: done in {self.fit_seconds_[stage]:.1f} s", file=sys.stderr)

    def _stage(self, stage: str, function, *args, history_key: str | None = None):
        """A training stage: ``function(*args)`` returns ``(part, history)``; the history is
        kept in ``history_[history_key or stage]`` (when not empty), the part returned. Stages
        that train with Keras show their own progress line (``StageProgress``)."""
        part, history = self._timed(stage, function, *args, report=False)
        if not history:
            self._report(stage)
        if history:
            self.history_[history_key or stage] = history
        return part

    @releasing_finished_traces
    def refit_student(self, X, y=None, *, max_rows: int = DEFAULT_MAX_ROWS) -> "NFADetector":
        """Fits the ``"student"`` score's network again on the training rows ``X`` (labels
        ``y``, ``max_rows``: as given to ``fit``, files and datasets too, which then yield the
        same sample); every other stage stays as fitted.

        For tuning what a SavedModel serves: change ``student_steps`` or
        ``student_target_quantile`` (``set_params``), then call this. The student's training
        scores and threshold are recomputed on the sampled rows.
        """
        self._check_parameters()
        if not self.student_steps:
            raise ValueError("refit_student needs student_steps >= 1; got 0")
        sample = training_rows(
            X,
            y,
            max_rows=max_rows,
            random_state=self.random_state,
            categorical_columns=self.categorical_columns,
        )
        frame, y = self._check_rows(sample.frame), sample.labels
        check_min_normal_rows(y, self.min_normal_rows, "y")
        params = self.get_params()
        seed = self.random_state
        normal, _, anomaly = self._training_rows(frame, y, np.random.default_rng(seed))
        with seeded(seed):
            self._fit_student(
                normal, anomaly, seed, {**params, **resolve_auto(params, len(anomaly))}
            )
        self._scorers = {}  # the traced scoring functions hold the networks they were traced with
        self.training_scores_["student"] = self._score_rows(frame, ("student",))["student"]
        self.thresholds_["student"] = training_threshold(
            self.training_scores_["student"], self.contamination
        )
        self.score_kind = self.score_kind  # refreshes threshold_ and decision_scores_
        return self

    # ------------------------------------------------------------------------------- scoring
    @property
    def score_kind(self) -> str:
        """What ``decision_function``, ``predict`` and the export use. Setting it on a fitted
        detector switches ``threshold_`` and ``decision_scores_`` to that score's own."""
        return self._score_kind

    @score_kind.setter
    def score_kind(self, kind: str) -> None:
        if hasattr(self, "thresholds_"):
            self._check_available(kind)
            self.threshold_ = self.thresholds_[kind]
            if hasattr(self, "training_scores_"):
                self.decision_scores_ = self.training_scores_[kind]
        self._score_kind = kind

    def _check_available(self, kind: str) -> None:
        check_score_kind(kind)
        if kind not in self.thresholds_:
            raise ValueError(
                f"score_kind {kind!r} is not available in this detector (fitted with "
                "student_steps=0); fit it again to use that score"
            )

    def available_scores(self) -> tuple[str, ...]:
        """The score kinds this fitted detector has: ``SCORES``, less ``"student"`` where no
        student was fitted."""
        return tuple(k for k in SCORES if k != "student" or self.student_ is not None)

    def _set_training_scores(self, frame: pd.DataFrame) -> None:
        """Training-row scores and thresholds of every score kind, so ``score_kind`` can
        change after ``fit``."""
        self.training_scores_ = self._score_rows(frame, self.available_scores())
        self.thresholds_ = {
            kind: training_threshold(scores, self.contamination)
            for kind, scores in self.training_scores_.items()
        }
        self.score_kind = self.score_kind  # sets threshold_ and decision_scores_

    @releasing_finished_traces
    def anomaly_scores(self, X, kinds=None) -> dict[str, np.ndarray]:
        """``{kind: scores}`` of the rows ``X`` for each of ``kinds`` (default: every kind of
        ``available_scores()``), computed in one pass; higher = more abnormal."""
        kinds = self.available_scores() if kinds is None else tuple(kinds)
        for kind in kinds:
            self._check_available(kind)
        return self._score_rows(self._check_rows(X), kinds)

    def scoring_function(self, kind: str | tuple[str, ...] | None = None):
        """The ``tf.function`` from raw column tensors (``encoder_.input_signature()``) to the
        anomaly scores of ``kind`` (default ``score_kind``), or to a dict of them for a tuple of
        kinds; traced once per ``kind`` and kept. ``decision_function`` and the SavedModel
        export run it."""
        key = self.score_kind if kind is None else kind
        if key not in self._scorers:
            kinds = key if isinstance(key, tuple) else (key,)
            for name in kinds:
                check_score_kind(name)
            encoder = self.encoder_
            parts = self._score_parts()

            @tf.function(input_signature=[encoder.input_signature()], autograph=False)
            def score(inputs):
                terms = score_terms(encoder(inputs), kinds, **parts)
                return terms if isinstance(key, tuple) else terms[key]

            # Each detector traces its own functions once; without this, TensorFlow counts
            # the traces of every detector's function together and warns of retracing.
            score._omit_frequent_tracing_warning = True
            self._scorers[key] = score
        return self._scorers[key]

    def _score_parts(self) -> dict:
        """The fitted networks and constants ``score_terms`` takes, by keyword."""
        return dict(
            flow=self.flow_,
            classifier=self.classifier_,
            scaling=self.score_scaling_,
            temperature=self.density_temperature,
            neighbours=self.neighbours_,
            student=self.student_,
        )

    def _feature_scores(self, features: np.ndarray, kind: str, batch_size=65536) -> np.ndarray:
        """Scores of ``kind`` of encoded ``features``, in batches, by one traced function."""
        parts = self._score_parts()
        spec = tf.TensorSpec([None, features.shape[1]], tf.float32)
        score = tf.function(lambda rows: anomaly_score(rows, kind, **parts), [spec])
        score._omit_frequent_tracing_warning = True
        return np.concatenate(
            [
                score(features[start : start + batch_size]).numpy()
                for start in range(0, len(features), batch_size)
            ]
        )

    def _score_rows(self, frame: pd.DataFrame, kind=None, batch_size=65536):
        """Scores of ``frame``'s rows by ``scoring_function(kind)``, as float64 arrays."""
        score = self.scoring_function(kind)
        parts = [
            score(self.encoder_.to_tensors(frame.iloc[start : start + batch_size]))
            for start in range(0, len(frame), batch_size)
        ]
        return keras.tree.map_structure(
            lambda *batches: np.concatenate([b.numpy() for b in batches]).astype(np.float64),
            *parts,
        )

    def log_prob(self, X) -> np.ndarray:
        """``log p(x)`` of the fitted flow at the encoded features of ``X``."""
        features = self.encoder_.transform(self._check_rows(X))
        return self.flow_.log_prob(features).numpy().astype(np.float64)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_scorers"] = {}  # traced functions do not pickle; they are traced again
        return state

    # --------------------------------------------------------------------------- persistence
    def save(self, path):
        """Writes the fitted detector to the directory ``path``, atomically; see
        ``tfp_flowad.detector.persistence.save``."""
        return persistence.save(self, path)

    @classmethod
    def load(cls, path) -> "NFADetector":
        """Reads a directory written by ``save``; see ``tfp_flowad.detector.persistence.load``."""
        return persistence.load(cls, path)

    def export_saved_model(self, path, version: int | None = None):
        """A SavedModel for TF Serving at ``path/<version>/``; see ``tfp_flowad.export``."""
        from tfp_flowad.export import export_saved_model

        return export_saved_model(self, path, version)


NFADetector.__doc__ = _CLASS_DOC.format(args=args_section().replace("\n", "\n    "))
NFADetector.__init__.__signature__ = inspect.Signature(
    [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    + [
        inspect.Parameter(p.name, inspect.Parameter.KEYWORD_ONLY, default=p.default)
        for p in PARAMETERS
    ]
)


def _mean_of_pairs(pairs):
    """``(classifier, second classifier or None)`` pairs of several classifier models as one
    pair: the classifiers' logits averaged (``mean_of_classifiers``), the second ones' alike."""
    firsts, seconds = zip(*pairs, strict=True)
    if len(firsts) == 1:
        return firsts[0], seconds[0]
    second = None if seconds[0] is None else mean_of_classifiers(list(seconds))
    return mean_of_classifiers(list(firsts)), second
