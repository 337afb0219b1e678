"""Where does the student score trail the combined score, and what closes the gap?

For each data set, task and seed (the benchmark's splits, at most 10,000 normal training rows),
fits the default detector once, then fits its student stage again (``refit_student``) under
variants of the soft target's centre (``student_target_quantile``) and of the number of
steps (``student_steps``), and scores the test rows with each. The
combined score, the classifier alone and the fit's own student are recorded beside them.

Writes ``benchmarks/results/student_variants.jsonl`` (one line per fit) and prints a table.
Usage: ``python benchmarks/student_variants.py DATASET TASK [--seeds 0-2] [--variants NAMES]
[--results FILE]``, e.g. ``python benchmarks/student_variants.py susy one-class``. The study of
the student's length against the table's size runs the step variants alone into their own file::

    python benchmarks/student_variants.py 6_cardio one-class --seeds 0-1 \
        --variants "1000 steps;2000 steps;default (q=0.99, 3000 steps)" \
        --results benchmarks/results/student_steps.jsonl
"""

import argparse
import time
from pathlib import Path

from sklearn.metrics import roc_auc_score

from tfp_flowad import NFADetector
from tfp_flowad.benchmark import benchmark_tasks
from tfp_flowad.benchmark.records import append_record

RESULTS = Path(__file__).parent / "results" / "student_variants.jsonl"
#: name -> (target quantile, steps); the first is the default.
VARIANTS = {
    "default (q=0.99, 3000 steps)": (0.99, 3000),
    "1000 steps": (0.99, 1000),
    "2000 steps": (0.99, 2000),
    "q=0.9": (0.9, 3000),
    "q=0.5": (0.5, 3000),
    "6000 steps": (0.99, 6000),
    "9000 steps": (0.99, 9000),
    "q=0.9, 6000 steps": (0.9, 6000),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("task")
    parser.add_argument("--seeds", default="0-2")
    parser.add_argument(
        "--variants", default=";".join(VARIANTS), help="names of VARIANTS separated by ';'"
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="the JSON lines file")
    args = parser.parse_args()
    chosen = args.variants.split(";")
    unknown = sorted(set(chosen) - set(VARIANTS))
    if unknown:
        parser.error(f"--variants: unknown {unknown}; expected names of {list(VARIANTS)}")
    for task in benchmark_tasks(args.dataset, args.seeds, args.task, {"max_train_rows": 10000}):
        detector = NFADetector(random_state=task.seed).fit(task.X_train, task.y_train)
        record = {"dataset": args.dataset, "task": args.task, "seed": task.seed}
        for kind in ("combined", "classifier", "student"):
            record[kind] = auc(detector, kind, task)
        record["variants"] = {}
        for name in chosen:
            quantile, steps = VARIANTS[name]
            detector.set_params(student_target_quantile=quantile, student_steps=steps)
            start = time.perf_counter()
            detector.refit_student(task.X_train, task.y_train)
            seconds = time.perf_counter() - start
            record["variants"][name] = {
                "roc_auc": auc(detector, "student", task),
                "seconds": seconds,
            }
        append_record(args.results, record)
        cells = " | ".join(f"{v['roc_auc']:.4f}" for v in record["variants"].values())
        print(
            f"| {args.dataset} | {args.task} | {task.seed} | {record['combined']:.4f} | "
            f"{record['classifier']:.4f} | {record['student']:.4f} | {cells} |",
            flush=True,
        )


def auc(detector: NFADetector, kind: str, task) -> float:
    detector.score_kind = kind
    return float(roc_auc_score(task.y_test, detector.decision_function(task.X_test)))


if __name__ == "__main__":
    main()
