"""What a default fit costs as the table grows, and how much of it is fixed (mostly tracing).

For each case (a table size), fits the default ``NFADetector`` (seed 0) twice in one process:

* ``default``: the default fit; its ``fit_seconds_`` per stage, the test ROC AUC;
* ``one step``: the same fit with every stage cut to one step (one flow pass of one step, one
  distillation step, one classifier step, one student step). What a stage costs then is its
  fixed cost: building and tracing its ``tf.function`` s, Keras' set-up and one step. The
  default's stage time less this is what its steps cost.

Then the deep reference detector of the task (``tfp_flowad.baselines``: Deep SAD with known
anomalies, Deep SVDD one-class, where Deep SAD cannot fit) is fitted on the same rows, and the
in-process scoring rate of both (``decision_function`` on the test rows, after one warm-up
call) is timed three times each, alternating, keeping each one's best.

Cases: ``300`` (the cardio set, 300 normal training rows, one-class), ``5000`` (the magic.gamma
set, 5,000 normal training rows, one-class), ``5000-5%`` (the same with its 5 % task's known
anomalies), ``kdd99`` and ``kdd99-k1`` (KDD-99's one-class and k=1 tasks, about 70,000 rows).
The targets are printed beside the figures. Timings on a shared machine are noisy; the two
variants of a case run one after the other in one process.

Usage::

    python benchmarks/fit_cost.py [--cases 300,5000,kdd99-k1]

writes ``benchmarks/results/fit_cost.json`` (one entry per case) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from tfp_flowad import NFADetector
from tfp_flowad.baselines import BASELINES
from tfp_flowad.benchmark.records import write_whole
from tfp_flowad.datasets import adbench_tasks, kdd99_tasks

RESULTS = Path(__file__).parent / "results" / "fit_cost.json"

#: every stage cut to one step: what is left is each stage's fixed cost.
ONE_STEP = dict(
    flow_epochs=1,
    flow_min_steps=1,
    distillation_steps=1,
    classifier_epochs=1,
    classifier_min_steps=1,
    student_steps=1,
)

#: case -> the whole default fit's target in seconds on 2 cores.
TARGET_SECONDS = {"300": 5, "5000": 15, "5000-5%": 15, "kdd99": 40, "kdd99-k1": 40}


def _first_normal_rows(task, n: int):
    """``task``'s training rows with only its first ``n`` normal rows (known anomalies kept)."""
    y = np.asarray(task.y_train)
    keep = np.flatnonzero(y == 1)
    keep = np.sort(np.concatenate([np.flatnonzero(y == 0)[:n], keep]))
    return task.X_train[keep], y[keep], task.X_test, task.y_test


def case_rows(case: str):
    """``(X_train, y_train, X_test, y_test)`` of ``case`` (seed 0)."""
    if case == "300":
        return _first_normal_rows(adbench_tasks("6_cardio", 0, fractions=(0.0,))[0], 300)
    if case in ("5000", "5000-5%"):
        fraction = 0.05 if case.endswith("5%") else 0.0
        return _first_normal_rows(
            adbench_tasks("22_magic.gamma", 0, fractions=(fraction,))[0], 5000
        )
    if case in ("kdd99", "kdd99-k1"):
        task = kdd99_tasks(0, ks=(1 if case.endswith("k1") else 0,))[0]
        return task.X_train, task.y_train, task.X_test, task.y_test
    raise ValueError(f"case must be one of {sorted(TARGET_SECONDS)}; got {case!r}")


def timed_fit(detector, X, y) -> float:
    start = time.perf_counter()
    detector.fit(X, y)
    return time.perf_counter() - start


def scoring_rate(detector, X) -> float:
    """Rows per second of ``decision_function`` on ``X`` (after one warm-up call)."""
    start = time.perf_counter()
    detector.decision_function(X)
    return len(X) / (time.perf_counter() - start)


def measure(case: str) -> dict:
    X, y, X_test, y_test = case_rows(case)
    entry = {"case": case, "train_rows": int(len(y)), "known": int(np.sum(y))}
    # What else ran: the one-minute load average before this case (2 cores; about 1 is quiet).
    entry["load_average"] = round(os.getloadavg()[0], 2)
    fitted = {}
    reference = "deep-sad" if entry["known"] else "deep-svdd-oc"
    entry["reference_name"] = reference
    for variant, params in (("default", {}), ("one step", ONE_STEP), ("reference", None)):
        if params is None:
            detector = BASELINES[reference](random_state=0)
        else:
            detector = NFADetector(random_state=0, **params)
        seconds = timed_fit(detector, X, y)
        entry[variant] = {
            "fit_seconds": round(seconds, 2),
            "roc_auc": round(float(roc_auc_score(y_test, detector.decision_function(X_test))), 5),
        }
        if params is not None:
            entry[variant]["stage_seconds"] = {
                k: round(v, 2) for k, v in detector.fit_seconds_.items()
            }
        fitted[variant] = detector
    best = {"default": 0.0, "reference": 0.0}
    for _ in range(3):
        for variant in best:
            best[variant] = max(best[variant], scoring_rate(fitted[variant], X_test))
    for variant, rate in best.items():
        entry[variant]["score_rows_per_second"] = round(rate)
    entry["target_fit_seconds"] = TARGET_SECONDS[case]
    return entry


def show(entry: dict) -> None:
    default, one = entry["default"], entry["one step"]
    print(
        f"\n{entry['case']}: {entry['train_rows']} training rows ({entry['known']} known); "
        f"default fit {default['fit_seconds']} s (target {entry['target_fit_seconds']} s: "
        f"{'met' if default['fit_seconds'] <= entry['target_fit_seconds'] else 'missed'}), "
        f"ROC AUC {default['roc_auc']}; {entry['reference_name']} "
        f"{entry['reference']['fit_seconds']}"
        f" s, ROC AUC {entry['reference']['roc_auc']}"
    )
    print("| stage | default s | one step s (fixed) | steps s |\n|---|---|---|---|")
    for stage, seconds in default["stage_seconds"].items():
        fixed = one["stage_seconds"].get(stage, 0.0)
        print(f"| {stage} | {seconds} | {fixed} | {round(seconds - fixed, 2)} |")
    print(
        f"| whole fit | {default['fit_seconds']} | {one['fit_seconds']} | "
        f"{round(default['fit_seconds'] - one['fit_seconds'], 2)} |"
    )
    rates = (default["score_rows_per_second"], entry["reference"]["score_rows_per_second"])
    print(
        f"scoring in process, rows/s: default {rates[0]:,} / {entry['reference_name']} {rates[1]:,}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="300,5000,5000-5%,kdd99,kdd99-k1")
    args = parser.parse_args(argv)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for case in args.cases.split(","):
        entry = measure(case)
        show(entry)
        results[case] = entry
        write_whole(RESULTS, json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
