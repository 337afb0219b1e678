"""Writes docs/RESULTS.md, and the results table of README.md, from the committed records.

Usage: ``python benchmarks/update_results_doc.py`` (after ``tfp-flowad benchmark`` or one of the
measurement scripts of ``benchmarks/`` has written new records). Every figure of both comes
from ``benchmarks/results/``: the benchmark runner's ``<data set>/results.jsonl`` and the
measurement scripts' JSON files. The paper's published figures are the only numbers written
here by hand (``PAPER``). README.md is rewritten between the two marker comments
``README_START`` and ``README_END`` only. ``--check`` writes nothing and fails when either file
is not what the records give.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from tfp_flowad.benchmark import load_results, render_table
from tfp_flowad.benchmark.records import write_whole
from tfp_flowad.benchmark.report import (
    DEFAULT_METHOD,
    PAPER_METHODS,
    REFERENCE_METHODS,
    method_means,
    render_beside_published,
)
from tfp_flowad.benchmark.standings import (
    paired_changes,
    render_differences,
    render_head_to_head,
    render_overview,
    render_standings,
    shortfalls,
)
from tfp_flowad.benchmark.tasks import task_order_key

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOC = ROOT / "docs" / "RESULTS.md"
README = ROOT / "README.md"
README_START = "<!-- results table: written by benchmarks/update_results_doc.py -->"
README_END = "<!-- end of results table -->"

#: the data sets in the order of the tables; ``kdd99-corrected`` holds fits of the KDD-99
#: tasks scored on its ``corrected`` file as well, and is shown inside the KDD-99 section.
MAIN = ["kdd99", "higgs", "susy"]
CORRECTED = "kdd99-corrected"
NAMES = {
    "kdd99": "KDD-99",
    "higgs": "HIGGS (sample)",
    "susy": "SUSY (sample)",
    "10_cover": "cover",
    "16_http": "http",
    "22_magic.gamma": "magic.gamma",
    "23_mammography": "mammography",
    "2_annthyroid": "annthyroid",
    "31_satimage-2": "satimage-2",
    "32_shuttle": "shuttle",
    "34_smtp": "smtp",
    "38_thyroid": "thyroid",
    "6_cardio": "cardio",
}

#: the paper's published ROC AUC (Ryzhikov et al., arXiv 1912.09323, tables of fig. 8-10), for
#: the tasks the benchmark runs; one-class methods only in their one-class column (the paper
#: repeats that figure in every column). HIGGS and SUSY are the full UCI sets there.
PAPER: dict[str, dict[str, dict[str, str]]] = {
    "kdd99": {
        "rae-oc": {"one-class": "0.972 ± 0.006"},
        "deep-svdd-oc": {"one-class": "0.939 ± 0.014"},
        "two-class": {
            "k=1": "0.571 ± 0.213",
            "k=2": "0.300 ± 0.182",
            "k=4": "0.687 ± 0.268",
            "k=8": "0.619 ± 0.257",
        },
        "semi-supervised": {
            "k=1": "0.315 ± 0.258",
            "k=2": "0.469 ± 0.286",
            "k=4": "0.758 ± 0.171",
            "k=8": "0.865 ± 0.087",
        },
        "brute-force-ope": {
            "one-class": "0.436 ± 0.122",
            "k=1": "0.667 ± 0.175",
            "k=2": "0.394 ± 0.261",
            "k=4": "0.737 ± 0.187",
            "k=8": "0.541 ± 0.257",
        },
        "hmc-eope": {
            "one-class": "0.739 ± 0.245",
            "k=1": "0.885 ± 0.152",
            "k=2": "0.919 ± 0.055",
            "k=4": "0.863 ± 0.094",
            "k=8": "0.958 ± 0.023",
        },
        "rmsprop-eope": {
            "one-class": "0.765 ± 0.216",
            "k=1": "0.960 ± 0.017",
            "k=2": "0.854 ± 0.187",
            "k=4": "0.964 ± 0.016",
            "k=8": "0.976 ± 0.011",
        },
        "deep-eope": {
            "one-class": "0.602 ± 0.279",
            "k=1": "0.701 ± 0.230",
            "k=2": "0.472 ± 0.300",
            "k=4": "0.749 ± 0.209",
            "k=8": "0.785 ± 0.259",
        },
        "normalising-flow": {
            "one-class": "0.981 ± 0.001",
            "k=1": "0.984 ± 0.002",
            "k=2": "0.993 ± 0.002",
            "k=4": "0.997 ± 0.002",
            "k=8": "0.997 ± 0.002",
        },
    },
    "higgs": {
        "rae-oc": {"one-class": "0.531 ± 0.000"},
        "deep-svdd-oc": {"one-class": "0.487 ± 0.000"},
        "two-class": {"100": "0.496 ± 0.017", "1000": "0.529 ± 0.007"},
        "semi-supervised": {"100": "0.498 ± 0.003", "1000": "0.522 ± 0.003"},
        "brute-force-ope": {
            "one-class": "0.508 ± 0.000",
            "100": "0.500 ± 0.009",
            "1000": "0.520 ± 0.003",
        },
        "hmc-eope": {"one-class": "0.491 ± 0.000", "100": "0.523 ± 0.005", "1000": "0.567 ± 0.008"},
        "rmsprop-eope": {
            "one-class": "0.497 ± 0.000",
            "100": "0.494 ± 0.008",
            "1000": "0.531 ± 0.008",
        },
        "deep-eope": {
            "one-class": "0.531 ± 0.000",
            "100": "0.537 ± 0.011",
            "1000": "0.560 ± 0.008",
        },
        "normalising-flow": {
            "one-class": "0.572 ± 0.009",
            "100": "0.574 ± 0.008",
            "1000": "0.586 ± 0.009",
        },
    },
    "susy": {
        "rae-oc": {"one-class": "0.414 ± 0.000"},
        "deep-svdd-oc": {"one-class": "0.568 ± 0.000"},
        "two-class": {"100": "0.652 ± 0.031", "1000": "0.742 ± 0.011"},
        "semi-supervised": {"100": "0.715 ± 0.020", "1000": "0.766 ± 0.009"},
        "brute-force-ope": {
            "one-class": "0.597 ± 0.000",
            "100": "0.672 ± 0.020",
            "1000": "0.748 ± 0.012",
        },
        "hmc-eope": {"one-class": "0.472 ± 0.000", "100": "0.738 ± 0.019", "1000": "0.770 ± 0.012"},
        "rmsprop-eope": {
            "one-class": "0.528 ± 0.000",
            "100": "0.714 ± 0.019",
            "1000": "0.760 ± 0.016",
        },
        "deep-eope": {
            "one-class": "0.652 ± 0.000",
            "100": "0.670 ± 0.054",
            "1000": "0.746 ± 0.024",
        },
        "normalising-flow": {
            "one-class": "0.701 ± 0.007",
            "100": "0.801 ± 0.007",
            "1000": "0.829 ± 0.007",
        },
    },
}

#: what each row of the tables is.
ROWS: dict[str, str] = {
    "two-class": "class-balanced MLP classifier, eq. (3) (paper's baseline)",
    "semi-supervised": "autoencoder codes, then an MLP classifier (paper's baseline)",
    "deep-svdd-oc": "Deep SVDD, one-class (paper's baseline)",
    "rae-oc": "robust deep autoencoder, one-class (paper's baseline)",
    "brute-force-ope": "(1 + eps)-class classifier with uniform surrogates, eq. (6) (paper's baseline)",
    "hmc-eope": "energy (1 + eps)-class classifier, eq. (11), sampled by HMC (paper's baseline)",
    "rmsprop-eope": "energy (1 + eps)-class classifier, eq. (11), sampled by RMSProp ascent "
    "(paper's baseline)",
    "deep-eope": "energy (1 + eps)-class classifier, eq. (11), sampled by a generator "
    "(paper's baseline)",
    "iforest-oc": "isolation forest, one-class (reference detector)",
    "knn-oc": "distance to the 5th nearest normal training row, one-class (reference detector)",
    "boosted-trees": "class-balanced gradient-boosted trees (scikit-learn's histogram boosting; "
    "reference detector)",
    "xgbod": "those trees on the features plus isolation-forest and nearest-neighbour outlier "
    "scores, after XGBOD (reference detector)",
    "deep-sad": "Deep SAD (reference detector)",
    "normalising-flow": "`NFADetector()`: the defaults, scored by the combined score",
    "normalising-flow-density": "the same fit scored by `-log p(x)` alone (`score_kind='density'`)",
    "normalising-flow-classifier": "the same fit scored by the (1 + eps)-class classifier alone "
    "(`score_kind='classifier'`)",
    "normalising-flow-student": "the same fit scored by the student network "
    "(`score_kind='student'`)",
    "nf-no-neighbours": "`neighbour_rows=0`: the combined score without its neighbour term",
    "nf-no-jacobian": "`flow_jacobian_penalty=0`, and `neighbour_rows=0` (ablation)",
    "nf-realnvp": "`flow='realnvp'`, and `neighbour_rows=0` (ablation)",
    "nf-planar": "`flow='planar'`, and `neighbour_rows=0` (ablation)",
    "nf-radial": "`flow='radial'`, and `neighbour_rows=0` (ablation)",
    "nf-temperature": "`density_temperature='auto'` (an option since removed), and "
    "`neighbour_rows=0`; known anomalies only",
    "nf-mlp-trees": "`classifier_model='mlp+boosted_trees'` (the trees always kept), and "
    "`neighbour_rows=0`; known anomalies only",
    "nf-mlp-trees-neighbours": "`classifier_model='mlp+boosted_trees'`, the neighbour term kept; "
    "known anomalies only",
    "nf-five-members": "`classifier_members=5` (an option since removed): the classifier an "
    "ensemble of five MLPs whose logits are averaged; known anomalies only",
    "nf-mlp": "`classifier_model='mlp'`: the MLP without the trees; known anomalies only",
    "nf-no-averaging": "`classifier_averaging=None`: the classifier's last iterate instead of "
    "its weight average; known anomalies only",
    "nf-fixed-eps": "`classifier_adaptive_eps=False`: the surrogate term's weight fixed; known "
    "anomalies only",
    "nf-no-selection": "`selection_min_known=None`: no held-out choice of the density's weight "
    "and of the trees; known anomalies only",
}
#: the default with an ensemble of five MLPs as its classifier (records of an option since
#: removed); ``nf-mlp`` was fitted beside it.
ENSEMBLE = "nf-five-members"
#: the four scores of the default fit.
DEFAULT_ROWS = tuple(m for m in ROWS if m.startswith("normalising-flow"))

#: parameter names of older records -> the current names.
RENAMED = {
    "jacobian_penalty": "flow_jacobian_penalty",
    "penalty_every": "flow_penalty_every",
    "penalty_batch_size": "flow_penalty_batch_size",
    "patience": "flow_patience",
    "tail_p_value": "surrogate_tail_p_value",
    "box_share": "surrogate_box_share",
    "box_margin": "surrogate_box_margin",
    "gamma": "classifier_gamma",
    "eps": "classifier_eps",
    "adaptive_eps": "classifier_adaptive_eps",
    "classifier_weight": "combined_classifier_weight",
    "score_student_steps": "student_steps",
    "score_student_target_quantile": "student_target_quantile",
    "score": "score_kind",
}
#: settings that change no ROC AUC of the combined score (the student's, which only the
#: student score uses; what is recorded anyway), or that are not the detector's.
UNCOMPARED = {
    "random_state",
    "score_kind",
    "verbose",
    "student_steps",
    "student_target_quantile",
    "student_batch_size",
    "selection_share",
}
#: the value that leaves an option out, for records of a detector that did not have it yet.
OFF = {
    "neighbour_rows": 0,
    "classifier_model": "mlp",
    "classifier_distillation_steps": 0,
    "density_temperature": 1.0,
    "classifier_adaptive_eps": False,
    "classifier_averaging": None,
    "classifier_members": 1,
    "selection_min_known": None,
}


def effective_settings(params: dict, one_class: bool) -> dict:
    """The settings a record's detector fitted with, by their current names, with options it
    did not have set to the value that leaves them out and ``"auto"`` resolved as the
    detector resolves it; settings that one-class fits do not use are left out there."""
    settings = {RENAMED.get(key, key): value for key, value in params.items()}
    if "learning_rate" in settings:  # one rate, later split by stage
        rate = settings.pop("learning_rate")
        settings.setdefault("distillation_learning_rate", rate)
        settings.setdefault("classifier_learning_rate", rate)
    for key, value in OFF.items():
        settings.setdefault(key, value)
    auto = {
        "classifier_model": "mlp" if one_class else "auto",
        "classifier_averaging": None if one_class else 0.99,
        "classifier_members": 1 if one_class else 5,
        "density_temperature": 1.0 if one_class else "auto",
    }
    for key, value in auto.items():
        if settings.get(key) == "auto":
            settings[key] = value
    if one_class:  # no known anomalies: nothing to adapt eps to or to select on
        for key in ("classifier_adaptive_eps", "selection_min_known", "combined_classifier_weight"):
            settings.pop(key, None)
    return {key: value for key, value in settings.items() if key not in UNCOMPARED}


def settings_of(records: list[dict], method: str, dataset: str, task: str) -> dict | None:
    """The effective settings of ``method``'s records of a task (those of one seed; the
    records of a task differ only in the seed)."""
    for r in records:
        if (r["method"], r["dataset"], r["task"]) == (method, dataset, task):
            return effective_settings(r["params"], task == "one-class")
    return None


#: the rows whose records outside KDD-99 come from a flow fit that checks its held-out NLL
#: after every pass over the rows: the default's and the part-by-part ablations'.
PER_PASS_ROWS = (
    *DEFAULT_ROWS,
    "nf-five-members",
    "nf-no-averaging",
    "nf-fixed-eps",
    "nf-no-selection",
)


#: every other row's flow checked its held-out NLL after every sixth of its planned passes. On
#: KDD-99 the two are the same fit (six passes already make the 300 steps there), elsewhere the
#: records' parameters do not show the difference, so comparisons skip it.
def flow_fit(method: str, dataset: str) -> str:
    if method in PER_PASS_ROWS and not dataset.startswith("kdd99"):
        return "checked after every pass"
    return "checked after every sixth of the passes"


def differences(records: list[dict], a: str, b: str, dataset: str, task: str) -> set[str]:
    """The settings in which ``a``'s and ``b``'s records of a task differ, and ``"flow fit"``
    where their flows were fitted differently."""
    first, second = settings_of(records, a, dataset, task), settings_of(records, b, dataset, task)
    if first is None or second is None:
        return set()
    differ = {
        key
        for key in set(first) | set(second)
        if json.dumps(first.get(key)) != json.dumps(second.get(key))
    }
    if flow_fit(a, dataset) != flow_fit(b, dataset):
        differ.add("flow fit")
    return differ


def like_for_like(records: list[dict], a: str, b: str, option: set[str]):
    """``keep(dataset, task)``: True where ``a`` and ``b`` differ in ``option`` only."""

    def keep(dataset: str, task: str) -> bool:
        return differences(records, a, b, dataset, task) <= option

    return keep


# --------------------------------------------------------------------------------- text
def fmt(value: float, digits: int = 4) -> str:
    return f"{value:.{digits}f}"


def listing(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def preamble(records: list[dict], datasets: list[str]) -> list[str]:
    sizes = [
        "| data set | task | normal training rows | known anomalies | test rows |",
        "|---|---|---|---|---|",
    ]
    for dataset in datasets:
        chosen = [r for r in records if r["dataset"] == dataset and r["method"] == DEFAULT_METHOD]
        for task in sorted({r["task"] for r in chosen}, key=task_order_key):
            rows = [r for r in chosen if r["task"] == task]
            normal = sorted({r["n_train"] - r["n_known"] for r in rows})
            known = sorted({r["n_known"] for r in rows})
            test = sorted({r["n_test"] for r in rows})

            def span(values):
                low, high = values[0], values[-1]
                return f"{low:,}" if low == high else f"{low:,}-{high:,}"

            sizes.append(
                f"| {NAMES.get(dataset, dataset)} | {task} | {span(normal)} | {span(known)} | "
                f"{span(test)} |"
            )
    seeds = sorted({r["seed"] for r in records})
    rows_table = ["| row | what it is |", "|---|---|"] + [
        f"| `{method}` | {text} |" for method, text in ROWS.items()
    ]
    return [
        "# Results\n",
        "<!-- Written by `python benchmarks/update_results_doc.py` from the records in "
        "benchmarks/results/; edit that script, not this file. -->\n",
        "Every figure below is computed from the committed records in `benchmarks/results/` by "
        "`python benchmarks/update_results_doc.py`, which also writes the results table of the "
        "README. The paper's published figures are the only ones quoted.\n",
        "## How the figures were measured\n",
        "The protocol is in [BENCHMARK.md](BENCHMARK.md); in short:\n",
        "- **Data sets.** KDD-99 (the 10% file, deduplicated; normal traffic against 22 attack "
        "classes), samples of HIGGS and SUSY (background against signal), and ten ADBench sets. "
        "ADBench tasks keep at most 10,000 normal training rows.\n"
        "- **Tasks.** One-class (normal training rows only) and tasks with a few known "
        "anomalies: KDD-99 with the training rows of k = 1, 2, 4 or 8 attack classes, HIGGS "
        "and SUSY with 100 or 1000 signal rows, ADBench with 5% or 25% of the training "
        "anomalies.\n"
        "- **Splits.** KDD-99: normal rows 80/20, each attack class 50/50 between the pool of "
        "known anomalies and the test; the test holds every attack class. HIGGS and SUSY: "
        "stratified 50/50. ADBench: stratified 70/30. Scaling, `log1p` and one-hot vocabularies "
        "are learned from the training rows only.\n"
        f"- **Seeds** {listing([str(s) for s in seeds])}: a seed fixes the split, the known "
        "anomalies and the initial weights. A cell is the mean ± standard deviation over "
        "the seeds (`(n=N)`: over fewer).\n"
        "- **Metric.** ROC AUC, the anomaly as the positive class, the score as the detector "
        "gives it (never `max(AUC, 1 - AUC)`). KDD-99 also reports the attack classes that "
        'were not known in training ("unseen attacks") and KDD-99\'s own `corrected` test '
        "file, which holds attack types the training file lacks.\n"
        "- **Time.** Fit seconds are wall-clock seconds on a 2-core CPU that other jobs shared; "
        "read them as relative costs.\n",
        "Rows per task:\n",
        "\n".join(sizes) + "\n",
        "The rows of the tables:\n",
        "\n".join(rows_table) + "\n",
        "Each record holds the detector's parameters. The four `normalising-flow` rows are one "
        "fit with the current defaults. The `nf-` rows were fitted by earlier versions of the "
        "library: the table below lists, for each, the settings in which its records differ "
        "from the default's beyond the row's own change (an option a version did not have "
        "counts as off). Their flow also checked its held-out NLL after every sixth of its "
        "planned passes instead of after every pass, which the parameters do not show; on "
        'KDD-99 the two are the same fit. The comparisons of "What the options and ablations '
        'change" '
        "use only tasks where two rows differ in the option alone.\n",
        record_differences(records, datasets),
    ]


def record_differences(records: list[dict], datasets: list[str]) -> str:
    """One line per ``nf-`` row and kind of task: the settings in which its records differ
    from the default's on the same tasks."""
    lines = ["| row | tasks | differs from `normalising-flow` in |", "|---|---|---|"]
    methods = sorted(
        {r["method"] for r in records if r["method"].startswith("nf-")},
        key=lambda m: (list(ROWS).index(m) if m in ROWS else len(ROWS), m),
    )
    for method in methods:
        for label, one_class in (("one-class", True), ("with known anomalies", False)):
            found: set[str] = set()
            for dataset in datasets:
                tasks = {
                    r["task"]
                    for r in records
                    if r["dataset"] == dataset
                    and r["method"] == method
                    and (r["task"] == "one-class") == one_class
                }
                for task in tasks:
                    found |= differences(records, method, DEFAULT_METHOD, dataset, task)
            if found:
                lines.append(f"| `{method}` | {label} | {', '.join(sorted(found))} |")
    return "\n".join(lines) + "\n"


