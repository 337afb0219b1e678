"""The base of the Keras models that bring their own ``train_step``."""

import keras
import tensorflow as tf

from tfp_flowad.tracing import releasing_finished_traces

__all__ = ["StepModel"]


class StepModel(keras.Model):
    """A Keras model with its own ``train_step`` whose optimizer is built by ``compile``.

    Keras on TensorFlow (with no distribution strategy) creates an unbuilt optimizer's slot
    variables inside the first trace of the train function, and a ``tf.function`` that creates
    variables is traced a second time. For a MAF with the Jacobian penalty each trace takes
    seconds. Building the optimizer in ``compile``, over ``trained_variables`` (the weights
    ``train_step`` updates), makes one trace enough.
    """

    @property
    def trained_variables(self) -> list:
        """The weights ``train_step`` updates (default: all trainable weights)."""
        return self.trainable_variables

    def apply_finite_step(self, loss, grads, variables) -> tf.Tensor:
        """Applies ``grads`` to ``variables`` unless ``loss`` or their global norm is not
        finite; then the gradients are zeros, so that no weight turns NaN.

        Such a step comes from a sample mapped out of float32 range (a flow's inverse at a
        point it finds astronomically unlikely), or from gradients so large that their global
        norm overflows (which gradient clipping turns into NaN). Returns the step's weight in
        the logged means: 1, or 0 for a skipped step.
        """
        norm = tf.linalg.global_norm([g for g in grads if g is not None])
        finite = tf.math.is_finite(loss) & tf.math.is_finite(norm)
        grads = [None if g is None else tf.where(finite, g, tf.zeros_like(g)) for g in grads]
        self.optimizer.apply(grads, variables)
        return tf.cast(finite, self.compute_dtype)

    def _record(self, terms: dict, weight=1.0) -> dict:
        """Adds this step's ``terms`` to the Keras ``Mean`` metrics in ``self.trackers`` (one per
        logged name), with ``weight`` (0 leaves a skipped step out); returns their means."""
        for name, tracker in self.trackers.items():
            tracker.update_state(terms[name], sample_weight=weight)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    @releasing_finished_traces
    def fit(self, *args, **kwargs):
        """Keras ``fit``; then frees what TensorFlow and TFP keep of its traces
        (see ``tfp_flowad.tracing``)."""
        return super().fit(*args, **kwargs)

    @releasing_finished_traces
    def evaluate(self, *args, **kwargs):
        """Keras ``evaluate``; then frees what is kept of its traces, as ``fit`` does."""
        return super().evaluate(*args, **kwargs)

    def compile(self, *args, **kwargs):
        super().compile(*args, **kwargs)
        if self.optimizer is not None and not self.optimizer.built:
            self.optimizer.build(self.trained_variables)

    def compile_from_config(self, config):
        """Compiles a loaded model as it was saved (``keras.saving.load_model`` calls this);
        its optimizer state is then restored from the file."""
        self.compile(**keras.saving.deserialize_keras_object(config))
