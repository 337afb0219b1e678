"""SavedModel export for TF Serving.

The exported model holds the ``TabularEncoder``, the flow and the classifier, and computes the
detector's current ``score_kind``. Its ``serving_default`` signature takes the RAW columns by
name (``float32`` for numeric columns, ``string`` for categorical ones, each ``[batch]``) and
returns ``anomaly_score`` (higher = more abnormal) and ``is_anomaly``
(``anomaly_score > threshold``).

A request is checked as ``decision_function`` checks its rows, and a bad one is refused whole
with an ``InvalidArgumentError`` (TF Serving: HTTP 400) whose message names the column (in
backticks): a column that is not a ``[batch]`` vector with as many values as the others, and
a numeric value that is NaN or infinite (a client sends missing numbers as NaN; fill them
first, as for ``decision_function``). A categorical value cannot be missing: the empty string
is a value, and one not seen in training encodes as all zeros. A wrong dtype is refused by
TensorFlow before the model runs; its message counts the inputs (``input #k``) in the
alphabetical order of the column names, which ``saved_model_cli show --all`` lists with their
dtypes.
"""

import numbers
import time
from pathlib import Path

import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from tfp_flowad.atomic import atomic_directory
from tfp_flowad.tracing import releasing_finished_traces

__all__ = ["export_saved_model", "next_version", "serving_function", "served_rows_per_second"]


def serving_function(detector):
    """The ``serving_default`` function with every weight frozen into a constant.

    Freezing leaves the graph with no variable or resource: TF1-style loaders (TF Serving's C++
    server, ``saved_model_cli run``) and ``tf.saved_model.load`` then read the same graph.
    """
    signature, threshold = detector.encoder_.input_signature(), detector.threshold_
    score = detector.scoring_function()  # raw columns -> anomaly scores
    frozen = convert_variables_to_constants_v2(score.get_concrete_function())
    names = sorted(signature)  # the flat argument order of a dict input

    @tf.function(input_signature=[signature])
    def serve(inputs):
        # The frozen function takes flat tensors; this wrapper checks them, restores named
        # inputs and outputs.
        (anomaly,) = frozen(*_checked_columns(inputs, names))
        return {"anomaly_score": anomaly, "is_anomaly": anomaly > threshold}

    return serve


def _checked_columns(inputs: dict[str, tf.Tensor], names: list[str]) -> list[tf.Tensor]:
    """The tensors ``inputs[name]`` for ``names``, each checked when the graph runs: a vector
    of as many values as the first column, and, when numeric, finite.

    Raises (when the graph runs):
        tf.errors.InvalidArgumentError: naming the first column that fails a check.
    """
    first = names[0]
    rows = tf.shape(inputs[first])[0]
    checked = []
    for name in names:
        values = inputs[name]
        # The signature declares [batch], but TensorFlow neither enforces the rank of an input
        # nor keeps ops that reshape or measure it (its optimiser trusts the declared rank).
        # The sum of the dimensions is kept and is the row count only for a vector. Column
        # names are quoted with backticks: the assertion escapes quotes in its message.
        same_rows = tf.debugging.assert_equal(
            tf.stack([tf.size(values), tf.reduce_sum(tf.shape(values))]),
            tf.stack([rows, rows]),
            message=f"column `{name}` must be a [batch] vector with as many values as column "
            f"`{first}`",
        )
        with tf.control_dependencies([same_rows]):
            values = tf.identity(values)
        if values.dtype.is_floating:
            values = tf.debugging.assert_all_finite(
                values, f"column `{name}` holds NaN or infinite values; send finite numbers"
            )
        checked.append(values)
    return checked


def next_version(path: Path) -> int:
    """1 + the largest integer sub-directory of ``path`` (1 when there is none)."""
    versions = [int(p.name) for p in path.iterdir() if p.name.isdigit()] if path.is_dir() else []
    return max(versions, default=0) + 1


@releasing_finished_traces
def export_saved_model(detector, path, version: int | None = None) -> Path:
    """Writes ``path/<version>/``, a SavedModel for TF Serving, whole or not at all
    (``tfp_flowad.atomic.atomic_directory``: a killed export leaves nothing once the next
    write into ``path`` runs).

    Args:
        detector: a fitted ``NFADetector``.
        path: the model base directory that TF Serving watches; created if missing.
        version: the version directory, an integer >= 1; default: next free integer.

    Returns:
        The version directory.

    Raises:
        RuntimeError: the detector is not fitted.
        ValueError: ``version`` is not an integer >= 1, or ``path`` is a file.
        FileExistsError: ``path/<version>`` exists already.
    """
    if not hasattr(detector, "threshold_"):
        raise RuntimeError("the detector is not fitted yet: call fit(X, y) before exporting")
    if version is not None and (
        not isinstance(version, numbers.Integral) or isinstance(version, bool) or version < 1
    ):
        raise ValueError(f"version must be an integer >= 1; got {version!r}")
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"export path {str(path)!r} is a file; give a directory")
    version = next_version(path) if version is None else int(version)
    target = path / str(version)
    if target.exists():
        raise FileExistsError(f"export target {str(target)!r} exists already")
    path.mkdir(parents=True, exist_ok=True)
    module = tf.Module()
    module.serve = serving_function(detector)
    with atomic_directory(target) as staging:
        tf.saved_model.save(module, str(staging), signatures={"serving_default": module.serve})
    return target


def served_rows_per_second(target, inputs: dict[str, tf.Tensor], rows: int = 1_000_000) -> float:
    """Rows per second of ``serving_default`` of the SavedModel at ``target``, loaded by
    ``tf.saved_model.load``: ``inputs`` (raw column tensors of ``b`` rows, e.g.
    ``encoder_.to_tensors(frame)``) served ``ceil(rows / b)`` times in a row, after one
    warm-up call on their first 1000 rows."""
    serve = tf.saved_model.load(str(target)).signatures["serving_default"]
    serve(**{name: values[:1000] for name, values in inputs.items()})
    batch = int(next(iter(inputs.values())).shape[0])
    calls = -(-rows // batch)
    start = time.perf_counter()
    for _ in range(calls):
        serve(**inputs)["anomaly_score"].numpy()
    return calls * batch / (time.perf_counter() - start)
