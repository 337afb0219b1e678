"""Fitting and scoring HIGGS-like tables of 10 thousand to 10 million rows, streamed from Parquet.

For each size N of ``--sizes``, writes a Parquet file of N rows and measures, each in a fresh
process (so that its peak resident memory is its own):

* fit: ``training_rows`` reads the file once as a stream and keeps a uniform sample of at most
  ``--max-rows`` rows (``tfp_flowad.io.training_rows``), then the default ``NFADetector``
  (seed ``--seed``; ``--epochs-scale`` shortens it) fits on them, is saved, and its student
  score is exported as a SavedModel (``export_saved_model``, ``score_kind="student"``);
* score: ``score_file`` (what ``tfp-flowad score --score student --out scores.parquet``
  runs) scores every row of the file with the student score, streamed to a Parquet file.

The rows: the 28 features of the HIGGS sample shipped in ``benchmarks/data/higgs``
(``tfp_flowad.datasets.load_higgs``), resampled with replacement (seed ``--seed``), plus
Gaussian jitter of ``--jitter`` times each column's standard deviation in the sample, so that
rows do not repeat; written as float32 in row groups of ``--row-group-rows`` rows, a row group
at a time (memory does not grow with N). ``--higgs PATH`` takes the first N rows of the real UCI
``HIGGS.csv.gz`` instead (no header, the label first; the label is left out), converted to
Parquet a block at a time. The rows are normal: the fit is one-class.

Each process reports its wall time, the rows per second of each stage (reading and sampling:
rows read per second; each training stage of ``fit_seconds_``: training rows per second;
scoring: rows scored per second end to end, reading and writing included) and its peak
resident memory (Linux's ``VmHWM``: TensorFlow, the model and the data). The targets are
printed beside the figures, passed or failed: peak resident memory of fit and of scoring on
10M rows under 3 GiB and flat in the rows beyond the sample's cap (the fit's memory grows with
its training sample up to ``--max-rows``, then stays); the 10M-row fit under 30 minutes; scoring at 1M
rows/s or more.

It also checks, on the HIGGS sample itself (the background rows of its first 80% as training
rows, all rows of the last 20% as test rows, the signal being the anomaly), that the ROC AUC
is the same whether the training rows are given in memory or streamed from a Parquet file,
with the same seed, and prints both.

Writes ``benchmarks/results/at_scale.json`` (whole or not at all) after each size. The figures depend on the
machine and on what else runs on it: the load average before and after is recorded.

    python benchmarks/at_scale.py --sizes 10k,100k,1M
    python benchmarks/at_scale.py --sizes 10M --higgs ~/data/HIGGS.csv.gz
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "at_scale.json"
GIB = 2**30
#: the targets: peak resident memory (bytes) of fit and scoring, 10M-row fit time, scoring rate
TARGETS = {"peak_rss_bytes": 3 * GIB, "fit_seconds_10M": 30 * 60, "score_rows_per_second": 1e6}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10k,100k,1M,10M", help="rows of each table")
    parser.add_argument("--higgs", type=Path, help="the UCI HIGGS.csv.gz, instead of resampling")
    parser.add_argument("--max-rows", type=int, default=1_000_000, help="fit's max_rows")
    parser.add_argument("--epochs-scale", type=float, help="shorten the fit (e.g. 0.2)")
    parser.add_argument("--jitter", type=float, default=0.05, help="noise, in column stds")
    parser.add_argument("--row-group-rows", type=int, default=100_000, help="Parquet row groups")
    parser.add_argument("--chunk-rows", type=int, default=262_144, help="rows scored at a time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, help="folder for the tables (default: a temp)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results file")
    args = parser.parse_args(argv)
    sizes = [_rows(text) for text in args.sizes.split(",")]
    settings = {key: getattr(args, key) for key in ("max_rows", "epochs_scale", "jitter", "seed")}
    settings.update(row_group_rows=args.row_group_rows, chunk_rows=args.chunk_rows)
    settings.update(source="UCI HIGGS.csv.gz" if args.higgs else "HIGGS sample, resampled")
    results = {"settings": settings, "cpus": os.cpu_count(), "sizes": {}}
    results["load_average_before"] = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(dir=args.workdir) as folder:
        folder = Path(folder)
        results["auc_memory_vs_file"] = auc_check(folder, args)
        print(_table_header(), flush=True)
        for rows in sizes:
            data = folder / f"rows_{rows}.parquet"
            start = time.perf_counter()
            write_table(data, rows, args)
            written = {"seconds": round(time.perf_counter() - start, 1)}
            written["mb"] = round(data.stat().st_size / 2**20, 1)
            model = folder / f"model_{rows}"
            fit = run_child("fit", data, model, args)
            score = run_child("score", data, model, args, out=folder / "scores.parquet")
            (folder / "scores.parquet").unlink(missing_ok=True)
            data.unlink()
            results["sizes"][str(rows)] = {"file": written, "fit": fit, "score": score}
            print(_table_row(rows, fit, score), flush=True)
            # after each size, so that a long run keeps what it measured
            results["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
            results["targets"] = check_targets(results["sizes"])
            _write_json(args.out, results)
    for line in results["targets"]["lines"]:
        print(line)


def _rows(text: str) -> int:
    """``10k`` -> 10000, ``1M`` -> 1000000, ``2500`` -> 2500."""
    scale = {"k": 10**3, "M": 10**6}.get(text.strip()[-1:], 1)
    return int(float(text.strip().rstrip("kM")) * scale)


def write_table(path: Path, rows: int, args) -> None:
    """``rows`` HIGGS-like rows (module docstring) to ``path``, a row group at a time."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    if args.higgs:
        _convert_uci(args.higgs, path, rows, args.row_group_rows)
        return
    from tfp_flowad.datasets import load_higgs

    sample, _ = load_higgs()
    values = sample.to_numpy(np.float64)
    noise = args.jitter * values.std(axis=0)
    rng = np.random.default_rng(args.seed)
    schema = pa.schema([(column, pa.float32()) for column in sample.columns])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, args.row_group_rows):
            n = min(args.row_group_rows, rows - start)
            block = values[rng.integers(0, len(values), n)]
            block += rng.normal(size=block.shape) * noise
            table = pa.table(
                {c: block[:, i].astype(np.float32) for i, c in enumerate(sample.columns)}
            )
            writer.write_table(table.cast(schema))


