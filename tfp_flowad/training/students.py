"""Student networks: one small MLP fitted to a slower model's outputs on chosen rows.

``fit_score_student`` fits one to ``NFADetector``'s combined score, so that a SavedModel serves
a score close to the combined one at the cost of a single classifier network (the combined
score runs the flow, the neighbour search and the classifier; docs/RESULTS.md compares their
throughput).
"""

import keras
import numpy as np
import tensorflow as tf

from tfp_flowad.nn.mlp import make_mlp
from tfp_flowad.training import distribute
from tfp_flowad.training.base import steps_per_call
from tfp_flowad.training.progress import fit_options

__all__ = [
    "STUDENT_TARGET_WIDTH",
    "fit_score_student",
    "fit_to_targets",
    "perturbed_normal_rows",
    "soft_anomaly_targets",
]

#: the width of the student's sigmoid target, in spreads (``_median_and_spread``) of the
#: normal rows' combined scores.
STUDENT_TARGET_WIDTH = 3.0


def fit_to_targets(
    student: keras.Model,
    tables: list[tuple[np.ndarray, np.ndarray]],
    steps: int,
    batch_size: int,
    learning_rate,
    loss,
    seed: int | None = None,
    verbose: int = 0,
) -> dict:
    """Fits ``student`` (Adam) to ``(rows, targets)`` pairs: each step draws ``batch_size`` rows
    of every table with replacement, so each table weighs the same whatever its size.

    Args:
        student: a Keras model ``[batch, D] -> [batch, 1]``.
        tables: ``(rows [n_i, D], targets [n_i])`` pairs, each ``n_i >= 1``.
        steps: optimizer steps.
        batch_size: rows per table and step.
        learning_rate: Adam's learning rate (a float or a Keras schedule).
        loss: a Keras loss of ``(targets [b, 1], outputs [b, 1])``.
        seed: seed of the row draws.
        verbose: 0 silent, 1 one progress line (``StageProgress``), 2 Keras' lines.

    Returns:
        The Keras history (``loss`` per epoch; one epoch of ``steps`` steps).
    """
    constants = [
        (tf.constant(rows, tf.float32), tf.constant(np.reshape(targets, [-1, 1]), tf.float32))
        for rows, targets in tables
    ]

    def draw(seed_pair):
        """``batch_size`` rows of every table, drawn with replacement, and their targets."""
        drawn = []
        for index, (rows, targets) in enumerate(constants):
            positions = tf.random.stateless_uniform(
                [batch_size], seed_pair + index, maxval=tf.shape(rows)[0], dtype=tf.int32
            )
            drawn.append((tf.gather(rows, positions), tf.gather(targets, positions)))
        return tuple(tf.concat(part, axis=0) for part in zip(*drawn, strict=True))

    dataset = tf.data.Dataset.random(seed=seed).batch(2).take(steps).map(draw)
    # Small steps: several per call halve the time (KDD-99 student: 11 s -> 6 s).
    student.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=loss,
        steps_per_execution=steps_per_call(steps, data_ends=True),
    )
    if distribute.multi_worker():
        # Keras' own train_step returns scalar logs, which it cannot reduce across workers
        # (see distribute.loggable).
        # Nor can it take a batch of (rows, targets) for its build before the fit (see
        # StepModel._maybe_symbolic_build); the student arrives built.
        keras_step = student.train_step
        student.train_step = lambda data: distribute.loggable(keras_step(data))
        if student.built:
            student._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    history = student.fit(
        dataset.prefetch(tf.data.AUTOTUNE),
        epochs=1,
        shuffle=False,
        **fit_options(verbose, "student", steps),
    )
    return history.history


