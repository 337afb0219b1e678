"""The density score at lower temperatures of the flow's base Gaussian, one-class.

For each data set and seed, fits the default ``NFADetector`` without its neighbour term
(``neighbour_rows=0``: the combined score is then the density's and the classifier's alone) on
the benchmark's one-class task (every KDD-99 row, at most 10,000 normal training rows
elsewhere) and ranks the test rows by

* ``-log p_T(x)`` (``Flow.log_prob(x, T)``) for ``T`` in ``TEMPERATURES`` (``T = 1`` is the
  default density score);
* ``||f^{-1}(x)||^2`` alone (the limit ``T -> 0``: the distance from the base space's centre);
* ``-log|det J(f^{-1}|x)|`` alone (the flow's change of volume, ``-log p`` minus the above);
* the combined score (``tfp_flowad.detector.combine_scores``) with the density at each ``T``:
  at ``T = 1`` with the fit's own ``score_scaling_``; at other ``T`` the density term is
  standardised by the median and interquartile range of ``-log p_T`` on the normal training
  rows, its weight and the classifier's term kept.

With known anomalies ``NFADetector(density_temperature="auto")`` chooses ``T`` on them; the
``nf-temperature`` rows of ``benchmarks/ablations.py`` measure that (``docs/RESULTS.md``).
One-class there is no choice; this script shows why no single ``T`` suits every table.

Appends one JSON line per fit to ``benchmarks/results/density_temperature.jsonl`` (fits already
there are skipped) and prints the means per data set.
Usage: ``python benchmarks/density_temperature.py [--datasets kdd99,10_cover,...]
[--seeds 0-1]``.
"""

import argparse
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from tfp_flowad import NFADetector
from tfp_flowad.benchmark import benchmark_tasks, load_results, parse_seeds
from tfp_flowad.benchmark.records import append_record
from tfp_flowad.detector import combine_scores

RESULTS = Path(__file__).parent / "results" / "density_temperature.jsonl"
#: the temperatures scored (T^2 = 1, 3/4, 1/2, 1/4).
TEMPERATURES = (1.0, 0.75**0.5, 0.5**0.5, 0.5)
DATASETS = (
    "kdd99,10_cover,6_cardio,23_mammography,2_annthyroid,22_magic.gamma,34_smtp,38_thyroid,"
    "31_satimage-2,32_shuttle,16_http,susy,higgs"
)
#: the size of the benchmark's records: every KDD-99 row, at most 10,000 normal rows elsewhere.
MAX_TRAIN_ROWS = 10_000


def batched(function, features, size=65536):
    return np.concatenate(
        [function(features[i : i + size]).numpy() for i in range(0, len(features), size)]
    ).astype(np.float64)


def fit_and_score(dataset: str, task) -> dict:
    """One one-class fit without the neighbour term; ROC AUC of each density variant and
    combined score."""
    detector = NFADetector(random_state=task.seed, neighbour_rows=0)
    detector.fit(task.X_train, task.y_train)
    flow = detector.flow_
    test = detector.encoder_.transform(task.X_test)
    normal = detector.encoder_.transform(task.X_train)[: 2**15]
    detector.score_kind = "classifier"
    classifier = detector.decision_function(task.X_test)
    record = {"dataset": dataset, "task": task.name, "seed": task.seed}
    record["density"], record["combined"] = {}, {}
    for temperature in TEMPERATURES:
        key = f"{temperature:.3f}"
        density = -batched(lambda x, t=temperature: flow.log_prob(x, t), test)
        density = np.where(np.isfinite(density), density, 1e30)
        record["density"][key] = round(roc_auc_score(task.y_test, density), 4)
        # The fit's own scaling at T = 1; at other T the density's median and IQR on the
        # first 2**15 training rows (all normal, one-class), its weight kept.
        scaling = dict(detector.score_scaling_)
        if temperature != 1.0:
            normal_density = -batched(lambda x, t=temperature: flow.log_prob(x, t), normal)
            low, median, high = np.quantile(
                normal_density[np.isfinite(normal_density)], [0.25, 0.5, 0.75]
            )
            scaling["density"] = [median, max(high - low, 1e-6), scaling["density"][2]]
        combined = combine_scores(density, classifier, scaling).numpy()
        record["combined"][key] = round(roc_auc_score(task.y_test, combined), 4)
    squared_norm = (batched(flow.inverse, test) ** 2).sum(1)
    squared_norm = np.where(np.isfinite(squared_norm), squared_norm, 1e30)
    record["base_norm"] = round(roc_auc_score(task.y_test, squared_norm), 4)
    # -log p = ||z||^2 / 2 + const - log|det J(f^{-1})|: the volume term is the rest.
    volume = -batched(flow.log_prob, test) - 0.5 * squared_norm
    record["volume_term"] = round(roc_auc_score(task.y_test, np.nan_to_num(volume)), 4)
    return record


def mean_of(records: list[dict], part: str, key: str | None = None) -> float:
    return float(np.mean([r[part] if key is None else r[part][key] for r in records]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=DATASETS)
    parser.add_argument("--seeds", default="0-1")
    args = parser.parse_args()
    done = {(record["dataset"], record["seed"]): record for record in load_results(RESULTS)}
    names = args.datasets.split(",")
    for dataset in names:
        size = {"max_train_rows": None if dataset.startswith("kdd99") else MAX_TRAIN_ROWS}
        for task in benchmark_tasks(dataset, args.seeds, "one-class", size):
            if (dataset, task.seed) not in done:
                done[(dataset, task.seed)] = fit_and_score(dataset, task)
                append_record(RESULTS, done[(dataset, task.seed)])
    seeds = parse_seeds(args.seeds)
    keys = [f"{t:.3f}" for t in TEMPERATURES]
    print(f"one-class ROC AUC, mean over seeds {seeds}")
    print(
        "| data set | density, T = " + " / ".join(keys) + " | `||z||^2` alone | volume term "
        "alone | combined, T = " + " / ".join(keys) + " |"
    )
    print("|---|---|---|---|---|")
    for dataset in names:
        records = [done[(dataset, s)] for s in seeds]
        density = " / ".join(f"{mean_of(records, 'density', k):.4f}" for k in keys)
        combined = " / ".join(f"{mean_of(records, 'combined', k):.4f}" for k in keys)
        print(
            f"| {dataset} | {density} | {mean_of(records, 'base_norm'):.4f} | "
            f"{mean_of(records, 'volume_term'):.4f} | {combined} |"
        )


if __name__ == "__main__":
    main()
