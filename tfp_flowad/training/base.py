"""The base of the Keras models that bring their own ``train_step``."""

import keras

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

    def compile(self, *args, **kwargs):
        super().compile(*args, **kwargs)
        if self.optimizer is not None and not self.optimizer.built:
            self.optimizer.build(self.trained_variables)

    def compile_from_config(self, config):
        """Compiles a loaded model as it was saved (``keras.saving.load_model`` calls this);
        its optimizer state is then restored from the file."""
        self.compile(**keras.saving.deserialize_keras_object(config))
