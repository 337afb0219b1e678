"""Scoring throughput of the exported SavedModel on KDD-99 rows, for each score kind.

Fits four KDD-99 detectors (seed 0): one-class, whose classifier is one network; k=1, whose
classifier is one network with gradient-boosted trees
beside it unless held-out known anomalies rank better without them (``classifier_model="auto"``);
k=1 without the combined score's neighbour term (``neighbour_rows=0``); and k=1 with the MLP
alone (``classifier_model="mlp"``).
Exports each once per score kind (``"student"`` included: every detector fits one by default)
and times ``serving_default`` on 1,000,000 raw rows sent as batches of 250,000 (after one
warm-up call, ``served_rows_per_second``); also gives each score's test ROC AUC. Writes
``benchmarks/results/serving_throughput.json`` (one entry per detector) and prints a table.
"""

import json
import tempfile
from pathlib import Path

from sklearn.metrics import roc_auc_score

from tfp_flowad import NFADetector
from tfp_flowad.benchmark.records import write_whole
from tfp_flowad.datasets import kdd99_tasks
from tfp_flowad.export import served_rows_per_second

RESULTS = Path(__file__).parent / "results" / "serving_throughput.json"
ROWS, BATCH = 1_000_000, 250_000


def main() -> None:
    results = {"rows": ROWS, "batch": BATCH}
    print("| detector | score | rows/s | ROC AUC |\n|---|---|---|---|")
    one_class, k1 = kdd99_tasks(0, ks=(0, 1))
    for name, task, params in (
        ("one-class", one_class, {}),
        ("k=1", k1, {}),
        ("k=1, without the neighbour term", k1, {"neighbour_rows": 0}),
        ("k=1, MLP alone", k1, {"classifier_model": "mlp"}),
    ):
        results[name] = throughput(name, task, params)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_whole(RESULTS, json.dumps(results, indent=1))


def throughput(name: str, task, params: dict) -> dict:
    """Fit seconds per stage, and each score kind's SavedModel rows/s and test ROC AUC."""
    detector = NFADetector(random_state=0, **params).fit(task.X_train, task.y_train)
    rows = task.X_test.sample(BATCH, replace=True, random_state=0)
    batch = detector.encoder_.to_tensors(rows)
    results = {"params": params, "fit_seconds": detector.fit_seconds_}
    with tempfile.TemporaryDirectory() as tmp:
        for score in detector.available_scores():
            detector.score_kind = score
            target = detector.export_saved_model(Path(tmp) / score)
            results[score] = round(served_rows_per_second(target, batch, ROWS))
            auc = roc_auc_score(task.y_test, detector.decision_function(task.X_test))
            results[f"{score}_roc_auc"] = round(auc, 4)
            print(f"| {name} | {score} | {results[score]:,} | {auc:.4f} |", flush=True)
    return results


if __name__ == "__main__":
    main()
