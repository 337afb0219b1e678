"""Do known attacks hurt the detection of the others? KDD-99, like for like.

The runner's ``unseen_auc`` of task ``k`` scores the test normals plus the attack classes not
known to that task; at k=4 and k=8 that subset keeps mostly the hard classes, so comparing it
with the one-class task's figure (on the whole test) is not fair. Here, for each seed, the one-class
detector is fitted again and scored on the unseen subset of each ``k`` task (the tasks of a
seed share their test split), beside the ``k`` fit's ``unseen_auc`` from the runner's records
(``benchmarks/results/kdd99/results.jsonl``, method ``normalising-flow``; fits are deterministic
for a seed on CPU, so the one-class fit here is the runner's one-class fit).

Writes ``benchmarks/results/kdd99_unseen_like_for_like.json`` and prints a table.
Usage: ``python benchmarks/kdd99_unseen_like_for_like.py [--seeds 0-4]``.
"""

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from tfp_flowad import NFADetector
from tfp_flowad.benchmark.runner import parse_seeds
from tfp_flowad.datasets import kdd99_tasks

RESULTS = Path(__file__).parent / "results" / "kdd99_unseen_like_for_like.json"
RECORDS = Path(__file__).parent / "results" / "kdd99" / "results.jsonl"
KS = (1, 2, 4, 8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-4")
    seeds = parse_seeds(parser.parse_args().seeds)
    k_fits = {
        (r["seed"], r["task"]): r["unseen_auc"]
        for r in map(json.loads, RECORDS.read_text().splitlines())
        if r["method"] == "normalising-flow"
    }
    records = []
    for seed in seeds:
        one_class, *tasks = kdd99_tasks(seed, ks=(0, *KS))
        detector = NFADetector(random_state=seed).fit(one_class.X_train, one_class.y_train)
        for task in tasks:
            X, y = task.extra_tests["unseen"]
            record = {
                "seed": seed,
                "task": task.name,
                "one_class_fit": roc_auc_score(y, detector.decision_function(X)),
                "k_fit": k_fits.get((seed, task.name), float("nan")),
            }
            records.append(record)
            print(json.dumps(record), flush=True)
    print("\n| unseen subset of | one-class fit | fit with k known classes |\n|---|---|---|")
    for k in KS:
        rows = [r for r in records if r["task"] == f"k={k}"]
        cells = [
            f"{np.mean([r[key] for r in rows]):.4f} ± {np.std([r[key] for r in rows]):.4f}"
            for key in ("one_class_fit", "k_fit")
        ]
        print(f"| k={k} (n={len(rows)}) | {cells[0]} | {cells[1]} |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
