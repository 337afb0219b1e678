"""The base of the Keras models that bring their own ``train_step``."""

import keras
import tensorflow as tf

from tfp_flowad.tracing import releasing_finished_traces
from tfp_flowad.training import distribute

__all__ = ["StepModel", "steps_per_call"]

#: the most steps one call of a Keras train function runs (``steps_per_call``).
MAX_STEPS_PER_CALL = 50


def steps_per_call(steps: int, data_ends: bool = False) -> int:
    """Keras' ``steps_per_execution`` for an epoch of ``steps`` steps: up to
    ``MAX_STEPS_PER_CALL``, or 1 under a distribution strategy.

    Several steps in one call run the same steps on the same batches, without Python's loop and
    callbacks between them (milliseconds a step, as much as a small step costs). On an endless
    stream it is the largest divisor of ``steps``: Keras runs whole calls, and a last call of
    more steps than the epoch has left would train past it. A dataset that ends with the epoch
    (``data_ends``) stops the last call itself. Not under a strategy: there Keras 3's loop of
    several steps per call fails ("You must feed a value for placeholder tensor
    'while/cond/Placeholder'").
    """
    if tf.distribute.has_strategy():
        return 1
    steps = max(int(steps), 1)
    if data_ends:
        return min(steps, MAX_STEPS_PER_CALL)
    return max(d for d in range(1, min(steps, MAX_STEPS_PER_CALL) + 1) if steps % d == 0)


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
        if distribute.in_replicas():
            return self._apply_finite_replica_step(loss, grads, variables)
        norm = tf.linalg.global_norm([g for g in grads if g is not None])
        finite = tf.math.is_finite(loss) & tf.math.is_finite(norm)
        grads = [None if g is None else tf.where(finite, g, tf.zeros_like(g)) for g in grads]
        self.optimizer.apply(grads, variables)
        return tf.cast(finite, self.compute_dtype)

    def _apply_finite_replica_step(self, loss, grads, variables) -> tf.Tensor:
        """``apply_finite_step`` in one of ``N`` replicas, ``loss`` and ``grads`` being this
        replica's contribution to the global batch's (``tfp_flowad.training.distribute``).

        The step is skipped on every replica when any replica's is not finite. An optimizer
        that clips gets the gradients summed here, clipped as one device would clip them and
        divided by ``N`` (its own clip then leaves them be, and its sum across replicas gives
        them back): Keras clips each replica's part before summing them, which is not the
        clip of the global gradient. That costs one more all-reduce of the gradients a step.
        """
        optimizer = self.optimizer
        clips = bool(optimizer.global_clipnorm or optimizer.clipnorm or optimizer.clipvalue)
        if clips:
            present = distribute.sum_over_replicas([g for g in grads if g is not None])
            summed = iter(present)
            grads = [None if g is None else next(summed) for g in grads]
            loss = distribute.sum_over_replicas(loss)
        norm = tf.linalg.global_norm([g for g in grads if g is not None])
        bad = tf.cast(~(tf.math.is_finite(loss) & tf.math.is_finite(norm)), tf.float32)
        finite = tf.equal(bad if clips else distribute.sum_over_replicas(bad), 0.0)
        grads = [None if g is None else tf.where(finite, g, tf.zeros_like(g)) for g in grads]
        if clips:
            scale = 1.0 / distribute.replicas()
            grads = [
                None if g is None else g * scale
                for g in distribute.clip_gradients(optimizer, grads)
            ]
        optimizer.apply(grads, variables)
        return tf.cast(finite, self.compute_dtype)

    def _record(self, terms: dict, weight=1.0) -> dict:
        """Adds this step's ``terms`` to the Keras ``Mean`` metrics in ``self.trackers`` (one per
        logged name), with ``weight`` (0 leaves a skipped step out); returns their means."""
        for name, tracker in self.trackers.items():
            tracker.update_state(terms[name], sample_weight=weight)
        return distribute.loggable(
            {name: tracker.result() for name, tracker in self.trackers.items()}
        )

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

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Keras' build of the model from a batch before a fit under a strategy; skipped for a
        model that is built (every ``StepModel`` here is, with its optimizer built by
        ``compile``). Keras would first take a batch and ``strategy.reduce`` it, which fails for
        a batch of dicts under ``MultiWorkerMirroredStrategy`` ("ValueError: Attempt to convert
        a value ({'normal': PerReplica:{...}}) with an unsupported type (<class 'dict'>) to a
        Tensor")."""
        if self.built:
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def compile_from_config(self, config):
        """Compiles a loaded model as it was saved (``keras.saving.load_model`` calls this);
        its optimizer state is then restored from the file."""
        self.compile(**keras.saving.deserialize_keras_object(config))
