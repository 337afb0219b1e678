"""Flows: Keras models that own their weights and build a TFP distribution on every call.

Each has ``log_prob(x)``, ``sample(n)``, ``sample_and_log_prob(n)`` and trains by ``fit`` with the
Jacobian-regularised likelihood of eq. (41).
"""

from tfp_flowad.flows.autoregressive import IAF, MAF
from tfp_flowad.flows.base import Flow
from tfp_flowad.flows.planar_radial import PlanarFlow, RadialFlow
from tfp_flowad.flows.realnvp import RealNVP

FLOWS = {
    "maf": MAF,
    "iaf": IAF,
    "realnvp": RealNVP,
    "planar": PlanarFlow,
    "radial": RadialFlow,
}

__all__ = ["Flow", "MAF", "IAF", "RealNVP", "PlanarFlow", "RadialFlow", "FLOWS"]