def _convert_uci(source: Path, path: Path, rows: int, group_rows: int) -> None:
    """The first ``rows`` rows of the UCI HIGGS file (no header, label first) as Parquet."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    from tfp_flowad.datasets.physics import HIGGS_FEATURES

    names = ["label", *HIGGS_FEATURES]
    reader = pa_csv.open_csv(
        source,
        read_options=pa_csv.ReadOptions(column_names=names, block_size=16 << 20),
        convert_options=pa_csv.ConvertOptions(
            column_types={name: pa.float32() for name in names}, include_columns=names[1:]
        ),
    )
    written = 0
    with pq.ParquetWriter(path, reader.schema) as writer:
        for batch in reader:
            batch = batch.slice(0, rows - written)
            writer.write_table(pa.Table.from_batches([batch]), row_group_size=group_rows)
            written += batch.num_rows
            if written >= rows:
                break
    if written < rows:
        raise ValueError(f"--higgs {str(source)!r} has {written} rows, fewer than {rows}")


def auc_check(folder: Path, args) -> dict:
    """ROC AUC on the HIGGS sample's test rows, the training rows from memory and from a
    Parquet file (module docstring), in a fresh process."""
    measured = run_child("auc", folder / "higgs_train.parquet", folder / "unused", args)
    print(
        f"HIGGS sample: ROC AUC {measured['auc_memory']:.6f} (training rows in memory), "
        f"{measured['auc_file']:.6f} (streamed from Parquet); max |score difference| "
        f"{measured['max_abs_score_difference']}",
        flush=True,
    )
    return measured


def run_child(stage: str, data: Path, model: Path, args, out: Path | None = None) -> dict:
    """The JSON line a fresh process running ``child(stage, ...)`` prints."""
    command = [sys.executable, __file__, "--child", stage, str(data), str(model), str(out)]
    command.append(json.dumps(vars(args), default=str))
    environment = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=environment)
    if done.returncode != 0:
        raise RuntimeError(f"{stage} on {data} failed:\n{done.stderr[-4000:]}")
    measured = json.loads(done.stdout.splitlines()[-1])
    measured["process_seconds"] = round(time.perf_counter() - start, 1)
    return measured


def child(stage: str, data: str, model: str, out: str, options: str) -> None:
    """One measurement (``fit``, ``score`` or ``auc``); prints one JSON line."""
    args = argparse.Namespace(**json.loads(options))
    start = time.perf_counter()
    if stage == "fit":
        measured = _fit(data, model, args)
    elif stage == "score":
        measured = _score(data, model, out, args)
    else:
        measured = _auc(data, args)
    measured["seconds"] = round(time.perf_counter() - start, 2)
    measured["peak_rss_mb"] = round(_memory_mb("VmHWM"))
    print(json.dumps(measured))


def _detector(args):
    from tfp_flowad import NFADetector
    from tfp_flowad.base import scale_training_lengths

    detector = NFADetector(random_state=args.seed, verbose=0)
    return scale_training_lengths(detector, args.epochs_scale) if args.epochs_scale else detector


def _fit(data: str, model: str, args) -> dict:
    from tfp_flowad.io import training_rows

    detector = _detector(args)
    start = time.perf_counter()
    rows = training_rows(data, max_rows=args.max_rows, random_state=args.seed)
    read = time.perf_counter() - start
    detector.fit(rows)
    fitted = time.perf_counter() - start
    detector.save(model)
    detector.score_kind = "student"
    start = time.perf_counter()
    detector.export_saved_model(Path(model) / "serving")
    trained = len(rows.frame)
    stages = {"read_and_sample": _rate(read, rows.rows_read)}
    stages.update({k: _rate(v, trained) for k, v in detector.fit_seconds_.items()})
    return {
        "rows_read": rows.rows_read,
        "training_rows": trained,
        "fit_seconds": round(fitted, 1),
        "export_seconds": round(time.perf_counter() - start, 1),
        "stages": stages,
    }


def _rate(seconds: float, rows: int) -> dict:
    return {"seconds": round(seconds, 2), "rows_per_second": round(rows / max(seconds, 1e-9))}


def _score(data: str, model: str, out: str, args) -> dict:
    from tfp_flowad import NFADetector
    from tfp_flowad.io import score_file

    detector = NFADetector.load(model)
    loaded = _memory_mb("VmRSS")
    summary = score_file(
        detector, data, out, kinds=["student"], chunk_rows=args.chunk_rows, progress=False
    )
    return {
        "rows": summary.rows,
        "flagged": summary.flagged,
        "score_seconds": round(summary.seconds, 2),
        "rows_per_second": round(summary.rows_per_second),
        "rss_after_loading_mb": round(loaded),
    }


def _auc(data: str, args) -> dict:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.metrics import roc_auc_score

    from tfp_flowad.datasets import load_higgs

    X, y = load_higgs()
    cut = int(len(X) * 0.8)
    train = X.iloc[:cut][y[:cut] == 0].reset_index(drop=True)
    pq.write_table(pa.Table.from_pandas(train, preserve_index=False), data, row_group_size=4096)
    scores = {}
    for source in ("memory", "file"):
        detector = _detector(args).fit(train if source == "memory" else data)
        scores[source] = detector.decision_function(X.iloc[cut:])
    return {
        "training_rows": len(train),
        "test_rows": len(X) - cut,
        "auc_memory": float(roc_auc_score(y[cut:], scores["memory"])),
        "auc_file": float(roc_auc_score(y[cut:], scores["file"])),
        "max_abs_score_difference": float(np.abs(scores["memory"] - scores["file"]).max()),
    }


def check_targets(sizes: dict) -> dict:
    """Each target, its figure and whether it is met (``None``: not measured)."""
    peaks = {n: (r["fit"]["peak_rss_mb"], r["score"]["peak_rss_mb"]) for n, r in sizes.items()}
    largest = max(sizes, key=int)
    # The first table whose training sample is as large as the largest table's (max_rows rows):
    # beyond it only the rows read grow, and memory should not.
    cap_rows = sizes[largest]["fit"]["training_rows"]
    at_cap = min((n for n in sizes if sizes[n]["fit"]["training_rows"] == cap_rows), key=int)
    limit_mb = TARGETS["peak_rss_bytes"] / 2**20
    ten_million = sizes.get("10000000")
    checks = {
        "peak RSS of fit and score on the largest table < 3 GiB": (
            f"{max(peaks[largest]):,} MB at {int(largest):,} rows",
            max(peaks[largest]) < limit_mb,
        ),
        "peak RSS flat in the rows beyond the training sample's cap (the largest table's fit "
        "and score within 10 % of the first table at the cap)": (
            " ".join(f"{int(n):,}: fit {f:,} MB, score {s:,} MB;" for n, (f, s) in peaks.items()),
            None
            if at_cap == largest
            else all(peaks[largest][i] <= 1.1 * peaks[at_cap][i] for i in (0, 1)),
        ),
        "10M-row fit < 30 min": (
            f"{ten_million['fit']['fit_seconds']:.0f} s" if ten_million else "not run",
            ten_million["fit"]["fit_seconds"] < TARGETS["fit_seconds_10M"] if ten_million else None,
        ),
        "student scoring of the largest table >= 1M rows/s end to end": (
            f"{sizes[largest]['score']['rows_per_second']:,} rows/s at {int(largest):,} rows",
            sizes[largest]["score"]["rows_per_second"] >= TARGETS["score_rows_per_second"],
        ),
    }
    verdict = {True: "PASS", False: "FAIL", None: "not measured"}
    lines = [f"target: {name}: {figure}: {verdict[ok]}" for name, (figure, ok) in checks.items()]
    return {
        "checks": {k: {"figure": f, "met": ok} for k, (f, ok) in checks.items()},
        "lines": lines,
    }


def _table_header() -> str:
    return (
        "| rows | read+sample rows/s | training rows | fit s | fit peak RSS | score rows/s | "
        "score peak RSS |\n|---|---|---|---|---|---|---|"
    )


def _table_row(rows: int, fit: dict, score: dict) -> str:
    read = fit["stages"]["read_and_sample"]["rows_per_second"]
    return (
        f"| {rows:,} | {read:,} | {fit['training_rows']:,} | {fit['fit_seconds']:.0f} | "
        f"{fit['peak_rss_mb']:,} MB | {score['rows_per_second']:,} | {score['peak_rss_mb']:,} MB |"
    )


def _memory_mb(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak) of this process, in MB (Linux)."""
    with open("/proc/self/status") as status:
        kilobytes = next(int(line.split()[1]) for line in status if line.startswith(field + ":"))
    return kilobytes / 1024


def _write_json(path: Path, results: dict) -> None:
    from tfp_flowad.atomic import atomic_file

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as temporary:
        temporary.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(*sys.argv[2:])
    else:
        main()
