"""``tfp-flowad``: a thin command line over ``NFADetector``.

Commands: ``fit``, ``score``, ``export``, ``demo``, ``benchmark``. Every error, a bad option
included, prints one line ``tfp-flowad: error: ...`` that names the option, and exits with
status 2. Inputs are checked before any fitting or scoring, input files are never written, and
every output (model directory, scores file, SavedModel) appears whole or not at all
(``tfp_flowad.atomic``). docs/ERRORS.md lists the checks.
"""

import argparse
import csv
import os
import sys
import time
from pathlib import Path

__all__ = ["main", "build_parser"]


class CommandError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one ``tfp-flowad: error:`` line, like the
    commands' own errors."""

    def error(self, message):
        self.exit(2, f"tfp-flowad: error: {message} (see '{self.prog} --help')\n")


def _read_table(path: str):
    """The rows of ``--data``, a CSV file (with a header) or a Parquet file."""
    import pandas as pd

    file = Path(path)
    if not file.exists():
        raise CommandError(f"--data: file {path!r} does not exist")
    if not file.is_file():
        raise CommandError(f"--data: {path!r} is not a file")
    try:
        if file.suffix == ".parquet":
            return pd.read_parquet(file)
        header = _csv_header(file)
        frame = pd.read_csv(file)
    except Exception as error:
        raise CommandError(f"--data: cannot read {path!r}: {error}") from None
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:  # pandas renames repeats ("a" -> "a.1"): refuse them instead
        raise CommandError(
            f"--data: the header of {path!r} repeats the column names {repeated[:10]}; each "
            "column needs its own name"
        )
    return frame


def _csv_header(file: Path) -> list[str]:
    with open(file, newline="", encoding="utf-8", errors="replace") as text:
        return next(csv.reader(text), [])


