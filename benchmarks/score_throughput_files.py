"""Throughput and memory of scoring a large Parquet file streamed (``tfp_flowad.io.score_file``).

Writes a HIGGS-like table of ``--rows`` rows to Parquet in a temporary folder: the 28 features
of the packaged HIGGS sample (``tfp_flowad.datasets.load_higgs``) resampled with replacement
(seed ``--seed``), plus an ``id`` column, in row groups of ``--row-group-rows`` rows. Fits a
one-class detector on its first ``--fit-rows`` rows (the defaults, or ``--epochs-scale`` to make
the fit shorter) and saves it there; exports nothing. Then, for each score kind of ``--kinds``,
scores the file in a fresh process:

* streamed: ``score_file(detector, data, "scores.parquet", keep_columns=["id"])``, a chunk of
  ``--chunk-rows`` rows at a time;
* in memory, for comparison: ``pandas.read_parquet`` of the whole file, ``anomaly_scores`` of
  every row, the same scores written with ``DataFrame.to_parquet``.

Each process reports its rows/s end to end (reading, scoring and writing, from the first read
to the last write, the tracing of the scoring function included), its resident memory once the
model is loaded, its peak resident memory while scoring (Linux's ``VmHWM``, reset once the model
is loaded), and the peak of its whole life (``resource.getrusage``'s ``ru_maxrss``, the start
of TensorFlow and the model's loading included). Prints a table and writes
``benchmarks/results/score_throughput_files.json``.

    python benchmarks/score_throughput_files.py --rows 1000000 --epochs-scale 0.2
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "score_throughput_files.json"
MODES = ("streamed", "in memory")


def table_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the generated table and of the fit scored, shared with
    ``score_throughput_dask.py``."""
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the scored file")
    parser.add_argument("--fit-rows", type=int, default=20_000, help="rows the detector fits on")
    parser.add_argument("--epochs-scale", type=float, help="shorten the fit (e.g. 0.2)")
    parser.add_argument("--chunk-rows", type=int, default=65536, help="rows scored at a time")
    parser.add_argument("--row-group-rows", type=int, default=100_000, help="Parquet row groups")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    table_arguments(parser)
    parser.add_argument("--kinds", default="student,combined", help="score kinds to time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS, help="results file")
    args = parser.parse_args(argv)
    results = {
        key: getattr(args, key) for key in ("rows", "fit_rows", "epochs_scale", "chunk_rows")
    }
    results.update(row_group_rows=args.row_group_rows, seed=args.seed, cpus=os.cpu_count())
    results["load_average_before"] = round(os.getloadavg()[0], 2)  # other processes' share
    print("| score | scoring | rows/s | seconds | RSS after loading | peak RSS while scoring |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        data, model = Path(folder) / "rows.parquet", Path(folder) / "model"
        write_table(data, args.rows, args.row_group_rows, args.seed)
        results["file_mb"] = round(data.stat().st_size / 2**20, 1)
        results["fit_seconds"] = fit(data, args.fit_rows, args.epochs_scale, args.seed, model)
        for kind in args.kinds.split(","):
            for mode in MODES:
                measured = run_child(mode, model, data, Path(folder) / "scores.parquet", kind, args)
                results.setdefault(kind, {})[mode] = measured
                print(
                    f"| {kind} | {mode} | {measured['rows_per_second']:,.0f} | "
                    f"{measured['seconds']:.1f} | {measured['rss_after_load_mb']:,} MB | "
                    f"{measured['scoring_peak_rss_mb']:,} MB |",
                    flush=True,
                )
    results["load_average_after"] = round(os.getloadavg()[0], 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")


def write_table(path: Path, rows: int, group_rows: int, seed: int) -> None:
    """``rows`` rows of the HIGGS sample's features drawn with replacement, and ``id``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tfp_flowad.datasets import load_higgs

    sample, _ = load_higgs()
    rng = np.random.default_rng(seed)
    with pq.ParquetWriter(path, pa.Schema.from_pandas(sample.assign(id=0), False)) as writer:
        for start in range(0, rows, group_rows):
            picked = rng.integers(0, len(sample), min(group_rows, rows - start))
            block = sample.iloc[picked].assign(id=np.arange(start, start + len(picked)))
            writer.write_table(pa.Table.from_pandas(block, preserve_index=False))


def fit(data: Path, rows: int, epochs_scale, seed: int, model: Path) -> dict:
    """Fits a one-class detector on the first ``rows`` rows of ``data``, saves it to
    ``model``, and returns its fit seconds per stage."""
    import pyarrow.parquet as pq

    from tfp_flowad import NFADetector
    from tfp_flowad.base import scale_training_lengths

    first = next(pq.ParquetFile(data).iter_batches(batch_size=rows)).to_pandas()
    detector = NFADetector(random_state=seed)
    if epochs_scale:
        detector = scale_training_lengths(detector, epochs_scale)
    start = time.perf_counter()
    detector.fit(first.drop(columns=["id"]))
    detector.save(model)
    print(f"fitted on {len(first):,} rows in {time.perf_counter() - start:.0f} s", flush=True)
    return {stage: round(seconds, 1) for stage, seconds in detector.fit_seconds_.items()}


def run_child(mode: str, model: Path, data: Path, out: Path, kind: str, args) -> dict:
    """The measurements of one scoring in a fresh process (``child``)."""
    command = [sys.executable, __file__, "--child", mode, str(model), str(data), str(out), kind]
    command.append(str(args.chunk_rows))
    environment = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(command, capture_output=True, text=True, env=environment)
    if done.returncode != 0:
        raise RuntimeError(f"scoring {kind} {mode} failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])


def child(mode: str, model: str, data: str, out: str, kind: str, chunk_rows: str) -> None:
    """Scores ``data`` with the model's ``kind`` (``mode``: streamed or in memory) and prints
    one JSON line: rows, seconds, rows/s, flagged rows and the process's memory."""
    from tfp_flowad import NFADetector

    detector = NFADetector.load(model)
    detector.score_kind = kind
    loaded = _memory_mb("VmRSS")
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # Linux: the peak (VmHWM) starts again from the memory in use now
    start = time.perf_counter()
    if mode == "streamed":
        from tfp_flowad.io import score_file

        summary = score_file(
            detector, data, out, ["id"], chunk_rows=int(chunk_rows), progress=False
        )
        rows, flagged = summary.rows, summary.flagged
    else:
        import pandas as pd

        frame = pd.read_parquet(data)
        scores = detector.anomaly_scores(frame[detector.feature_names_in_], [kind])[kind]
        flags = (scores > detector.threshold_).astype(int)
        result = pd.DataFrame({"id": frame["id"], "anomaly_score": scores, "is_anomaly": flags})
        result.to_parquet(out, index=False)
        rows, flagged = len(result), int(flags.sum())
    seconds = time.perf_counter() - start
    measured = dict(rows=rows, flagged=flagged, seconds=round(seconds, 2))
    measured.update(rows_per_second=round(rows / seconds), rss_after_load_mb=round(loaded))
    measured["scoring_peak_rss_mb"] = round(_memory_mb("VmHWM"))
    # the peak of the whole process, its start and the model's loading included
    measured["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(measured))


def _memory_mb(field: str) -> float:
    """A memory figure of this process from Linux's ``/proc/self/status``, in MB: ``VmRSS``
    (resident now) or ``VmHWM`` (the peak since the start or the last reset)."""
    with open("/proc/self/status") as status:
        kilobytes = next(int(line.split()[1]) for line in status if line.startswith(field + ":"))
    return kilobytes / 1024


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(*sys.argv[2:])
    else:
        main()
