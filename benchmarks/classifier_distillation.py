"""The classifier's ensemble distilled into one network, against the ensemble.

For each task and seed of a benchmark data set, fits
``NFADetector(classifier_distillation_steps=STEPS)`` on the benchmark's task (the size of the
records in ``benchmarks/results/``: every KDD-99 row, at most 10,000 normal training rows
elsewhere) and scores
every test set of the task (KDD-99: the test split, the unseen attacks and the ``corrected``
file) with the combined score and the classifier alone. Everything before the distillation
draws the same numbers as the default fit, so the runner's records of the ensemble
(``benchmarks/results/<dataset>/``, methods ``normalising-flow`` and
``normalising-flow-classifier``) are the comparison.

Appends one JSON line per fit to ``benchmarks/results/classifier_distillation.jsonl`` (fits
already there are skipped) and prints the means beside the records'.
Usage: ``python benchmarks/classifier_distillation.py [--dataset kdd99-corrected]
[--tasks k=1,k=2,k=4,k=8] [--seeds 0-4] [--steps 2000]``.
"""

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from tfp_flowad import NFADetector
from tfp_flowad.benchmark import (
    Size,
    benchmark_tasks,
    dataset_name,
    load_results,
    parse_seeds,
    parse_tasks,
)
from tfp_flowad.benchmark.records import append_record

RESULTS = Path(__file__).parent / "results" / "classifier_distillation.jsonl"
RECORDS = Path(__file__).parent / "results"
#: the size of the records: every KDD-99 row, at most 10,000 normal rows elsewhere.
MAX_TRAIN_ROWS = 10_000


def fit_and_score(dataset: str, task, steps: int) -> dict:
    """One fit with the distilled classifier: seconds, and ROC AUC of both scores on every
    test set of the task."""
    start = time.perf_counter()
    detector = NFADetector(random_state=task.seed, classifier_distillation_steps=steps)
    detector.fit(task.X_train, task.y_train)
    record = {
        "dataset": dataset,
        "task": task.name,
        "seed": task.seed,
        "steps": steps,
        "fit": round(time.perf_counter() - start, 1),
        "stages": {stage: round(s, 1) for stage, s in detector.fit_seconds_.items()},
        "dist_loss": round(detector.history_["classifier_distillation"]["loss"][-1], 3),
    }
    tests = {"test": (task.X_test, task.y_test), **task.extra_tests}
    for kind in ("combined", "classifier"):
        detector.score_kind = kind
        record[kind] = {
            name: round(roc_auc_score(y, detector.decision_function(X)), 4)
            for name, (X, y) in tests.items()
        }
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="kdd99-corrected")
    parser.add_argument("--tasks", default="k=1,k=2,k=4,k=8")
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args()
    names, seeds = parse_tasks(args.tasks), parse_seeds(args.seeds)
    dataset = dataset_name(args.dataset)
    done = {
        (record["dataset"], record["task"], record["seed"], record["steps"]): record
        for record in load_results(RESULTS)
    }
    size = Size(max_train_rows=None if dataset.startswith("kdd99") else MAX_TRAIN_ROWS)
    for task in benchmark_tasks(args.dataset, seeds, names, size):
        key = (dataset, task.name, task.seed, args.steps)
        if key not in done:
            done[key] = fit_and_score(dataset, task, args.steps)
            append_record(RESULTS, done[key])
    records = {
        (r["method"], r["task"], r["seed"]): r
        for r in load_results(RECORDS / dataset / "results.jsonl")
    }
    tests = list(done[(dataset, names[0], seeds[0], args.steps)]["combined"])
    print(f"{dataset}, {len(seeds)} seeds, ROC AUC means, ensemble (records) -> distilled")
    print("| task | " + " | ".join(f"combined, {t}" for t in tests) + " | classifier alone |")
    print("|---" * (len(tests) + 2) + "|")
    record_key = {"test": "roc_auc", "unseen": "unseen_auc", "corrected": "corrected_auc"}
    for name in names:
        fits = [done[(dataset, name, seed, args.steps)] for seed in seeds]
        ensemble = [records[("normalising-flow", name, seed)] for seed in seeds]
        alone = [records[("normalising-flow-classifier", name, seed)] for seed in seeds]
        pairs = [
            (
                np.mean([r[record_key[test]] for r in ensemble]),
                np.mean([f["combined"][test] for f in fits]),
            )
            for test in tests
        ]
        pairs.append(
            (
                np.mean([r["roc_auc"] for r in alone]),
                np.mean([f["classifier"]["test"] for f in fits]),
            )
        )
        print(f"| {name} | " + " | ".join(f"{a:.4f} -> {b:.4f}" for a, b in pairs) + " |")


if __name__ == "__main__":
    main()
