"""SavedModel export for TF Serving.

The exported model holds the ``TabularEncoder`` and the one model that scoring needs (the flow
for ``score="density"``, the classifier for ``score="classifier"``). Its ``serving_default``
signature takes the RAW columns by name (``float32`` for numeric columns, ``string`` for
categorical ones, each ``[batch]``) and returns ``anomaly_score`` (higher = more abnormal) and
``is_anomaly`` (``anomaly_score > threshold``).
"""

import os
import shutil
import tempfile
from pathlib import Path

import tensorflow as tf

from tfp_flowad.detector import anomaly_score

__all__ = ["export_saved_model", "next_version"]


class _ServingModule(tf.Module):
    """Tracks the encoder's lookup tables and the classifier's variables for saving."""

    def __init__(self, encoder, model, kind: str, threshold: float):
        super().__init__(name="tfp_flowad_detector")
        self.encoder = encoder
        self.model = model
        self.tables = list(encoder.tables)
        self.threshold = tf.Variable(threshold, trainable=False, dtype=tf.float32)

        @tf.function(input_signature=[encoder.input_signature()])
        def serve(inputs):
            score = anomaly_score(self.model, kind, self.encoder(inputs))
            return {"anomaly_score": score, "is_anomaly": score > self.threshold}

        self.serve = serve


def next_version(path: Path) -> int:
    """1 + the largest integer sub-directory of ``path`` (1 when there is none)."""
    versions = [int(p.name) for p in path.iterdir() if p.name.isdigit()] if path.is_dir() else []
    return max(versions, default=0) + 1


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
    model, kind = detector._scoring_model()
    module = _ServingModule(detector.encoder_, model, kind, detector.threshold_)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=path))
    try:
        tf.saved_model.save(module, str(staging), signatures={"serving_default": module.serve})
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
