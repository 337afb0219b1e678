"""The comparison systems of the paper's section 4, as detectors with the ``BaseDetector`` API.

``BASELINES`` maps the names used in the paper's tables to the classes:

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
=================  ==============================  ==========================================

Examples:
    >>> from tfp_flowad.baselines import BASELINES
    >>> detector = BASELINES["deep-svdd-oc"](epochs=5, random_state=0)  # doctest: +SKIP
    >>> scores = detector.fit(X_train).decision_function(X_test)  # doctest: +SKIP
"""

from tfp_flowad.baselines.classifiers import SemiSupervisedClassifier, TwoClassClassifier
from tfp_flowad.baselines.common import KerasBaseline
from tfp_flowad.baselines.deep_svdd import DeepSVDD
from tfp_flowad.baselines.eope import (
    EnergyOnePlusEpsTrainer,
    GeneratorEnergySampler,
    HMCEnergySampler,
    RMSPropEnergySampler,
)
from tfp_flowad.baselines.ope import BruteForceOPE, DeepEnergyOPE, HMCEnergyOPE, RMSPropEnergyOPE
from tfp_flowad.baselines.robust_autoencoder import RobustAutoencoder, group_soft_threshold

__all__ = [
    "BASELINES",
    "KerasBaseline",
    "TwoClassClassifier",
    "SemiSupervisedClassifier",
    "DeepSVDD",
    "RobustAutoencoder",
    "BruteForceOPE",
    "HMCEnergyOPE",
    "RMSPropEnergyOPE",
    "DeepEnergyOPE",
    "EnergyOnePlusEpsTrainer",
    "HMCEnergySampler",
    "RMSPropEnergySampler",
    "GeneratorEnergySampler",
    "group_soft_threshold",
]

#: paper name (section 4 tables) -> detector class.
BASELINES: dict[str, type[KerasBaseline]] = {
    "two-class": TwoClassClassifier,
    "semi-supervised": SemiSupervisedClassifier,
    "deep-svdd-oc": DeepSVDD,
    "rae-oc": RobustAutoencoder,
    "brute-force-ope": BruteForceOPE,
    "hmc-eope": HMCEnergyOPE,
    "rmsprop-eope": RMSPropEnergyOPE,
    "deep-eope": DeepEnergyOPE,
}
