"""``NFADetector``: the paper's Algorithm 1 behind a fit / decision_function / predict API.

1. fit a flow (MAF by default) to the normal rows by maximum likelihood with the Jacobian
   regulariser, eq. (41);
2. distil it into an IAF student, eq. (34) (skipped for flows that sample fast themselves);
3. sample surrogate anomalies from the Gaussian tail pushed through the sampler flow;
4. train a classifier with the (1 + eps)-class loss, eq. (6), on normal rows, known anomalies
   and fresh surrogates.

Scores (``score``): ``"classifier"`` is ``-logit f(x)``, ``f(x)`` the classifier's estimate of
``P(C+ | x)`` (the paper's output); ``"density"`` is ``-log p(x)`` of the flow fitted in step 1
(optionally at a lower temperature, ``density_temperature``);
``"combined"`` (the default) adds the two after scaling each by its median and interquartile
range on the normal training rows: the density covers every direction, the classifier brings in
the known anomalies. Beside the density, the combined score takes a second measure of distance
from the normal rows: ``d(x)``, the distance to the nearest of ``neighbour_rows`` normal
training rows kept as references; the two share the density's weight. The classifier's term
passes through a softplus, so it can raise a row's score but hardly lower it: the classifier
alone ranks attack types it never saw erratically between fits on KDD-99 (whole types scored as
more normal than the normal rows), and there the density decides. With known anomalies, the
density is weighted by how well it separates them from held-out normal rows
(``NFADetector._score_scaling``); see docs/RESULTS.md. ``"student"`` is the logit of one small
MLP fitted after everything else to rank rows like the combined score (``student_steps``):
a SavedModel serves it at the cost of a single classifier network.
"""

import json
import logging
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from sklearn.metrics import roc_auc_score

from tfp_flowad import __version__
from tfp_flowad.base import BaseDetector, training_threshold
from tfp_flowad.flows import FLOWS
from tfp_flowad.nn.mlp import make_mlp, mean_logit, mean_of_classifiers, select_members
from tfp_flowad.nn.neighbours import nearest_reference_network
from tfp_flowad.preprocessing import TabularEncoder
from tfp_flowad.sampling import MixtureSampler, TailSampler, UniformBoxSampler
from tfp_flowad.tracing import releasing_finished_traces
from tfp_flowad.training.classifier import (
    OnePlusEpsTrainer,
    distil_ensemble,
    make_classifier_dataset,
    steps_per_pass,
)
from tfp_flowad.training.distillation import Distiller, distillation_steps
from tfp_flowad.training.students import fit_score_student, perturbed_normal_rows
from tfp_flowad.training.trees import fit_boosted_trees
from tfp_flowad.validation import check_labels, check_min_normal_rows

__all__ = ["NFADetector", "anomaly_score", "score_terms"]

#: flows that sample slowly and are distilled into an IAF before tail sampling.
_DISTILLED_FLOWS = {"maf"}
#: the flows a user may choose (the IAF is only ever the distilled student).
_USER_FLOWS = sorted(set(FLOWS) - {"iaf"})
_MANIFEST = "detector.json"


