"""The flow's held-out NLL after every pass of its fit, which early stopping watches."""

import keras
import tensorflow as tf

from tfp_flowad.losses import negative_log_likelihood

__all__ = ["HeldOutNLL"]


class HeldOutNLL(keras.callbacks.Callback):
    """Adds ``val_nll`` to the logs of every epoch of a flow's fit: the mean over ``batches``
    of each batch's mean negative log-likelihood ``-mean log p(x)`` (eq. 39), the figure that
    Keras' ``evaluate`` of ``Flow.test_step`` reports for the same batches.

    The batches are tensors made once, and one traced function scores them. Keras'
    ``evaluate`` would set up a dataset iterator, callbacks and metrics at every pass, which
    costs more than the pass itself on a small table. Put it before the callbacks that read
    ``val_nll`` (``EarlyStopping``): they see the logs it wrote.

    Args:
        flow: the ``Flow`` being fitted.
        batches: the held-out rows in batches, as the flow's training batches are made.
    """

    def __init__(self, flow, batches):
        super().__init__()
        self.batches = [tf.convert_to_tensor(batch, flow.compute_dtype) for batch in batches]
        self.batch_nll = tf.function(
            lambda rows: negative_log_likelihood(flow.log_prob(rows)),
            input_signature=[tf.TensorSpec([None, flow.event_size], flow.compute_dtype)],
        )

    def on_epoch_end(self, epoch, logs=None):
        total = tf.zeros((), self.batches[0].dtype)
        for batch in self.batches:
            total += self.batch_nll(batch)
        if logs is not None:
            logs["val_nll"] = float(total / len(self.batches))
