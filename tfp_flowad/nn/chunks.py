"""Row-chunked evaluation for layers whose intermediates grow with rows times a large width."""

import tensorflow as tf

__all__ = ["map_row_chunks"]


def map_row_chunks(chunk_fn, x: tf.Tensor, rows_per_chunk: int) -> tf.Tensor:
    """``chunk_fn`` (``[rows, D] -> [rows]``) over ``x`` (``[n, D]``) in equal chunks of at most
    ``rows_per_chunk`` rows, concatenated to ``[n]``.

    The chunks run one after another (``tf.map_fn``), so memory stays bounded for any batch;
    the last chunk is padded with zero rows (less than one row per chunk), whose outputs are
    dropped.
    """
    rows = tf.shape(x)[0]
    chunks = tf.maximum(-(-rows // rows_per_chunk), 1)
    chunk_rows = -(-rows // chunks)  # equal chunks: less than one row of padding each
    padded = tf.pad(x, [[0, chunks * chunk_rows - rows], [0, 0]])
    outputs = tf.map_fn(
        chunk_fn,
        tf.reshape(padded, [chunks, chunk_rows, tf.shape(x)[1]]),
        fn_output_signature=tf.TensorSpec([None], x.dtype),
    )
    return tf.reshape(outputs, [-1])[:rows]