class _OwnTracingFilter(logging.Filter):
    """Drops TensorFlow's "frequent retracing" warning about this module's scoring functions.

    Each fitted detector traces one function per score kind, once; TensorFlow counts the traces
    of every function made from the same code together, so after five detectors (or score
    kinds) in one process it warns of retracing that is not happening.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("tf.function retracing" in message and "NFADetector." in message)


tf.get_logger().addFilter(_OwnTracingFilter())


class NFADetector(BaseDetector):
    """Normalizing-flow anomaly detector (Ryzhikov et al., arXiv 1912.09323, Algorithm 1).

    Args:
        flow: ``"maf"`` (distilled into an IAF), ``"realnvp"``, ``"planar"`` or ``"radial"``.
        flow_layers: number of flow steps.
        flow_hidden_units: hidden widths of each step's network (MADE / coupling net).
        flow_epochs: passes over the normal rows that the flow fit plans, unless
            ``flow_min_steps`` asks for more; the held-out NLL is measured after every pass,
            and the fit stops early (``flow_patience`` passes without a better NLL) and keeps the
            best pass's weights.
        flow_min_steps: the flow fit plans at least this many steps: when ``flow_epochs``
            passes over the normal rows are fewer, it plans more passes. On a small sample
            (SUSY, 2.7k normal rows) six passes are 18 steps, which leave the flow far from
            fitted and evaluate the Jacobian penalty once (one-class ROC AUC 0.781 -> 0.799
            with 300 steps). On some small tables the short fit is the better detector
            (cardio: density 0.964 at 12 steps, 0.824 at 300 without early stopping); early
            stopping after each pass ends such fits sooner; ``0`` turns the floor off. See
            docs/RESULTS.md.
        flow_jacobian_penalty: ``lambda`` of eq. (41); 0 turns the regulariser off.
        flow_penalty_every: estimate ``L_J`` every this many steps (weighted to stay unbiased).
        flow_penalty_batch_size: base samples per ``L_J`` estimate.
        distillation_steps: steps of probability distillation.
        distillation_clipnorm: global gradient-norm clip of distillation, or ``None``. The
            student's first samples land where the teacher's ``log p`` is astronomically low,
            and unclipped gradients from them push it far off: on KDD-99 (seed 0) the final
            ``KL(student || teacher)`` is 3.0 nats with a clip of 1 and 9e10 (median 325)
            without. Off by default all the same: with the faithful student's tail samples
            the classifier ranked KDD-99's unseen attacks worse in some seeds (seed 1,
            one-class: 0.80 against 0.99), and the combined score with it (0.979 against
            0.997); see docs/RESULTS.md.
        surrogate_tail_p_value: mass of the base Gaussian's tail that surrogate anomalies come from.
        surrogate_box_share: share of surrogates drawn uniformly from a box around the normal rows, as
            in the brute-force (1 + eps)-class method; the rest come from the flow's tail.
            Tail samples alone sit on a shell around the normal rows and leave the classifier
            blind in every other direction.
        surrogate_box_margin: the box is the normal rows' bounding box widened by this multiple of its
            width on each side (in encoded features). A wide box teaches the classifier that
            far-off rows are anomalies; with a tight one (0.1) its ReLU extrapolation sent
            whole attack types (KDD-99's neptune, portsweep) to "normal" in some seeds.
        classifier_hidden_units: hidden widths of the classifier MLP.
        classifier_epochs: epochs (passes over the normal rows) of the classifier fit.
        classifier_min_steps: the classifier trains for at least this many steps, however
            few the normal rows: on a small sample (HIGGS, 8k rows) four epochs are 32 steps,
            too few to learn from the known anomalies.
        classifier_averaging: with a number ``m``, the fitted classifier's weights are an
            exponential moving average of its training iterates, ``w_avg <- m w_avg + (1 - m)
            w_t`` (Polyak averaging); ``None`` keeps the last iterate; ``"auto"``: 0.99 with
            known anomalies, the last iterate one-class. Fresh surrogates at every step make
            the last iterate noisy, and where the test anomalies lie away from every training
            row (KDD-99's attacks) that noise decides their scores: from one fitted flow
            (KDD-99 k=1, seed 4, one known row), three classifiers ranked the test set at ROC
            AUC 0.966 / 0.992 / 0.949 (the benchmark's own fit: 0.24), three averaged ones
            0.989 / 0.994 / 0.997. One-class the averaged classifier lags behind a fit that is
            still learning (ROC AUC, 5 seeds: cover 0.920 -> 0.915, cardio 0.869 -> 0.867, the
            others within 0.001), hence ``"auto"``. A short fit averages over its last third
            at most (``averaging_momentum``); the default 300 steps or more keep ``m``.
        classifier_members: the classifier is an ensemble of this many MLPs, each from its
            own initial weights and trained on its own eq. (6) with the same batches and
            surrogates; its logit is the mean of theirs. ``"auto"``: 5 with known anomalies,
            1 one-class. With few known rows one network's verdict on rows unlike any it saw
            swings from fit to fit even with ``classifier_averaging`` (KDD-99 k=1 / k=2, one
            to 784 known rows, 5 seeds, classifier alone: 0.971 / 0.935 with one network,
            0.994 / 0.993 with five; the combined score 0.9950 / 0.9952 -> 0.9967 / 0.9971).
            The members share each step's batches and surrogates, so five cost far less than
            five fits (KDD-99: 1-9 s more than one network, the more known rows the more).
            One-class keeps one network: the classifier's share of the combined score is
            small there, and five were only tried offline (docs/RESULTS.md).
        classifier_distillation_steps: with a number of steps (and an ensemble of more than
            one member), the fitted ensemble is distilled into one network of a member's shape
            (``distil_ensemble``: its logit regressed on the ensemble's over the normal rows,
            known anomalies and ``2 ** 16`` surrogates), which then serves as ``classifier_``
            in every score: a fifth of the ensemble's multiply-adds, for serving the
            classifier score at high rates. 0 (default) keeps the ensemble. With 2000 steps,
            8-15 s more per KDD-99 fit, the student detected at least as well there (5 seeds,
            combined ROC AUC, ensemble -> student: k=1 0.9967 -> 0.9973, k=2 0.9971 ->
            0.9974; classifier alone 0.994 -> 0.995), but lost up to 0.004 on most other
            tables (mammography 25%, HIGGS 1000; docs/RESULTS.md), hence off by default.
        classifier_model: the classifier of eq. (6). ``"mlp"``: the MLP ensemble above,
            trained by ``OnePlusEpsTrainer`` with fresh surrogates at every step.
            ``"boosted_trees"``: gradient-boosted trees (``fit_boosted_trees``: scikit-learn's
            histogram boosting on the same weighted loss, over one pool of ``len(normal)``
            surrogates drawn before the fit), scored in TensorFlow by ``BoostedTrees``, so
            save, load and export work alike. ``"mlp+boosted_trees"``: both, their logits
            averaged (``mean_of_classifiers``; with held-out selection rows each trains its
            second classifier too). ``"auto"`` (default): the MLP alone one-class; with known
            anomalies the MLP and the trees, and where ``selection_min_known`` holds some of
            them back, the trees are dropped again if the MLP alone ranks those better in the
            combined score (``_select_classifier``; ``classifier_model_`` says which was
            kept, ``classifier_model_aucs_`` the held-out ROC AUC of each). The trees help
            wherever the known anomalies teach the classifier much: 5 seeds, combined ROC
            AUC, ``"mlp"`` -> ``"auto"``, HIGGS 100 / 1000 0.619 / 0.700 -> 0.671 / 0.766,
            smtp 5% / 25% 0.943 / 0.957 -> 0.965 / 0.984, cardio 5% / 25% 0.971 / 0.986 ->
            0.986 / 0.995, magic.gamma 25% 0.922 -> 0.935, KDD-99 k=8 0.9984 -> 0.9990, but
            mammography 25% 0.919 -> 0.902 (docs/RESULTS.md, "The trees beside the MLP by
            default"). Without the trees a fit is shorter and the combined score about 4
            times quicker to compute (cardio: 205k against 51k rows/s in process); the
            student score, which a SavedModel serves, never runs them.
        classifier_gamma: weight of the known-anomaly term of eq. (6).
        classifier_eps: the surrogate term of eq. (6) is weighted ``1 - classifier_eps``.
        classifier_adaptive_eps: with known anomalies, weight the surrogate term by how well the
            flow's density separates them from held-out normal rows: ``1 - eps_ = (1 - eps)
            clip(2 AUC - 1, 0, 1)`` (``density_auc_``). Surrogates come from the density's
            tail, so they teach the classifier that low-density rows are anomalies; where
            the known anomalies sit inside the normal bulk (HIGGS signal, AUC at most 0.55)
            that lesson is wrong and the term fades, leaving the two-class part of eq. (6)
            (HIGGS, 100 / 1000 known: ROC AUC 0.584 / 0.642 -> 0.602 / 0.678, 5 seeds).
            Without known anomalies ``eps_ = eps``.
        score_kind: what ``decision_function`` and the export return: ``"combined"``,
            ``"density"`` or ``"classifier"`` (see the module docstring). Everything is fitted
            either way; the attribute may be changed after ``fit``, and ``threshold_``
            follows it.
        combined_classifier_weight: weight of the classifier's term in the combined score. ``None``:
            1 with known anomalies, 0.25 without. Trained on normal rows and surrogates
            alone, the classifier is a weaker detector than the density it was drawn from
            (one-class ROC AUC, classifier against density: mammography 0.65 / 0.87, SUSY
            0.61 / 0.77, KDD-99 0.82 / 0.996), yet a small share of it still helps.
        selection_min_known: with at least this many known anomalies, the density's weight
            in the combined score is chosen on known anomalies that a second classifier never
            saw (``density_scale_``, see ``_select_density_scale``); ``None`` turns it off.
            Where the classifier learns the known anomalies well it gets the larger share
            (ROC AUC, 5 seeds: cover 5% / 25% 0.9945 / 0.9957 -> 0.9974 / 0.9990, magic.gamma
            0.917 / 0.921 -> 0.923 / 0.929, cardio 25% 0.970 -> 0.976); on KDD-99 the default
            weight is kept. The second classifier (an ensemble of as many members) trains in
            the same steps as the first, so it costs members, not a second fit (KDD-99 k=1,
            seed 0: 2.7 s more than the classifier alone, against 10.6 s for a fit of its own).
        selection_share: share of the known anomalies held out for that choice. At least
            ``MIN_SELECTION_ROWS`` (10) are held out and as many kept, so there is no choice
            with fewer than twice that many, whatever ``selection_min_known`` says.
        neighbour_rows: normal training rows kept as references for the combined score's
            neighbour term ``d(x)``, the distance (in encoded features) from ``x`` to the
            nearest of them (``NearestReference``; a reference's own distance is to the nearest
            other one); 0 leaves the term out. The term and the density share the weight that
            the density alone had (``_distance_weight``): each is weighted by its own
            separation of the known anomalies, halved, and both by ``density_scale_``. A flow
            fitted by maximum likelihood smooths over the gaps between tight clusters of
            normal rows, and rows in those gaps score as normal; the distance to real normal
            rows does not smooth. Benchmark, 5 seeds, combined ROC AUC without -> with:
            KDD-99 one-class / k=1 / 2 / 4 / 8 0.9970 / 0.9967 / 0.9971 / 0.9976 / 0.9982 ->
            0.9983 / 0.9980 / 0.9980 / 0.9983 / 0.9984 (seed 0 one-class, warezclient
            against the test normals 0.910 -> 0.965, nmap 0.954 -> 0.984); cover one-class
            0.920 -> 0.954, cardio 0.869 -> 0.928, mammography 0.807 -> 0.856, SUSY 0.798 ->
            0.809; lower on smtp (one-class / 5% / 25% 0.944 / 0.952 / 0.964 -> 0.934 /
            0.943 / 0.957, 9 test anomalies a seed) and magic.gamma (0.888 / 0.919 / 0.925
            -> 0.880 / 0.916 / 0.922), nowhere else by more than 0.0002 (docs/RESULTS.md,
            "The neighbour term"). Cost: every score
            computes the distances to the references, ``neighbour_rows * D`` multiply-adds a
            row (KDD-99's tasks encode to 72-115 features: 300k-470k), and the model
            holds them, ``neighbour_rows * D`` floats.
        student_steps: with a number of steps, the fit ends by training one MLP of
            ``classifier_hidden_units`` to rank rows like the combined score
            (``fit_score_student``: a sigmoid of the combined score, centred at its 99th
            percentile over the normal rows, as soft labels for a cross-entropy; fitted on
            ``STUDENT_POOL`` normal rows, as many surrogates and ``perturbed_normal_rows`` of
            each kind, and the known anomalies). Its logit is the ``"student"`` score: the combined
            score's multiply-adds are the flow's, the neighbour search's and the ensemble's
            (KDD-99: 0.45-0.7M a row), the student's 7-9k, so a SavedModel of it serves 17-50
            times more rows a second (``tfp-flowad export --score student``). It is fitted
            last and changes no other score. 0 fits none. ``refit_student`` fits it again
            without the other stages.
        student_batch_size: rows of each kind per step of the student's fit.
        student_target_quantile: the quantile of the combined score over the normal
            training rows where the student's soft label is 1/2 (``c`` of
            ``fit_score_student``). A lower one asks the student to rank more of the normal
            rows' upper range too: seed means, student ROC AUC at 0.99 / 0.9 / 0.5, SUSY
            one-class 0.767 / 0.781 / 0.785, HIGGS 1000 0.683 / 0.686 / 0.685, but cardio
            one-class 0.915 / 0.892 / 0.901 and KDD-99 k=1 0.9978 / 0.9978 / 0.9976
            (``benchmarks/student_variants.py``).
        density_temperature: ``T`` of the density score ``-log p_T(x)``, the flow's
            log-density with its base Gaussian's scale set to ``T`` (``Flow.log_prob``):
            ``T = 1`` is the flow's own density; a lower ``T`` ranks rows more by how far
            ``f^{-1}(x)`` lies from the base space's centre (where the surrogate anomalies'
            tail is defined) and less by the flow's change of volume ``log|det J|``. The best
            ``T`` depends on the table (one-class ROC AUC of the density, seeds 0-1, ``T`` =
            1 / 0.5: cover 0.921 / 0.979, cardio 0.877 / 0.913, mammography 0.865 / 0.881; but
            SUSY 0.799 / 0.745, annthyroid 0.927 / 0.865). The default is 1. ``"auto"``: 1
            without known anomalies; with ``MIN_SELECTION_ROWS`` (10) or more, the one of
            ``DENSITY_TEMPERATURES`` (1, 0.71, 0.5) whose density separates them best from
            held-out normal rows (the flow never sees them, so the choice is honest;
            ``_choose_density_temperature``), and where ``selection_min_known`` holds some
            of them back, a ``T < 1`` is dropped again if the flow's own density ranks those
            better in the combined score (``_select_density_scale``): a density that is
            better alone may add less beside a classifier that learns the known anomalies
            well (cardio 25%: 0.9830 with ``T = 1``, 0.9806 with the choice alone, 0.9826
            with it checked). Benchmark, 5 seeds, combined ROC AUC, ``T = 1`` -> ``"auto"``:
            KDD-99 k=1 / 2 / 4 0.9967 / 0.9971 / 0.9976 -> 0.9970 / 0.9975 / 0.9979, but
            mammography 25% 0.9187 -> 0.9154, HIGGS 100 / 1000 -0.0007, cover 5% -0.0004, so
            it is an option (the ``nf-temperature`` rows of docs/RESULTS.md). A number fixes
            ``T``.
        batch_size: rows per step of the flow, the distillation and the classifier.
        flow_learning_rate: peak Adam learning rate of the flow fit (see ``_flow_optimizer``).
        flow_clipnorm: global gradient-norm clip of the flow fit.
        distillation_learning_rate: Adam learning rate of the distillation.
        classifier_learning_rate: Adam learning rate of the classifier (and of its distillation).
        validation_fraction: share of normal rows held out for early stopping (0: none).
        flow_patience: passes without a better held-out NLL before the flow fit stops.
        log_transform: ``"auto"``, ``True`` or ``False`` (see ``TabularEncoder.fit``).
        contamination: expected fraction of anomalies; sets ``threshold_``.
        random_state: integer seed; the same seed gives the same scores on CPU.
        categorical_columns: names, or ``"auto"`` (string-like dtypes).
        verbose: Keras verbosity (0 silent, 1 progress bars, 2 one line per epoch).

    Attributes:
        encoder_: the ``TabularEncoder`` learned on the training rows.
        flow_: the fitted flow; ``sampler_flow_``: the flow that samples surrogates (the IAF).
        classifier_: the Keras classifier network: ``[n, members]`` logits of ``P(C+ | x)``,
            one per member of the ensemble (``classifier_members``); their mean is the logit.
        density_auc_: the density's ROC AUC of the known anomalies against held-out normal
            rows (``None`` one-class); ``neighbour_auc_``: the same for the neighbour term
            (``None`` one-class or without the term); ``neighbours_``: the term's
            ``NearestReference`` network (``None`` with ``neighbour_rows = 0``); ``eps_``:
            the ``classifier_eps`` the classifier trained with (see ``classifier_adaptive_eps``).
        student_: the ``"student"`` score's network (``None`` with ``student_steps =
            0``).
        density_temperature_: the ``T`` of the density score; ``density_temperature_aucs_``:
            the ROC AUC of the known anomalies under each candidate ``T`` (``None`` when there
            was no choice).
        density_scale_: the multiplier of the density's weight in the combined score (1
            unless chosen on held-out known anomalies); ``density_scale_aucs_``: the held-out
            ROC AUC of each candidate multiplier (``None`` when there was no choice).
        history_: Keras histories per stage; ``fit_seconds_``: wall seconds per stage.
        threshold_: score above which ``predict`` says 1 (the ``1 - contamination`` quantile
            of the training rows' scores); ``thresholds_``: the same for every score kind.
        training_scores_: the training rows' scores of every kind; ``decision_scores_``: those
            of ``score``.

    Examples:
        >>> detector = NFADetector(random_state=0).fit(X_train, y_train)  # doctest: +SKIP
        >>> scores = detector.decision_function(X_test)  # doctest: +SKIP
    """

    #: the flow models normal rows, so their statistics define the features; known anomalies
    #: (which may outnumber them) must not move the scaling.
    encode_from_normal_rows = True

    def __init__(
        self,
        flow: str = "maf",
        flow_layers: int = 6,
        flow_hidden_units: tuple[int, ...] = (64, 64),
        flow_epochs: int = 6,
        flow_min_steps: int = 300,
        flow_jacobian_penalty: float = 1e-3,
        flow_penalty_every: int = 20,
        flow_penalty_batch_size: int = 32,
        distillation_steps: int = 200,
        distillation_clipnorm: float | None = None,
        surrogate_tail_p_value: float = 0.05,
        surrogate_box_share: float = 0.5,
        surrogate_box_margin: float = 2.0,
        classifier_hidden_units: tuple[int, ...] = (64, 32),
        classifier_epochs: int = 4,
        classifier_min_steps: int = 300,
        classifier_averaging: float | str | None = "auto",
        classifier_members: int | str = "auto",
        classifier_distillation_steps: int = 0,
        classifier_model: str = "auto",
        classifier_gamma: float = 1.0,
        classifier_eps: float = 0.05,
        classifier_adaptive_eps: bool = True,
        score_kind: str = "combined",
        combined_classifier_weight: float | None = None,
        selection_min_known: int | None = 20,
        selection_share: float = 0.2,
        density_temperature: float | str = 1.0,
        neighbour_rows: int = 4096,
        student_steps: int = 3000,
        student_target_quantile: float = 0.99,
        student_batch_size: int = 512,
        batch_size: int = 1024,
        flow_learning_rate: float = 3e-3,
        flow_clipnorm: float = 1.0,
        distillation_learning_rate: float = 1e-3,
        classifier_learning_rate: float = 1e-3,
        validation_fraction: float = 0.1,
        flow_patience: int = 2,
        log_transform="auto",
        contamination: float = 0.01,
        random_state: int | None = None,
        categorical_columns="auto",
        verbose: int = 0,
    ):
        super().__init__(contamination, random_state, categorical_columns, log_transform)
        self.flow = flow
        self.flow_layers = flow_layers
        self.flow_hidden_units = flow_hidden_units
        self.flow_epochs = flow_epochs
        self.flow_min_steps = flow_min_steps
        self.flow_jacobian_penalty = flow_jacobian_penalty
        self.flow_penalty_every = flow_penalty_every
        self.flow_penalty_batch_size = flow_penalty_batch_size
        self.distillation_steps = distillation_steps
        self.distillation_clipnorm = distillation_clipnorm
        self.surrogate_tail_p_value = surrogate_tail_p_value
        self.surrogate_box_share = surrogate_box_share
        self.surrogate_box_margin = surrogate_box_margin
        self.classifier_hidden_units = classifier_hidden_units
        self.classifier_epochs = classifier_epochs
        self.classifier_min_steps = classifier_min_steps
        self.classifier_averaging = classifier_averaging
        self.classifier_members = classifier_members
        self.classifier_distillation_steps = classifier_distillation_steps
        self.classifier_model = classifier_model
        self.classifier_gamma = classifier_gamma
        self.classifier_eps = classifier_eps
        self.classifier_adaptive_eps = classifier_adaptive_eps
        self.score_kind = score_kind
        self.combined_classifier_weight = combined_classifier_weight
        self.selection_min_known = selection_min_known
        self.selection_share = selection_share
        self.density_temperature = density_temperature
        self.neighbour_rows = neighbour_rows
        self.student_steps = student_steps
        self.student_target_quantile = student_target_quantile
        self.student_batch_size = student_batch_size
        self.batch_size = batch_size
        self.flow_learning_rate = flow_learning_rate
        self.flow_clipnorm = flow_clipnorm
        self.distillation_learning_rate = distillation_learning_rate
        self.classifier_learning_rate = classifier_learning_rate
        self.validation_fraction = validation_fraction
        self.flow_patience = flow_patience
        self.verbose = verbose

    # ------------------------------------------------------------------------------ fit
    def _make_flow(self, name: str, dim: int, seed: int | None, penalty: float):
        kwargs = dict(jacobian_penalty=penalty, seed=seed)
        if name in ("maf", "iaf", "realnvp"):
            kwargs["hidden_units"] = tuple(self.flow_hidden_units)
        if penalty > 0:
            kwargs.update(
                penalty_every=self.flow_penalty_every,
                penalty_batch_size=self.flow_penalty_batch_size,
            )
        return FLOWS[name](dim, num_layers=self.flow_layers, **kwargs)

    def _flow_optimizer(self, steps: int) -> keras.optimizers.Optimizer:
        """Adam for the flow fit: warm-up, cosine decay and gradient clipping.

        The rate rises linearly from ``flow_learning_rate / 10`` to ``flow_learning_rate``
        over the first tenth of the planned ``steps``, then decays along a cosine to 5 % of it;
        gradients are clipped to a global norm of ``flow_clipnorm``. On KDD-99 a constant 3e-3 fits a deeper MAF well in some seeds and
        diverges in others; the warm-up and clipping keep the early steps, where the
        log-scales of a fresh flow move fastest, from blowing up.
        """
        steps = max(1, steps)
        warmup = steps // 10
        schedule = keras.optimizers.schedules.CosineDecay(
            self.flow_learning_rate / 10,
            decay_steps=steps - warmup,
            alpha=0.05,
            warmup_target=self.flow_learning_rate,
            warmup_steps=warmup,
        )
        return keras.optimizers.Adam(schedule, global_clipnorm=self.flow_clipnorm)

    def _fit_rows(self, frame: pd.DataFrame, y: np.ndarray) -> None:
        """Algorithm 1: the flow (step 1), the sampler (step 2), the classifier (steps 3-4)."""
        self._check_parameters()
        seed = self.random_state
        if seed is not None:
            keras.utils.set_random_seed(seed)
        rng = np.random.default_rng(seed)
        normal, validation, anomaly = self._training_rows(frame, y, rng)
        n_val = len(validation)
        self.history_, self.fit_seconds_ = {}, {}
        self.flow_ = self._timed("flow", self._fit_flow, normal, validation, seed)
        self.sampler_flow_ = self._timed("distillation", self._sampler_flow, self.flow_, seed)
        encoder = self.encoder_
        clean_normal = encoder.finish(normal[: 2**15]).numpy()
        held_out = encoder.finish(validation[: 2**15]).numpy() if n_val else clean_normal
        anomaly_features = encoder.finish(anomaly).numpy()
        self.density_temperature_, self.density_temperature_aucs_ = (
            self._choose_density_temperature(held_out, anomaly_features)
        )
        aucs = self.density_temperature_aucs_
        self.density_auc_ = (
            aucs[str(self.density_temperature_)]
            if aucs
            else self._density_auc(held_out, anomaly_features)
        )
        # The flow is fitted: its scores of the normal rows serve every scaling below.
        normal_density = self._density(clean_normal)
        self.neighbours_, self.neighbour_auc_, normal_neighbour = None, None, None
        if self.neighbour_rows and len(clean_normal) >= 2:
            self.neighbours_, self.neighbour_auc_, normal_neighbour = self._timed(
                "neighbours", self._fit_neighbours, clean_normal, held_out, anomaly_features
            )
        self.eps_ = self.classifier_eps
        if self.classifier_adaptive_eps and self.density_auc_ is not None:
            self.eps_ = 1.0 - (1.0 - self.classifier_eps) * _separation_weight(self.density_auc_)
        held = self._selection_rows(len(anomaly), rng)
        parts = self._classifier_parts(len(anomaly))
        fitted = {}
        for part, fit_stage, stage in (
            ("mlp", self._fit_classifier, "classifier"),
            ("boosted_trees", self._fit_boosted_trees, "boosted_trees"),
        ):
            if part in parts:
                fitted[part], history = self._timed(
                    stage, fit_stage, normal, anomaly, self.sampler_flow_, seed, held
                )
                if history:
                    self.history_["classifier"] = history
        candidates = {"+".join(parts): _mean_of_pairs(fitted.values())}
        if self.classifier_model == "auto" and held is not None and len(fitted) > 1:
            candidates["mlp"] = fitted["mlp"]
        self.density_scale_, self.density_scale_aucs_ = 1.0, None
        self.classifier_model_aucs_ = None
        chosen = next(iter(candidates))
        if held is not None:
            (
                chosen,
                self.classifier_model_aucs_,
                (temperature, self.density_scale_, self.density_scale_aucs_),
            ) = self._timed(
                "weight_selection",
                self._select_classifier,
                {name: second for name, (_, second) in candidates.items()},
                anomaly[held],
                held_out,
                clean_normal,
                normal_density,
            )
            if temperature != self.density_temperature_:
                self.density_temperature_ = temperature
                self.density_auc_ = self.density_temperature_aucs_[str(temperature)]
                normal_density = self._density(clean_normal)
        self.classifier_model_ = chosen
        self.classifier_ = candidates[chosen][0]
        if self.classifier_distillation_steps and self.classifier_.output_shape[-1] > 1:
            self.classifier_, self.history_["classifier_distillation"] = self._timed(
                "classifier_distillation",
                self._distil_classifier,
                normal,
                anomaly,
                seed,
                fitted["mlp"][0],
            )
        self.score_scaling_ = self._score_scaling(
            normal_density,
            anomaly_score(clean_normal, "classifier", None, self.classifier_).numpy(),
            normal_neighbour,
            self.density_scale_,
        )
        self._scorers = {}
        self.student_ = None
        if self.student_steps:
            self.student_, self.history_["score_student"] = self._timed(
                "score_student", self._fit_score_student, normal, anomaly, seed
            )

    def _training_rows(
        self, frame: pd.DataFrame, y: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(normal, validation, anomaly)`` raw matrices: the normal rows shuffled by ``rng``,
        their first ``validation_fraction`` held out for early stopping and the scalings."""
        raw = self.encoder_.raw_matrix(frame)
        normal = raw[y == 0][rng.permutation(int((y == 0).sum()))]
        n_val = int(len(normal) * self.validation_fraction)
        return normal[n_val:], normal[:n_val], raw[y == 1]

    @releasing_finished_traces
    def refit_student(self, X, y=None) -> "NFADetector":
        """Fits the ``"student"`` score's network again; every other stage stays as fitted.

        For tuning what a SavedModel serves without refitting the flow and the classifier:
        change ``student_steps`` or ``student_target_quantile`` (``set_params``),
        then call this with the training rows. The student learns the combined score
        (``fit_score_student``) on the same kinds of rows as in ``fit``; its training scores
        and threshold are recomputed on ``X``. With the parameters of the fit it gives a
        student of the same quality, not the same weights (the fit's weights come from Keras'
        global seed after all the stages before).

        Args:
            X: the training rows, as given to ``fit``.
            y: their labels (1 marks known anomalies), as given to ``fit``; ``None``: one-class.

        Returns:
            ``self``.
        """
        frame = self._check_rows(X)
        y = check_labels(y, len(frame), "y")
        check_min_normal_rows(y, self.min_normal_rows, "y")
        self._check_parameters()
        if not self.student_steps:
            raise ValueError("refit_student needs student_steps >= 1; got 0")
        seed = self.random_state
        if seed is not None:
            keras.utils.set_random_seed(seed)
        normal, _, anomaly = self._training_rows(frame, y, np.random.default_rng(seed))
        self.student_, self.history_["score_student"] = self._timed(
            "score_student", self._fit_score_student, normal, anomaly, seed
        )
        self._scorers = {}  # the traced scoring functions hold the networks they were traced with
        self.training_scores_["student"] = self._score_rows(frame, ("student",))["student"]
        self.thresholds_["student"] = training_threshold(
            self.training_scores_["student"], self.contamination
        )
        self.score_kind = self.score_kind  # refreshes threshold_ and decision_scores_
        return self

    def _check_parameters(self) -> None:
        if self.flow not in _USER_FLOWS:
            raise ValueError(f"flow must be one of {_USER_FLOWS}; got {self.flow!r}")
        if not 0.0 < self.surrogate_tail_p_value <= 1.0:
            raise ValueError(f"tail_p_value must be in (0, 1]; got {self.surrogate_tail_p_value!r}")
        if not 0.0 <= self.surrogate_box_share <= 1.0:
            raise ValueError(f"box_share must be in [0, 1]; got {self.surrogate_box_share!r}")
        if not self.surrogate_box_margin >= 0.0:
            raise ValueError(f"box_margin must be >= 0; got {self.surrogate_box_margin!r}")
        _check_score(self.score_kind)
        minimum = self.selection_min_known
        if minimum is not None and not _is_count(minimum):
            raise ValueError(
                f"selection_min_known must be an integer >= 1 or None; got {minimum!r}"
            )
        if not 0.0 < self.selection_share < 1.0:
            raise ValueError(f"selection_share must be in (0, 1); got {self.selection_share!r}")
        averaging = self.classifier_averaging
        if averaging not in (None, "auto") and not (_is_number(averaging) and 0 <= averaging < 1):
            raise ValueError(
                "classifier_averaging must be a number in [0, 1), 'auto' or None; "
                f"got {averaging!r}"
            )
        members = self.classifier_members
        if members != "auto" and not _is_count(members):
            raise ValueError(
                f"classifier_members must be an integer >= 1 or 'auto'; got {members!r}"
            )
        steps = self.classifier_distillation_steps
        if isinstance(steps, bool) or not (isinstance(steps, (int, np.integer)) and steps >= 0):
            raise ValueError(
                f"classifier_distillation_steps must be an integer >= 0; got {steps!r}"
            )
        if self.classifier_model not in CLASSIFIER_MODELS:
            raise ValueError(
                f"classifier_model must be one of {list(CLASSIFIER_MODELS)}; "
                f"got {self.classifier_model!r}"
            )
        if not isinstance(self.classifier_adaptive_eps, (bool, np.bool_)):
            raise ValueError(
                f"adaptive_eps must be True or False; got {self.classifier_adaptive_eps!r}"
            )
        weight = self.combined_classifier_weight
        if weight is not None and not (_is_number(weight) and weight >= 0):
            raise ValueError(f"classifier_weight must be a number >= 0 or None; got {weight!r}")
        temperature = self.density_temperature
        if temperature != "auto" and not (_is_number(temperature) and temperature > 0):
            raise ValueError(
                f"density_temperature must be a number > 0 or 'auto'; got {temperature!r}"
            )
        rows = self.neighbour_rows
        if not (rows == 0 or (_is_count(rows) and rows >= 2)):
            raise ValueError(f"neighbour_rows must be 0 or an integer >= 2; got {rows!r}")
        steps = self.student_steps
        if not (steps == 0 or _is_count(steps)):
            raise ValueError(f"student_steps must be an integer >= 0; got {steps!r}")
        if self.score_kind == "student" and not steps:
            raise ValueError("score_kind='student' needs student_steps >= 1; got 0")
        quantile = self.student_target_quantile
        if not (_is_number(quantile) and 0.0 < quantile < 1.0):
            raise ValueError(f"student_target_quantile must be in (0, 1); got {quantile!r}")

    def _timed(self, stage: str, fit_stage, *args):
        """``fit_stage(*args)``, its wall seconds recorded in ``fit_seconds_[stage]``."""
        start = time.perf_counter()
        result = fit_stage(*args)
        self.fit_seconds_[stage] = time.perf_counter() - start
        return result

    def _fit_flow(self, normal: np.ndarray, validation: np.ndarray, seed: int | None):
        """Step 1: the flow fitted to the raw normal rows by eq. (41), with dequantisation noise,
        ``max(flow_epochs, ceil(flow_min_steps / steps per pass))`` passes planned, and the
        held-out NLL measured after each pass for early stopping.

        Each Keras epoch is one pass. Before, the planned steps were spread over
        ``flow_epochs`` epochs of several passes each on small tables, so the NLL was looked
        at six times, and the fit stopped at best after a sixth of its steps (cardio: 51 of
        306). A flow that starts to overfit a few thousand rows now stops there.
        """
        encoder = self.encoder_

        def noisy(batch, stateless_seed):
            return encoder.finish(encoder.dequantise(batch, tf.cast(stateless_seed, tf.int32)))

        def flow_data(rows, training=True):
            return make_classifier_dataset(
                rows, None, self.batch_size, seed, transform=noisy, training=training
            ).map(lambda batch: batch["normal"])

        steps_per_epoch, epochs = _planned_passes(
            len(normal), self.batch_size, self.flow_epochs, self.flow_min_steps
        )
        callbacks = []
        if len(validation):
            callbacks = [
                keras.callbacks.EarlyStopping(
                    monitor="val_nll",
                    mode="min",
                    patience=self.flow_patience,
                    restore_best_weights=True,
                )
            ]
        flow = self._make_flow(
            self.flow, self.encoder_.output_dim, seed, self.flow_jacobian_penalty
        )
        flow.compile(optimizer=self._flow_optimizer(steps_per_epoch * epochs))
        history = flow.fit(
            flow_data(normal),
            validation_data=flow_data(validation, training=False) if len(validation) else None,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            callbacks=callbacks,
            shuffle=False,  # the dataset shuffles itself
            verbose=self.verbose,
        )
        if not all(np.isfinite(w).all() for w in flow.get_weights()):
            raise RuntimeError(
                "the flow fit diverged (its weights are not finite); lower "
                f"flow_learning_rate (now {self.flow_learning_rate!r}) or flow_clipnorm"
            )
        self.history_["flow"] = history.history
        return flow

    def _sampler_flow(self, flow, seed: int | None):
        """Step 2: the flow that draws tail surrogates: an IAF student distilled from a MAF
        teacher by eq. (34), else the fitted flow itself (it samples in one pass)."""
        if self.flow not in _DISTILLED_FLOWS:
            return flow
        student = self._make_flow("iaf", self.encoder_.output_dim, seed, 0.0)
        distiller = Distiller(flow, student, batch_size=self.batch_size)
        distiller.compile(
            optimizer=keras.optimizers.Adam(
                self.distillation_learning_rate, global_clipnorm=self.distillation_clipnorm
            )
        )
        flow.trainable = False
        history = distiller.fit(
            distillation_steps(self.distillation_steps),
            epochs=1,
            shuffle=False,
            verbose=self.verbose,
        )
        flow.trainable = True
        self.history_["distillation"] = history.history
        return student

    def _fit_classifier(
        self,
        normal: np.ndarray,
        anomaly: np.ndarray,
        sampler_flow,
        seed: int | None,
        held: np.ndarray | None = None,
    ) -> tuple[tuple[keras.Model, keras.Model | None], dict]:
        """Steps 3-4: the classifier trained by eq. (6) on the clean normal rows, the known
        anomalies and fresh surrogates (tail samples and box samples) at every step.

        With ``held`` (a mask of the known anomalies held out for ``_select_density_scale``) a
        second ensemble of as many members trains alongside on the same batches and surrogates
        without the held rows (``anomaly_members``); sharing the steps costs a fraction of a
        second fit. Returns ``(classifier, second classifier or None)`` and the Keras history.
        """
        encoder = self.encoder_
        members = self.classifier_members
        if members == "auto":
            members = 5 if len(anomaly) else 1
        members = int(members)
        copies = 1 if held is None else 2
        network = make_mlp(
            encoder.output_dim, tuple(self.classifier_hidden_units), members=copies * members
        )
        anomaly_members = None
        if held is not None:
            anomaly_members = np.ones((len(anomaly), copies * members), dtype="float32")
            anomaly_members[held, members:] = 0.0
        sampler = self._surrogate_sampler(encoder.finish(normal).numpy(), sampler_flow, seed)
        # The fit trains the network alone; with the sampler frozen the trainer's trainable
        # weights are the network's, which Keras pairs with the averaged weights at the end.
        sampler.trainable = False
        trainer = OnePlusEpsTrainer(
            network, sampler, self.classifier_gamma, self.eps_, surrogates_per_step=self.batch_size
        )
        steps_per_epoch, epochs = _planned_passes(
            len(normal), self.batch_size, self.classifier_epochs, self.classifier_min_steps
        )
        averaging = self.classifier_averaging
        if isinstance(averaging, str):  # "auto"
            averaging = 0.99 if len(anomaly) else None
        ema = {}
        if averaging is not None:
            momentum = averaging_momentum(averaging, epochs * steps_per_epoch)
            ema = {"use_ema": True, "ema_momentum": momentum}
        trainer.compile(optimizer=keras.optimizers.Adam(self.classifier_learning_rate, **ema))
        history = trainer.fit(
            # Real rows enter clean: generated rows are requantised to match them.
            make_classifier_dataset(
                normal,
                anomaly,
                self.batch_size,
                seed,
                transform=lambda b, _: encoder.finish(b),
                anomaly_members=anomaly_members,
            ),
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            shuffle=False,
            verbose=self.verbose,
        )
        # Freezing reached the flow inside the sampler (``flow_`` itself for a flow that
        # samples in one pass); it leaves the fit trainable, as it came, and saves so.
        sampler.trainable = True
        if held is None:
            return (network, None), history.history
        ensembles = [list(range(start, start + members)) for start in (0, members)]
        return tuple(select_members(network, chosen) for chosen in ensembles), history.history

    def _fit_boosted_trees(
        self,
        normal: np.ndarray,
        anomaly: np.ndarray,
        sampler_flow,
        seed: int | None,
        held: np.ndarray | None = None,
    ) -> tuple[tuple[keras.Model, keras.Model | None], dict]:
        """Steps 3-4 with ``classifier_model="boosted_trees"``: ``fit_boosted_trees`` on the
        clean normal rows, the known anomalies and ``len(normal)`` surrogates drawn once; with
        ``held``, a second one without the held rows. Returns the pair and an empty history,
        like ``_fit_classifier``."""
        clean_normal = self.encoder_.finish(normal).numpy()
        sampler = self._surrogate_sampler(clean_normal, sampler_flow, seed)
        surrogates = sampler.sample(len(normal))[0].numpy()
        known = self.encoder_.finish(anomaly).numpy()

        def fit(rows):
            return fit_boosted_trees(
                clean_normal, rows, surrogates, self.classifier_gamma, self.eps_, seed
            )

        return (fit(known), None if held is None else fit(known[~held])), {}

    def _surrogate_sampler(self, clean_normal: np.ndarray, sampler_flow, seed: int | None):
        """Surrogate anomalies: the flow's tail (``surrogate_tail_p_value``) and, for a ``surrogate_box_share``,
        the box around the (encoded) normal rows widened by ``surrogate_box_margin``, requantised like
        real rows."""
        return MixtureSampler(
            [
                TailSampler(sampler_flow, self.surrogate_tail_p_value, seed=seed),
                UniformBoxSampler.around(clean_normal, margin=self.surrogate_box_margin, seed=seed),
            ],
            [1.0 - self.surrogate_box_share, self.surrogate_box_share],
            quantiser=self.encoder_,
        )

    def _distil_classifier(
        self, normal: np.ndarray, anomaly: np.ndarray, seed: int | None, mlp: keras.Model
    ) -> tuple[keras.Model, dict]:
        """The ensemble ``classifier_`` (with the trees, where kept, their mean) distilled
        into one network of a member of ``mlp``'s shape (``distil_ensemble``) on the clean
        normal rows, ``SURROGATE_POOL`` surrogates and the known anomalies."""
        encoder = self.encoder_
        clean_normal = encoder.finish(normal).numpy()
        sampler = self._surrogate_sampler(clean_normal, self.sampler_flow_, seed)
        parts = [clean_normal, sampler.sample(SURROGATE_POOL)[0].numpy()]
        if len(anomaly):
            parts.append(encoder.finish(anomaly).numpy())
        return distil_ensemble(
            self.classifier_,
            parts,
            self.classifier_distillation_steps,
            self.batch_size,
            self.classifier_learning_rate,
            seed,
            self.verbose,
            shape_of=mlp,
        )

    def _fit_score_student(
        self, normal: np.ndarray, anomaly: np.ndarray, seed: int | None
    ) -> tuple[keras.Model, dict]:
        """The ``"student"`` network (``fit_score_student``), fitted to the combined score on
        ``STUDENT_POOL`` clean normal rows, as many surrogates and ``perturbed_normal_rows`` of
        each kind, and the known anomalies."""
        encoder = self.encoder_
        clean_normal = encoder.finish(normal[:STUDENT_POOL]).numpy()
        sampler = self._surrogate_sampler(clean_normal, self.sampler_flow_, seed)
        surrogates = sampler.sample(STUDENT_POOL)[0].numpy()
        noisy, crossed = perturbed_normal_rows(
            clean_normal, surrogates, STUDENT_POOL, np.random.default_rng(seed)
        )
        parts = [clean_normal, surrogates, noisy, crossed]
        if len(anomaly):
            parts.append(encoder.finish(anomaly).numpy())
        scores = np.split(
            self._feature_scores(np.concatenate(parts), "combined"),
            np.cumsum([len(part) for part in parts])[:-1],
        )
        return fit_score_student(
            parts,
            scores,
            scores[0],
            _median_and_spread(scores[0])[1],
            tuple(self.classifier_hidden_units),
            self.student_steps,
            target_quantile=self.student_target_quantile,
            batch_size=self.student_batch_size,
            seed=seed,
            verbose=self.verbose,
        )

    def _density(self, features: np.ndarray, temperature: float | None = None) -> np.ndarray:
        """The density score ``-log p_T(x)`` of encoded ``features`` (``T`` defaults to
        ``density_temperature_``)."""
        if temperature is None:
            temperature = self.density_temperature_
        return anomaly_score(features, "density", self.flow_, None, temperature=temperature).numpy()

    def _density_auc(
        self, held_out: np.ndarray, anomaly: np.ndarray, temperature: float | None = None
    ) -> float | None:
        """The density's ROC AUC of the known anomalies against held-out normal rows (encoded
        features), ``None`` without known anomalies; ``temperature`` as in ``_density``.

        The flow never sees the known anomalies, so this is an honest check of the paper's
        premise that anomalies lie where the normal rows' density is low. It sets the
        density's weight in the combined score (``_score_scaling``), with ``classifier_adaptive_eps``
        the weight of the surrogate term of eq. (6), and the choice of the temperature.
        """
        if len(anomaly) == 0:
            return None
        scores = self._density(np.concatenate([held_out, anomaly]), temperature)
        labels = np.r_[np.zeros(len(held_out)), np.ones(len(anomaly))]
        return float(roc_auc_score(labels, scores))

    def _fit_neighbours(
        self, clean_normal: np.ndarray, held_out: np.ndarray, anomaly: np.ndarray
    ) -> tuple[keras.Model, float | None, np.ndarray]:
        """The neighbour term's network, its ROC AUC of the known anomalies against held-out
        normal rows (``None`` one-class), and its scores of ``clean_normal``.

        The references are the first ``neighbour_rows`` of ``clean_normal`` (normal training
        rows in a random order, the held-out ones not among them), all of them when fewer.
        """
        network = nearest_reference_network(clean_normal[: self.neighbour_rows])
        normal_neighbour = _neighbour_distances(network, clean_normal)
        if len(anomaly) == 0:
            return network, None, normal_neighbour
        scores = _neighbour_distances(network, np.concatenate([held_out, anomaly]))
        labels = np.r_[np.zeros(len(held_out)), np.ones(len(anomaly))]
        return network, float(roc_auc_score(labels, scores)), normal_neighbour

    def _choose_density_temperature(
        self, held_out: np.ndarray, anomaly: np.ndarray
    ) -> tuple[float, dict[str, float] | None]:
        """The density score's temperature and the known anomalies' ROC AUC under each
        candidate (``None`` when there was no choice).

        A number ``density_temperature`` is kept. ``"auto"``: with at least
        ``MIN_SELECTION_ROWS`` known anomalies, the one of ``DENSITY_TEMPERATURES`` under
        which the density separates them best from held-out normal rows
        (``choose_near_default``: the flow's own density, ``T = 1``, unless another is better
        by more than 0.001); with fewer, 1.
        """
        if self.density_temperature != "auto":
            return float(self.density_temperature), None
        if len(anomaly) < MIN_SELECTION_ROWS:
            return 1.0, None
        aucs = {str(t): self._density_auc(held_out, anomaly, t) for t in DENSITY_TEMPERATURES}
        return choose_near_default(aucs, DENSITY_TEMPERATURES, 1.0), aucs

    def _selection_rows(self, n_anomalies: int, rng: np.random.Generator) -> np.ndarray | None:
        """The mask of the known anomalies held out to choose ``density_scale_``: a
        ``selection_share`` of them (at least ``MIN_SELECTION_ROWS``, and as many kept), or
        ``None`` with fewer than ``selection_min_known`` (or ``2 * MIN_SELECTION_ROWS``)."""
        minimum = self.selection_min_known
        if minimum is None or n_anomalies < max(minimum, 2 * MIN_SELECTION_ROWS):
            return None
        n_held = max(MIN_SELECTION_ROWS, round(self.selection_share * n_anomalies))
        n_held = min(n_held, n_anomalies - MIN_SELECTION_ROWS)
        held = np.zeros(n_anomalies, dtype=bool)
        held[rng.permutation(n_anomalies)[:n_held]] = True
        return held

    def _classifier_parts(self, n_anomalies: int) -> tuple[str, ...]:
        """The classifiers that ``fit`` trains: ``classifier_model`` split at ``+``; ``"auto"``
        is the MLP alone one-class and the MLP with the trees given known anomalies."""
        if self.classifier_model != "auto":
            return tuple(self.classifier_model.split("+"))
        return ("mlp", "boosted_trees") if n_anomalies else ("mlp",)

    def _select_classifier(
        self,
        second_classifiers: dict[str, keras.Model],
        held: np.ndarray,
        held_out: np.ndarray,
        clean_normal: np.ndarray,
        normal_density: np.ndarray,
    ) -> tuple[str, dict[str, float], tuple[float, float, dict[str, float]]]:
        """The classifier model whose combined score ranks the held-out known anomalies
        ``held`` best against the held-out normal rows.

        ``second_classifiers`` maps each candidate (``"mlp+boosted_trees"`` first, then
        ``"mlp"`` under ``classifier_model="auto"``; or the one configured) to its classifier
        trained without ``held``. Each gets its own ``_select_density_scale``; its held-out ROC
        AUC is that of the scale chosen. The first candidate keeps ties, so the trees stay
        unless the MLP alone ranks the held-out anomalies strictly better.

        Returns:
            The chosen name, every candidate's held-out ROC AUC, and the chosen candidate's
            ``(temperature, density scale, AUC of each scale)``.
        """
        selections = {
            name: self._select_density_scale(
                classifier, held, held_out, clean_normal, normal_density
            )
            for name, classifier in second_classifiers.items()
        }
        held_aucs = {name: aucs[str(scale)] for name, (_, scale, aucs) in selections.items()}
        chosen = max(held_aucs, key=held_aucs.get)  # the first of equals
        return chosen, held_aucs, selections[chosen]

    def _select_density_scale(
        self,
        classifier: keras.Model,
        held: np.ndarray,
        held_out: np.ndarray,
        clean_normal: np.ndarray,
        normal_density: np.ndarray,
    ) -> tuple[float, float, dict[str, float]]:
        """The density's temperature, the multiplier of its weight in the combined score, and
        the held-out ROC AUC of each candidate multiplier in ``DENSITY_SCALES``.

        ``classifier`` is the second ensemble of ``_fit_classifier``, trained without the
        known anomalies ``held`` (raw rows); each candidate's combined score (with that
        classifier) ranks them against the held-out normal rows, and ``choose_density_scale``
        picks one. Neither the density's separation nor the number of known rows tells whether
        the classifier deserves more weight (it does on cover and SUSY, where it learns the
        known anomalies well, not on KDD-99 with a handful of rows); held-out anomalies do.
        The held-out anomalies are of the known kinds only, so the density (which guards
        against unseen kinds) is never dropped on a near tie.

        The temperature is ``density_temperature_`` unless it was chosen below 1 and the
        flow's own density (``T = 1``, its weight from its own separation of the known
        anomalies) ranks the held-out anomalies better by more than 0.001 with its best
        multiplier: a density that separates the known anomalies better alone may still add
        less to a classifier that learns them well.

        The choice is made with the density as the only distance term, and the chosen
        multiplier then scales the neighbour term's weight alike (``_score_scaling``). With the
        neighbour term among the candidates the choice leaned to the classifier on KDD-99
        (0.25 or 0 where the density alone keeps 1; seed 0, k = 4: ROC AUC 0.9971 -> 0.9944):
        the held-out anomalies are of the known kinds, which the classifier learns, and the
        distance terms are what guards against the unseen ones.
        """
        rows = np.concatenate([held_out, self.encoder_.finish(held).numpy()])
        labels = np.r_[np.zeros(len(held_out)), np.ones(len(held))]
        classifier_scores = score_terms(rows, ("classifier",), None, classifier)["classifier"]
        normal_classifier = anomaly_score(clean_normal, "classifier", None, classifier).numpy()
        temperatures = [self.density_temperature_]
        if self.density_temperature_aucs_ is not None and self.density_temperature_ != 1.0:
            temperatures.append(1.0)
        choices = {}
        for temperature in temperatures:
            if temperature == self.density_temperature_:
                scaling = self._score_scaling(normal_density, normal_classifier)
            else:  # T = 1 against the chosen T: its own scaling and weight
                scaling = self._score_scaling(
                    self._density(clean_normal, temperature), normal_classifier
                )
                auc = self.density_temperature_aucs_[str(temperature)]
                scaling["density"][2] = self._distance_weight(auc, 1.0, paired=False)
            density = self._density(rows, temperature)
            aucs = {}
            for scale in DENSITY_SCALES:
                scaled = {
                    **scaling,
                    "density": scaling["density"][:2] + [scale * scaling["density"][2]],
                }
                scores = combine_scores(density, classifier_scores, scaled)
                aucs[str(scale)] = float(roc_auc_score(labels, scores.numpy()))
            choices[temperature] = (choose_near_default(aucs, DENSITY_SCALES, 1.0), aucs)
        temperature = temperatures[0]
        best = {t: max(aucs.values()) for t, (_, aucs) in choices.items()}
        if 1.0 in best and best[1.0] > best[temperature] + 1e-3:
            temperature = 1.0
        return (temperature, *choices[temperature])

    @staticmethod
    def _distance_weight(auc: float | None, density_scale: float, paired: bool) -> float:
        """The weight in the combined score of a term that measures distance from the normal
        rows (the density, the neighbour term) and separates the known anomalies from
        held-out normal rows with ROC AUC ``auc``: ``density_scale * clip(2 auc - 1, 0, 1)``
        (``auc`` is ``None`` one-class: ``density_scale``), halved when the two terms are
        ``paired``, so that their mean stands where the density alone would.

        Where such a term cannot tell the known anomalies from normal rows (HIGGS signal, AUC
        at most 0.55) it only adds noise to the classifier and is left out.
        """
        weight = density_scale * (1.0 if auc is None else _separation_weight(auc))
        return weight / 2 if paired else weight

    def _score_scaling(
        self,
        density: np.ndarray,
        classifier: np.ndarray,
        neighbour: np.ndarray | None = None,
        density_scale: float = 1.0,
    ) -> dict[str, list[float]]:
        """``{kind: [median, spread, weight]}`` of each score, for the combined score.

        Median and spread (``_median_and_spread``) are those of ``density``, ``classifier``
        and ``neighbour`` (``None``: no neighbour term), the scores of normal training rows.
        The classifier's weight is ``combined_classifier_weight`` (see the class docstring for its
        default); the density's and the neighbour term's, ``_distance_weight`` of
        ``density_auc_`` and ``neighbour_auc_`` with ``density_scale``.
        """
        classifier_weight = self.combined_classifier_weight
        if classifier_weight is None:
            classifier_weight = 1.0 if self.density_auc_ is not None else 0.25
        paired = neighbour is not None
        terms = [
            ("density", density, self._distance_weight(self.density_auc_, density_scale, paired)),
            ("classifier", classifier, classifier_weight),
        ]
        if paired:
            weight = self._distance_weight(self.neighbour_auc_, density_scale, paired)
            terms.append(("neighbour", neighbour, weight))
        scaling = {}
        for kind, values, term_weight in terms:
            median, spread = _median_and_spread(values)
            scaling[kind] = [median, spread, float(term_weight)]
        return scaling

    # ---------------------------------------------------------------------------- score
    @property
    def score_kind(self) -> str:
        """What ``decision_function``, ``predict`` and the export use (see ``__init__``).

        It may change after ``fit``: on a fitted detector, setting it also switches
        ``threshold_`` (and ``decision_scores_``) to that score's own, so ``predict`` keeps
        flagging the ``contamination`` share of the training rows.
        """
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
        """Raises ``ValueError`` unless ``kind`` is a score kind this fitted detector has."""
        _check_score(kind)
        if kind not in self.thresholds_:
            raise ValueError(
                f"score_kind {kind!r} is not available in this detector (fitted with "
                "student_steps=0); fit it again to use that score"
            )

    def available_scores(self) -> tuple[str, ...]:
        """The score kinds this fitted detector has: ``SCORES``, less ``"student"`` where no
        student was fitted (``student_steps = 0``, or a detector saved before it)."""
        return tuple(k for k in SCORES if k != "student" or self.student_ is not None)

    def _set_training_scores(self, frame: pd.DataFrame) -> None:
        """Training-row scores and thresholds of every score kind, so ``score`` can change."""
        self.training_scores_ = self._score_rows(frame, self.available_scores())
        self.thresholds_ = {
            kind: training_threshold(scores, self.contamination)
            for kind, scores in self.training_scores_.items()
        }
        self.score_kind = self.score_kind  # sets threshold_ and decision_scores_

    def scoring_function(self, kind: str | tuple[str, ...] | None = None):
        """A ``tf.function`` from raw column tensors to anomaly scores of ``kind``.

        ``kind``: a score kind (default: ``score``), or a tuple of kinds for a dict of them
        from one pass. One function per ``kind`` is traced and kept.
        """
        key = self.score_kind if kind is None else kind
        if key not in self._scorers:
            kinds = key if isinstance(key, tuple) else (key,)
            for name in kinds:
                _check_score(name)
            encoder = self.encoder_
            parts = self._score_parts()

            @tf.function(input_signature=[encoder.input_signature()], autograph=False)
            def score(inputs):
                terms = score_terms(encoder(inputs), kinds, **parts)
                return terms if isinstance(key, tuple) else terms[key]

            self._scorers[key] = score
        return self._scorers[key]

    def _score_parts(self) -> dict:
        """The fitted networks and constants ``score_terms`` takes, by keyword."""
        return dict(
            flow=self.flow_,
            classifier=self.classifier_,
            scaling=self.score_scaling_,
            temperature=self.density_temperature_,
            neighbours=self.neighbours_,
            student=self.student_,
        )

    def _feature_scores(self, features: np.ndarray, kind: str, batch_size=65536) -> np.ndarray:
        """Scores of ``kind`` of encoded ``features``, in batches of ``batch_size`` rows, by one
        traced function (eagerly the neighbour search's chunk loop runs in Python: KDD-99,
        65k rows, 2.7 s against 2.1 s with the tracing)."""
        parts = self._score_parts()
        spec = tf.TensorSpec([None, features.shape[1]], tf.float32)
        score = tf.function(lambda rows: anomaly_score(rows, kind, **parts), [spec])
        return np.concatenate(
            [
                score(features[start : start + batch_size]).numpy()
                for start in range(0, len(features), batch_size)
            ]
        )

    def _score_rows(
        self, frame: pd.DataFrame, kind: str | tuple[str, ...] | None = None, batch_size=65536
    ):
        """Scores of ``frame``'s rows by ``_score_function(kind)``, as float64 numpy arrays."""
        score = self.scoring_function(kind)
        parts = [
            score(self.encoder_.to_tensors(frame.iloc[start : start + batch_size]))
            for start in range(0, len(frame), batch_size)
        ]
        return keras.tree.map_structure(
            lambda *batches: np.concatenate([b.numpy() for b in batches]).astype(np.float64),
            *parts,
        )

    @releasing_finished_traces
    def anomaly_scores(self, X, kinds=None) -> dict[str, np.ndarray]:
        """``{kind: scores}`` of the rows ``X`` for each score kind of ``kinds`` (default: every
        kind this detector has, ``available_scores()``), computed in one pass; higher = more
        abnormal. ``decision_function(X)`` is ``anomaly_scores(X, [score_kind])[score_kind]``.
        """
        kinds = self.available_scores() if kinds is None else tuple(kinds)
        for kind in kinds:
            self._check_available(kind)
        return self._score_rows(self._check_rows(X), kinds)

    def log_prob(self, X) -> np.ndarray:
        """``log p(x)`` of the fitted flow at the encoded (scaled, one-hot) features of ``X``."""
        features = self.encoder_.transform(self._check_rows(X))
        return self.flow_.log_prob(features).numpy().astype(np.float64)

    # ---------------------------------------------------------------------- persistence
    def save(self, path) -> Path:
        """Writes the fitted detector to directory ``path`` atomically (temp dir, then rename).

        An existing detector directory at ``path`` is replaced; any other existing path is an
        error.
        """
        if not hasattr(self, "threshold_"):
            raise RuntimeError("NFADetector is not fitted yet: call fit(X, y) before save(path)")
        path = Path(path)
        if path.exists() and not (path / _MANIFEST).is_file():
            raise FileExistsError(f"path {str(path)!r} exists and is not a saved NFADetector")
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            keras.saving.save_model(self.classifier_, staging / "classifier.keras")
            keras.saving.save_model(self.flow_, staging / "flow.keras")
            if self.sampler_flow_ is not self.flow_:
                keras.saving.save_model(self.sampler_flow_, staging / "sampler_flow.keras")
            if self.neighbours_ is not None:
                keras.saving.save_model(self.neighbours_, staging / "neighbours.keras")
            if self.student_ is not None:
                keras.saving.save_model(self.student_, staging / "student.keras")
            manifest = {
                "format": "tfp_flowad.NFADetector",
                "version": __version__,
                "params": _jsonable(self.get_params()),
                "encoder": self.encoder_.get_config(),
                "threshold": self.threshold_,
                "thresholds": self.thresholds_,
                "score_scaling": self.score_scaling_,
                "density_auc": self.density_auc_,
                "neighbour_auc": self.neighbour_auc_,
                "eps": self.eps_,
                "density_scale": self.density_scale_,
                "density_scale_aucs": self.density_scale_aucs_,
                "classifier_model": self.classifier_model_,
                "classifier_model_aucs": self.classifier_model_aucs_,
                "density_temperature": self.density_temperature_,
                "density_temperature_aucs": self.density_temperature_aucs_,
                "decision_scores_quantiles": np.quantile(
                    self.decision_scores_, [0.0, 0.5, 0.99, 1.0]
                ).tolist(),
                "fit_seconds": self.fit_seconds_,
                "history": _jsonable(self.history_),
            }
            (staging / _MANIFEST).write_text(json.dumps(manifest, indent=1))
            _replace_directory(staging, path)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return path

    @classmethod
    def load(cls, path) -> "NFADetector":
        """Reads a directory written by ``save``.

        Raises:
            FileNotFoundError: ``path`` or one of its files is missing.
            ValueError: the directory is not a saved detector or a file is corrupt.
        """
        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"model directory {str(path)!r} does not exist")
        manifest_path = path / _MANIFEST
        if not manifest_path.is_file():
            raise FileNotFoundError(
                f"model directory {str(path)!r} has no {_MANIFEST}: not a saved NFADetector"
            )
        try:
            manifest = json.loads(manifest_path.read_text())
            if manifest.get("format") != "tfp_flowad.NFADetector":
                raise ValueError(f"unexpected format {manifest.get('format')!r}")
            detector = cls(**manifest["params"])
            detector.encoder_ = TabularEncoder.from_config(manifest["encoder"])
            # A directory saved before per-score thresholds holds its own score's only.
            detector.thresholds_ = manifest.get("thresholds") or {
                detector.score_kind: float(manifest["threshold"])
            }
            detector.score_kind = detector.score_kind  # sets threshold_
            detector.score_scaling_ = manifest["score_scaling"]
            detector.density_auc_ = manifest.get("density_auc")
            detector.neighbour_auc_ = manifest.get("neighbour_auc")
            detector.eps_ = manifest["eps"]
            detector.density_scale_ = float(manifest.get("density_scale", 1.0))
            detector.density_scale_aucs_ = manifest.get("density_scale_aucs")
            # One saved before classifier_model="auto" holds the model it was given.
            detector.classifier_model_ = manifest.get(
                "classifier_model", manifest["params"].get("classifier_model", "mlp")
            )
            detector.classifier_model_aucs_ = manifest.get("classifier_model_aucs")
            detector.density_temperature_ = float(manifest.get("density_temperature", 1.0))
            detector.density_temperature_aucs_ = manifest.get("density_temperature_aucs")
            detector.fit_seconds_ = manifest.get("fit_seconds", {})
            detector.history_ = manifest.get("history", {})
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(
                f"model directory {str(path)!r}: corrupt {_MANIFEST}: {error}"
            ) from None
        detector.feature_names_in_ = list(detector.encoder_.input_columns)
        detector.n_features_in_ = len(detector.feature_names_in_)
        detector.classifier_ = _load_keras(path / "classifier.keras")
        detector.flow_ = _load_keras(path / "flow.keras")
        sampler_path = path / "sampler_flow.keras"
        detector.sampler_flow_ = (
            _load_keras(sampler_path) if sampler_path.exists() else (detector.flow_)
        )
        # A directory saved before the neighbour term (or with neighbour_rows = 0) has none.
        neighbours_path = path / "neighbours.keras"
        detector.neighbours_ = None
        if "neighbour" in detector.score_scaling_:
            detector.neighbours_ = _load_keras(neighbours_path)
        # One saved without the student (or with student_steps = 0) has none.
        detector.student_ = None
        if "student" in detector.thresholds_:
            detector.student_ = _load_keras(path / "student.keras")
        detector._scorers = {}
        return detector

    def export_saved_model(self, path, version: int | None = None) -> Path:
        """A SavedModel for TF Serving at ``path/<version>/``; see ``tfp_flowad.export``."""
        from tfp_flowad.export import export_saved_model

        return export_saved_model(self, path, version)


SCORES = ("combined", "density", "classifier", "student")
#: the multipliers of the density's weight that ``NFADetector._select_density_scale`` tries.
DENSITY_SCALES = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
#: the temperatures of the density score that ``NFADetector._choose_density_temperature``
#: tries (``T^2`` = 1, 1/2, 1/4), the flow's own density first.
DENSITY_TEMPERATURES = (1.0, 2**-0.5, 0.5)
#: surrogates drawn once for ``NFADetector._distil_classifier``.
SURROGATE_POOL = 2**16
#: rows of each kind that ``NFADetector._fit_score_student`` fits the student on (KDD-99, k=1
#: and k=2 seeds 1 and 2: ROC AUC 0.9982 / 0.9980 with 2 ** 14, 0.9983 / 0.9979 with 2 ** 16,
#: whose combined scores took 10 s more).
STUDENT_POOL = 2**14
#: the fewest known anomalies held out for, and kept from, the second classifier.
MIN_SELECTION_ROWS = 10
#: the values of ``NFADetector(classifier_model=...)``.
CLASSIFIER_MODELS = ("auto", "mlp", "boosted_trees", "mlp+boosted_trees")
#: the density, neighbour and classifier scores of rows where they are not finite (NaN or
#: inf from overflow).
_OVERFLOW_SCORE = 1e30


def _separation_weight(auc: float) -> float:
    """``clip(2 AUC - 1, 0, 1)``: 0 for a score that cannot separate two sets, 1 for one that
    separates them perfectly."""
    return float(np.clip(2.0 * auc - 1.0, 0.0, 1.0))


def _mean_of_pairs(pairs) -> tuple[keras.Model, keras.Model | None]:
    """``(classifier, second classifier or None)`` pairs of several classifier models as one
    pair: the classifiers' logits averaged (``mean_of_classifiers``), the second ones' alike."""
    firsts, seconds = zip(*pairs, strict=True)
    if len(firsts) == 1:
        return firsts[0], seconds[0]
    second = None if seconds[0] is None else mean_of_classifiers(list(seconds))
    return mean_of_classifiers(list(firsts)), second


def _is_number(value) -> bool:
    """An int or a float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_count(value) -> bool:
    """An integer >= 1 (a bool is not one)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


def averaging_momentum(momentum: float, steps: int) -> float:
    """The momentum of the classifier's weight averaging for a fit of ``steps`` steps:
    ``min(momentum, 1 - 3 / steps)`` (at least 0).

    An average with momentum ``m`` spans about ``1 / (1 - m)`` steps; capped so, it spans at
    most the last third of the fit, and a short fit is not left near its first iterates.
    """
    return float(min(momentum, max(0.0, 1.0 - 3.0 / max(steps, 1))))


def _planned_passes(rows: int, batch_size: int, epochs: int, min_steps: int) -> tuple[int, int]:
    """``(steps per pass, passes)`` of a fit over ``rows`` rows that makes ``epochs`` passes,
    or more where those are fewer than ``min_steps`` steps; each Keras epoch is one pass."""
    steps = steps_per_pass(rows, batch_size)
    return steps, max(epochs, math.ceil(min_steps / steps))


def choose_near_default(
    aucs: dict[str, float], candidates: tuple[float, ...], default: float, tolerance: float = 1e-3
) -> float:
    """The one of ``candidates`` with the best ROC AUC (``aucs`` keyed by ``str(candidate)``),
    except that any within ``tolerance`` of the best and nearer ``default`` in the tuple's
    order wins: small differences on few rows are noise."""
    best = max(aucs[str(candidate)] for candidate in candidates)
    near_best = [c for c in candidates if aucs[str(c)] >= best - tolerance]
    anchor = candidates.index(default)
    return min(near_best, key=lambda c: abs(candidates.index(c) - anchor))


def _check_score(score: str) -> None:
    if score not in SCORES:
        raise ValueError(f"score must be one of {list(SCORES)}; got {score!r}")


def anomaly_score(features, kind: str, *parts, **named_parts) -> tf.Tensor:
    """Anomaly scores of encoded ``features``, higher = more abnormal.

    ``density = -log p_T(x)`` (the flow at ``temperature`` ``T``, ``Flow.log_prob``; ``T = 1``
    is eq. (39)'s density), ``classifier = -logit f(x)`` (eq. 6's classifier),
    ``combined = w_d z_d + w_n z_n + w_c softplus(z_c)`` with ``z_k = (score_k - median_k) /
    iqr_k`` and ``scaling[k] = [median_k, iqr_k, w_k]`` from ``NFADetector._score_scaling``;
    ``score_n = d(x)``, the distance to the nearest reference normal row (``neighbours``, a
    ``NearestReference`` network; the term is left out when it is ``None``). The softplus
    bounds how far the classifier can pull a row towards "normal" (to ``-w_c log 2``), so a
    region the classifier wrongly extrapolates as normal keeps the density's verdict.
    ``student = logit_S(x)``, the logit of the network fitted to rank rows like the combined
    score (``fit_score_student``). The fitted parts (``flow, classifier, scaling,
    temperature, neighbours, student``) are passed on to ``score_terms`` as given.
    """
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
    """``{kind: anomaly_score(features, kind, ...)}`` for each of ``kinds``, in one pass.

    The flow, the classifier, the neighbours and the student each run once, and only if one of
    ``kinds`` needs them.
    """
    terms = {}
    if {"density", "combined"} & set(kinds):
        density = -flow.log_prob(features, temperature)
        # A row so far off that the flow's inverse overflows is as abnormal as it gets.
        terms["density"] = _finite_or_overflow(density)
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


def _bounded(scores: tf.Tensor) -> tf.Tensor:
    """A network's ``scores`` with NaN (a row so far off that the network overflows) set to
    ``_OVERFLOW_SCORE``, most abnormal, and infinities clipped to ``+-_OVERFLOW_SCORE``, so no
    combined score is infinite or NaN."""
    return tf.where(
        tf.math.is_nan(scores),
        _OVERFLOW_SCORE,
        tf.clip_by_value(scores, -_OVERFLOW_SCORE, _OVERFLOW_SCORE),
    )


def _finite_or_overflow(scores: tf.Tensor) -> tf.Tensor:
    """``scores`` with every non-finite value (NaN or inf from overflow) set to
    ``_OVERFLOW_SCORE``: as abnormal as it gets."""
    return tf.where(tf.math.is_finite(scores), scores, _OVERFLOW_SCORE)


def combine_scores(density, classifier, scaling, neighbour=None) -> tf.Tensor:
    """The combined score ``w_d z_d + w_n z_n + w_c softplus(z_c)`` of the density, neighbour
    and classifier scores, ``z_k = (score_k - median_k) / iqr_k`` with ``scaling[k] =
    [median_k, iqr_k, w_k]`` (see ``anomaly_score``); without ``neighbour``, ``w_d z_d + w_c
    softplus(z_c)``."""

    def standardised(name, values):
        median, iqr, weight = scaling[name]
        return weight, (values - median) / iqr

    w_density, z_density = standardised("density", density)
    w_classifier, z_classifier = standardised("classifier", classifier)
    combined = w_density * z_density + w_classifier * tf.math.softplus(z_classifier)
    if neighbour is not None:
        w_neighbour, z_neighbour = standardised("neighbour", neighbour)
        combined += w_neighbour * z_neighbour
    return combined


def _median_and_spread(values: np.ndarray) -> tuple[float, float]:
    """The median of ``values`` and their spread: the interquartile range, or where that is 0
    (a score with many tied values, such as distances on a grid) the 5-95 % range; at least
    ``1e-6``."""
    low, median, high = np.quantile(values, [0.25, 0.5, 0.75])
    spread = high - low
    if spread <= 0:
        low, high = np.quantile(values, [0.05, 0.95])
        spread = high - low
    return float(median), float(max(spread, 1e-6))


def _neighbour_distances(network: keras.Model, features: np.ndarray) -> np.ndarray:
    """The neighbour term ``d(x)`` of encoded ``features`` (``NearestReference``)."""
    return network(tf.constant(features, "float32")).numpy()


def _load_keras(file: Path):
    if not file.is_file():
        raise FileNotFoundError(f"model file {str(file)!r} is missing: the directory is partial")
    try:
        return keras.saving.load_model(file)
    except Exception as error:  # Keras raises many types for a damaged archive
        raise ValueError(f"model file {str(file)!r} is corrupt: {error}") from None


def _replace_directory(staging: Path, target: Path) -> None:
    """Moves ``staging`` to ``target``; an old ``target`` is swapped out, then removed."""
    if target.exists():
        trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        os.replace(target, trash / "old")
        os.replace(staging, target)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(staging, target)


def _jsonable(value):
    """Tuples -> lists and numpy scalars -> Python numbers, recursively."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
