"""A plain MLP that ends in one logit: the classifier of the (1 + eps)-class method."""

import keras
from keras import ops

__all__ = ["make_mlp", "DensityFeature"]


def make_mlp(
    input_dim: int,
    hidden_units: tuple[int, ...] = (64, 64),
    activation: str = "relu",
    dropout: float = 0.0,
    dtype: str = "float32",
    name: str = "classifier",
    density_feature: "DensityFeature | None" = None,
) -> keras.Sequential:
    """``logit(x) = W_L a(... a(W_1 x + b_1) ...) + b_L``: hidden ``Dense`` layers, then one unit.

    Args:
        input_dim: number of input features.
        hidden_units: width of each hidden layer.
        activation: Keras activation of the hidden layers.
        dropout: dropout rate after each hidden layer (0 turns it off).
        dtype: float dtype of the weights.
        name: model name.
        density_feature: optional ``DensityFeature`` placed first (adds one input column).

    Returns:
        ``keras.Sequential`` mapping ``[batch, input_dim]`` to ``[batch, 1]`` logits.
    """
    layers = [keras.Input((input_dim,), dtype=dtype)]
    if density_feature is not None:
        layers.append(density_feature)
    for units in hidden_units:
        layers.append(keras.layers.Dense(units, activation=activation, dtype=dtype))
        if dropout > 0:
            layers.append(keras.layers.Dropout(dropout, dtype=dtype))
    layers.append(keras.layers.Dense(1, dtype=dtype))
    return keras.Sequential(layers, name=name)


@keras.saving.register_keras_serializable(package="tfp_flowad")
class DensityFeature(keras.layers.Layer):
    """``[x, asinh((log p(x) - center) / scale)]``: appends the flow's log-density to ``x``.

    The flow is frozen (its weights are not trained through this layer). The ``asinh`` keeps
    the feature monotone in ``log p`` while compressing the very low densities of far-off rows.

    Args:
        flow: a fitted ``tfp_flowad.flows.Flow``.
        center: typical ``log p`` of normal rows (their median).
        scale: spread of ``log p`` of normal rows (their interquartile range, > 0).
    """

    def __init__(self, flow, center: float = 0.0, scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.flow = flow
        self.flow.trainable = False
        self.center = float(center)
        self.scale = float(scale)

    def call(self, x):
        log_prob = ops.cast(self.flow.log_prob(x), x.dtype)
        feature = ops.arcsinh((log_prob - self.center) / self.scale)
        return ops.concatenate([x, feature[:, None]], axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape[:-1] + (input_shape[-1] + 1,)

    def get_config(self):
        config = super().get_config()
        config.update(
            flow=keras.saving.serialize_keras_object(self.flow),
            center=self.center,
            scale=self.scale,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["flow"] = keras.saving.deserialize_keras_object(config["flow"])
        return cls(**config)
