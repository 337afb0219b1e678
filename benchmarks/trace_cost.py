"""Where a default fit's time goes: tracing, first runs of the traced functions, their later
runs, and the rest (Keras' loop and callbacks, numpy, eager calls).

For each case of ``benchmarks/fit_cost.py`` (``--cases``, default ``300,5000,kdd99``), fits the
default ``NFADetector`` (seed 0) once in this process and times, while it fits:

* every trace of a ``tf.function`` (TensorFlow building its graph from the Python code; only
  the outermost trace counts, the functions it traces inside are part of it);
* every run of a traced function called from Python, the first run of each apart: the first
  also optimises and instantiates its graph;
* each stage of ``fit_seconds_``.

A stage's rest is its seconds less its tracing and its runs: Python's time between the calls,
and any time the machine gave to other work (a busy or stalled machine shows here);
``between stages`` is what the fit does outside them (encoding the rows, the density's scores
of the training rows, the training scores of every kind). The timings hook two functions of
TensorFlow's internals (``func_graph_from_py_func`` and ``AtomicFunction.call_flat``); they
time the real calls and change nothing else.

Usage::

    python benchmarks/trace_cost.py [--cases 300,5000,kdd99]

writes ``benchmarks/results/trace_cost.json`` (one entry per case) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from fit_cost import case_rows
from tensorflow.python.eager.polymorphic_function import atomic_function
from tensorflow.python.framework import func_graph

from tfp_flowad import NFADetector
from tfp_flowad.benchmark.records import write_whole

RESULTS = Path(__file__).parent / "results" / "trace_cost.json"

#: what each stage's seconds are split into.
PARTS = ("tracing", "first runs", "later runs", "rest")


class Timeline:
    """Intervals ``(start, end)`` of traces and runs, recorded by hooks on TensorFlow."""

    def __init__(self):
        self.traces, self.first_runs, self.later_runs = [], [], []
        self._depth, self._seen = 0, set()

    def hook(self) -> None:
        trace, call = func_graph.func_graph_from_py_func, atomic_function.AtomicFunction.call_flat

        def timed_trace(*args, **kwargs):
            self._depth += 1
            start = time.perf_counter()
            try:
                return trace(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.traces.append((start, time.perf_counter()))

        def timed_call(function, *args, **kwargs):
            if self._depth:  # a call inside a trace only adds an operation to its graph
                return call(function, *args, **kwargs)
            start = time.perf_counter()
            result = call(function, *args, **kwargs)
            first = function.name not in self._seen  # a name is given once in a process
            self._seen.add(function.name)
            (self.first_runs if first else self.later_runs).append((start, time.perf_counter()))
            return result

        func_graph.func_graph_from_py_func = timed_trace
        atomic_function.AtomicFunction.call_flat = timed_call


def seconds_within(intervals, start: float, end: float) -> float:
    """The seconds of ``intervals`` inside ``[start, end]``."""
    return sum(max(0.0, min(b, end) - max(a, start)) for a, b in intervals)


def measure(case: str, timeline: Timeline) -> dict:
    X, y, _, _ = case_rows(case)
    detector = NFADetector(random_state=0)
    stage_times = {}
    timed = detector._timed

    def timed_stage(stage, function, *args, **kwargs):
        start = time.perf_counter()
        try:
            return timed(stage, function, *args, **kwargs)
        finally:
            stage_times[stage] = (start, time.perf_counter())

    detector._timed = timed_stage
    load_average = os.getloadavg()[0]
    start = time.perf_counter()
    detector.fit(X, y)
    end = time.perf_counter()
    kinds = {
        "tracing": timeline.traces,
        "first runs": timeline.first_runs,
        "later runs": timeline.later_runs,
    }

    def split(a: float, b: float) -> dict:
        parts = {name: seconds_within(kinds[name], a, b) for name in PARTS[:-1]}
        return {"seconds": b - a, **parts, "rest": b - a - sum(parts.values())}

    stages = {stage: split(a, b) for stage, (a, b) in stage_times.items()}
    whole = split(start, end)
    stages["between stages"] = {
        key: whole[key] - sum(s[key] for s in stages.values()) for key in ("seconds", *PARTS)
    }

    def rounded(parts: dict) -> dict:
        return {key: round(max(value, 0.0), 2) for key, value in parts.items()}

    return {
        "train_rows": int(len(y)),
        "known": int(sum(y)),
        "load_average": round(load_average, 2),
        "fit": rounded(whole),
        "stages": {stage: rounded(parts) for stage, parts in stages.items()},
    }


def show(case: str, entry: dict) -> None:
    print(f"{case}: {entry['train_rows']:,} rows, fit {entry['fit']['seconds']:.1f} s")
    print(f"  {'stage':16s}" + "".join(f"{name:>12s}" for name in ("seconds", *PARTS)))
    for stage, parts in {**entry["stages"], "whole fit": entry["fit"]}.items():
        print(f"  {stage:16s}" + "".join(f"{parts[k]:12.2f}" for k in ("seconds", *PARTS)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="300,5000,kdd99")
    args = parser.parse_args(argv)
    timeline = Timeline()
    timeline.hook()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for case in args.cases.split(","):
        entry = measure(case, timeline)
        show(case, entry)
        results[case] = entry
        write_whole(RESULTS, json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