def standings(records: list[dict], datasets: list[str]) -> list[str]:
    behind = shortfalls(records, datasets, REFERENCE_METHODS + PAPER_METHODS)
    columns = sum(len(method_means(records, d)) for d in datasets)
    bullets = [
        f"- {NAMES.get(d, d)} {task}: {fmt(ours)} against {name} {fmt(theirs)} "
        f"({ours - theirs:+.4f})"
        for d, task, ours, name, theirs in behind
    ]
    small = [b for b in behind if b[4] - b[2] < 0.001]
    return [
        "## Standings\n",
        "### Against the reference detectors\n",
        "The detectors users run today, on the same splits and seeds. A task is one data set "
        "with one number of known anomalies; one-class detectors meet the default on one-class "
        "tasks, two-class ones on tasks with known anomalies. Margins are the default's mean "
        "ROC AUC minus the other's.\n",
        render_head_to_head(records, datasets, REFERENCE_METHODS),
        "### Against the paper's baselines\n",
        render_head_to_head(records, datasets, PAPER_METHODS),
        "### Every task\n",
        "The default beside the best `nf-` row (options and ablations of `NFADetector`), the "
        "best of the paper's baselines and the best reference detector; the margin is the "
        "default's over the better of the last two.\n",
        render_standings(records, datasets),
        "### Where the default falls short\n",
        f"Of {columns} tasks, a baseline has the higher mean ROC AUC in {len(behind)} "
        f"({len(small)} of them by less than 0.001):\n",
        "\n".join(bullets) + "\n",
    ]


