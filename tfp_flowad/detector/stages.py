"""The training stages of Algorithm 1, each a function that returns its fitted part.

1. ``fit_flow``: the flow fitted to the normal rows by maximum likelihood with the Jacobian
   regulariser, ``max L_NF - lambda L_J`` (eq. 41);
2. ``fit_sampler_flow``: the flow distilled into an IAF, ``min KL(P_IAF || P_MAF)`` (eq. 34);
3. ``surrogate_sampler``: surrogate anomalies from the base Gaussian's tail pushed through the
   sampler flow, mixed with uniform samples of a box around the normal rows;
4. ``fit_mlp_classifier`` / ``fit_tree_classifier``: the classifier trained with the
   (1 + eps)-class loss (eq. 6) on normal rows, known anomalies and surrogates;

and after the combined score is set up, ``fit_student``: one network fitted to rank rows like
the combined score.

Every stage takes ``p``, the detector's parameters with the ``"auto"`` values resolved
(``tfp_flowad.detector.parameters.resolve_auto``), the ``TabularEncoder`` and raw row matrices
(``encoder.raw_matrix``); each returns its fitted part and its Keras history (a dict; empty for
stages without one).
"""

import math

import keras
import numpy as np
import tensorflow as tf

from tfp_flowad.flows import FLOWS
from tfp_flowad.nn.mlp import make_mlp, select_members
from tfp_flowad.sampling import MixtureSampler, TailSampler, UniformBoxSampler
from tfp_flowad.training.base import MAX_STEPS_PER_CALL, steps_per_call
from tfp_flowad.training.classifier import (
    OnePlusEpsTrainer,
    make_classifier_dataset,
    steps_per_pass,
)
from tfp_flowad.training.distillation import Distiller, distillation_steps
from tfp_flowad.training.held_out import HeldOutNLL
from tfp_flowad.training.progress import fit_options
from tfp_flowad.training.students import fit_score_student, perturbed_normal_rows
from tfp_flowad.training.trees import fit_boosted_trees

from .parameters import DISTILLED_FLOWS
from .scoring import median_and_spread

__all__ = [
    "STUDENT_POOL",
    "fit_flow",
    "fit_sampler_flow",
    "surrogate_sampler",
    "fit_mlp_classifier",
    "fit_tree_classifier",
    "fit_student",
    "planned_passes",
    "grouped_passes",
    "averaging_momentum",
]

#: rows of each kind that ``fit_student`` fits the student on.
STUDENT_POOL = 2**14


def planned_passes(rows: int, batch_size: int, epochs: int, min_steps: int) -> tuple[int, int]:
    """``(steps per pass, passes)`` of a fit over ``rows`` rows that makes ``epochs`` passes,
    or more where those are fewer than ``min_steps`` steps; each Keras epoch is one pass."""
    steps = steps_per_pass(rows, batch_size)
    return steps, max(epochs, math.ceil(min_steps / steps))


def grouped_passes(steps: int, passes: int) -> tuple[int, int]:
    """``(steps per epoch, epochs)`` of a fit of ``passes`` passes of ``steps`` steps each, the
    passes grouped into Keras epochs of at least ``MAX_STEPS_PER_CALL`` steps where a whole
    number of passes per epoch allows it (the fewest that do; else one epoch of every pass).

    The same steps on the same stream; on a small table, one Keras epoch (and its callbacks
    and logs) per one-step pass costs more than the step, and an epoch of several calls of
    ``steps_per_call`` steps does not.
    """
    wanted = math.ceil(MAX_STEPS_PER_CALL / steps)
    per_epoch = next((k for k in range(wanted, passes + 1) if passes % k == 0), passes)
    return steps * per_epoch, passes // per_epoch


def averaging_momentum(momentum: float, steps: int) -> float:
    """The momentum of the classifier's weight averaging for a fit of ``steps`` steps:
    ``min(momentum, 1 - 3 / steps)`` (at least 0).

    An average with momentum ``m`` spans about ``1 / (1 - m)`` steps; capped so, it spans at
    most the last third of the fit, and a short fit is not left near its first iterates.
    """
    return float(min(momentum, max(0.0, 1.0 - 3.0 / max(steps, 1))))


def make_flow(name: str, dim: int, seed: int | None, penalty: float, p: dict):
    """An unfitted flow ``name`` on ``dim`` features with Jacobian penalty ``penalty``."""
    kwargs = dict(jacobian_penalty=penalty, seed=seed)
    if name in ("maf", "iaf", "realnvp"):
        kwargs["hidden_units"] = tuple(p["flow_hidden_units"])
    if penalty > 0:
        kwargs.update(
            penalty_every=p["flow_penalty_every"], penalty_batch_size=p["flow_penalty_batch_size"]
        )
    return FLOWS[name](dim, num_layers=p["flow_layers"], **kwargs)