def _split_labels(frame, label_column: str | None, normal_value: str | None):
    """``(X, y)``: ``y = 1`` where the label is not ``normal_value``; no column: one-class."""
    import numpy as np

    if label_column is None:
        if normal_value is not None:
            raise CommandError("--normal-value needs --label-column, a column of the data")
        return frame, None
    if label_column not in frame.columns:
        raise CommandError(
            f"--label-column: {label_column!r} is not a column of the data; "
            f"columns are {list(frame.columns)[:20]}"
        )
    empty = frame[label_column].isna().to_numpy()
    if empty.any():
        raise CommandError(
            f"--label-column {label_column!r} has empty labels: {int(empty.sum())} of "
            f"{len(frame)}, the first at row {int(np.argmax(empty))}; give every row a label"
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


def _zero_one(labels) -> bool:
    """Whether string ``labels`` are all ``"0"`` or ``"1"``."""
    return set(labels.unique()) <= {"0", "1"}


def _number_option(convert, accept, expected: str):
    """An argparse ``type``: ``convert(text)`` when ``accept`` takes it, else the error
    "expected {expected}; got {text!r}" (argparse adds the option's name)."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}")
        return value

    return parse


_count = _number_option(int, lambda v: v >= 0, "an integer >= 0")
_positive_int = _number_option(int, lambda v: v >= 1, "an integer >= 1")
_positive = _number_option(float, lambda v: 0 < v < float("inf"), "a number > 0")
_fraction = _number_option(float, lambda v: 0 < v < 0.5, "a number in (0, 0.5)")
_temperature = _number_option(
    lambda text: text if text == "auto" else float(text),
    lambda v: v == "auto" or 0 < v < float("inf"),
    "'auto' or a number > 0",
)


def _column_names(text: str) -> list[str]:
    """An argparse ``type``: distinct column names separated by commas, none of them a
    column of the scores."""
    names = [name.strip() for name in text.split(",")]
    if not all(names) or len(set(names)) < len(names):
        raise argparse.ArgumentTypeError(
            f"expected distinct column names separated by commas; got {text!r}"
        )
    taken = [name for name in names if name in ("anomaly_score", "is_anomaly")]
    if taken:
        raise argparse.ArgumentTypeError(f"{taken[0]!r} is a column of the scores; got {text!r}")
    return names


def _make_detector(args, **params):
    """An ``NFADetector`` from the common options (seed, verbosity, ``--epochs-scale``)."""
    from tfp_flowad import NFADetector
    from tfp_flowad.base import scale_training_lengths

    detector = NFADetector(random_state=args.seed, verbose=args.verbose, **params)
    if getattr(args, "epochs_scale", None):
        detector = scale_training_lengths(detector, args.epochs_scale)
    return detector


def _check_model_out(out: str, data: str) -> None:
    """Refuses ``fit --out`` before the fit unless it is new or a saved model (which the fit
    replaces) that does not hold ``--data``, in a directory this process may write to."""
    from tfp_flowad.detector.persistence import is_saved_detector

    path = Path(out).absolute()
    if path.exists() and not (path.is_dir() and is_saved_detector(path)):
        raise CommandError(
            f"--out: {out!r} exists and is not a saved model; give a new path, or a model "
            "directory to replace"
        )
    if path.exists() and path in Path(data).resolve().parents:
        raise CommandError(f"--out: {out!r} holds --data {data!r}, and the fit replaces it")
    existing = next(p for p in path.parents if p.exists())
    if not (path.exists() or os.access(existing, os.W_OK | os.X_OK)):
        raise CommandError(f"--out: cannot create {out!r}: {str(existing)!r} is not writable")


def _cmd_fit(args) -> None:
    from tfp_flowad.preprocessing import check_table

    _check_model_out(args.out, args.data)
    frame = _read_table(args.data)
    X, y = _split_labels(frame, args.label_column, args.normal_value)
    check_table(X, "--data")
    detector = _make_detector(
        args,
        contamination=args.contamination,
        flow=args.flow,
        classifier_distillation_steps=args.classifier_distillation_steps,
        density_temperature=args.density_temperature,
        classifier_model=args.classifier_model,
        neighbour_rows=args.neighbour_rows,
        student_steps=args.student_steps,
    )
    n_normal = len(X) if y is None else int((y == 0).sum())
    if n_normal < detector.min_normal_rows:
        labelled = "" if y is None else f" (labelled {args.normal_value or '0'!r})"
        raise CommandError(
            f"--data holds {n_normal} normal rows{labelled}; at least "
            f"{detector.min_normal_rows} are needed to fit"
        )
    start = time.perf_counter()
    detector.fit(X, y)
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
    from tfp_flowad.io import score_file, table_columns, table_files

    if args.normal_value is not None and args.label_column is None:
        raise CommandError("--normal-value needs --label-column, a column of the data")
    files = table_files(args.data, "--data")
    if args.out:
        _check_scores_out(args.out, files, _model_files(args.model))
    detector = _load_with_score(args)
    labels = _Labels(args.label_column, args.normal_value, detector) if args.label_column else None
    columns = table_columns(files[0], "--data")
    wanted = {"--keep-columns": args.keep_columns, "--label-column": [args.label_column]}
    for option, names in wanted.items():
        for name in names:
            if name is not None and name not in columns:
                raise CommandError(
                    f"{option}: {name!r} is not a column of the data ({str(files[0])!r}); "
                    f"columns are {columns[:20]}"
                )
    # With the CSV on stdout, the summary lines go to stderr.
    summary = sys.stdout if args.out else sys.stderr
    try:
        done = score_file(
            detector,
            files,
            args.out or sys.stdout,
            keep_columns=args.keep_columns,
            chunk_rows=args.chunk_rows,
            progress=not args.quiet,
            name="--data",
            read_columns=[] if labels is None else [args.label_column],
            on_chunk=None if labels is None else labels.add,
            before_commit=None if labels is None else labels.check,
        )
    except OSError as error:  # score_file's reading errors are ValueErrors
        raise CommandError(f"--out: {error}") from None
    if args.out:
        print(
            f"scored {done.rows} rows in {done.seconds:.1f} s ({done.rows_per_second:.0f} rows/s); "
            f"{done.flagged} flagged; wrote {args.out}"
        )
    if labels is not None:
        print(labels.summary(), file=summary)


class _Labels:
    """The labels of ``--label-column``, gathered chunk by chunk beside the scores, to compare
    the scores with once every row is scored.

    Each row's score and whether it is labelled an anomaly are kept until then (9 bytes a
    row). Rows labelled other than ``normal_value`` are anomalies; without ``normal_value`` the
    labels must be 0 (normal) and 1 (anomaly), else the summary asks for ``--normal-value``.
    """

    def __init__(self, column: str, normal_value: str | None, detector):
        self.column, self.normal_value = column, normal_value
        self.kind, self.threshold = detector.score_kind, detector.threshold_
        self.values: set[str] = set()  # the first distinct labels, for messages
        self.zero_one, self.normal_seen = True, False
        self.anomalous, self.scores = [], []

    def add(self, chunk, scores) -> None:
        """``score_file``'s ``on_chunk``: refuses empty labels, keeps the chunk's labels."""
        cells = chunk.frame[self.column]
        empty = cells.isna().to_numpy()
        if empty.any():
            raise CommandError(
                f"--label-column {self.column!r} has empty labels: {int(empty.sum())} of "
                f"{len(cells)}, the first at row {cells.index[empty.argmax()]}, in "
                f"{chunk.where('--data')}; give every row a label"
            )
        labels = cells.astype(str)
        distinct = set(labels.unique())
        self.values |= set(sorted(distinct)[: max(0, 100 - len(self.values))])
        self.zero_one &= distinct <= {"0", "1"}
        self.normal_seen |= self.normal_value in distinct
        self.anomalous.append((labels != (self.normal_value or "0")).to_numpy())
        self.scores.append(scores[self.kind])

    def check(self) -> None:
        """``score_file``'s ``before_commit``: refuses a ``--normal-value`` that no row has."""
        if self.normal_value is not None and not self.normal_seen:
            raise CommandError(
                f"--normal-value {self.normal_value!r} does not occur in column "
                f"{self.column!r}; values are {sorted(self.values)[:10]}"
            )

    def summary(self) -> str:
        """The line comparing the scores with the labels (``_detection_quality``)."""
        if self.normal_value is None and not self.zero_one:
            return f"labels: give --normal-value to compare the scores with {self.column!r}"
        import numpy as np

        y = np.concatenate(self.anomalous).astype(np.int64)
        scores = np.concatenate(self.scores)
        return _detection_quality(y, scores, (scores > self.threshold).astype(np.int64))