def options(records: list[dict], datasets: list[str]) -> list[str]:
    same = {  # (method, compared, the settings they may differ in) -> keep(dataset, task)
        key: like_for_like(records, *key[:2], set(key[2]))
        for key in [
            (
                DEFAULT_METHOD,
                "nf-no-neighbours",
                ("neighbour_rows", "classifier_distillation_steps"),
            ),
            ("nf-mlp", "nf-no-neighbours", ("neighbour_rows",)),
            (ENSEMBLE, "nf-mlp", ("classifier_model",)),
            ("nf-mlp-trees-neighbours", "nf-mlp", ("classifier_model",)),
            ("nf-mlp-trees", "nf-no-neighbours", ("classifier_model",)),
            ("nf-temperature", "nf-no-neighbours", ("density_temperature",)),
            (ENSEMBLE, DEFAULT_METHOD, ("classifier_members",)),
            (DEFAULT_METHOD, "nf-no-averaging", ("classifier_averaging",)),
            (DEFAULT_METHOD, "nf-fixed-eps", ("classifier_adaptive_eps",)),
            (DEFAULT_METHOD, "nf-no-selection", ("selection_min_known",)),
            ("nf-no-neighbours", "nf-no-jacobian", ("flow_jacobian_penalty",)),
            ("nf-realnvp", "nf-no-neighbours", ("flow",)),
            ("nf-planar", "nf-no-neighbours", ("flow",)),
            ("nf-radial", "nf-no-neighbours", ("flow",)),
        ]
    }
    keep = {key[:2]: test for key, test in same.items()}
    pairs = [
        ("the student score", "normalising-flow-student", DEFAULT_METHOD),
        ("the density alone", "normalising-flow-density", DEFAULT_METHOD),
        ("the classifier alone", "normalising-flow-classifier", DEFAULT_METHOD),
        ("the neighbour term", DEFAULT_METHOD, "nf-no-neighbours"),
        ("the neighbour term", "nf-mlp", "nf-no-neighbours"),
        ("the trees, checked on held-out anomalies (as the default)", ENSEMBLE, "nf-mlp"),
        ("the trees, always kept", "nf-mlp-trees-neighbours", "nf-mlp"),
        ("the trees, always kept, without the neighbour term", "nf-mlp-trees", "nf-no-neighbours"),
        ("`density_temperature='auto'`", "nf-temperature", "nf-no-neighbours"),
        ("an ensemble of five MLPs", ENSEMBLE, DEFAULT_METHOD),
        ("the classifier's weight averaging", DEFAULT_METHOD, "nf-no-averaging"),
        ("the adaptive surrogate weight", DEFAULT_METHOD, "nf-fixed-eps"),
        ("the held-out choices", DEFAULT_METHOD, "nf-no-selection"),
        ("the Jacobian regulariser", "nf-no-neighbours", "nf-no-jacobian"),
        ("RealNVP in place of the MAF", "nf-realnvp", "nf-no-neighbours"),
        ("planar flow in place of the MAF", "nf-planar", "nf-no-neighbours"),
        ("radial flow in place of the MAF", "nf-radial", "nf-no-neighbours"),
    ]
    table = render_differences(
        records, datasets, [(label, a, b, keep.get((a, b))) for label, a, b in pairs]
    )

    def compared(a: str, b: str) -> list[tuple[float, str, str]]:
        """``(change of the ROC AUC from b to a, dataset, task)`` on the compared tasks."""
        return paired_changes(records, datasets, a, b, keep.get((a, b)))

    def change(a: str, b: str) -> str:
        values = [value for value, _, _ in compared(a, b)]
        return f"{np.mean(values):+.4f}" if values else "–"

    def below(a: str, b: str) -> str:
        """ "a is below b on N of M tasks, by up to X"."""
        changes = compared(a, b)
        lower = [value for value, _, _ in changes if value <= -5e-4]
        worst = f", by up to {-min(lower):.2f}" if lower else ""
        return f"{len(lower)} of {len(changes)} tasks{worst}"

    def fit_time(a: str, b: str) -> tuple[float, float]:
        """Mean fit seconds of ``a`` and ``b`` over their records of the compared tasks."""
        tasks = {(d, task) for _, d, task in compared(a, b)}

        def mean(method):
            return float(
                np.mean(
                    [
                        r["fit_seconds"]
                        for r in records
                        if r["method"] == method and (r["dataset"], r["task"]) in tasks
                    ]
                )
            )

        return mean(a), mean(b)

    realnvp, maf = fit_time("nf-realnvp", "nf-no-neighbours")
    five, one = fit_time(ENSEMBLE, DEFAULT_METHOD)
    ensemble = compared(ENSEMBLE, DEFAULT_METHOD)
    ensemble_tasks, ensemble_sets = len(ensemble), len({d for _, d, _ in ensemble})
    ensemble_raised = sum(value >= 5e-4 for value, _, _ in ensemble)
    ensemble_lowered = sum(value <= -5e-4 for value, _, _ in ensemble)
    return [
        "## What the options and ablations change\n",
        "Each line sets two rows side by side over the tasks where their records differ in the "
        "option alone (see the preamble): the mean change of the mean ROC AUC, how many tasks "
        "it raises or lowers by 0.0005 or more, and the largest of each. The first three lines "
        "are other scores of the default fit.\n",
        table,
        "Reading it:\n",
        "- Use the combined score (the default). The density alone is below it on "
        f"{below('normalising-flow-density', DEFAULT_METHOD)}; the classifier alone on "
        f"{below('normalising-flow-classifier', DEFAULT_METHOD)}.\n"
        "- The student score is below the combined score on "
        f"{below('normalising-flow-student', DEFAULT_METHOD)} "
        f"({change('normalising-flow-student', DEFAULT_METHOD)} on average); it buys serving "
        'speed ("Serving throughput" below).\n'
        "- The neighbour term (`neighbour_rows`, default 4096) changes ROC AUC by "
        f"{change('nf-mlp', 'nf-no-neighbours')} on average with known anomalies and "
        f"{change(DEFAULT_METHOD, 'nf-no-neighbours')} on KDD-99 one-class; the trees beside "
        "the MLP, always kept, by "
        f"{change('nf-mlp-trees-neighbours', 'nf-mlp')} on average. Both raise more tasks "
        "than they lower, so both are on by default (`classifier_model='auto'` drops the "
        "trees where held-out known anomalies rank better without them); "
        "`neighbour_rows=0` and `classifier_model='mlp'` fit and score faster.\n"
        "- `density_temperature='auto'` changes little "
        f"({change('nf-temperature', 'nf-no-neighbours')} on average); no default used it, and "
        "it left the package.\n"
        "- An ensemble of five MLPs in place of the default's one MLP changes ROC AUC by "
        f"{change(ENSEMBLE, DEFAULT_METHOD)} on average over "
        f"{ensemble_tasks} tasks with known anomalies of {ensemble_sets} data sets, raising "
        f"{ensemble_raised} and lowering {ensemble_lowered} by 0.0005 or more; its fits took "
        f"{five:.0f} s on average against {one:.0f} s with one MLP: it does not pay for itself, "
        "and the option left the package. The line that leaves out the trees checked on "
        "held-out anomalies was measured beside the five MLPs (`nf-five-members`).\n"
        "- Left out one at a time from the default with known anomalies (seeds 0 to 2 of "
        "cardio, thyroid and annthyroid), the weight "
        f"averaging changes ROC AUC by {change(DEFAULT_METHOD, 'nf-no-averaging')}, the "
        f"adaptive surrogate weight by {change(DEFAULT_METHOD, 'nf-fixed-eps')} and the "
        f"held-out choices by {change(DEFAULT_METHOD, 'nf-no-selection')} on average.\n"
        "- No flow is best on every table. Against the MAF, one-class: RealNVP "
        f"{change('nf-realnvp', 'nf-no-neighbours')}, planar "
        f"{change('nf-planar', 'nf-no-neighbours')}, radial "
        f"{change('nf-radial', 'nf-no-neighbours')} on average, each far ahead on one "
        "table and far behind on another. RealNVP samples in one pass and needs no "
        f"distillation: its one-class fits took {realnvp:.0f} s on average against "
        f"{maf:.0f} s for the MAF's.\n",
    ]


