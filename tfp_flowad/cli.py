"""``tfp-flowad``: a thin command line over ``NFADetector``.

Commands: ``fit``, ``score``, ``export``, ``demo``, ``benchmark``. Every error, a bad option
included, prints one line ``tfp-flowad: error: ...`` that names the option, and exits with
status 2. Inputs are checked before any fitting or scoring, input files are never written, and
every output (model directory, scores file, SavedModel) appears whole or not at all
(``tfp_flowad.atomic``). docs/ERRORS.md lists the checks.
"""

import contextlib
import os
import sys
import time
from pathlib import Path

from tfp_flowad import cli_parser

__all__ = ["main", "build_parser"]


class CommandError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


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
    from tfp_flowad.io.training_rows import training_rows
    from tfp_flowad.training import distribute

    strategy = distribute.make_strategy(args.strategy)  # before any other TensorFlow op
    _check_model_out(args.out, args.data)
    if args.normal_value is not None and args.label_column is None:
        raise CommandError("--normal-value needs --label-column, a column of the data")
    detector = _make_detector(
        args,
        contamination=args.contamination,
        flow=args.flow,
        density_temperature=args.density_temperature,
        classifier_model=args.classifier_model,
        neighbour_rows=args.neighbour_rows,
        student_steps=args.student_steps,
    )
    start = time.perf_counter()
    # One pass over --data: a uniform sample of at most --max-rows normal rows (and the known
    # anomalies), every row checked.
    rows = training_rows(
        args.data,
        args.label_column,
        max_rows=args.max_rows,
        random_state=args.seed,
        categorical_columns=detector.categorical_columns,
        name="--data",
        label_name="--label-column",
        normal_value=args.normal_value,
        normal_value_name="--normal-value",
    )
    if rows.normal_rows_read < detector.min_normal_rows:
        labelled = "" if args.label_column is None else f" (labelled {args.normal_value or '0'!r})"
        raise CommandError(
            f"--data holds {rows.normal_rows_read} normal rows{labelled}; at least "
            f"{detector.min_normal_rows} are needed to fit"
        )
    with strategy.scope() if strategy else contextlib.nullcontext():
        detector.fit(rows)
    if not distribute.is_chief(strategy):
        return
    detector.save(args.out)
    n_known = int(rows.labels.sum())
    read = f", a uniform sample of the {rows.rows_read} rows read" if rows.sampled else ""
    print(
        f"fitted on {len(rows.frame)} rows ({n_known} known anomalies){read} in "
        f"{time.perf_counter() - start:.1f} s; saved to {args.out}"
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


def _cmd_score(args) -> None:
    from tfp_flowad.io import score_file, table_columns, table_files

    if args.engine == "dask":
        return _cmd_score_dask(args)
    for option in ("dask_scheduler", "dask_workers"):
        if getattr(args, option) is not None:
            raise CommandError(f"--{option.replace('_', '-')} needs --engine dask")
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


def _cmd_score_dask(args) -> None:
    """``score --engine dask``: ``--model`` is a saved detector, whose ``--score`` is exported
    to a temporary SavedModel first, or an exported SavedModel, scored as exported."""
    import tempfile

    from tfp_flowad.detector.persistence import is_saved_detector
    from tfp_flowad.engines import score_with_dask

    for option, value in (("--label-column", args.label_column), ("--out", not args.out)):
        if value:
            raise CommandError(f"--engine dask needs --out and takes no {option}")
    if args.dask_scheduler and args.dask_workers:
        raise CommandError("--dask-workers sizes a local cluster; --dask-scheduler names another")
    names = {"model_dir": "--model", "source": "--data", "out": "--out"}
    names["keep_columns"] = "--keep-columns"
    with tempfile.TemporaryDirectory(prefix="tfp_flowad-export-") as folder:
        model = args.model
        if is_saved_detector(Path(args.model)):
            model = _load_with_score(args).export_saved_model(folder)
        elif args.score:
            raise CommandError(
                "--score: --model is not a directory written by 'fit' (an exported SavedModel "
                "computes the score it was exported with); give the model directory to choose"
            )
        try:
            done = score_with_dask(
                model, args.data, args.out, keep_columns=args.keep_columns,
                client=args.dask_scheduler, n_workers=args.dask_workers,
                chunk_rows=args.chunk_rows, progress=not args.quiet, names=names,
            )  # fmt: skip
        except ImportError as error:
            raise CommandError(f"--engine dask: {error}") from None
    print(
        f"scored {done.rows} rows in {done.seconds:.1f} s ({done.rows_per_second:.0f} rows/s); "
        f"{done.flagged} flagged; wrote {done.parts} part file{'s' * (done.parts > 1)} to "
        f"{args.out}"
    )


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


#: the function that runs each command (``benchmark`` brings its own).
COMMANDS = {"fit": _cmd_fit, "score": _cmd_score, "export": _cmd_export, "demo": _cmd_demo}


def build_parser():
    """The ``tfp-flowad`` parser (``tfp_flowad.cli_parser``) with this module's commands."""
    return cli_parser.build_parser(COMMANDS)


if __name__ == "__main__":
    sys.exit(main())
