"""Shared fixtures: quiet TensorFlow, CPU only, small data."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def moons():
    """Standardised two-moons rows: (train [2000, 2], test [1000, 2]) float32."""
    from sklearn.datasets import make_moons

    x = make_moons(3000, noise=0.08, random_state=0)[0].astype(np.float32)
    x = (x - x.mean(0)) / x.std(0)
    return x[:2000], x[2000:]
