"""Do known attacks hurt the detection of the others? KDD-99, like for like.

The runner's ``unseen_auc`` of task ``k`` scores the test normals plus the attack classes not
known to that task; at k=4 and k=8 that subset keeps mostly the hard classes, so comparing it
with the one-class task's figure (on the whole test) is not fair. Here, for each seed, the
one-class detector is fitted again and scored (combined score and student) on the unseen
subset of each ``k`` task (the tasks of a seed share their test split), beside the ``k`` fit's
``unseen_auc`` from the runner's records (``benchmarks/results/kdd99/results.jsonl``, methods
``normalising-flow`` and ``normalising-flow-student``; fits are deterministic for a seed on
CPU, so the one-class fit here is the runner's one-class fit).

Writes ``benchmarks/results/kdd99_unseen_like_for_like.json`` and prints a table.
Usage: ``python benchmarks/kdd99_unseen_like_for_like.py [--seeds 0-4]``.
"""

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from tfp_flowad import NFADetector
from tfp_flowad.benchmark import load_results, parse_seeds
from tfp_flowad.benchmark.records import write_whole
from tfp_flowad.datasets import kdd99_tasks

RESULTS = Path(__file__).parent / "results" / "kdd99_unseen_like_for_like.json"
RECORDS = Path(__file__).parent / "results" / "kdd99" / "results.jsonl"
KS = (1, 2, 4, 8)
#: the score kinds compared, and the benchmark method whose records hold each one's k fits.
METHODS = {"combined": "normalising-flow", "student": "normalising-flow-student"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-4")
    seeds = parse_seeds(parser.parse_args().seeds)
    k_fits = {
        (r["method"], r["seed"], r["task"]): r["unseen_auc"]
        for r in load_results(RECORDS)
        if r["method"] in METHODS.values()
    }
    records = []
    for seed in seeds:
        one_class, *tasks = kdd99_tasks(seed, ks=(0, *KS))
        detector = NFADetector(random_state=seed).fit(one_class.X_train, one_class.y_train)
        for task in tasks:
            X, y = task.extra_tests["unseen"]
            record = {"seed": seed, "task": task.name}
            for score, method in METHODS.items():
                detector.score_kind = score
                suffix = "" if score == "combined" else f"_{score}"
                record["one_class_fit" + suffix] = roc_auc_score(y, detector.decision_function(X))
                record["k_fit" + suffix] = k_fits.get((method, seed, task.name), float("nan"))
            detector.score_kind = "combined"
            records.append(record)
            print(json.dumps(record), flush=True)
    for score in METHODS:
        suffix = "" if score == "combined" else f"_{score}"
        print(f"\n{score} score\n| unseen subset of | one-class fit | fit with k known classes |")
        print("|---|---|---|")
        for k in KS:
            rows = [r for r in records if r["task"] == f"k={k}"]
            cells = [
                f"{np.mean([r[key] for r in rows]):.4f} ± {np.std([r[key] for r in rows]):.4f}"
                for key in ("one_class_fit" + suffix, "k_fit" + suffix)
            ]
            print(f"| k={k} (n={len(rows)}) | {cells[0]} | {cells[1]} |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_whole(RESULTS, json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
