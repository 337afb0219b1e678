"""The benchmark runner on a tiny ADBench set: records, re-runs, tables, plots, the command, and
the research ablations of ``benchmarks/ablations.py`` run through it."""

import argparse
import contextlib
import importlib.util
import io
import json
from pathlib import Path

import pytest

from tfp_flowad.benchmark import (
    BASELINE_METHODS,
    METHODS,
    NF_METHODS,
    NFMethod,
    Size,
    add_benchmark_parser,
    benchmark_tasks,
    load_results,
    parse_methods,
    parse_seeds,
    render_standings,
    render_table,
    run,
)
from tfp_flowad.benchmark import records as records_module
from tfp_flowad.benchmark.methods import MethodTable
from tfp_flowad.datasets import adbench_paths
from tfp_flowad.detector import DENSITY_TEMPERATURES

DATASET = "38_thyroid"
#: 300 normal training rows and about 1/20 of every training length: seconds per fit.
TINY = Size(max_train_rows=300, epochs_scale=0.05)
BASELINE_RUN = dict(methods="deep-svdd-oc,two-class", tasks="one-class,25%")
#: one NFADetector fit, recorded twice (default score and classifier score).
FLOW_RUN = dict(methods="normalising-flow,normalising-flow-classifier", tasks="25%")


