"""The coupling network of a RealNVP step, as a Keras 3 layer."""

import keras
from keras import ops

__all__ = ["CouplingNet"]


@keras.saving.register_keras_serializable(package="tfp_flowad")
class CouplingNet(keras.layers.Layer):
    """``(shift, log_scale)(x_{1:d})``, each ``[..., D - d]``: mu and sigma of eq. (22)-(23).

    An MLP of the ``d`` untouched coordinates; the log-scale is bounded softly,
    ``log_scale = c * tanh(raw / c)``.

    Args:
        output_units: ``D - d``, the number of transformed coordinates.
        hidden_units: widths of the hidden layers.
        activation: Keras activation name.
        log_scale_bound: ``c`` above.
    """

    def __init__(
        self,
        output_units: int,
        hidden_units: tuple[int, ...] = (64, 64),
        activation: str = "relu",
        log_scale_bound: float = 5.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.output_units = int(output_units)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.activation = activation
        self.log_scale_bound = float(log_scale_bound)
        self.hidden_layers = [
            keras.layers.Dense(units, activation=activation, dtype=self.dtype_policy)
            for units in self.hidden_units
        ]
        self.output_layer = keras.layers.Dense(
            2 * self.output_units,
            kernel_initializer=keras.initializers.RandomNormal(stddev=1e-2),
            dtype=self.dtype_policy,
        )

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.hidden_layers:
            layer.build(shape)
            shape = shape[:-1] + (layer.units,)
        self.output_layer.build(shape)

    def call(self, x):
        hidden = x
        for layer in self.hidden_layers:
            hidden = layer(hidden)
        shift, raw_log_scale = ops.split(self.output_layer(hidden), 2, axis=-1)
        bound = self.log_scale_bound
        return shift, bound * ops.tanh(raw_log_scale / bound)

    def get_config(self):
        config = super().get_config()
        config.update(
            output_units=self.output_units,
            hidden_units=list(self.hidden_units),
            activation=self.activation,
            log_scale_bound=self.log_scale_bound,
        )
        return config
