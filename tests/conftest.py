"""Shared fixtures: quiet TensorFlow, CPU only, small data."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

#: settings of an ``NFADetector`` fit that takes seconds, for the tests of everything around the
#: math (inputs, files, persistence, the scikit-learn contract): ``NFADetector(**TINY_FIT)``.
TINY_FIT = dict(
    flow_layers=2,
    flow_hidden_units=(8, 8),
    flow_epochs=1,
    flow_min_steps=0,
    distillation_steps=10,
    classifier_hidden_units=(8,),
    classifier_epochs=2,
    classifier_min_steps=0,
    student_steps=20,
    neighbour_rows=32,
    batch_size=128,
    classifier_model="mlp",
    random_state=0,
)


@pytest.fixture(scope="session")
def moons():
    """Standardised two-moons rows: (train [2000, 2], test [1000, 2]) float32."""
    from sklearn.datasets import make_moons

    x = make_moons(3000, noise=0.08, random_state=0)[0].astype(np.float32)
    x = (x - x.mean(0)) / x.std(0)
    return x[:2000], x[2000:]