def beside_paper(records: list[dict]) -> list[str]:
    parts = [
        "## Beside the paper\n",
        "The paper's published ROC AUC (its tables of figures 8-10) beside the records of the "
        "same methods, implemented here from the paper's description; `normalising-flow` "
        "here is the current default, which adds to the paper's method (see "
        "[METHOD.md](METHOD.md)). The paper used other splits and, for HIGGS and SUSY, the "
        "full UCI files (millions of rows); the benchmark uses samples of them.\n",
    ]
    for dataset, published in PAPER.items():
        parts.append(f"### {NAMES[dataset]}\n")
        parts.append(render_beside_published(records, dataset, published))
    return parts


def dataset_sections(records: list[dict], datasets: list[str], corrected: list[dict]) -> list[str]:
    parts = [
        "## Tables per data set\n",
        "ROC AUC, mean ± standard deviation over the seeds; the last column is the mean fit "
        "time over all the row's records of the data set.\n",
    ]
    for dataset in datasets:
        parts.append(f"### {NAMES.get(dataset, dataset)}\n")
        parts.append(render_table(records, dataset, digits=4, fit_seconds=True, order=ROWS))
        if dataset == "kdd99":
            parts.append(
                "Unseen attacks (test normals and the attack classes not known in training; "
                "one-class, every class):\n"
            )
            parts.append(render_table(records, dataset, metric="unseen_auc", digits=4, order=ROWS))
            parts.append(
                "The `corrected` test file (the same tasks, fitted again by the runner and "
                "scored on KDD-99's own test file):\n"
            )
            parts.append(
                render_table(corrected, CORRECTED, metric="corrected_auc", digits=4, order=ROWS)
            )
    return parts