def flow_optimizer(steps: int, p: dict) -> keras.optimizers.Optimizer:
    """Adam for the flow fit: the rate rises linearly from ``flow_learning_rate / 10`` to
    ``flow_learning_rate`` over the first tenth of the planned ``steps``, then decays along a
    cosine to 5 % of it; gradients are clipped to a global norm of ``flow_clipnorm``. The
    warm-up and the clip keep the first steps, where a fresh flow's log-scales move fastest,
    from blowing up."""
    steps = max(1, steps)
    warmup = steps // 10
    schedule = keras.optimizers.schedules.CosineDecay(
        p["flow_learning_rate"] / 10,
        decay_steps=steps - warmup,
        alpha=0.05,
        warmup_target=p["flow_learning_rate"],
        warmup_steps=warmup,
    )
    return keras.optimizers.Adam(schedule, global_clipnorm=p["flow_clipnorm"])


def fit_flow(encoder, normal: np.ndarray, validation: np.ndarray, seed: int | None, p: dict):
    """Step 1: the flow fitted to the raw ``normal`` rows by eq. (41), with dequantisation
    noise. ``planned_passes(flow_epochs, flow_min_steps)`` passes are planned, one Keras epoch
    each; the NLL of the ``validation`` rows is measured after each, and the fit stops after
    ``flow_patience`` passes without a better one, keeping the best pass's weights.

    Raises:
        RuntimeError: the fit diverged (a weight is not finite).
    """

    def noisy(batch, stateless_seed):
        return encoder.finish(encoder.dequantise(batch, tf.cast(stateless_seed, tf.int32)))

    def flow_data(rows, training=True):
        return make_classifier_dataset(
            rows, None, p["batch_size"], seed, transform=noisy, training=training
        ).map(lambda batch: batch["normal"])

    steps_per_epoch, epochs = planned_passes(
        len(normal), p["batch_size"], p["flow_epochs"], p["flow_min_steps"]
    )
    flow = make_flow(p["flow"], encoder.output_dim, seed, p["flow_jacobian_penalty"], p)
    callbacks = []
    if len(validation):
        callbacks = [
            HeldOutNLL(flow, list(flow_data(validation, training=False))),
            keras.callbacks.EarlyStopping(
                monitor="val_nll",
                mode="min",
                patience=p["flow_patience"],
                restore_best_weights=True,
            ),
        ]
    flow.compile(
        optimizer=flow_optimizer(steps_per_epoch * epochs, p),
        steps_per_execution=steps_per_call(steps_per_epoch),
    )
    options = fit_options(p["verbose"], "flow", steps_per_epoch * epochs)
    history = flow.fit(
        flow_data(normal),
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        callbacks=callbacks + options.pop("callbacks"),
        shuffle=False,  # the dataset shuffles itself
        **options,
    )
    if not all(np.isfinite(w).all() for w in flow.get_weights()):
        raise RuntimeError(
            "the flow fit diverged (its weights are not finite); lower "
            f"flow_learning_rate (now {p['flow_learning_rate']!r}) or flow_clipnorm"
        )
    return flow, history.history


def fit_sampler_flow(flow, encoder, seed: int | None, p: dict):
    """Step 2: the flow that draws tail surrogates: an IAF student distilled from a MAF
    teacher by eq. (34), else the fitted ``flow`` itself (it samples in one pass)."""
    if p["flow"] not in DISTILLED_FLOWS:
        return flow, {}
    student = make_flow("iaf", encoder.output_dim, seed, 0.0, p)
    distiller = Distiller(flow, student, batch_size=p["batch_size"])
    distiller.compile(
        optimizer=keras.optimizers.Adam(
            p["distillation_learning_rate"], global_clipnorm=p["distillation_clipnorm"]
        )
    )
    flow.trainable = False
    history = distiller.fit(
        distillation_steps(p["distillation_steps"]),
        epochs=1,
        shuffle=False,
        **fit_options(p["verbose"], "distillation", p["distillation_steps"]),
    )
    flow.trainable = True
    return student, history.history


def surrogate_sampler(encoder, clean_normal: np.ndarray, sampler_flow, seed: int | None, p: dict):
    """Step 3: surrogate anomalies, the flow's tail (``surrogate_tail_p_value``) and, for a
    ``surrogate_box_share``, the box around the encoded ``clean_normal`` rows widened by
    ``surrogate_box_margin``, requantised like real rows."""
    return MixtureSampler(
        [
            TailSampler(sampler_flow, p["surrogate_tail_p_value"], seed=seed),
            UniformBoxSampler.around(clean_normal, margin=p["surrogate_box_margin"], seed=seed),
        ],
        [1.0 - p["surrogate_box_share"], p["surrogate_box_share"]],
        quantiser=encoder,
    )


