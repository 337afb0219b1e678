"""Keras 3 layers that own the flows' and the classifier's weights and the neighbour term's
reference rows."""

from tfp_flowad.nn.coupling import CouplingNet
from tfp_flowad.nn.made import MADE, made_masks
from tfp_flowad.nn.mlp import MemberMLP, make_mlp, mean_logit, mean_of_classifiers, select_members
from tfp_flowad.nn.neighbours import NearestReference, nearest_reference_network
from tfp_flowad.nn.trees import BoostedTrees, boosted_trees_network

__all__ = [
    "MADE",
    "made_masks",
    "CouplingNet",
    "MemberMLP",
    "make_mlp",
    "mean_logit",
    "mean_of_classifiers",
    "NearestReference",
    "nearest_reference_network",
    "BoostedTrees",
    "boosted_trees_network",
    "select_members",
]
