"""KDD-99 quality and speed of NFADetector under the protocol of BENCHMARK.md.

For each seed and task (one-class, k = 1, 2, 4, 8) it fits one detector and records ROC AUC on
the full test set and on the "unseen attacks" test set, for both scores (the flow's density and
the paper's (1 + eps)-class classifier), fit seconds per stage and in-process scoring rows/s.
One JSON line per fit goes to ``benchmarks/results/kdd99_detector.jsonl`` (finished fits are
skipped on a re-run); a Markdown summary is printed.

Usage: python benchmarks/kdd99_detector.py [--seeds 0-4] [--ks 0,1,2,4,8]
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from tfp_flowad import NFADetector
from tfp_flowad.datasets import kdd99_tasks, load_kdd99

RESULTS = Path(__file__).parent / "results" / "kdd99_detector.jsonl"


def parse_seeds(text: str) -> list[int]:
    if "-" in text:
        low, high = text.split("-")
        return list(range(int(low), int(high) + 1))
    return [int(s) for s in text.split(",")]


def evaluate(task) -> dict:
    start = time.perf_counter()
    detector = NFADetector(random_state=task.seed).fit(task.X_train, task.y_train)
    fit_seconds = time.perf_counter() - start
    record = {
        "dataset": "kdd99",
        "task": task.name,
        "seed": task.seed,
        "known_classes": list(task.known_classes),
        "n_train": len(task.X_train),
        "fit_seconds": round(fit_seconds, 2),
        "stage_seconds": {k: round(v, 2) for k, v in detector.fit_seconds_.items()},
        "params": {k: v for k, v in detector.get_params().items() if k != "verbose"},
    }
    X_unseen, y_unseen = task.extra_tests["unseen"]
    for score in ("combined", "density", "classifier"):
        detector.score = score
        start = time.perf_counter()
        scores = detector.decision_function(task.X_test)
        seconds = time.perf_counter() - start
        record[f"{score}_auc"] = round(float(roc_auc_score(task.y_test, scores)), 5)
        record[f"{score}_unseen_auc"] = round(
            float(roc_auc_score(y_unseen, detector.decision_function(X_unseen))), 5
        )
        record[f"{score}_rows_per_second"] = round(len(scores) / seconds)
    return record


def summary(records: list[dict]) -> str:
    tasks = ["one-class", "k=1", "k=2", "k=4", "k=8"]
    lines = ["| score | figure | " + " | ".join(tasks) + " |", "|---" * (len(tasks) + 2) + "|"]
    for score in ("combined", "density", "classifier"):
        for figure in ("auc", "unseen_auc"):
            cells = []
            for task in tasks:
                values = [r[f"{score}_{figure}"] for r in records if r["task"] == task]
                cells.append(
                    f"{np.mean(values):.4f} ± {np.std(values):.4f} (n={len(values)})"
                    if values
                    else "-"
                )
            lines.append(f"| {score} | {figure} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--ks", default="0,1,2,4,8")
    args = parser.parse_args()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    done = []
    if RESULTS.exists():
        done = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
    finished = {(r["task"], r["seed"]) for r in done}
    data = load_kdd99()
    ks = tuple(int(k) for k in args.ks.split(","))
    for seed in parse_seeds(args.seeds):
        for task in kdd99_tasks(seed, ks=ks, data=data):
            if (task.name, seed) in finished:
                continue
            record = evaluate(task)
            print(json.dumps(record), flush=True)
            with RESULTS.open("a") as file:
                file.write(json.dumps(record) + "\n")
            done.append(record)
    print(summary(done))


if __name__ == "__main__":
    main()