def _model_files(model: str) -> list[Path]:
    """``--model`` and, when it is a directory, the files in it."""
    path = Path(model)
    return [path, *path.iterdir()] if path.is_dir() else [path]


def _check_scores_out(out: str, data_files: list[Path], model_files: list[Path]) -> None:
    """Refuses ``score --out`` before any scoring when it is a file of ``--data`` or
    ``--model``, a directory, not a regular file, or in a directory that does not exist."""
    from tfp_flowad.atomic import same_path

    path = Path(out)
    for what, inputs in (("--data", data_files), ("--model or a file of it", model_files)):
        for source in inputs:
            if same_path(path, source):
                raise CommandError(f"--out {out!r} is {what} ({str(source)!r}); give another file")
    if path.is_dir():
        raise CommandError(f"--out: {out!r} is a directory; give a file name")
    if path.exists() and not path.is_file():
        raise CommandError(f"--out: {out!r} is not a regular file; omit --out to write to stdout")
    if not path.absolute().parent.is_dir():
        raise CommandError(f"--out: directory {str(path.parent)!r} does not exist")


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
        test_scores = detector.anomaly_scores(task.X_test, kinds)
        X_unseen, y_unseen = task.extra_tests["unseen"]
        unseen_scores = detector.anomaly_scores(X_unseen, kinds)
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
    parser = _Parser(
        prog="tfp-flowad",
        description="Normalizing-flow anomaly detection (arXiv 1912.09323): fit, score, export.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def common(sub, seed=True):
        if seed:
            sub.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        sub.add_argument(
            "--verbose",
            type=int,
            default=1,
            choices=(0, 1, 2),
            help="0 quiet; 1 one progress line per training stage on stderr, with the time left "
            "(default); 2 Keras' lines per epoch",
        )

    def score_kind(sub):
        sub.add_argument(
            "--score",
            choices=("combined", "density", "classifier", "student"),  # detector.SCORES
            help="the score to return (default: the model's own, 'combined' unless fitted "
            "otherwise); 'student' is one small network fitted to rank rows like the combined "
            "score, for scoring many rows a second at a small cost in detection "
            "(docs/RESULTS.md); 'is_anomaly' uses that score's own threshold",
        )

    fit = commands.add_parser("fit", help="fit a detector on a CSV or Parquet file")
    fit.add_argument(
        "--data",
        required=True,
        help="training rows, .csv (with a header) or .parquet; every cell filled, numbers "
        "finite (docs/ERRORS.md)",
    )
    fit.add_argument(
        "--label-column",
        help="column with labels; rows whose label is not --normal-value are known anomalies "
        "(omit for one-class)",
    )
    fit.add_argument("--normal-value", help="the label of normal rows (default: 0 with 0/1 labels)")
    fit.add_argument(
        "--out",
        required=True,
        help="directory to write the fitted model to: a new path, or a model directory that "
        "is replaced",
    )
    fit.add_argument(
        "--contamination",
        type=_fraction,
        default=0.01,
        help="the expected fraction of anomalies, in (0, 0.5); sets the 0/1 threshold "
        "(default: %(default)s)",
    )
    fit.add_argument(
        "--epochs-scale",
        type=_positive,
        help="multiply the default epochs and training steps (e.g. 0.5 for a quick fit)",
    )
    fit.add_argument(
        "--flow",
        choices=("maf", "realnvp", "planar", "radial"),
        default="maf",
        help="the density model (default: %(default)s, distilled into an IAF as in the paper); "
        "'realnvp' samples in one pass and needs no distillation; no flow is best on every "
        "table (docs/RESULTS.md, ablations)",
    )
    fit.add_argument(
        "--classifier-distillation-steps",
        type=_count,
        default=0,
        help="with known anomalies the classifier is an ensemble of five networks; distil it "
        "into one by this many steps, so that a model exported with --score classifier "
        "serves more rows per second (default: %(default)s, keep the ensemble)",
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
        type=_count,
        default=4096,
        help="normal training rows kept as references: the combined score adds each row's "
        "distance to the nearest of them to the flow's density, which catches rows in the gaps "
        "between tight clusters of normal rows; 0 leaves it out and scores faster (default: "
        "%(default)s)",
    )
    fit.add_argument(
        "--student-steps",
        type=_count,
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
        "the known anomalies teach much; they make the fit longer and the combined score "
        "slower to compute",
    )
    common(fit)
    fit.set_defaults(run=_cmd_fit)

    score = commands.add_parser("score", help="score rows with a fitted model")
    score.add_argument("--model", required=True, help="directory written by 'fit'")
    score.add_argument(
        "--data",
        required=True,
        help="rows to score: a .csv (also .csv.gz) or .parquet file, a folder of them, or a "
        "glob such as 'logs/*.parquet' (quoted), read a chunk at a time in sorted order; "
        "columns other than the training ones, --keep-columns and --label-column are not "
        "read; never written to",
    )
    score.add_argument(
        "--keep-columns",
        type=_column_names,
        default=[],
        help="columns of --data written first in --out, as read, so the scores join back to "
        "their rows, e.g. 'id,timestamp'",
    )
    score.add_argument(
        "--chunk-rows",
        type=_positive_int,
        default=65536,
        help="rows read and scored at a time; memory grows with it, not with the size of "
        "--data (default: %(default)s)",
    )
    score.add_argument(
        "--quiet", action="store_true", help="no progress lines on stderr while scoring"
    )
    score.add_argument(
        "--label-column",
        help="a label column of --data, left out of the scoring; the ROC AUC and average "
        "precision of the scores against it are printed (each row's score and label are kept "
        "in memory until the end for this)",
    )
    score.add_argument(
        "--normal-value", help="the label of normal rows (default: 0 with 0/1 labels)"
    )
    score.add_argument(
        "--out",
        help="file to write the --keep-columns, anomaly_score and is_anomaly to, one row per "
        "row of --data in its order: Parquet if it ends in .parquet, gzip CSV if in .gz, "
        "else CSV; it appears whole once every row is scored, or not at all; default: CSV "
        "on stdout, written as the rows are scored",
    )
    score_kind(score)
    score.set_defaults(run=_cmd_score)

    export = commands.add_parser("export", help="export a fitted model as a TF Serving SavedModel")
    export.add_argument("--model", required=True, help="directory written by 'fit'")
    export.add_argument("--out", required=True, help="model base directory (version dirs inside)")
    export.add_argument(
        "--version",
        type=_positive_int,
        help="version number, an integer >= 1 that is not taken yet (default: the next free)",
    )
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
    demo.add_argument(
        "--epochs-scale", type=_positive, help="multiply the default epochs and training steps"
    )
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
    except (CommandError, ValueError, TypeError, RuntimeError, OSError) as error:
        message = " ".join(str(error).split())  # one line, whatever the source
        print(f"tfp-flowad: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
