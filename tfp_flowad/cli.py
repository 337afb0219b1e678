"""``tfp-flowad``: a thin command line over ``NFADetector``.

Commands: ``fit``, ``score``, ``export``, ``demo``, ``benchmark``. Every error prints one line
``tfp-flowad: error: ...`` and exits with status 2.
"""

import argparse
import os
import sys
import time
from pathlib import Path

__all__ = ["main", "build_parser"]


class CommandError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def _read_table(path: str):
    import pandas as pd

    file = Path(path)
    if not file.is_file():
        raise CommandError(f"--data: file {path!r} does not exist")
    try:
        if file.suffix == ".parquet":
            return pd.read_parquet(file)
        return pd.read_csv(file)
    except Exception as error:
        raise CommandError(f"--data: cannot read {path!r}: {error}") from None


def _split_labels(frame, label_column: str | None, normal_value: str | None):
    """``(X, y)``: ``y = 1`` where the label is not ``normal_value``; no column: one-class."""
    import numpy as np

    if label_column is None:
        return frame, None
    if label_column not in frame.columns:
        raise CommandError(
            f"--label-column: {label_column!r} is not a column of the data; "
            f"columns are {list(frame.columns)[:20]}"
        )
    labels = frame[label_column].astype(str)
    values = sorted(labels.unique().tolist())
    if normal_value is None:
        if not _zero_one(labels):
            raise CommandError(
                f"--label-column {label_column!r} holds {values[:10]}: give --normal-value, "
                "or use labels 0 (normal) / 1 (anomaly)"
            )
        normal_value = "0"
    if normal_value not in values:
        raise CommandError(
            f"--normal-value {normal_value!r} does not occur in column {label_column!r}; "
            f"values are {values[:10]}"
        )
    y = (labels != normal_value).to_numpy().astype(np.int64)
    return frame.drop(columns=[label_column]), y


def _temperature(text: str) -> float | str:
    """``--density-temperature``: ``auto`` or a number > 0."""
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number > 0; got {text!r}")
    return value


def _zero_one(labels) -> bool:
    """Whether string ``labels`` are all ``"0"`` or ``"1"``."""
    return set(labels.unique()) <= {"0", "1"}


def _make_detector(args, **params):
    """An ``NFADetector`` from the common options (seed, verbosity, ``--epochs-scale``)."""
    from tfp_flowad import NFADetector
    from tfp_flowad.base import scale_training_lengths

    detector = NFADetector(random_state=args.seed, verbose=args.verbose, **params)
    if getattr(args, "epochs_scale", None):
        detector = scale_training_lengths(detector, args.epochs_scale)
    return detector


def _cmd_fit(args) -> None:
    frame = _read_table(args.data)
    X, y = _split_labels(frame, args.label_column, args.normal_value)
    start = time.perf_counter()
    detector = _make_detector(
        args,
        contamination=args.contamination,
        flow=args.flow,
        classifier_distillation_steps=args.classifier_distillation_steps,
        density_temperature=args.density_temperature,
        classifier_model=args.classifier_model,
        neighbour_rows=args.neighbour_rows,
        student_steps=args.score_student_steps,
    ).fit(X, y)
    detector.save(args.out)
    n_known = 0 if y is None else int(y.sum())
    print(
        f"fitted on {len(X)} rows ({n_known} known anomalies) in "
        f"{time.perf_counter() - start:.1f} s; saved to {args.out}"
    )
    if detector.density_temperature_aucs_ is not None:
        print(
            f"the density is scored at temperature {detector.density_temperature_:.2f}, the "
            f"best of {len(detector.density_temperature_aucs_)} on the known anomalies"
        )
    if detector.density_auc_ is not None:
        print(
            f"the flow's density separates the known anomalies from held-out normal rows with "
            f"ROC AUC {detector.density_auc_:.3f}; the classifier trained with eps "
            f"{detector.eps_:.3f} (adaptive_eps), the combined score weights the density "
            f"{detector.score_scaling_['density'][2]:.3f}"
        )
    if detector.neighbour_auc_ is not None:
        print(
            f"the distance to the nearest of {detector.neighbours_.layers[-1].num_references} "
            f"reference normal rows separates them with ROC AUC {detector.neighbour_auc_:.3f}; "
            f"its weight {detector.score_scaling_['neighbour'][2]:.3f}"
        )
    if detector.density_scale_aucs_ is not None:
        print(
            f"the density's weight was scaled by {detector.density_scale_:g}, the best of "
            f"{len(detector.density_scale_aucs_)} candidates on held-out known anomalies"
        )
    if "classifier_distillation" in detector.history_:
        loss = detector.history_["classifier_distillation"]["loss"][-1]
        print(
            "the classifier's ensemble was distilled into one network (mean squared logit "
            f"difference {loss:.3f})"
        )