def _load_ablations():
    """``benchmarks/ablations.py`` (a script outside the package) as a module."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "ablations.py"
    spec = importlib.util.spec_from_file_location("ablations", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ablations = _load_ablations()
ABLATIONS = ablations.ABLATIONS


def _lines(out_dir) -> list[str]:
    return (out_dir / "results.jsonl").read_text().splitlines()


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """``(out_dir, progress text)`` after a baseline run and a normalising-flow run."""
    out_dir = tmp_path_factory.mktemp("benchmark")
    run(DATASET, seeds="0", out_dir=out_dir, size=TINY, progress=False, **BASELINE_RUN)
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):
        run(DATASET, seeds=[0], out_dir=out_dir, size=TINY, progress=True, **FLOW_RUN)
    return out_dir, shown.getvalue()


def test_one_json_line_per_fit(finished):
    out_dir, _ = finished
    records = [json.loads(line) for line in _lines(out_dir)]
    assert [(r["task"], r["method"]) for r in records] == [
        ("one-class", "deep-svdd-oc"),  # one-class methods: one-class task only
        ("25%", "two-class"),  # two-class methods: not on the one-class task
        ("25%", "normalising-flow"),
        ("25%", "normalising-flow-classifier"),
    ]
    for record in records:
        assert record["dataset"] == DATASET and record["seed"] == 0
        assert 0.0 <= record["roc_auc"] <= 1.0
        assert record["fit_seconds"] > 0 and record["score_rows_per_second"] > 0
        assert record["n_train"] - record["n_known"] == 300  # normal rows cut to max_train_rows
        assert record["params"]["random_state"] == 0
        assert record["size"] == {"max_train_rows": 300, "epochs_scale": 0.05}
        assert "unseen_auc" not in record  # only KDD-99 tasks have that test set
    assert records[0]["n_known"] == 0 and records[1]["n_known"] > 0
    assert records[1]["params"]["epochs"] == 1  # 10 epochs * 0.05, at least 1
    flow, classifier = records[2], records[3]
    assert flow["params"]["flow_epochs"] == 1 and flow["params"]["classifier_epochs"] == 1
    assert flow["params"]["distillation_steps"] < 30
    assert classifier["params"]["score_kind"] == "classifier"
    assert flow["fit_seconds"] == classifier["fit_seconds"]  # one fit, two records
    assert flow["shared_fit"] == classifier["shared_fit"]
    assert set(flow["stage_seconds"]) >= {"flow", "classifier"}
    assert flow["fitted"]["density_scale"] == 1.0  # too few known anomalies to choose it
    assert flow["fitted"]["density_temperature"] in (1.0, *DENSITY_TEMPERATURES)
    assert 0.0 <= flow["fitted"]["density_auc"] <= 1.0


def test_benchmark_tasks_are_the_fitted_ones(finished):
    out_dir, _ = finished
    records = [json.loads(line) for line in _lines(out_dir)]
    tasks = list(benchmark_tasks(DATASET, "0-1", "one-class,25%", TINY))
    assert [(t.seed, t.name) for t in tasks] == [
        (0, "one-class"),
        (0, "25%"),
        (1, "one-class"),
        (1, "25%"),
    ]
    fitted = {(r["task"], r["seed"]): (r["n_train"], r["n_known"], r["n_test"]) for r in records}
    for task in tasks[:2]:
        assert fitted[(task.name, 0)] == (len(task.y_train), task.n_known, len(task.y_test))
    assert all(len(t.y_train) - t.n_known == 300 for t in tasks)


def test_progress_is_one_plain_line_per_fit(finished):
    _, shown = finished
    lines = shown.strip().splitlines()
    assert lines[0].startswith(f"[1/2] {DATASET} 25% normalising-flow seed 0 ... ")
    assert lines[0].split(" ... ")[1].split(" (")[0].replace(".", "").isdigit()
    assert lines[1].startswith(f"[2/2] {DATASET} 25% normalising-flow-classifier seed 0 ... ")
    assert "(shared fit)" in lines[1]


def test_rerun_skips_finished_fits(finished, monkeypatch):
    out_dir, _ = finished
    before = _lines(out_dir)

    def no_fit(*args, **kwargs):
        raise AssertionError("a finished fit was run again")

    monkeypatch.setattr(MethodTable, "make_detector", no_fit)
    records = run(DATASET, seeds="0", out_dir=out_dir, size=TINY, progress=False, **BASELINE_RUN)
    run(DATASET, seeds="0", out_dir=out_dir, size=TINY, progress=False, **FLOW_RUN)
    assert _lines(out_dir) == before
    assert len(records) == 4  # every record of the data set, the earlier ones included


def test_table_has_methods_by_tasks(finished):
    out_dir, _ = finished
    table = render_table(load_results(out_dir), DATASET)
    lines = table.strip().splitlines()
    assert lines[0] == "| method | one-class | 25% |"
    rows = {line.split(" | ")[0].lstrip("| "): line for line in lines[2:]}
    assert list(rows) == [
        "two-class",
        "deep-svdd-oc",
        "normalising-flow",
        "normalising-flow-classifier",
    ]
    assert rows["deep-svdd-oc"].endswith("| – |")  # not run on the 25% task
    assert "±" in rows["normalising-flow"]
    # The path of the .npz file names the same data set as its stem.
    assert render_table(out_dir, str(adbench_paths()[DATASET])) == table


def test_command_writes_table_and_plot(finished):
    out_dir, _ = finished
    before = _lines(out_dir)
    parser = argparse.ArgumentParser(prog="tfp-flowad")
    add_benchmark_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        ["benchmark", "--dataset", DATASET, "--methods", "deep-svdd-oc", "--seeds", "0-0"]
        + ["--out", str(out_dir), "--tasks", "one-class", "--max-train-rows", "300"]
        + ["--epochs-scale", "0.05", "--no-progress"]
    )
    args.run(args)
    assert _lines(out_dir) == before  # all finished: nothing fitted
    table = (out_dir / "table.md").read_text()
    for method in ("two-class", "deep-svdd-oc", "normalising-flow", "normalising-flow-classifier"):
        assert f"| {method} |" in table
    assert "ROC AUC" in table and "fit seconds" in table
    assert (out_dir / "auc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_failed_fit_keeps_the_others(tmp_path, monkeypatch):
    make_detector = MethodTable.make_detector

    def failing(table, method, seed, epochs_scale=1.0):
        if method == "two-class":
            raise RuntimeError("boom")
        return make_detector(table, method, seed, epochs_scale)

    monkeypatch.setattr(MethodTable, "make_detector", failing)
    with pytest.raises(RuntimeError, match=r"1 fits failed: 38_thyroid 25% two-class seed 0"):
        run(DATASET, seeds="0", out_dir=tmp_path, size=TINY, progress=False, **BASELINE_RUN)
    assert [r["method"] for r in load_results(tmp_path)] == ["deep-svdd-oc"]


def test_cut_off_last_line_is_skipped_and_mended(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text('{"dataset": "x", "task": "one-class"}\n{"dataset": "x", "ta')
    assert load_results(tmp_path) == [{"dataset": "x", "task": "one-class"}]
    records_module.append_record(path, {"dataset": "x", "task": "k=1"})
    assert [r["task"] for r in load_results(path)] == ["one-class", "k=1"]


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (dict(methods="two-class,nonsense-method"), "nonsense-method"),
        (dict(dataset="no-such-dataset"), "no-such-dataset"),
        (dict(dataset="/nowhere/missing.npz"), "/nowhere/missing.npz"),
        (dict(tasks="one-class,k=2"), "k=2"),
        (dict(seeds="0-x"), "0-x"),
        (dict(size={"max_train_rows": 0}), "max_train_rows"),
        (dict(size={"epochs_scale": -1.0}), "epochs_scale"),
        (dict(extra_methods={"normalising-flow": NFMethod()}), "normalising-flow"),
        (dict(extra_methods={"nf-x": NFMethod(overrides=(("no_such", 1),))}), "no_such"),
        (dict(extra_methods={"nf-x": {"flow": "planar"}}), "nf-x"),
    ],
)
def test_bad_arguments_are_named_before_any_fit(tmp_path, call, named):
    arguments = dict(dataset=DATASET, methods="two-class", seeds="0", out_dir=tmp_path)
    arguments.update(call)
    error = FileNotFoundError if named.endswith(".npz") else ValueError
    with pytest.raises(error, match=named):
        run(**arguments, progress=False)
    assert not (tmp_path / "results.jsonl").exists()


def test_method_and_seed_parsing():
    from tfp_flowad.baselines import BASELINES

    assert tuple(BASELINES) == BASELINE_METHODS
    assert parse_methods("all") == list(METHODS)
    assert parse_methods("baselines") == list(BASELINE_METHODS)
    assert parse_methods("nf") == list(NF_METHODS)
    assert parse_methods("nf")[0] == "normalising-flow"
    chosen = parse_methods(["nf-planar", "two-class", "two-class"], ABLATIONS)
    assert chosen == ["two-class", "nf-planar"]
    assert parse_methods("nf", ABLATIONS) == list(NF_METHODS) + list(ABLATIONS)
    assert parse_methods("all", ABLATIONS) == list(METHODS) + list(ABLATIONS)
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("3,0-1") == [0, 1, 3]
    # nf-temperature differs from the default only with known anomalies: no one-class fit.
    table = MethodTable(ABLATIONS)
    assert table.applies("nf-temperature", "25%")
    assert not table.applies("nf-temperature", "one-class")
    assert table.applies("normalising-flow", "one-class")
    assert table.make_detector("nf-temperature", 0).density_temperature == "auto"


def test_epochs_scale_reaches_every_training_length():
    table = MethodTable(ABLATIONS)
    assert table.make_detector("rae-oc", 0, 0.25).epochs == 2  # round(10 * 0.25)
    semi = table.make_detector("semi-supervised", 0, 0.25)
    assert (semi.epochs, semi.autoencoder_epochs) == (2, 1)
    flow = table.make_detector("nf-planar", 3, 0.25)
    assert flow.flow == "planar" and flow.random_state == 3
    default = table.make_detector("normalising-flow", 0)
    assert flow.distillation_steps == max(1, round(default.distillation_steps * 0.25))
    assert flow.student_steps == round(default.student_steps * 0.25)
    no_jacobian = table.make_detector("nf-no-jacobian", 0, 0.25)
    assert no_jacobian.flow_jacobian_penalty == 0.0 and no_jacobian.neighbour_rows == 0


def test_the_package_does_not_define_the_ablations():
    assert ABLATIONS and not set(ABLATIONS) & set(METHODS)
    for name in ("nf-no-jacobian", "nf-no-neighbours", "nf-planar"):
        assert name in ABLATIONS
        with pytest.raises(ValueError, match=name):
            parse_methods(name)


def test_the_ablation_script_runs_through_the_runner(finished, tmp_path):
    """One tiny ablation fit from the script's command line: a record like the runner's own."""
    reference = next(r for r in load_results(finished[0]) if r["method"] == "normalising-flow")
    ablations.main(
        ["--dataset", DATASET, "--methods", "nf-no-jacobian", "--seeds", "0", "--out"]
        + [str(tmp_path), "--tasks", "25%", "--max-train-rows", "300"]
        + ["--epochs-scale", "0.05", "--no-progress"]
    )
    records = load_results(tmp_path)
    assert [(r["task"], r["method"]) for r in records] == [("25%", "nf-no-jacobian")]
    ablation = records[0]
    assert set(ablation) == set(reference) - {"shared_fit"}
    assert ablation["params"]["flow_jacobian_penalty"] == 0.0
    assert ablation["params"]["neighbour_rows"] == 0
    assert ablation["n_train"] == reference["n_train"]  # the same split and size
    assert 0.0 <= ablation["roc_auc"] <= 1.0
    assert "| nf-no-jacobian |" in (tmp_path / "table.md").read_text()


def test_standings_put_the_default_beside_the_best_of_each_family():
    def record(task, method, seed, auc):
        return {"dataset": "toy", "task": task, "method": method, "seed": seed, "roc_auc": auc}

    records = [
        record("one-class", "normalising-flow", 0, 0.90),
        record("one-class", "normalising-flow", 1, 0.80),
        record("one-class", "nf-radial", 0, 0.95),
        record("one-class", "rae-oc", 0, 0.70),
        record("one-class", "deep-svdd-oc", 0, 0.86),
        record("one-class", "knn-oc", 0, 0.84),
        record("25%", "normalising-flow", 0, 0.99),
        record("25%", "xgbod", 0, 0.995),
        record("25%", "two-class", 0, 0.98),
        record("other", "rae-oc", 0, 0.5),  # another data set's name: not shown
    ]
    records[-1]["dataset"] = "elsewhere"
    lines = render_standings(records, ["toy"]).splitlines()
    assert lines[0].startswith("| data set | task | default | best `nf-` option")
    assert lines[2] == (
        "| toy | one-class | 0.8500 | nf-radial 0.9500 | deep-svdd-oc 0.8600 | knn-oc 0.8400 "
        "| -0.0100 |"
    )
    assert lines[3] == "| toy | 25% | 0.9900 | – | two-class 0.9800 | xgbod 0.9950 | -0.0050 |"
    assert len(lines) == 4
