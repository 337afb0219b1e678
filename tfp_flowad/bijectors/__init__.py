"""Custom TFP bijectors of the paper's section 2.1 that take tensors and own no variables.

``Planar`` (eq. (14)-(17)) and ``Radial`` (eq. (18)-(19)). Keras layers own the weights and
build these bijectors from the current weight tensors on every call.
"""

from tfp_flowad.bijectors.planar import Planar
from tfp_flowad.bijectors.radial import Radial

__all__ = ["Planar", "Radial"]
