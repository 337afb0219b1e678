"""A fit's random seeds, without changing the rest of the process's random numbers.

Keras draws the initial weights of layers built without a seed from its global seed, and
``keras.utils.set_random_seed`` sets that seed together with Python's, NumPy's and TensorFlow's
global ones. ``seeded`` sets them for a block (a fit) and puts every one back afterwards, so
code outside the fit draws the same numbers as if the fit had not run. Two fits running at once
in two threads still share these global seeds while they run: their weights are then not
reproducible, though each fit is correct.
"""

import contextlib
import random

import keras
import numpy as np
import tensorflow as tf
from keras.src.backend.common import global_state
from keras.src.random.seed_generator import GLOBAL_SEED_GENERATOR
from keras.src.utils.rng_utils import GLOBAL_RANDOM_SEED
from tensorflow.python.eager import context

__all__ = ["seeded"]


@contextlib.contextmanager
def seeded(seed: int | None):
    """Within the block, ``keras.utils.set_random_seed(seed)`` (nothing for ``None``); on
    leaving it, Python's and NumPy's random states and TensorFlow's and Keras' global seeds are
    restored."""
    if seed is None:
        yield
        return
    python_state, numpy_state = random.getstate(), np.random.get_state()
    tf_seed = context.global_seed()
    keras_seed = global_state.get_global_attribute(GLOBAL_RANDOM_SEED)
    keras_generator = global_state.get_global_attribute(GLOBAL_SEED_GENERATOR)
    keras.utils.set_random_seed(seed)
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        tf.random.set_seed(tf_seed)
        global_state.set_global_attribute(GLOBAL_RANDOM_SEED, keras_seed)
        global_state.set_global_attribute(GLOBAL_SEED_GENERATOR, keras_generator)
