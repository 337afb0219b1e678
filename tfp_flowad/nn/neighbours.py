"""Distance to the nearest of a fixed set of reference rows, as a Keras layer.

The combined score's neighbour term (``tfp_flowad.detector``): a non-parametric check beside the
flow's density, that scores in TensorFlow and so saves, loads and exports like the networks.
"""

import keras
import numpy as np
import tensorflow as tf

from tfp_flowad.nn.chunks import map_row_chunks

__all__ = ["NearestReference", "nearest_other_distances", "nearest_reference_network"]

#: distances computed at once (rows x references): bounds the ``[rows, references]`` matrix.
ELEMENTS_PER_CHUNK = 2**22
#: two rows are the same row when their squared distance is at most this share of
#: ``1 + ||x||^2`` (float32 round-off of the encoder, far below any real difference).
SAME_ROW_TOLERANCE = 1e-10


@keras.saving.register_keras_serializable(package="tfp_flowad")
class NearestReference(keras.layers.Layer):
    """``[batch, D] -> [batch]``: the distance from ``x`` to its nearest reference row ``r_j``
    once one reference equal to ``x`` (if any) is set aside: ``min ||x - r_j||`` over the
    others. A row that is a reference, and has no copy among them, so gets its distance to the
    nearest other reference; one with a copy, 0. Infinite (or NaN) for a row beyond float32's
    range.

    Setting the row itself aside scores the training rows (the references among them) like
    rows never seen, as for the k-nearest-neighbour detector's training scores (Ramaswamy et
    al. 2000).

    Computation: squared distances by ``||x||^2 - 2 x.r + ||r||^2`` (one matrix product per
    chunk of rows) pick the nearest reference ``r_i``; its distance is then recomputed as
    ``sum (x - r_i)^2``, which is exact for equal rows (the product form is not: round-off of
    order ``1e-7 ||x||^2``). Where ``x`` equals ``r_i``, the answer is ``r_i``'s own distance to
    its nearest other reference, ``nearest_other[i]``, computed once when the references are
    set (``nearest_reference_network``), so scoring needs no second pass.

    Args:
        num_references: number of reference rows (at least 2).
    """

    def __init__(self, num_references: int, **kwargs):
        super().__init__(**kwargs)
        if isinstance(num_references, bool) or int(num_references) < 2:
            raise ValueError(f"num_references must be at least 2; got {num_references!r}")
        self.num_references = int(num_references)

    def build(self, input_shape):
        def array(name, shape):
            return self.add_weight(name=name, shape=shape, initializer="zeros", trainable=False)

        self.references = array("references", (self.num_references, int(input_shape[-1])))
        self.nearest_other = array("nearest_other", (self.num_references,))

    def _chunk_distance(self, x, references, reference_norms):
        """``[rows, D] -> [rows]``, given the references and their squared norms."""
        x_norms = tf.reduce_sum(tf.square(x), axis=1)
        squared = (
            x_norms[:, None]
            - 2.0 * tf.matmul(x, references, transpose_b=True)
            + reference_norms[None, :]
        )
        nearest = tf.argmin(squared, axis=1, output_type=tf.int32)
        exact = tf.reduce_sum(tf.square(x - tf.gather(references, nearest)), axis=1)
        # A row too far off for float32 (an infinite norm) equals no reference.
        same = (exact <= SAME_ROW_TOLERANCE * (1.0 + x_norms)) & tf.math.is_finite(x_norms)
        return tf.where(same, tf.gather(self.nearest_other, nearest), tf.sqrt(exact))

    def call(self, x):
        references = tf.convert_to_tensor(self.references)
        reference_norms = tf.reduce_sum(tf.square(references), axis=1)  # once, not per chunk
        rows_per_chunk = max(1, ELEMENTS_PER_CHUNK // self.num_references)
        return map_row_chunks(
            lambda chunk: self._chunk_distance(chunk, references, reference_norms),
            tf.cast(x, "float32"),
            rows_per_chunk,
        )

    def compute_output_shape(self, input_shape):
        return (input_shape[0],)

    def get_config(self):
        config = super().get_config()
        config.update(num_references=self.num_references)
        return config


def nearest_other_distances(references: np.ndarray) -> np.ndarray:
    """``[m]``: each reference row's distance to its nearest other reference row (float64; 0
    for a row with a copy)."""
    references = np.asarray(references, dtype=np.float64)
    norms = np.sum(references**2, axis=1)
    nearest = np.empty(len(references))
    for start in range(0, len(references), 1024):
        block = references[start : start + 1024]
        squared = norms[start : start + len(block), None] - 2 * block @ references.T + norms
        squared[np.arange(len(block)), np.arange(start, start + len(block))] = np.inf
        nearest[start : start + len(block)] = np.sqrt(np.maximum(squared.min(axis=1), 0.0))
    return nearest


def nearest_reference_network(references: np.ndarray, name: str = "neighbours") -> keras.Model:
    """A Keras model ``[batch, D] -> [batch]`` holding ``references`` (``[m, D]``, m >= 2):
    each row's distance to its nearest reference row other than itself (``NearestReference``)."""
    references = np.asarray(references, dtype=np.float32)
    if references.ndim != 2:
        raise ValueError(f"references must be a 2-d array; got shape {references.shape}")
    layer = NearestReference(len(references))
    network = keras.Sequential([keras.Input((references.shape[1],)), layer], name=name)
    layer.set_weights([references, nearest_other_distances(references).astype(np.float32)])
    return network
