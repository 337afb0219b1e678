"""The ``tfp-flowad`` command line's options: the parser, the option types, and their help.

Every bad option is one line ``tfp-flowad: error: ...`` naming the option, exit status 2, like
the commands' own errors (``tfp_flowad.cli``).
"""

import argparse

__all__ = ["build_parser"]


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one ``tfp-flowad: error:`` line, like the
    commands' own errors."""

    def error(self, message):
        self.exit(2, f"tfp-flowad: error: {message} (see '{self.prog} --help')\n")


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


def build_parser(commands: dict) -> argparse.ArgumentParser:
    """The ``tfp-flowad`` parser; ``commands`` maps each of ``fit``, ``score``, ``export`` and
    ``demo`` to the function that runs it (``args.run``)."""
    parser = _Parser(
        prog="tfp-flowad",
        description="Normalizing-flow anomaly detection (arXiv 1912.09323): fit, score, export.",
    )
    subcommands = parser.add_subparsers(dest="command", required=True)

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

    fit = subcommands.add_parser("fit", help="fit a detector on a CSV or Parquet file")
    fit.add_argument(
        "--data",
        required=True,
        help="training rows: a .csv (with a header; also .csv.gz) or .parquet file, a folder "
        "of them, or a glob such as 'logs/*.parquet' (quoted), read once as a stream; every "
        "cell filled, numbers finite (docs/ERRORS.md); never written to",
    )
    fit.add_argument(
        "--max-rows",
        type=_positive_int,
        default=1_000_000,  # tfp_flowad.io.training_rows.DEFAULT_MAX_ROWS
        help="the most normal rows to train on: with more in --data, a uniform sample of "
        "this many, drawn in one pass (reservoir sampling, seeded by --seed); known "
        "anomalies are kept apart from them, up to 100,000 (default: %(default)s)",
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
        "--density-temperature",
        type=_positive,
        default=1.0,
        help="T of the density score -log p_T(x), the flow's density with its base Gaussian's "
        "scale set to T; a lower T ranks rows more by their distance from the base space's "
        "centre than by the flow's change of volume (default: %(default)s, the flow's own "
        "density)",
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
    fit.add_argument(
        "--strategy",
        choices=("none", "mirrored", "multi-worker"),  # training.distribute.STRATEGIES
        default="none",
        help="train the TensorFlow stages with a tf.distribute strategy: 'mirrored' on this "
        "machine's GPUs (else its CPU), 'multi-worker' on the machines that TF_CONFIG names, "
        "each running this command; only the chief saves (default: %(default)s)",
    )
    common(fit)
    fit.set_defaults(run=commands["fit"])

    score = subcommands.add_parser("score", help="score rows with a fitted model")
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
    score.add_argument(
        "--engine",
        choices=("stream", "dask"),
        default="stream",
        help="'stream' (default) scores in this process; 'dask' scores on the workers of a Dask "
        "cluster (pip install 'tfp_flowad[dask]') with the model exported as a SavedModel, "
        "--model being a directory written by 'fit' or by 'export', and writes --out as a "
        "folder of Parquet part files",
    )
    score.add_argument(
        "--dask-scheduler",
        metavar="ADDRESS",
        help="with --engine dask: the scheduler of a running cluster, e.g. tcp://host:8786; its "
        "workers read --data and write --out at the same paths (default: a local cluster)",
    )
    score.add_argument(
        "--dask-workers",
        type=_positive_int,
        metavar="N",
        help="with --engine dask: the worker processes of the local cluster (default: one "
        "per core)",
    )
    score_kind(score)
    score.set_defaults(run=commands["score"])

    export = subcommands.add_parser(
        "export", help="export a fitted model as a TF Serving SavedModel"
    )
    export.add_argument("--model", required=True, help="directory written by 'fit'")
    export.add_argument("--out", required=True, help="model base directory (version dirs inside)")
    export.add_argument(
        "--version",
        type=_positive_int,
        help="version number, an integer >= 1 that is not taken yet (default: the next free)",
    )
    score_kind(export)
    export.set_defaults(run=commands["export"])

    demo = subcommands.add_parser(
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
    demo.set_defaults(run=commands["demo"])

    from tfp_flowad.benchmark import add_benchmark_parser

    add_benchmark_parser(subcommands)
    return parser
