"""The classifier's ensemble distilled into one network, against the ensemble: KDD-99.

For each ``k`` and seed, fits ``NFADetector(classifier_distillation_steps=STEPS)`` on the
benchmark's KDD-99 task (``kdd99_tasks``, with the ``corrected`` file) and scores the test
split, the unseen attacks and the ``corrected`` file with the combined score and the
classifier alone. Everything before the distillation draws the same numbers as the default
fit, so the runner's records of the ensemble (``benchmarks/results/kdd99-corrected/``, methods
``normalising-flow`` and ``normalising-flow-classifier``) are the comparison.

Appends one JSON line per fit to ``benchmarks/results/classifier_distillation.jsonl`` (fits
already there are skipped) and prints the means beside the records'.
Usage: ``python benchmarks/classifier_distillation.py [--ks 1,2,4,8] [--seeds 0-4]
[--steps 2000]``.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from tfp_flowad import NFADetector
from tfp_flowad.benchmark.runner import parse_seeds
from tfp_flowad.datasets import kdd99_tasks, load_kdd99, load_kdd99_corrected

RESULTS = Path(__file__).parent / "results" / "classifier_distillation.jsonl"
RECORDS = Path(__file__).parent / "results" / "kdd99-corrected" / "results.jsonl"


def fit_and_score(task, seed: int, steps: int) -> dict:
    """One fit with the distilled classifier: seconds, and ROC AUC of both scores on every
    test set of the task."""
    start = time.perf_counter()
    detector = NFADetector(random_state=seed, classifier_distillation_steps=steps)
    detector.fit(task.X_train, task.y_train)
    record = {
        "k": int(task.name.split("=")[1]),
        "seed": seed,
        "steps": steps,
        "fit": round(time.perf_counter() - start, 1),
        "stages": {stage: round(s, 1) for stage, s in detector.fit_seconds_.items()},
        "dist_loss": round(detector.history_["classifier_distillation"]["loss"][-1], 3),
    }
    tests = {"test": (task.X_test, task.y_test), **task.extra_tests}
    for kind in ("combined", "classifier"):
        detector.score = kind
        record[kind] = {
            name: round(roc_auc_score(y, detector.decision_function(X)), 4)
            for name, (X, y) in tests.items()
        }
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", default="1,2,4,8")
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args()
    ks, seeds = [int(k) for k in args.ks.split(",")], parse_seeds(args.seeds)
    done = {}
    if RESULTS.exists():
        for record in map(json.loads, RESULTS.read_text().splitlines()):
            done[(record["k"], record["seed"], record["steps"])] = record
    data, corrected = load_kdd99(), load_kdd99_corrected()
    for seed in seeds:
        for task in kdd99_tasks(seed, ks=ks, data=data, corrected=corrected):
            key = (int(task.name.split("=")[1]), seed, args.steps)
            if key not in done:
                done[key] = fit_and_score(task, seed, args.steps)
                with RESULTS.open("a") as file:
                    file.write(json.dumps(done[key]) + "\n")
    records = {
        (r["method"], r["task"], r["seed"]): r
        for r in map(json.loads, RECORDS.read_text().splitlines())
    }
    print("| task | combined | unseen | `corrected` | classifier alone |")
    print("|---|---|---|---|---|")
    for k in ks:
        fits = [done[(k, seed, args.steps)] for seed in seeds]
        ensemble = [records[("normalising-flow", f"k={k}", seed)] for seed in seeds]
        alone = [records[("normalising-flow-classifier", f"k={k}", seed)] for seed in seeds]
        pairs = [
            (np.mean([r["roc_auc"] for r in ensemble]), [f["combined"]["test"] for f in fits]),
            (np.mean([r["unseen_auc"] for r in ensemble]), [f["combined"]["unseen"] for f in fits]),
            (
                np.mean([r["corrected_auc"] for r in ensemble]),
                [f["combined"]["corrected"] for f in fits],
            ),
            (np.mean([r["roc_auc"] for r in alone]), [f["classifier"]["test"] for f in fits]),
        ]
        cells = " | ".join(f"{old:.4f} -> {np.mean(new):.4f}" for old, new in pairs)
        print(f"| k={k} | {cells} |")


if __name__ == "__main__":
    main()