# ------------------------------------------------------------------ other result files
def fit_cost() -> list[str]:
    cases = result_json("fit_cost.json")
    if cases is None:
        return []
    lines = [
        "| table | training rows (known) | fit s | of which fixed | ROC AUC | reference | "
        "its fit s | its ROC AUC | scoring rows/s | reference's rows/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case, entry in cases.items():
        default, fixed, reference = entry["default"], entry["one step"], entry["reference"]
        lines.append(
            f"| {case} | {entry['train_rows']:,} ({entry['known']}) | {default['fit_seconds']:.1f} "
            f"| {fixed['fit_seconds']:.1f} | {fmt(default['roc_auc'])} | "
            f"{entry['reference_name']} | {reference['fit_seconds']:.1f} | "
            f"{fmt(reference['roc_auc'])} | {default['score_rows_per_second']:,} | "
            f"{reference['score_rows_per_second']:,} |"
        )
    stages = list(dict.fromkeys(s for e in cases.values() for s in e["default"]["stage_seconds"]))
    stage_lines = [
        "| table | " + " | ".join(stages) + " |",
        "|---|" + "---|" * len(stages),
    ]
    for case, entry in cases.items():
        default, fixed = entry["default"]["stage_seconds"], entry["one step"]["stage_seconds"]
        cells = [f"{default[s]:.1f} / {fixed[s]:.1f}" if s in default else "–" for s in stages]
        stage_lines.append(f"| {case} | " + " | ".join(cells) + " |")
    loads = [e["load_average"] for e in cases.values() if "load_average" in e]
    measured = (
        f"Measured on 2 cores, one-minute load average {min(loads):.1f} to {max(loads):.1f} "
        "before each case (about 1 is this benchmark alone)"
        if loads
        else "Measured on 2 cores while another benchmark ran"
    )
    return [
        "### What a fit costs (`benchmarks/fit_cost.py`)\n",
        "The default fit (seed 0) at several table sizes, beside the same fit cut to one step a "
        "stage: what is left is each stage's fixed cost (building and tracing its TensorFlow "
        "functions, and one step), the same whatever the rows. Then the deep reference "
        "detector of the task on the same rows, and the in-process scoring rate of both on the "
        "test rows. `300` is cardio with 300 normal training rows, `5000` magic.gamma with "
        "5,000 (and its 5 % task's known anomalies), `kdd99` KDD-99's one-class and k=1 tasks. "
        f"{measured}; timings on this machine vary from run to run.\n",
        "\n".join(lines) + "\n",
        "Seconds of each stage, the default's / the one-step fit's (its fixed cost):\n",
        "\n".join(stage_lines) + "\n",
    ]


def trace_cost() -> list[str]:
    cases = result_json("trace_cost.json")
    if cases is None:
        return []
    parts = ("seconds", "tracing", "first runs", "later runs", "rest")
    lines = ["| table | stage | " + " | ".join(parts) + " |", "|---|---|" + "---|" * len(parts)]
    for case, entry in cases.items():
        for stage, split in {**entry["stages"], "whole fit": entry["fit"]}.items():
            cells = " | ".join(f"{split[part]:.1f}" for part in parts)
            lines.append(f"| {case} | {stage} | {cells} |")
    loads = [entry["load_average"] for entry in cases.values()]
    return [
        "### Where a fit's time goes (`benchmarks/trace_cost.py`)\n",
        "The default fit (seed 0) of the cases above, timed while it fits: TensorFlow tracing "
        "its functions (building their graphs from the Python code), the first run of each "
        "traced function (which also optimises its graph), their later runs, and the rest "
        "(Keras' loop and callbacks, numpy, eager calls, and any time the machine gave to "
        "other work). `between stages` is the fit outside "
        "its stages: encoding the rows, the density's scores, the training scores of every "
        f"kind. One-minute load average {min(loads):.1f} to {max(loads):.1f} before each case.\n",
        "\n".join(lines) + "\n",
    ]


def serving() -> list[str]:
    data = result_json("serving_throughput.json")
    if data is None:
        return []
    detectors = {name: entry for name, entry in data.items() if isinstance(entry, dict)}
    kinds = ["combined", "density", "classifier", "student"]
    lines = [
        "| KDD-99 detector (seed 0) | "
        + " | ".join(f"{kind} rows/s | {kind} ROC AUC" for kind in kinds)
        + " | fit s |",
        "|---|" + "---|---|" * len(kinds) + "---|",
    ]
    for name, entry in detectors.items():
        cells = []
        for kind in kinds:
            rate, auc = entry.get(kind), entry.get(f"{kind}_roc_auc")
            cells += [f"{rate:,}" if rate is not None else "–", fmt(auc) if auc else "–"]
        seconds = sum(entry.get("fit_seconds", {}).values())
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {seconds:.1f} |")
    return [
        "### Serving throughput (`benchmarks/serving_throughput.py`)\n",
        f"Rows a second of the exported SavedModel's `serving_default`, {data['rows']:,} raw "
        f"KDD-99 rows sent in batches of {data['batch']:,} after one warm-up call, for each "
        "score kind, and each score's test ROC AUC; fit seconds summed over the stages. One "
        "fit per detector (seed 0): the one-class task and k=1 with the defaults, then k=1 "
        "with one setting changed each.\n",
        "\n".join(lines) + "\n",
    ]


def moons() -> list[str]:
    data = result_json("moons_flows.json")
    if data is None:
        return []
    lines = [
        "| flow | lambda | held-out NLL | E[log\\|det J\\|^2] | fit s |",
        "|---|---|---|---|---|",
    ] + [
        f"| {row['flow']} | {row['jacobian_penalty']} | {row['held_out_nll']:.4f} | "
        f"{row['mean_squared_log_det']:.4f} | {row['fit_seconds']:.1f} |"
        for row in data["rows"]
    ]
    return [
        "### Flows on two moons (`benchmarks/moons_flows.py`)\n",
        "Every flow fitted to two moons with and without the Jacobian regulariser (eq. 41, "
        "`lambda`): held-out NLL (the base Gaussian's: "
        f"{data['gaussian_nll']:.3f}), the regulariser's `E[log|det J(f|z)|^2]` (eq. 40) on "
        "fresh base samples, and fit seconds.\n",
        "\n".join(lines) + "\n",
    ]


def mean_std(values) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    return f"{np.mean(values):.4f} ± {np.std(values):.4f}"


def unseen_like_for_like(records: list[dict]) -> list[str]:
    rows = result_json("kdd99_unseen_like_for_like.json")
    if rows is None:
        return []
    unseen = {
        (r["task"], r["seed"]): r.get("unseen_auc")
        for r in records
        if r["dataset"] == "kdd99" and r["method"] == DEFAULT_METHOD
    }
    lines = [
        "| unseen attacks of | one-class fit | k fit | one-class fit, student | k fit, student "
        "| k fit of the benchmark's records |",
        "|---|---|---|---|---|---|",
    ]
    for task in sorted({row["task"] for row in rows}, key=task_order_key):
        chosen = [row for row in rows if row["task"] == task]
        lines.append(
            f"| {task} | "
            + " | ".join(
                mean_std([row[key] for row in chosen])
                for key in ("one_class_fit", "k_fit", "one_class_fit_student", "k_fit_student")
            )
            + f" | {mean_std([unseen.get((task, row['seed'])) for row in chosen])} |"
        )
    return [
        "### KDD-99 unseen attacks, like for like (`benchmarks/kdd99_unseen_like_for_like.py`)\n",
        "Do known attack classes make the detector blind to the others? The one-class fit and "
        "the fit with k known classes of the same seed, both scored on the attack classes "
        "unknown to the k task (and the test normals), mean ± std over the seeds. The script "
        "ran with an earlier version of the defaults (the classifier without the trees); the "
        "last column is the same figure from the benchmark's records of the default.\n",
        "\n".join(lines) + "\n",
    ]


def result_json(name: str):
    """The content of ``benchmarks/results/<name>`` (a JSON file), or None without it."""
    path = RESULTS / name
    return json.loads(path.read_text()) if path.is_file() else None


def jsonl(name: str) -> list[dict]:
    return load_results(RESULTS / name)


def grouped(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["dataset"], row["task"])].append(row)
    return dict(sorted(groups.items(), key=lambda item: (item[0][0], task_order_key(item[0][1]))))


