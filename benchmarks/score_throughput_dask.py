"""Rows per second of scoring a large Parquet file on a local Dask cluster
(``tfp_flowad.engines.score_with_dask``), next to the single-process ``score_file`` (the
``tfp-flowad score`` path) in the same run.

The table and the detector are those of ``score_throughput_files.py`` (its ``write_table`` and
``fit``): ``--rows`` HIGGS-like rows and an ``id`` in one Parquet file of row groups of
``--row-group-rows`` rows, and a one-class detector fitted on its first ``--fit-rows`` rows.
The detector's student score is exported as a SavedModel. A ``LocalCluster`` of
``--workers`` worker processes (one thread each) is started once; then, ``--rounds`` times,
the two are timed one after the other (alternated, so a change of the machine's load falls on
both):

* single process: ``score_file(detector, data, "scores.parquet", ["id"])`` in this process
  (the detector loaded once; its first round traces the scoring function);
* dask: ``score_with_dask(export, data, "scores/", keep_columns=["id"])``, pieces of
  ``--partition-rows`` rows (its first round loads the SavedModel in each worker).

Both read the file, score every row with the student score and write the ids and scores to
Parquet; the seconds run from the call to its return. The cluster's start is timed apart, and
the medians leave out the first round (the warm-up). Prints a table and writes
``benchmarks/results/score_throughput_dask.json`` (every round's figures).

On one machine the workers share its cores with each other, where the single process gives
them all to TensorFlow's own threads: the comparison shows the cost of the engine's tasks, not
the gain of more machines.

    python benchmarks/score_throughput_dask.py --rows 1000000 --epochs-scale 0.2
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from score_throughput_files import fit, table_arguments, write_table  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "score_throughput_dask.json"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    table_arguments(parser)
    parser.add_argument("--partition-rows", type=int, default=100_000, help="rows per task")
    parser.add_argument("--workers", type=int, default=2, help="local cluster's processes")
    parser.add_argument("--rounds", type=int, default=5, help="alternated timings of each")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS, help="results file")
    args = parser.parse_args(argv)

    from distributed import Client, LocalCluster

    from tfp_flowad import NFADetector
    from tfp_flowad.atomic import atomic_file
    from tfp_flowad.engines import score_with_dask
    from tfp_flowad.io import score_file

    results = {key: getattr(args, key) for key in ("rows", "fit_rows", "epochs_scale")}
    results.update(chunk_rows=args.chunk_rows, row_group_rows=args.row_group_rows)
    results.update(partition_rows=args.partition_rows, workers=args.workers, seed=args.seed)
    results.update(score="student", cpus=os.cpu_count())
    results["load_average_before"] = round(os.getloadavg()[0], 2)  # other processes' share
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        data, model = folder / "rows.parquet", folder / "model"
        write_table(data, args.rows, args.row_group_rows, args.seed)
        results["file_mb"] = round(data.stat().st_size / 2**20, 1)
        results["fit_seconds"] = fit(data, args.fit_rows, args.epochs_scale, args.seed, model)
        detector = NFADetector.load(model)
        detector.score_kind = "student"
        export = detector.export_saved_model(folder / "serving")
        start = time.perf_counter()
        with (
            LocalCluster(
                n_workers=args.workers, threads_per_worker=1, processes=True,
                dashboard_address="127.0.0.1:0",  # local only, a free port
            ) as cluster,
            Client(cluster) as client,
        ):  # fmt: skip
            results["cluster_start_seconds"] = round(time.perf_counter() - start, 1)
            print("| round | scoring | rows/s | seconds |\n|---|---|---|---|", flush=True)
            for round_ in range(1, args.rounds + 1):
                for mode in ("single process", "dask"):
                    start = time.perf_counter()
                    if mode == "dask":
                        rows = score_with_dask(
                            export, data, folder / "scores", keep_columns=["id"], client=client,
                            chunk_rows=args.chunk_rows, partition_rows=args.partition_rows,
                        ).rows  # fmt: skip
                    else:
                        rows = score_file(
                            detector, data, folder / "scores.parquet", ["id"],
                            chunk_rows=args.chunk_rows, progress=False,
                        ).rows  # fmt: skip
                    seconds = time.perf_counter() - start
                    rate = round(rows / seconds)
                    runs = results.setdefault(mode, {"rows_per_second": [], "seconds": []})
                    runs["rows_per_second"].append(rate)
                    runs["seconds"].append(round(seconds, 2))
                    print(f"| {round_} | {mode} | {rate:,} | {seconds:.2f} |", flush=True)
    for mode in ("single process", "dask"):  # the first round is the warm-up
        median = statistics.median(results[mode]["rows_per_second"][1:])
        results[mode]["median_rows_per_second_after_first"] = round(median)
        print(f"{mode}: median {median:,.0f} rows/s over rounds 2 to {args.rounds}")
    results["load_average_after"] = round(os.getloadavg()[0], 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(args.out) as temporary:
        temporary.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
