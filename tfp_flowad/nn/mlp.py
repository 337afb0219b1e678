"""A plain MLP that ends in one logit: the classifier of the (1 + eps)-class method."""

import keras

__all__ = ["make_mlp"]


def make_mlp(
    input_dim: int,
    hidden_units: tuple[int, ...] = (64, 64),
    activation: str = "relu",
    dropout: float = 0.0,
    dtype: str = "float32",
    name: str = "classifier",
) -> keras.Sequential:
    """``logit(x) = W_L a(... a(W_1 x + b_1) ...) + b_L``: hidden ``Dense`` layers, then one unit.

    Args:
        input_dim: number of input features.
        hidden_units: width of each hidden layer.
        activation: Keras activation of the hidden layers.
        dropout: dropout rate after each hidden layer (0 turns it off).
        dtype: float dtype of the weights.
        name: model name.

    Returns:
        ``keras.Sequential`` mapping ``[batch, input_dim]`` to ``[batch, 1]`` logits.
    """
    layers = [keras.Input((input_dim,), dtype=dtype)]
    for units in hidden_units:
        layers.append(keras.layers.Dense(units, activation=activation, dtype=dtype))
        if dropout > 0:
            layers.append(keras.layers.Dropout(dropout, dtype=dtype))
    layers.append(keras.layers.Dense(1, dtype=dtype))
    return keras.Sequential(layers, name=name)