def _cmd_score(args) -> None:
    import pandas as pd

    detector = _load_with_score(args)
    frame = _read_table(args.data)
    y, note = None, None
    if args.label_column and args.label_column in frame.columns:
        labels = frame[args.label_column].astype(str)
        if args.normal_value is None and not _zero_one(labels):
            frame = frame.drop(columns=[args.label_column])
            note = f"labels: give --normal-value to compare the scores with {args.label_column!r}"
        else:
            frame, y = _split_labels(frame, args.label_column, args.normal_value)
    elif args.normal_value is not None:
        raise CommandError("--normal-value needs --label-column, a column of the data")
    scores = detector.decision_function(frame)
    result = pd.DataFrame(
        {"anomaly_score": scores, "is_anomaly": (scores > detector.threshold_).astype(int)}
    )
    # With the CSV on stdout, the summary lines go to stderr.
    summary = sys.stdout if args.out else sys.stderr
    if args.out:
        result.to_csv(args.out, index=False)
        print(
            f"scored {len(result)} rows; {int(result.is_anomaly.sum())} flagged; wrote {args.out}"
        )
    else:
        result.to_csv(sys.stdout, index=False)
    if y is not None:
        note = _detection_quality(y, scores, result.is_anomaly.to_numpy())
    if note:
        print(note, file=summary)