def perturbed_normal_rows(
    normal: np.ndarray, surrogates: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Rows around the normal ones, where the combined score rises from normal to abnormal.

    Returns ``(noisy, crossed)``, each ``[n, D]``:

    - ``noisy``: a random normal row plus ``sigma * N(0, I_D)``, ``log sigma`` uniform over
      ``[log 0.01, log 3]`` (encoded features are on a unit scale): a shell at every distance;
    - ``crossed``: in its first ``n // 2`` rows, a random normal row whose features are each
      replaced, with a probability uniform over ``[0.02, 0.3]`` per row, by that feature of a
      random surrogate: normal rows with a few abnormal values, like the attacks that differ
      from normal traffic in a few fields; in the others, each feature from one of two random
      normal rows (a coin flip per feature): normal values in combinations no normal row has.

    Normal rows and surrogates alone leave the student to extrapolate between them; these rows
    teach it the combined score where normal and abnormal rows meet.
    """
    dim = normal.shape[1]

    def normal_rows(count):
        return normal[rng.integers(len(normal), size=count)]

    sigma = np.exp(rng.uniform(np.log(0.01), np.log(3.0), size=(n, 1)))
    noisy = normal_rows(n) + sigma * rng.standard_normal((n, dim))
    half = n // 2
    share = rng.uniform(0.02, 0.3, size=(half, 1))
    with_surrogates = np.where(
        rng.uniform(size=(half, dim)) < share,
        surrogates[rng.integers(len(surrogates), size=half)],
        normal_rows(half),
    )
    mixed = np.where(
        rng.uniform(size=(n - half, dim)) < 0.5, normal_rows(n - half), normal_rows(n - half)
    )
    crossed = np.concatenate([with_surrogates, mixed])
    return noisy.astype(np.float32), crossed.astype(np.float32)


def soft_anomaly_targets(scores: np.ndarray, centre: float, width: float) -> np.ndarray:
    """``sigmoid((s - centre) / width)``: how far past the normal rows a score ``s`` lies, in
    (0, 1). Scores far above ``centre`` (every surrogate and clear anomaly) all map near 1, so
    the student spends its capacity where normal rows end, not on ordering rows that are
    abnormal beyond doubt (the combined score of a surrogate can reach 1e25)."""
    z = np.clip((np.asarray(scores, np.float64) - centre) / width, -60.0, 60.0)
    return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)


def fit_score_student(
    parts: list[np.ndarray],
    part_scores: list[np.ndarray],
    normal_scores: np.ndarray,
    spread: float,
    hidden_units: tuple[int, ...],
    steps: int,
    batch_size: int = 512,
    learning_rate: float = 3e-3,
    target_quantile: float = 0.99,
    seed: int | None = None,
    verbose: int = 0,
) -> tuple[keras.Model, dict]:
    """One MLP whose logit ranks rows like a teacher's scores (the combined score's).

    ``min E_x[BCE(t(x), sigmoid(logit_S(x)))]`` with the soft target ``t(x) =
    sigmoid((s(x) - c) / w)`` (``soft_anomaly_targets``), ``s`` the teacher's score, ``c`` its
    ``target_quantile`` quantile over the normal rows and ``w = STUDENT_TARGET_WIDTH *
    spread``; ``x`` drawn equally from each of ``parts``. The student's logit estimates
    ``(s(x) - c) / w`` where that is moderate and only its sign where it is large, so it keeps
    the teacher's order where normal and abnormal rows meet (a regression on the score itself
    would spend itself on the surrogates' huge scores). The learning rate decays along a
    cosine to 2 % of ``learning_rate``.

    Args:
        parts: non-empty ``[n_i, D]`` arrays of encoded rows to fit on, e.g. normal rows,
            surrogates, known anomalies and ``perturbed_normal_rows``.
        part_scores: the teacher's scores ``[n_i]`` of each part's rows, higher = more
            abnormal.
        normal_scores: the teacher's scores of normal training rows.
        spread: their spread.
        hidden_units: the student's hidden widths.
        steps: optimizer steps.
        batch_size: rows per part and step.
        learning_rate: Adam's peak learning rate.
        target_quantile: the quantile of ``normal_scores`` where the target is 1/2 (``c``).
        seed: seed of the row draws (initial weights come from Keras' global seed).
        verbose: 0 silent, 1 one progress line, 2 Keras' lines.

    Returns:
        The student (``[batch, D] -> [batch, 1]``, its logit the score) and its history.
    """
    centre = float(np.quantile(normal_scores, target_quantile))
    width = STUDENT_TARGET_WIDTH * spread
    tables = [
        (rows, soft_anomaly_targets(scores, centre, width))
        for rows, scores in zip(parts, part_scores, strict=True)
    ]
    student = make_mlp(parts[0].shape[1], tuple(hidden_units), name="score_student")
    history = fit_to_targets(
        student,
        tables,
        steps,
        batch_size,
        keras.optimizers.schedules.CosineDecay(learning_rate, max(1, steps), alpha=0.02),
        keras.losses.BinaryCrossentropy(from_logits=True),
        seed,
        verbose,
    )
    return student, history
