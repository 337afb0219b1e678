"""Training under tf.distribute: MirroredStrategy on two logical CPU devices and
MultiWorkerMirroredStrategy across two local processes (tfp_flowad.training.distribute).

Each case runs in a fresh process: logical devices and a multi-worker strategy must be set up
before TensorFlow initialises.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from conftest import TINY_FIT

#: the code each process runs: ``python -c WORKER <case> <json settings>``; prints one JSON line.
WORKER = r"""
import contextlib, json, sys
import numpy as np
import tensorflow as tf

case, settings = sys.argv[1], json.loads(sys.argv[2])
if case == "multi-worker":
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
else:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

import keras
from tfp_flowad import NFADetector
from tfp_flowad.flows import FLOWS
from tfp_flowad.training import distribute

out = {"replicas": strategy.num_replicas_in_sync}
rng = np.random.default_rng(0)
X = rng.normal(size=(600, 4)).astype("float32")
test = np.concatenate([rng.normal(size=(40, 4)), np.full((5, 4), 8.0)]).astype("float32")

if case == "mirrored":
    # One step of a flow on one batch, on one device and on two replicas, from equal weights.
    batch = tf.data.Dataset.from_tensors(X[:64]).repeat(3)

    def one_step(clip):
        flows = []
        for scope in (None, strategy):
            with scope.scope() if scope else contextlib.nullcontext():
                flow = FLOWS["maf"](4, num_layers=2, hidden_units=(8, 8), seed=0)
                flow.compile(optimizer=keras.optimizers.SGD(1.0 if clip else 0.05, global_clipnorm=clip))
            flows.append(flow)
        flows[1].set_weights(flows[0].get_weights())
        logs = [flow.fit(batch, epochs=1, verbose=0).history["nll"][-1] for flow in flows]
        gaps = [np.abs(a - b).max() for a, b in zip(*(f.get_weights() for f in flows))]
        return {"weight_gap": float(max(gaps)), "logged": [float(v) for v in logs]}

    out["free"] = one_step(None)
    out["clipped"] = one_step(1e-3)

    # Random draws inside replicas differ between replicas, and each replica draws its share.
    with strategy.scope():
        flow = FLOWS["maf"](4, num_layers=2, hidden_units=(8, 8), seed=0)

    @tf.function
    def draw():
        return strategy.run(lambda: flow.sample_base(distribute.replica_rows(6)))

    local = [v.numpy() for v in strategy.experimental_local_results(draw())]
    out["draw_shapes"] = [list(v.shape) for v in local]
    out["draws_differ"] = bool(np.abs(local[0] - local[1]).min() > 0)

with strategy.scope():
    detector = NFADetector(**settings["fit"]).fit(X)
networks = [detector.flow_, detector.sampler_flow_, detector.classifier_, detector.student_]
out["finite"] = all(np.isfinite(w).all() for n in networks for w in n.get_weights())
out["scores"] = {k: v.tolist() for k, v in detector.anomaly_scores(test).items()}
out["decision"] = detector.decision_function(test).tolist()
if distribute.is_chief(strategy) and settings.get("save"):
    loaded = NFADetector.load(detector.save(settings["save"] + "/model"))
    out["loaded"] = loaded.decision_function(test).tolist()
    served = tf.saved_model.load(str(detector.export_saved_model(settings["save"] + "/serving")))
    names = detector.feature_names_in_
    inputs = {str(name): tf.constant(test[:, i]) for i, name in enumerate(names)}
    out["served"] = served.signatures["serving_default"](**inputs)["anomaly_score"].numpy().tolist()
print(json.dumps(out))
"""


#: ``TINY_FIT`` with fewer steps: two processes share the machine's cores.
SHORTER_FIT = {**TINY_FIT, "classifier_epochs": 1, "distillation_steps": 4, "student_steps": 5}


def run_worker(case: str, settings: dict, env=None, timeout=240) -> subprocess.Popen:
    environment = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
    environment.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, case, json.dumps(settings)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )


def result(process: subprocess.Popen, timeout=240) -> dict:
    stdout, stderr = process.communicate(timeout=timeout)
    assert process.returncode == 0, stderr[-3000:]
    return json.loads(stdout.strip().splitlines()[-1])


def assert_separates(out: dict) -> None:
    """Finite weights; the five far rows score above every normal one on the density and the
    combined score."""
    assert out["finite"]
    for kind in ("density", "combined"):
        scores = np.asarray(out["scores"][kind])
        assert np.isfinite(scores).all()
        assert scores[40:].min() > scores[:40].max(), kind


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory):
    """One process on two logical CPU devices: single steps, then a tiny fit, saved and exported."""
    folder = tmp_path_factory.mktemp("mirrored")
    return result(run_worker("mirrored", {"fit": TINY_FIT, "save": str(folder)}))


def test_a_step_on_two_replicas_is_the_step_on_one_device(mirrored):
    """The global batch's mean loss and gradient, clipped as on one device (a clip of 1e-3
    binds: Keras alone would clip each replica's part); replicas draw different samples."""
    out = mirrored
    assert out["replicas"] == 2
    for case in ("free", "clipped"):
        assert out[case]["weight_gap"] < 1e-6, out[case]
        one, two = out[case]["logged"]
        assert abs(one - two) < 1e-4 * max(1.0, abs(one)), out[case]
    assert out["draw_shapes"] == [[3, 4], [3, 4]]
    assert out["draws_differ"]


def test_tiny_fit_under_mirrored_strategy_scores_saves_and_exports(mirrored):
    out = mirrored
    assert out["replicas"] == 2
    assert_separates(out)
    np.testing.assert_allclose(out["loaded"], out["decision"], atol=1e-6)
    np.testing.assert_allclose(out["served"], out["decision"], atol=1e-5)


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_tiny_fit_under_multi_worker_strategy_on_two_processes(tmp_path):
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(2)]}
    workers = [
        run_worker(
            "multi-worker",
            {"fit": SHORTER_FIT, "save": str(tmp_path / f"worker{index}")},
            env={
                "TF_CONFIG": json.dumps(
                    {"cluster": cluster, "task": {"type": "worker", "index": index}}
                )
            },
        )
        for index in range(2)
    ]
    chief, other = [result(worker, timeout=280) for worker in workers]
    assert chief["replicas"] == other["replicas"] == 2
    assert_separates(chief)
    assert_separates(other)
    # The workers hold the same (mirrored) weights, so they score alike; only the chief saves.
    np.testing.assert_allclose(other["decision"], chief["decision"], atol=1e-6)
    np.testing.assert_allclose(chief["loaded"], chief["decision"], atol=1e-6)
    np.testing.assert_allclose(chief["served"], chief["decision"], atol=1e-5)
    assert "loaded" not in other and not (tmp_path / "worker1").exists()