def student_variants(name: str, heading: str, text: str) -> list[str]:
    """The table of ``benchmarks/student_variants.py``'s records in ``results/<name>``."""
    rows = jsonl(name)
    if not rows:
        return []
    variants = list(rows[0]["variants"])
    lines = [
        "| data set | task | seeds | combined | " + " | ".join(variants) + " |",
        "|---|---|---|---|" + "---|" * len(variants),
    ]
    for (dataset, task), chosen in grouped(rows).items():
        cells = [fmt(np.mean([r["variants"][v]["roc_auc"] for r in chosen])) for v in variants]
        lines.append(
            f"| {dataset} | {task} | {len(chosen)} | "
            f"{fmt(np.mean([r['combined'] for r in chosen]))} | " + " | ".join(cells) + " |"
        )
    means = [fmt(np.mean([r["variants"][v]["roc_auc"] for r in rows])) for v in variants]
    seconds = [f"{np.mean([r['variants'][v]['seconds'] for r in rows]):.1f} s" for v in variants]
    lines.append(
        f"| every task | | {len(rows)} fits | {fmt(np.mean([r['combined'] for r in rows]))} | "
        + " | ".join(means)
        + " |"
    )
    lines.append("| refit seconds | | | | " + " | ".join(seconds) + " |")
    return [
        f"### {heading} (`benchmarks/student_variants.py`)\n",
        text + "\n",
        "\n".join(lines) + "\n",
    ]


