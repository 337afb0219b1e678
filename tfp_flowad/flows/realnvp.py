"""Real NVP, paper section 2.2.1: affine coupling steps."""

import keras
import tensorflow_probability as tfp

from tfp_flowad.flows.base import PermutedStepsFlow, chain
from tfp_flowad.nn.coupling import CouplingNet

tfb = tfp.bijectors

__all__ = ["RealNVP"]


@keras.saving.register_keras_serializable(package="tfp_flowad")
class RealNVP(PermutedStepsFlow):
    """Affine coupling flow, eq. (22)-(23): ``x_{1:d} = z_{1:d}``,
    ``x_{d+1:D} = z_{d+1:D} * exp(log_scale(z_{1:d})) + shift(z_{1:d})``.

    ``log|det J| = sum log_scale(z_{1:d})``; both directions take one pass. Permutations between
    steps let every coordinate be transformed. ``d = D // 2`` (at least 1).

    Args:
        event_size: ``D >= 2``.
        num_layers: number of coupling steps.
        hidden_units: widths of each coupling net's hidden layers.
        activation: coupling net activation.
        permutations: ``num_layers - 1`` permutations of ``range(D)``.
        **kwargs: ``Flow`` arguments and Keras ones.
    """

    def __init__(self, event_size: int, num_layers: int = 6, **kwargs):
        super().__init__(event_size, num_layers, **kwargs)
        if self.event_size < 2:
            raise ValueError(f"RealNVP needs event_size >= 2; got {event_size!r}")
        self.num_masked = max(1, self.event_size // 2)
        self.coupling_nets = [
            CouplingNet(
                self.event_size - self.num_masked,
                self.hidden_units,
                self.activation,
                dtype=self.dtype_policy,
                name=f"coupling_{index}",
            )
            for index in range(self.num_layers)
        ]
        for net in self.coupling_nets:
            net.build((None, self.num_masked))
        self.build((None, self.event_size))

    def make_bijector(self) -> tfb.Bijector:
        steps = [
            tfb.RealNVP(
                num_masked=self.num_masked,
                shift_and_log_scale_fn=lambda x, units, net=net: net(x),
            )
            for net in self.coupling_nets
        ]
        return chain(steps, self.permutations)
