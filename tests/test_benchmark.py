"""The benchmark runner on a tiny ADBench set: records, re-runs, tables, plots, the command, the
development suite, the tables across data sets, the research ablations of
``benchmarks/ablations.py`` run through it, and ``benchmarks/update_results_doc.py --check``."""

import argparse
import contextlib
import importlib.util
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tfp_flowad.benchmark import (
    BASELINE_METHODS,
    METHODS,
    NF_METHODS,
    STANDINGS_HEADING,
    NFMethod,
    Size,
    add_benchmark_parser,
    benchmark_tasks,
    load_results,
    parse_methods,
    parse_seeds,
    plot,
    render_standings,
    render_suite_standings,
    render_table,
    run,
)
from tfp_flowad.benchmark import records as records_module
from tfp_flowad.benchmark.methods import MethodTable
from tfp_flowad.benchmark.standings import render_differences, render_head_to_head
from tfp_flowad.benchmark.tasks import (
    is_one_class_task,
    resolve_dataset,
    task_group,
    task_order_key,
)
from tfp_flowad.datasets import DEV_SUITE_TASKS, adbench_paths, dev_suite_tasks

ROOT = Path(__file__).resolve().parents[1]

DATASET = "38_thyroid"
#: 300 normal training rows and about 1/20 of every training length: seconds per fit.
TINY = Size(max_train_rows=300, epochs_scale=0.05)
BASELINE_RUN = dict(methods="deep-svdd-oc,two-class", tasks="one-class,25%")
#: one NFADetector fit, recorded twice (default score and classifier score).
FLOW_RUN = dict(methods="normalising-flow,normalising-flow-classifier", tasks="25%")


def _load_ablations():
    """``benchmarks/ablations.py`` (a script outside the package) as a module."""
    path = ROOT / "benchmarks" / "ablations.py"
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
    assert "density_temperature" not in flow["fitted"]
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


def test_refresh_replaces_the_records_it_fits_again_in_place(finished, tmp_path):
    out_dir, _ = finished
    lines = _lines(out_dir)
    records = [json.loads(line) for line in lines]
    target = next(
        i for i, r in enumerate(records) if r["method"] == "two-class" and r["task"] == "25%"
    )
    records[target]["roc_auc"] = -1.0  # a stale record, as from code since changed
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    run(
        DATASET,
        methods="two-class",
        tasks="25%",
        seeds="0",
        out_dir=tmp_path,
        size=TINY,
        progress=False,
        refresh=True,
    )
    after = _lines(tmp_path)
    assert len(after) == len(lines)
    assert [line for i, line in enumerate(after) if i != target] == [
        line for i, line in enumerate(lines) if i != target
    ]
    refreshed = json.loads(after[target])
    assert (refreshed["method"], refreshed["task"], refreshed["seed"]) == ("two-class", "25%", 0)
    assert 0.0 <= refreshed["roc_auc"] <= 1.0


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


def test_cut_off_last_line_is_skipped_and_mended(tmp_path, capsys):
    path = tmp_path / "results.jsonl"
    path.write_text('{"dataset": "x", "task": "one-class"}\n{"dataset": "x", "ta')
    assert load_results(tmp_path) == [{"dataset": "x", "task": "one-class"}]
    assert f"{path}: line 2 is not a whole JSON record" in capsys.readouterr().err
    records_module.append_record(path, {"dataset": "x", "task": "k=1"})
    lines = path.read_text().splitlines()
    assert lines[1] == '{"dataset": "x", "ta' and json.loads(lines[2])["task"] == "k=1"
    assert [r["task"] for r in load_results(path)] == ["one-class", "k=1"]
    assert "line 2 is not a whole JSON record" in capsys.readouterr().err  # still passed over


def test_whole_lines_read_without_a_word(tmp_path, capsys):
    path = tmp_path / "results.jsonl"
    records_module.append_record(path, {"task": "one-class"})
    records_module.append_record(path, {"task": "5%"})
    assert [r["task"] for r in load_results(path)] == ["one-class", "5%"]
    assert capsys.readouterr().err == ""


def test_writes_are_whole_or_nothing(tmp_path, monkeypatch):
    """A write that fails leaves the previous file and no temporary file; a leftover of a killed
    write (a process that is gone) is swept by the next write into the folder."""
    from matplotlib.figure import Figure

    table = tmp_path / "table.md"
    records_module.write_whole(table, "old\n")
    records = [
        {"dataset": "toy", "task": task, "method": "knn-oc", "seed": 0, "roc_auc": auc}
        for task, auc in (("one-class", 0.9), ("n50", 0.8))
    ]
    target = plot(records, "toy", tmp_path / "auc.png")
    before = target.read_bytes()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    ).stdout.strip()
    leftover = tmp_path / f".auc.png.tfp_flowad-tmp-{dead}-{'0' * 16}.png"
    leftover.write_bytes(b"\x89PNG cut off")

    def cut_off(figure, path, **kwargs):
        Path(path).write_bytes(b"\x89PNG cut")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", cut_off)
    with pytest.raises(OSError, match="disk full"):
        plot(records, "toy", target)
    with pytest.raises(TypeError):
        records_module.write_whole(table, None)
    assert target.read_bytes() == before and table.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["auc.png", "table.md"]


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
    # nf-no-averaging differs from the default only with known anomalies: no one-class fit.
    table = MethodTable(ABLATIONS)
    assert table.applies("nf-no-averaging", "25%")
    assert not table.applies("nf-no-averaging", "one-class")
    assert table.applies("normalising-flow", "one-class")
    assert table.make_detector("nf-no-averaging", 0).classifier_averaging is None


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


