"""SavedModel export for TF Serving.

The exported model holds the ``TabularEncoder``, the flow and the classifier, and computes the
detector's current ``score``. Its ``serving_default``
signature takes the RAW columns by name (``float32`` for numeric columns, ``string`` for
categorical ones, each ``[batch]``) and returns ``anomaly_score`` (higher = more abnormal) and
``is_anomaly`` (``anomaly_score > threshold``).
"""

import os
import shutil
import tempfile
import time
from pathlib import Path

import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

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
        # The frozen function takes flat tensors; this wrapper restores named inputs and outputs.
        (anomaly,) = frozen(*[inputs[name] for name in names])
        return {"anomaly_score": anomaly, "is_anomaly": anomaly > threshold}

    return serve


def next_version(path: Path) -> int:
    """1 + the largest integer sub-directory of ``path`` (1 when there is none)."""
    versions = [int(p.name) for p in path.iterdir() if p.name.isdigit()] if path.is_dir() else []
    return max(versions, default=0) + 1


@releasing_finished_traces
def export_saved_model(detector, path, version: int | None = None) -> Path:
    """Writes ``path/<version>/``, a SavedModel for TF Serving, atomically.

    Args:
        detector: a fitted ``NFADetector``.
        path: the model base directory that TF Serving watches.
        version: the version directory; default: next free integer.

    Returns:
        The version directory.

    Raises:
        RuntimeError: the detector is not fitted.
        FileExistsError: ``path/<version>`` exists already.
    """
    if not hasattr(detector, "threshold_"):
        raise RuntimeError("the detector is not fitted yet: call fit(X, y) before exporting")
    path = Path(path)
    version = next_version(path) if version is None else int(version)
    target = path / str(version)
    if target.exists():
        raise FileExistsError(f"export target {str(target)!r} exists already")
    path.mkdir(parents=True, exist_ok=True)
    module = tf.Module()
    module.serve = serving_function(detector)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=path))
    try:
        tf.saved_model.save(module, str(staging), signatures={"serving_default": module.serve})
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
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
