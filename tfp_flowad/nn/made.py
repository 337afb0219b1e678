"""MADE: a masked autoregressive MLP as a Keras 3 layer (Germain et al. 2015).

It is the ``shift_and_log_scale_fn`` of ``tfp.bijectors.MaskedAutoregressiveFlow``: output ``i``
(a shift and a log-scale) depends only on the inputs that come before ``i`` in ``input_order``.
"""

import keras
import numpy as np
from keras import ops

__all__ = ["MADE", "made_masks"]


def made_masks(
    input_order: np.ndarray, hidden_units: tuple[int, ...]
) -> tuple[list[np.ndarray], np.ndarray]:
    """Autoregressive masks from degrees (MADE's construction).

    Input ``j`` has degree ``d_in(j) = position of j in input_order`` (1-based). Each hidden unit
    gets a degree ``d`` in ``[1, D - 1]`` (cycled, so every degree is present when the layer is
    wide enough) and may see a unit of the layer below iff ``d >= d_below``. Output ``i`` may see
    a hidden unit iff ``d_in(i) > d``. Hence output ``i`` depends only on inputs of lower degree.

    Args:
        input_order: ``[D]`` permutation of ``0 .. D-1``; ``input_order[k]`` is the ``k``-th input.
        hidden_units: widths of the hidden layers.

    Returns:
        ``(hidden_masks, output_mask)``: ``hidden_masks[l]`` has shape ``[fan_in, fan_out]``,
        ``output_mask`` has shape ``[last_hidden, D]``.
    """
    dim = len(input_order)
    input_degrees = np.empty(dim, dtype=np.int64)
    input_degrees[np.asarray(input_order)] = np.arange(1, dim + 1)
    max_hidden_degree = max(dim - 1, 1)
    below = input_degrees
    hidden_masks = []
    for units in hidden_units:
        degrees = np.arange(units) % max_hidden_degree + 1
        hidden_masks.append((degrees[None, :] >= below[:, None]).astype(np.float32))
        below = degrees
    output_mask = (input_degrees[None, :] > below[:, None]).astype(np.float32)
    return hidden_masks, output_mask


@keras.saving.register_keras_serializable(package="tfp_flowad")
class MADE(keras.layers.Layer):
    """``(shift, log_scale)(x)``, each ``[..., D]``, autoregressive in ``input_order``.

    ``h_l = a((W_l * M_l) h_{l-1} + b_l)``, ``out = (W_o * M_o) h_L + b_o`` with binary masks
    ``M`` from ``made_masks``. The log-scale is softly bounded,
    ``log_scale = c * tanh(raw / c)`` with ``c = log_scale_bound``, which keeps each affine step
    invertible and numerically tame.

    Args:
        event_size: ``D``.
        hidden_units: widths of the hidden layers.
        activation: Keras activation name.
        input_order: ``"left-to-right"``, ``"right-to-left"``, or a list permutation of
            ``range(D)``.
        log_scale_bound: ``c`` above.
    """

    def __init__(
        self,
        event_size: int,
        hidden_units: tuple[int, ...] = (64, 64),
        activation: str = "relu",
        input_order="left-to-right",
        log_scale_bound: float = 5.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.event_size = int(event_size)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.activation = keras.activations.get(activation)
        self.activation_name = activation
        self.input_order = input_order
        self.log_scale_bound = float(log_scale_bound)
        order = self._order_array()
        hidden_masks, output_mask = made_masks(order, self.hidden_units)
        # The output layer emits [shift_1..shift_D, log_scale_1..log_scale_D].
        self._masks = hidden_masks + [np.concatenate([output_mask, output_mask], axis=1)]

    def _order_array(self) -> np.ndarray:
        dim = self.event_size
        if isinstance(self.input_order, str):
            if self.input_order == "left-to-right":
                return np.arange(dim)
            if self.input_order == "right-to-left":
                return np.arange(dim)[::-1].copy()
            raise ValueError(
                "input_order must be 'left-to-right', 'right-to-left' or a permutation; "
                f"got {self.input_order!r}"
            )
        order = np.asarray(self.input_order, dtype=np.int64)
        if sorted(order.tolist()) != list(range(dim)):
            raise ValueError(
                f"input_order must be a permutation of range({dim}); got {self.input_order!r}"
            )
        return order

    def build(self, input_shape=None):
        self.kernels, self.biases, self.mask_tensors = [], [], []
        for index, mask in enumerate(self._masks):
            is_output = index == len(self._masks) - 1
            # Small output weights: every flow step starts close to the identity.
            initializer = (
                keras.initializers.RandomNormal(stddev=1e-2)
                if is_output
                else keras.initializers.GlorotUniform()
            )
            self.kernels.append(
                self.add_weight(shape=mask.shape, initializer=initializer, name=f"kernel_{index}")
            )
            self.biases.append(
                self.add_weight(shape=(mask.shape[1],), initializer="zeros", name=f"bias_{index}")
            )
            self.mask_tensors.append(ops.convert_to_tensor(mask, dtype=self.variable_dtype))

    def call(self, x):
        hidden = x
        last = len(self.kernels) - 1
        for index, (kernel, bias, mask) in enumerate(
            zip(self.kernels, self.biases, self.mask_tensors, strict=True)
        ):
            hidden = ops.matmul(hidden, kernel * mask) + bias
            if index < last:
                hidden = self.activation(hidden)
        shift, raw_log_scale = ops.split(hidden, 2, axis=-1)
        bound = self.log_scale_bound
        return shift, bound * ops.tanh(raw_log_scale / bound)

    def get_config(self):
        config = super().get_config()
        order = self.input_order
        config.update(
            event_size=self.event_size,
            hidden_units=list(self.hidden_units),
            activation=self.activation_name,
            input_order=order if isinstance(order, str) else [int(i) for i in order],
            log_scale_bound=self.log_scale_bound,
        )
        return config