def _toy(task, method, auc, seed=0, seconds=1.0):
    return {
        "dataset": "toy",
        "task": task,
        "method": method,
        "seed": seed,
        "roc_auc": auc,
        "fit_seconds": seconds,
    }


#: the default against kNN on four one-class tasks (one tie), XGBOD on one, and an option.
TOY = [
    _toy("one-class", "normalising-flow", 0.90, seed=0, seconds=2.0),
    _toy("one-class", "normalising-flow", 0.80, seed=1, seconds=2.0),
    _toy("one-class", "knn-oc", 0.84, seconds=0.5),
    _toy("one-class", "nf-no-neighbours", 0.86),
    _toy("25%", "normalising-flow", 0.99, seconds=2.0),
    _toy("25%", "xgbod", 0.995, seconds=3.0),
    _toy("n50", "normalising-flow", 0.70, seconds=2.0),
    _toy("n50", "knn-oc", 0.75, seconds=0.5),
    _toy("n50", "nf-no-neighbours", 0.70),
    _toy("synthetic-global", "normalising-flow", 1.0, seconds=2.0),
    _toy("synthetic-global", "knn-oc", 0.90, seconds=0.5),
    _toy("synthetic-global", "nf-no-neighbours", 0.95),
    _toy("literature-oc", "normalising-flow", 0.80, seconds=2.0),
    _toy("literature-oc", "knn-oc", 0.80, seconds=0.5),
]


def test_suite_standings_per_part_of_the_suite():
    lines = render_suite_standings(TOY).splitlines()
    assert lines[0].startswith("Each part of the suite: the mean ROC AUC of `normalising-flow` /")
    assert lines[2] == (
        "| against | protocol | small samples | synthetic | literature | won / lost / shared "
        "| fit s |"
    )
    assert lines[4:] == [
        "| knn-oc | 0.8500 / 0.8400 (1) | 0.7000 / 0.7500 (1) | 1.0000 / 0.9000 (1) "
        "| 0.8000 / 0.8000 (1) | 2 / 1 / 4 | 2.0 / 0.5 |",
        "| xgbod | 0.9900 / 0.9950 (1) | – | – | – | 0 / 1 / 1 | 2.0 / 3.0 |",
    ]
    # Options are compared when asked for; a data set not named is left out.
    only = render_suite_standings(TOY, ["toy"], methods=["nf-no-neighbours"]).splitlines()[4:]
    assert only == [
        "| nf-no-neighbours | 0.8500 / 0.8600 (1) | 0.7000 / 0.7000 (1) | 1.0000 / 0.9500 (1) "
        "| – | 1 / 1 / 3 | 2.0 / 1.0 |"
    ]
    assert len(render_suite_standings(TOY, ["elsewhere"]).splitlines()) == 4


def test_head_to_head_counts_the_tasks_each_is_ahead_on():
    lines = render_head_to_head(TOY, ["toy"]).splitlines()
    assert lines[2:] == [
        "| knn-oc | 4 | 2 | 1 | +0.0150 | toy n50 (-0.0500) |",
        "| xgbod | 1 | 0 | 1 | -0.0050 | toy 25% (-0.0050) |",
    ]


def test_differences_say_what_an_option_changes():
    pairs = [
        ("the neighbour term", "normalising-flow", "nf-no-neighbours"),
        ("on one-class", "normalising-flow", "nf-no-neighbours", lambda d, t: t == "one-class"),
        ("never run together", "xgbod", "knn-oc"),
    ]
    lines = render_differences(TOY, ["toy"], pairs).splitlines()
    # Seeds are paired: one-class compares seed 0 alone (0.90 - 0.86), not the mean of seeds 0
    # and 1 (0.85) against seed 0.
    assert lines[2:] == [
        "| the neighbour term | `normalising-flow` against `nf-no-neighbours` | 3 | +0.0300 | 2 "
        "| 0 | toy synthetic-global (+0.0500) | – |",
        "| on one-class | `normalising-flow` against `nf-no-neighbours` | 1 | +0.0400 | 1 | 0 | "
        "toy one-class (+0.0400) | – |",
    ]


