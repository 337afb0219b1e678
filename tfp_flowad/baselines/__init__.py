"""The comparison systems of the paper's section 4, and well-known detectors users compare
with, as detectors with the ``BaseDetector`` API.

``BASELINES`` maps names to the classes: first the paper's tables' systems, under the names
used there, then (``REFERENCE_BASELINES``) the detectors of PyOD, DeepOD and XGBoost that users
run today, built here on scikit-learn and Keras:

=================  ==============================  ==========================================
name               class                           method
=================  ==============================  ==========================================
two-class          ``TwoClassClassifier``          class-balanced MLP classifier
semi-supervised    ``SemiSupervisedClassifier``    autoencoder codes + MLP classifier
deep-svdd-oc       ``DeepSVDD``                    one-class Deep SVDD (Ruff et al. 2018)
rae-oc             ``RobustAutoencoder``           robust deep autoencoder (Chalapathy 2017)
brute-force-ope    ``BruteForceOPE``               (1 + eps)-class, uniform L0, eq. (6)
hmc-eope           ``HMCEnergyOPE``                energy (1 + eps)-class, HMC, eq. (11)
rmsprop-eope       ``RMSPropEnergyOPE``            energy (1 + eps)-class, RMSProp, eq. (11)
deep-eope          ``DeepEnergyOPE``               energy (1 + eps)-class, generator, eq. (11)
iforest-oc         ``IsolationForestDetector``     isolation forest (Liu et al. 2008)
knn-oc             ``KNNDetector``                 distance to the k-th nearest normal row
boosted-trees      ``BoostedTreesClassifier``      class-balanced gradient-boosted trees
xgbod              ``XGBODDetector``               boosting on features + outlier scores
deep-sad           ``DeepSAD``                     Deep SAD (Ruff et al. 2020)
=================  ==============================  ==========================================

Examples:
    >>> from tfp_flowad.baselines import BASELINES
    >>> detector = BASELINES["deep-svdd-oc"](epochs=5, random_state=0)  # doctest: +SKIP
    >>> scores = detector.fit(X_train).decision_function(X_test)  # doctest: +SKIP
"""

from tfp_flowad.baselines.classifiers import SemiSupervisedClassifier, TwoClassClassifier
from tfp_flowad.baselines.common import Baseline, KerasBaseline
from tfp_flowad.baselines.deep_svdd import DeepSAD, DeepSVDD
from tfp_flowad.baselines.energy_samplers import (
    GeneratorEnergySampler,
    HMCEnergySampler,
    RMSPropEnergySampler,
)
from tfp_flowad.baselines.eope import EnergyOnePlusEpsTrainer
from tfp_flowad.baselines.ope import BruteForceOPE, DeepEnergyOPE, HMCEnergyOPE, RMSPropEnergyOPE
from tfp_flowad.baselines.reference import (
    BoostedTreesClassifier,
    IsolationForestDetector,
    KNNDetector,
    XGBODDetector,
)
from tfp_flowad.baselines.robust_autoencoder import RobustAutoencoder, group_soft_threshold

__all__ = [
    "BASELINES",
    "REFERENCE_BASELINES",
    "Baseline",
    "KerasBaseline",
    "TwoClassClassifier",
    "SemiSupervisedClassifier",
    "DeepSVDD",
    "RobustAutoencoder",
    "BruteForceOPE",
    "HMCEnergyOPE",
    "RMSPropEnergyOPE",
    "DeepEnergyOPE",
    "IsolationForestDetector",
    "KNNDetector",
    "BoostedTreesClassifier",
    "XGBODDetector",
    "DeepSAD",
    "EnergyOnePlusEpsTrainer",
    "HMCEnergySampler",
    "RMSPropEnergySampler",
    "GeneratorEnergySampler",
    "group_soft_threshold",
]

#: the detectors outside the paper's tables (PyOD's, DeepOD's and XGBoost's kinds).
REFERENCE_BASELINES: dict[str, type[Baseline]] = {
    "iforest-oc": IsolationForestDetector,
    "knn-oc": KNNDetector,
    "boosted-trees": BoostedTreesClassifier,
    "xgbod": XGBODDetector,
    "deep-sad": DeepSAD,
}

#: name -> detector class: the paper's (section 4 tables, its names), then the reference ones.
BASELINES: dict[str, type[Baseline]] = {
    "two-class": TwoClassClassifier,
    "semi-supervised": SemiSupervisedClassifier,
    "deep-svdd-oc": DeepSVDD,
    "rae-oc": RobustAutoencoder,
    "brute-force-ope": BruteForceOPE,
    "hmc-eope": HMCEnergyOPE,
    "rmsprop-eope": RMSPropEnergyOPE,
    "deep-eope": DeepEnergyOPE,
    **REFERENCE_BASELINES,
}
