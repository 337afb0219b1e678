"""A plain MLP that ends in one logit, or several side by side: the classifier of the
(1 + eps)-class method."""

import keras

__all__ = ["make_mlp", "mean_logit", "mean_of_classifiers", "select_members", "MemberMLP"]


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

    With ``members > 1`` the model holds that many such MLPs side by side (``MemberMLP``),
    each from its own initial weights, and returns each one's logit: an ensemble whose logit is
    their mean (``OnePlusEpsTrainer`` trains every member on its own loss).

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
    layers = [keras.Input((input_dim,), dtype=dtype)]
    if members > 1:
        layers.append(MemberMLP(members, hidden_units, activation, dropout, dtype=dtype))
        return keras.Sequential(layers, name=name)
    for units in hidden_units:
        layers.append(keras.layers.Dense(units, activation=activation, dtype=dtype))
        if dropout > 0:
            layers.append(keras.layers.Dropout(dropout, dtype=dtype))
    layers.append(keras.layers.Dense(1, dtype=dtype))
    return keras.Sequential(layers, name=name)


def mean_logit(network: keras.Model, x, training: bool = False):
    """``logit f(x)``, ``[batch]``: the mean of the logits of ``network``'s members (the one
    logit of a single MLP)."""
    return keras.ops.mean(network(x, training=training), axis=-1)


def mean_of_classifiers(networks: list[keras.Model], name: str = "classifier") -> keras.Model:
    """A model whose ``mean_logit`` is the mean of the given classifiers' ``mean_logit``s:
    ``[batch, D] -> [batch, len(networks)]``, each column one network's mean over its members
    (MLPs side by side and boosted trees count as one classifier each)."""
    inputs = keras.Input((networks[0].input_shape[-1],))
    logits = [keras.ops.mean(network(inputs), axis=-1, keepdims=True) for network in networks]
    return keras.Model(inputs, keras.layers.Concatenate()(logits), name=name)


def select_members(network: keras.Model, members: list[int]) -> keras.Model:
    """A new ``make_mlp`` network holding the given members of an ensemble ``network``
    (``make_mlp(..., members=m)``, ``m > 1``) with their weights; one member gives the plain
    MLP, as ``make_mlp(..., members=1)`` would build it."""
    ensemble = network.layers[-1]
    if not isinstance(ensemble, MemberMLP):
        raise ValueError(f"network must end in a MemberMLP layer; got {type(ensemble).__name__}")
    chosen = make_mlp(
        network.input_shape[-1],
        ensemble.hidden_units,
        keras.activations.serialize(ensemble.activation),
        ensemble.dropout.rate if ensemble.dropout is not None else 0.0,
        name=network.name,
        members=len(members),
    )
    # MemberMLP holds, layer by layer, a kernel [members, in, out] and a bias [members, 1, out].
    values = [value[members] for value in ensemble.get_weights()]
    if len(members) == 1:  # Dense layers: kernel [in, out], bias [out]
        values = [value[0, 0] if index % 2 else value[0] for index, value in enumerate(values)]
    chosen.set_weights(values)
    return chosen


@keras.saving.register_keras_serializable(package="tfp_flowad")
class MemberMLP(keras.layers.Layer):
    """``members`` MLPs of the same shape side by side, ``[batch, D] -> [batch, members]``.

    Layer ``l`` holds every member's weights in one tensor, ``W_l: [members, in, out]``, so
    each layer is one batched matrix product, ``h_l[k] = a(h_{l-1}[k] W_l[k] + b_l[k])``, and
    an optimizer updates one variable per layer instead of one per member. Each member's
    initial weights are those that ``members`` separate ``make_mlp`` networks built one after
    another would draw (Glorot-uniform kernels, zero biases).

    Args:
        members: number of MLPs.
        hidden_units: width of each hidden layer; each MLP ends in one logit.
        activation: Keras activation of the hidden layers.
        dropout: dropout rate after each hidden layer (0 turns it off).
    """

    def __init__(
        self,
        members: int,
        hidden_units: tuple[int, ...] = (64, 64),
        activation: str = "relu",
        dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.members = members
        self.hidden_units = tuple(hidden_units)
        self.activation = keras.activations.get(activation)
        self.dropout = keras.layers.Dropout(dropout) if dropout > 0 else None
        widths = (*self.hidden_units, 1)
        # One initializer per member and layer, created member after member: the order in
        # which separate Dense layers would draw their seeds.
        self._initializers = [
            [keras.initializers.GlorotUniform() for _ in widths] for _ in range(members)
        ]

    def build(self, input_shape):
        self.kernels, self.biases = [], []
        fan_in = input_shape[-1]
        for layer, units in enumerate((*self.hidden_units, 1)):
            inits = [member[layer] for member in self._initializers]

            def stacked(shape, dtype=None, inits=inits, fans=(fan_in, units)):
                return keras.ops.stack([init(fans, dtype=dtype) for init in inits])

            self.kernels.append(
                self.add_weight(shape=(self.members, fan_in, units), initializer=stacked)
            )
            self.biases.append(self.add_weight(shape=(self.members, 1, units), initializer="zeros"))
            fan_in = units

    def call(self, x, training=False):
        # The first layer takes the shared rows: [batch, D] x [members, D, out].
        hidden = keras.ops.einsum("nd,kdo->kno", x, self.kernels[0]) + self.biases[0]
        for kernel, bias in zip(self.kernels[1:], self.biases[1:], strict=True):
            hidden = self.activation(hidden)
            if self.dropout is not None:
                hidden = self.dropout(hidden, training=training)
            hidden = keras.ops.matmul(hidden, kernel) + bias
        return keras.ops.transpose(hidden[:, :, 0])  # [batch, members]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.members)

    def get_config(self):
        config = super().get_config()
        config.update(
            members=self.members,
            hidden_units=list(self.hidden_units),
            activation=keras.activations.serialize(self.activation),
            dropout=self.dropout.rate if self.dropout is not None else 0.0,
        )
        return config