# ------------------------------------------------------------------ the development suite
def test_dev_suite_task_names_and_filtering():
    dev = resolve_dataset(DATASET, "dev")
    assert dev.name == DATASET and dev.check_tasks(None) == list(DEV_SUITE_TASKS)
    assert dev.check_tasks(["synthetic-global", "n200", "one-class", "n200-5%"]) == [
        "one-class",
        "n200",
        "n200-5%",
        "synthetic-global",
    ]
    with pytest.raises(ValueError, match="'synthetic-odd' is not a task of 38_thyroid"):
        dev.check_tasks(["synthetic-odd"])
    protocol = resolve_dataset(DATASET)
    assert protocol.check_tasks(None) == ["one-class", "5%", "25%"]
    with pytest.raises(ValueError, match="'n200' is not a task of 38_thyroid"):
        protocol.check_tasks(["n200"])
    with pytest.raises(ValueError, match="unknown suite 'wide'"):
        resolve_dataset(DATASET, "wide")
    assert resolve_dataset("kdd99", "dev").default_tasks == resolve_dataset("kdd99").default_tasks
    # Table order: the protocol's tasks, small samples, synthetic kinds, the literature's task.
    assert sorted(reversed(DEV_SUITE_TASKS), key=task_order_key) == list(DEV_SUITE_TASKS)
    assert sorted(["k=8", "k=2", "one-class"], key=task_order_key) == ["one-class", "k=2", "k=8"]
    groups = [task_group(name) for name in DEV_SUITE_TASKS]
    assert groups == ["protocol"] * 3 + ["small samples"] * 7 + ["synthetic"] * 4 + ["literature"]
    one_class = [name for name in DEV_SUITE_TASKS if is_one_class_task(name)]
    assert one_class == ["one-class", "n50", "n200", "n1000", *DEV_SUITE_TASKS[-5:]]


def test_one_class_methods_run_on_every_task_without_known_anomalies():
    table = MethodTable(ABLATIONS)
    for task in ("n50", "n1000", "synthetic-local", "literature-oc"):
        assert table.applies("knn-oc", task) and not table.applies("two-class", task)
        assert not table.applies("nf-no-averaging", task)
    for task in ("n200-5%", "n1000-25%"):
        assert table.applies("two-class", task) and not table.applies("knn-oc", task)
        assert table.applies("nf-no-averaging", task)


def test_a_smaller_training_set_leaves_the_test_sets_whole():
    names = ["synthetic-global", "literature-oc", "n1000"]
    whole = dev_suite_tasks(DATASET, 0, names)
    shrunk = list(benchmark_tasks(DATASET, 0, names, TINY, suite="dev"))
    assert [t.name for t in shrunk] == ["n1000", "synthetic-global", "literature-oc"]
    for task in shrunk:
        full = next(t for t in whole if t.name == task.name)
        assert len(task.y_train) == 300 < len(full.y_train)
        np.testing.assert_array_equal(task.X_test, full.X_test)
        np.testing.assert_array_equal(task.y_test, full.y_test)


def test_the_command_runs_the_dev_suite_and_prints_the_standings(tmp_path):
    parser = argparse.ArgumentParser(prog="tfp-flowad")
    add_benchmark_parser(parser.add_subparsers(dest="command", required=True))
    argv = ["benchmark", "--dataset", DATASET, "--suite", "dev", "--tasks", "n200-5%,n50"]
    argv += ["--methods", "normalising-flow,knn-oc,two-class", "--seeds", "0"]
    argv += ["--out", str(tmp_path), "--max-train-rows", "300", "--epochs-scale", "0.05"]
    args = parser.parse_args(argv)
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):
        args.run(args)
    records = load_results(tmp_path)
    assert [(r["task"], r["method"]) for r in records] == [
        ("n50", "knn-oc"),
        ("n50", "normalising-flow"),
        ("n200-5%", "two-class"),
        ("n200-5%", "normalising-flow"),
    ]
    assert [r["n_train"] - r["n_known"] for r in records] == [50, 50, 200, 200]
    assert records[2]["n_known"] >= 1 and all(0 <= r["roc_auc"] <= 1 for r in records)
    table = (tmp_path / "table.md").read_text()
    assert table.endswith(render_suite_standings(records, [DATASET]))
    assert f"\n{STANDINGS_HEADING}\n" in table and table in shown.getvalue()
    standings = table.split(STANDINGS_HEADING)[1]
    assert "| knn-oc | – | " in standings and "| two-class | – | " in standings
    # The same command again: every fit is recorded, nothing is fitted again.
    args = parser.parse_args(argv + ["--no-progress"])
    args.run(args)
    assert load_results(tmp_path) == records


def test_a_task_the_set_is_too_small_for_is_named(tmp_path):
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(size=(600, 3)), rng.normal(4.0, 1.0, size=(40, 3))]
    y = np.r_[np.zeros(600, int), np.ones(40, int)]
    np.savez(tmp_path / "small.npz", X=X, y=y)
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown), pytest.warns(UserWarning, match="1000 normal rows"):
        run(tmp_path / "small.npz", "knn-oc", 0, tmp_path / "out", "n50,n1000", suite="dev")
    assert "small seed 0: no task n1000 on this data set" in shown.getvalue()
    assert [r["task"] for r in load_results(tmp_path / "out")] == ["n50"]


def test_results_doc_is_what_the_committed_records_give():
    """``docs/RESULTS.md`` and the README's results table match ``benchmarks/results/``."""
    check = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "update_results_doc.py"), "--check"],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert check.returncode == 0, check.stderr[-2000:]