def fit_mlp_classifier(
    encoder,
    normal: np.ndarray,
    anomaly: np.ndarray,
    sampler_flow,
    seed: int | None,
    p: dict,
    eps: float,
    held: np.ndarray | None = None,
):
    """Step 4: the MLP trained by eq. (6) with ``eps`` on the clean normal rows, the known
    anomalies and fresh surrogates at every step, for ``planned_passes(classifier_epochs,
    classifier_min_steps)`` passes (Keras epochs of ``grouped_passes``).

    With ``held`` (a mask of the known anomalies held out for the choices of
    ``tfp_flowad.detector.selection``) a second MLP trains alongside, side by side in one
    network (``make_mlp(..., members=2)``), on the same batches and surrogates without the held
    rows; sharing the steps costs a fraction of a second fit. Returns ``(classifier, second
    classifier or None)`` and the history.
    """
    members = 1 if held is None else 2
    network = make_mlp(encoder.output_dim, tuple(p["classifier_hidden_units"]), members=members)
    anomaly_members = None
    if held is not None:  # column 0: the classifier, trained on every known anomaly
        anomaly_members = np.ones((len(anomaly), members), dtype="float32")
        anomaly_members[held, 1] = 0.0
    sampler = surrogate_sampler(encoder, encoder.finish(normal).numpy(), sampler_flow, seed, p)
    # The fit trains the network alone; with the sampler frozen the trainer's trainable
    # weights are the network's, which Keras pairs with the averaged weights at the end.
    sampler.trainable = False
    trainer = OnePlusEpsTrainer(
        network, sampler, p["classifier_gamma"], eps, surrogates_per_step=p["batch_size"]
    )
    steps_per_epoch, epochs = grouped_passes(
        *planned_passes(
            len(normal), p["batch_size"], p["classifier_epochs"], p["classifier_min_steps"]
        )
    )
    ema = {}
    if p["classifier_averaging"] is not None:
        momentum = averaging_momentum(p["classifier_averaging"], epochs * steps_per_epoch)
        ema = {"use_ema": True, "ema_momentum": momentum}
    trainer.compile(
        optimizer=keras.optimizers.Adam(p["classifier_learning_rate"], **ema),
        steps_per_execution=steps_per_call(steps_per_epoch),
    )
    history = trainer.fit(
        # Real rows enter clean: generated rows are requantised to match them.
        make_classifier_dataset(
            normal,
            anomaly,
            p["batch_size"],
            seed,
            transform=lambda b, _: encoder.finish(b),
            anomaly_members=anomaly_members,
        ),
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        shuffle=False,
        **fit_options(p["verbose"], "classifier", epochs * steps_per_epoch),
    )
    # Freezing reached the flow inside the sampler; it leaves the fit trainable, as it came.
    sampler.trainable = True
    if held is None:
        return (network, None), history.history
    return (select_members(network, [0]), select_members(network, [1])), history.history


def fit_tree_classifier(
    encoder,
    normal: np.ndarray,
    anomaly: np.ndarray,
    sampler_flow,
    seed: int | None,
    p: dict,
    eps: float,
    held: np.ndarray | None = None,
):
    """Step 4 with boosted trees: ``fit_boosted_trees`` on the clean normal rows, the known
    anomalies and ``len(normal)`` surrogates drawn once; with ``held``, a second one without
    the held rows. Returns the pair and an empty history, like ``fit_mlp_classifier``."""
    clean_normal = encoder.finish(normal).numpy()
    sampler = surrogate_sampler(encoder, clean_normal, sampler_flow, seed, p)
    surrogates = sampler.sample(len(normal))[0].numpy()
    known = encoder.finish(anomaly).numpy()

    def fit(rows):
        return fit_boosted_trees(clean_normal, rows, surrogates, p["classifier_gamma"], eps, seed)

    return (fit(known), None if held is None else fit(known[~held])), {}


def fit_student(encoder, normal, anomaly, sampler_flow, seed: int | None, p: dict, combined_score):
    """The ``"student"`` network (``fit_score_student``), fitted to ``combined_score`` (a
    function of encoded features) on ``STUDENT_POOL`` clean normal rows, as many surrogates
    and ``perturbed_normal_rows`` of each kind, and the known anomalies."""
    clean_normal = encoder.finish(normal[:STUDENT_POOL]).numpy()
    sampler = surrogate_sampler(encoder, clean_normal, sampler_flow, seed, p)
    surrogates = sampler.sample(STUDENT_POOL)[0].numpy()
    noisy, crossed = perturbed_normal_rows(
        clean_normal, surrogates, STUDENT_POOL, np.random.default_rng(seed)
    )
    parts = [clean_normal, surrogates, noisy, crossed]
    if len(anomaly):
        parts.append(encoder.finish(anomaly).numpy())
    scores = np.split(
        combined_score(np.concatenate(parts)),
        np.cumsum([len(part) for part in parts])[:-1],
    )
    return fit_score_student(
        parts,
        scores,
        scores[0],
        median_and_spread(scores[0])[1],
        tuple(p["classifier_hidden_units"]),
        p["student_steps"],
        target_quantile=p["student_target_quantile"],
        batch_size=p["student_batch_size"],
        seed=seed,
        verbose=p["verbose"],
    )