def _detection_quality(y, scores, flagged) -> str:
    """One line: ROC AUC and average precision of ``scores`` against labels ``y`` (1 =
    anomaly), and how many anomalies and normal rows the 0/1 ``flagged`` rows hold."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    n_anomalies = int(y.sum())
    if n_anomalies in (0, len(y)):
        return f"labels: all {len(y)} rows are of one class, so there is no ROC AUC to give"
    hits = int((flagged & y).sum())
    return (
        f"labels: {n_anomalies} anomalies in {len(y)} rows; ROC AUC "
        f"{roc_auc_score(y, scores):.4f}, average precision "
        f"{average_precision_score(y, scores):.4f}; the flags catch {hits} of "
        f"{n_anomalies} anomalies with {int(flagged.sum()) - hits} false alarms"
    )


def _load_with_score(args):
    """The detector saved at ``--model``, scoring with ``--score`` when one is given."""
    from tfp_flowad import NFADetector

    detector = NFADetector.load(args.model)
    if args.score:
        detector.score_kind = args.score  # its threshold follows
    return detector


def _cmd_export(args) -> None:
    detector = _load_with_score(args)
    target = detector.export_saved_model(args.out, version=args.version)
    print(f"exported SavedModel to {target}")


def _cmd_demo(args) -> None:
    from sklearn.metrics import roc_auc_score

    from tfp_flowad.datasets import kdd99_tasks
    from tfp_flowad.export import served_rows_per_second

    tasks = kdd99_tasks(args.seed, ks=(0, 1))
    print("KDD-99 (packaged 10% file, deduplicated), protocol of BENCHMARK.md, seed", args.seed)
    detector = task = None
    for task in tasks:
        start = time.perf_counter()
        detector = _make_detector(args).fit(task.X_train, task.y_train)
        seconds = time.perf_counter() - start
        detector.decision_function(task.X_test[:1])  # traces the scoring function
        start = time.perf_counter()
        scores = detector.decision_function(task.X_test)
        rate = len(scores) / (time.perf_counter() - start)
        # every score kind in one pass (the function the fit traced for the training rows)
        kinds = detector.available_scores()
        test_scores = detector._score_rows(task.X_test, kinds)
        X_unseen, y_unseen = task.extra_tests["unseen"]
        unseen_scores = detector._score_rows(X_unseen, kinds)
        aucs = [
            f"{kind} {roc_auc_score(task.y_test, test_scores[kind]):.4f} (unseen attacks "
            f"{roc_auc_score(y_unseen, unseen_scores[kind]):.4f})"
            for kind in ("combined", "student")
        ]
        stages = ", ".join(f"{k} {v:.1f} s" for k, v in detector.fit_seconds_.items())
        print(
            f"{task.name:>10}: ROC AUC {', '.join(aucs)} | known classes "
            f"{list(task.known_classes)} | fit {seconds:.1f} s ({stages}) | combined score "
            f"in process {rate:,.0f} rows/s"
        )
    detector.score_kind = "student"
    target = detector.export_saved_model(args.out)
    rows = task.X_test.sample(250_000, replace=True, random_state=args.seed)
    served = served_rows_per_second(target, detector.encoder_.to_tensors(rows))
    print(
        f"exported the k=1 detector's student score as a SavedModel to {target}; it serves "
        f"{served:,.0f} rows/s (1M rows in batches of 250k; 'tfp-flowad export --score "
        "combined' exports the combined score)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfp-flowad",
        description="Normalizing-flow anomaly detection (arXiv 1912.09323): fit, score, export.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def common(sub, seed=True):
        if seed:
            sub.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        sub.add_argument(
            "--verbose", type=int, default=0, choices=(0, 1, 2), help="Keras verbosity (0 quiet)"
        )

    def score_kind(sub):
        sub.add_argument(
            "--score",
            choices=("combined", "density", "classifier", "student"),  # detector.SCORES
            help="the score to return (default: the model's own, 'combined' unless fitted "
            "otherwise); 'student', one network fitted to rank rows like the combined score, "
            "scores 17-50 times as many rows per second (KDD-99: ROC AUC 0.0003-0.0008 below "
            "the combined score's; up to 0.02 below one-class on small tables); 'is_anomaly' "
            "uses that score's own threshold",
        )

    fit = commands.add_parser("fit", help="fit a detector on a CSV or Parquet file")
    fit.add_argument("--data", required=True, help="training rows, .csv (with header) or .parquet")
    fit.add_argument(
        "--label-column",
        help="column with labels; rows whose label is not --normal-value are known anomalies "
        "(omit for one-class)",
    )
    fit.add_argument("--normal-value", help="the label of normal rows (default: 0 with 0/1 labels)")
    fit.add_argument("--out", required=True, help="directory to write the fitted model to")
    fit.add_argument("--contamination", type=float, default=0.01, help="sets the 0/1 threshold")
    fit.add_argument(
        "--epochs-scale", type=float, help="multiply the default epochs (e.g. 0.5 for a quick fit)"
    )
    fit.add_argument(
        "--flow",
        choices=("maf", "realnvp", "planar", "radial"),
        default="maf",
        help="the density model (default: %(default)s, distilled into an IAF as in the paper); "
        "'realnvp' samples in one pass and needs no distillation: on KDD-99 it detected as well "
        "at half the fit time; no flow is best on every table (docs/RESULTS.md, ablations)",
    )
    fit.add_argument(
        "--classifier-distillation-steps",
        type=int,
        default=0,
        help="with known anomalies the classifier is an ensemble of five networks; distil it "
        "into one by this many steps (2000 add about 10 s on KDD-99) so that a model exported "
        "with --score classifier serves about 3 times as many rows per second (default: "
        "%(default)s, keep the ensemble)",
    )
    fit.add_argument(
        "--density-temperature",
        type=_temperature,
        default=1.0,
        help="T of the density score -log p_T(x), the flow's density with its base Gaussian's "
        "scale set to T; a lower T ranks rows more by their distance from the base space's "
        "centre than by the flow's change of volume. 'auto': chosen on 10 or more known "
        "anomalies among 1, 0.71, 0.5 (default: %(default)s, the flow's own density)",
    )
    fit.add_argument(
        "--neighbour-rows",
        type=int,
        default=4096,
        help="normal training rows kept as references: the combined score adds each row's "
        "distance to the nearest of them to the flow's density, which catches rows in the gaps "
        "between tight clusters of normal rows (KDD-99: every task 0.998 or more); 0 leaves it "
        "out and scores faster (default: %(default)s)",
    )
    fit.add_argument(
        "--score-student-steps",
        type=int,
        default=3000,
        help="steps of fitting one small network to rank rows like the combined score (the "
        "'student' score, for serving many rows a second: 'export --score student'); 0 fits "
        "none (default: %(default)s)",
    )
    fit.add_argument(
        "--classifier-model",
        choices=("auto", "mlp", "boosted_trees", "mlp+boosted_trees"),  # CLASSIFIER_MODELS
        default="auto",
        help="the classifier of eq. (6) (default: %(default)s: the MLP alone one-class; with "
        "known anomalies the MLP with gradient-boosted trees, their logits averaged, unless "
        "held-out known anomalies rank better without the trees). The trees help most where "
        "the known anomalies teach much (HIGGS signal, smtp, cardio); they make the fit "
        "longer and the combined score 2-4 times slower to compute",
    )
    common(fit)
    fit.set_defaults(run=_cmd_fit)

    score = commands.add_parser("score", help="score rows with a fitted model")
    score.add_argument("--model", required=True, help="directory written by 'fit'")
    score.add_argument("--data", required=True, help="rows to score, .csv or .parquet")
    score.add_argument(
        "--label-column",
        help="a label column, left out of the scoring; when present, the ROC AUC and average "
        "precision of the scores against it are printed",
    )
    score.add_argument(
        "--normal-value", help="the label of normal rows (default: 0 with 0/1 labels)"
    )
    score.add_argument("--out", help="CSV to write (anomaly_score, is_anomaly); default stdout")
    score_kind(score)
    score.set_defaults(run=_cmd_score)

    export = commands.add_parser("export", help="export a fitted model as a TF Serving SavedModel")
    export.add_argument("--model", required=True, help="directory written by 'fit'")
    export.add_argument("--out", required=True, help="model base directory (version dirs inside)")
    export.add_argument("--version", type=int, help="version number (default: next free)")
    score_kind(export)
    export.set_defaults(run=_cmd_export)

    demo = commands.add_parser(
        "demo", help="fit on the packaged KDD-99 data (one-class and k=1), print ROC AUC, export"
    )
    demo.add_argument(
        "--out",
        default="saved_models/kdd99",
        help="SavedModel base directory (default: %(default)s)",
    )
    demo.add_argument("--epochs-scale", type=float, help="multiply the default epochs")
    common(demo)
    demo.set_defaults(run=_cmd_demo)

    from tfp_flowad.benchmark import add_benchmark_parser

    add_benchmark_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (
        CommandError,
        ValueError,
        FileNotFoundError,
        FileExistsError,
        TypeError,
        RuntimeError,
    ) as error:
        print(f"tfp-flowad: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