# ----------------------------------------------------------------------------- README
def readme_block(records: list[dict], datasets: list[str]) -> str:
    behind = shortfalls(records, datasets, REFERENCE_METHODS)
    columns = sum(len(method_means(records, d)) for d in datasets)
    seeds = len({r["seed"] for r in records})
    return "\n".join(
        [
            README_START,
            "",
            f"Mean ROC AUC over {seeds} seeds of `NFADetector()` and of the best of five "
            "reference detectors (isolation forest, kNN distance, gradient-boosted trees, XGBOD, "
            "Deep SAD) on each task, the better in bold. Tasks: one-class, then with known "
            "anomalies (KDD-99: k known attack classes; HIGGS, SUSY: known signal rows; the "
            "ADBench sets: a share of the training anomalies). A reference detector is ahead "
            f"on {len(behind)} of {columns} tasks.",
            "",
            render_overview(
                records,
                datasets,
                REFERENCE_METHODS,
                names=NAMES,
                headings=("`NFADetector()`", "best reference detector"),
            ).rstrip("\n"),
            *fit_cost_sentence(),
            "",
            README_END,
        ]
    )


def fit_cost_sentence() -> list[str]:
    """One sentence of what a default fit costs, from ``fit_cost.json`` (none without it)."""
    cases = result_json("fit_cost.json")
    if cases is None:
        return []
    times = ", ".join(
        f"{entry['default']['fit_seconds']:.0f} s on {entry['train_rows']:,} rows"
        f"{' with known anomalies' if entry['known'] else ''} "
        f"({entry['one step']['fit_seconds']:.0f} s of it fixed)"
        for entry in cases.values()
    )
    return [
        "",
        f"A default fit on 2 CPU cores takes {times}. The fixed part is TensorFlow building "
        "each stage's functions, the same whatever the rows ([docs/RESULTS.md](docs/RESULTS.md), "
        '"What a fit costs").',
    ]


