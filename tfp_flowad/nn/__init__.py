"""Keras 3 layers that own the flows' and the classifier's weights."""

from tfp_flowad.nn.coupling import CouplingNet
from tfp_flowad.nn.made import MADE, made_masks
from tfp_flowad.nn.mlp import MemberMLP, make_mlp, mean_logit, select_members

__all__ = [
    "MADE",
    "made_masks",
    "CouplingNet",
    "MemberMLP",
    "make_mlp",
    "mean_logit",
    "select_members",
]
