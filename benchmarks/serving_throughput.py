"""Scoring throughput of the exported SavedModel on KDD-99 rows, for each score kind.

Fits the detectors of two KDD-99 tasks (seed 0): one-class, whose classifier is one network,
and k=1, whose classifier is an ensemble of five (``classifier_members="auto"``). Exports each
once per ``score`` and times ``serving_default`` on 1,000,000 raw rows sent as batches of
250,000 (after one warm-up call). Writes ``benchmarks/results/serving_throughput.json`` (one
entry per task) and prints a table.
"""

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from tfp_flowad import NFADetector
from tfp_flowad.datasets import kdd99_tasks

RESULTS = Path(__file__).parent / "results" / "serving_throughput.json"
ROWS, BATCH = 1_000_000, 250_000


def main() -> None:
    results = {"rows": ROWS, "batch": BATCH}
    print("| task | score | rows/s |\n|---|---|---|")
    for task in kdd99_tasks(0, ks=(0, 1)):
        results[task.name] = throughput(task)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1))


def throughput(task) -> dict:
    """Fit seconds per stage, classifier members and SavedModel rows/s of each score kind."""
    detector = NFADetector(random_state=0).fit(task.X_train, task.y_train)
    rows = task.X_test.sample(BATCH, replace=True, random_state=0)
    numeric = pd.api.types.is_numeric_dtype
    batch = {
        c: tf.constant(rows[c].to_numpy(dtype=np.float32 if numeric(rows[c]) else object))
        for c in rows.columns
    }
    members = detector.classifier_.output_shape[-1]
    results = {"fit_seconds": detector.fit_seconds_, "classifier_members": members}
    with tempfile.TemporaryDirectory() as tmp:
        for score in ("classifier", "density", "combined"):
            detector.score = score
            target = detector.export_saved_model(Path(tmp) / score)
            serve = tf.saved_model.load(str(target)).signatures["serving_default"]
            serve(**{c: v[:1000] for c, v in batch.items()})
            start = time.perf_counter()
            for _ in range(ROWS // BATCH):
                serve(**batch)["anomaly_score"].numpy()
            results[score] = round(ROWS / (time.perf_counter() - start))
            print(f"| {task.name} | {score} | {results[score]:,} |", flush=True)
    return results


if __name__ == "__main__":
    main()
