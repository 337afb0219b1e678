"""A plain MLP that ends in one logit, or several side by side: the classifier of the
(1 + eps)-class method."""

import keras

__all__ = ["make_mlp"]


def make_mlp(
    input_dim: int,
    hidden_units: tuple[int, ...] = (64, 64),
    activation: str = "relu",
    dropout: float = 0.0,
    dtype: str = "float32",
    name: str = "classifier",
    members: int = 1,
) -> keras.Model:
    """``logit(x) = W_L a(... a(W_1 x + b_1) ...) + b_L``: hidden ``Dense`` layers, then one unit.

    With ``members > 1`` the model holds that many such MLPs side by side, each from its own
    initial weights, and returns each one's logit: an ensemble whose logit is their mean
    (``OnePlusEpsTrainer`` trains every member on its own loss).

    Args:
        input_dim: number of input features.
        hidden_units: width of each hidden layer.
        activation: Keras activation of the hidden layers.
        dropout: dropout rate after each hidden layer (0 turns it off).
        dtype: float dtype of the weights.
        name: model name.
        members: number of MLPs side by side.

    Returns:
        A Keras model mapping ``[batch, input_dim]`` to ``[batch, members]`` logits.
    """
    if not isinstance(members, int) or isinstance(members, bool) or members < 1:
        raise ValueError(f"members must be an integer >= 1; got {members!r}")
    inputs = keras.Input((input_dim,), dtype=dtype)
    logits = []
    for _ in range(members):
        hidden = inputs
        for units in hidden_units:
            hidden = keras.layers.Dense(units, activation=activation, dtype=dtype)(hidden)
            if dropout > 0:
                hidden = keras.layers.Dropout(dropout, dtype=dtype)(hidden)
        logits.append(keras.layers.Dense(1, dtype=dtype)(hidden))
    outputs = logits[0] if members == 1 else keras.layers.Concatenate(dtype=dtype)(logits)
    return keras.Model(inputs, outputs, name=name)