def other_record_sets(folders: list[str]) -> list[str]:
    """Tables of the runner's records in other folders of ``benchmarks/results/`` (runs
    outside the protocol's data sets), one per data set they hold."""
    parts = []
    for folder in folders:
        records = load_results(RESULTS / folder)
        for dataset in sorted({r["dataset"] for r in records}):
            parts.append(f"### {dataset} (`benchmarks/results/{folder}/`)\n")
            parts.append(render_table(records, dataset, digits=4, fit_seconds=True, order=ROWS))
    return ["## Other record sets\n", *parts] if parts else []


def build() -> tuple[str, str]:
    folders = sorted(
        p.name for p in RESULTS.iterdir() if p.is_dir() and (p / "results.jsonl").is_file()
    )
    datasets = MAIN + [name for name in folders if name[:1].isdigit()]
    others = [name for name in folders if name not in datasets and name != CORRECTED]
    records = [r for name in datasets for r in load_results(RESULTS / name)]
    corrected = load_results(RESULTS / CORRECTED)
    parts = (
        preamble(records, datasets)
        + standings(records, datasets)
        + options(records, datasets)
        + beside_paper(records)
        + dataset_sections(records, datasets, corrected)
        + other_record_sets(others)
        + ["## Other measurements\n"]
        + fit_cost()
        + trace_cost()
        + serving()
        + moons()
        + unseen_like_for_like(records)
        + student_variants(
            "student_variants.jsonl",
            "The student's target and length",
            "The student stage fitted again (`refit_student`) on one default fit per seed, with "
            "other centres of its soft labels (`student_target_quantile`, `q`) and step counts "
            "(`student_steps`); ROC AUC, mean over the seeds run, beside the combined score it "
            "learns from. Measured with an earlier version of the defaults.",
        )
        + student_variants(
            "student_steps.jsonl",
            "The student's length against the table's size",
            "The same refits with fewer steps than the default's 3,000, on seven data sets "
            "one-class and with 5 % of the anomalies known (the benchmark's splits with at most "
            "10,000 normal training rows, seeds 0-1), to see whether the student's length can "
            "follow the rows; the last rows are the means over every fit.",
        )
    )
    doc = "\n".join(part.rstrip("\n") + "\n" for part in parts)
    readme = README.read_text()
    if README_START not in readme or README_END not in readme:
        raise SystemExit(f"README.md lacks the markers {README_START!r} and {README_END!r}")
    head, rest = readme.split(README_START, 1)
    tail = rest.split(README_END, 1)[1]
    return doc, head + readme_block(records, datasets) + tail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="write nothing; fail if a file is out of date"
    )
    args = parser.parse_args()
    doc, readme = build()
    stale = [
        path
        for path, text in ((DOC, doc), (README, readme))
        if not path.is_file() or path.read_text() != text
    ]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is not what the records give", file=sys.stderr)
        raise SystemExit(1 if stale else 0)
    for path, text in ((DOC, doc), (README, readme)):
        write_whole(path, text)
        print("wrote", path.relative_to(ROOT))


if __name__ == "__main__":
    main()
