"""The (1 + eps)-class baselines of Borisyak et al. (arXiv 1906.06096) as detectors.

All four train an MLP classifier ``f(x) ~ P(C+ | x)`` on normal rows, known anomalies (if any)
and surrogate anomalies over the box ``Omega`` (the training rows' bounding box widened by
``box_margin`` of its width on each side), and score a row by ``-logit f(x)``:

* ``brute-force-ope``: eq. (6) with uniform surrogates over ``Omega``;
* ``hmc-eope``, ``rmsprop-eope``, ``deep-eope``: eq. (11), the energy loss whose ``L0_E``
  (eq. (10)) takes samples of ``P_f`` (eq. (9)) from HMC, RMSProp ascent or a generator
  (``tfp_flowad.baselines.eope``).
"""

from typing import ClassVar

import keras
import numpy as np

from tfp_flowad.baselines.common import ClassifierBaseline, baseline
from tfp_flowad.baselines.energy_samplers import (
    EnergySampler,
    GeneratorEnergySampler,
    HMCEnergySampler,
    RMSPropEnergySampler,
)
from tfp_flowad.baselines.eope import EnergyOnePlusEpsTrainer
from tfp_flowad.sampling import UniformBoxSampler
from tfp_flowad.training.classifier import OnePlusEpsTrainer

__all__ = ["BruteForceOPE", "HMCEnergyOPE", "RMSPropEnergyOPE", "DeepEnergyOPE"]


@baseline
class _OnePlusEpsBaseline(ClassifierBaseline):
    """Shared fields and fit of the (1 + eps)-class detectors; subclasses build the trainer."""

    gamma: float = 1.0
    eps: float = 0.05
    box_margin: float = 0.1

    def _make_trainer(self, network: keras.Model, box: UniformBoxSampler) -> OnePlusEpsTrainer:
        raise NotImplementedError

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        self._seed_everything()
        box = UniformBoxSampler.around(X, self.box_margin, seed=self.random_state)
        self.classifier_, self.trainer_, self.history_ = self._fit_classifier(
            X, y, lambda network: self._make_trainer(network, box)
        )


@baseline
class BruteForceOPE(_OnePlusEpsBaseline):
    """Brute-force (1 + eps)-class classifier: ``1/2 (L+ + gamma * L- + (1 - eps) * L0)``, eq. (6).

    ``L0 = -E_{x ~ U(Omega)} log(1 - f(x))`` with fresh uniform samples at every step.
    Score ``-logit f(x)``.

    Args:
        hidden_units: hidden widths of the classifier MLP.
        epochs: passes over the normal rows.
        batch_size: normal rows per step.
        learning_rate: Adam learning rate of the classifier.
        gamma: weight of the known-anomaly term ``L-``.
        eps: the surrogate term is weighted ``1 - eps``.
        box_margin: ``Omega`` is the bounding box widened by this fraction of its width per side.
        surrogates_per_step: uniform samples per step (default: ``batch_size``).
        verbose, contamination, random_state, categorical_columns, log_transform: see
            ``KerasBaseline``.

    Attributes:
        classifier_: the Keras network ``x -> logit f(x)``; ``trainer_``: its trainer;
        history_: the Keras history dict.

    References:
        Borisyak et al., arXiv 1906.06096; Ryzhikov et al., arXiv 1912.09323, eq. (6) and
        section 4 (baseline "brute-force-ope").
    """

    surrogates_per_step: int | None = None

    def _make_trainer(self, network, box):
        return OnePlusEpsTrainer(network, box, self.gamma, self.eps, self.surrogates_per_step)


@baseline
class _EnergyOPE(_OnePlusEpsBaseline):
    """Energy (1 + eps)-class detectors: ``1/2 (L+ + gamma * L- + (1 - eps) * L0_E)``, eq. (11).

    ``L0_E`` (eq. (10)) is taken on ``n_samples`` samples of ``P_f ~ 1[x in Omega] exp(logit(x))``
    (eq. (9)) per step, drawn by a ``sampler_type`` built with ``_sampler_options()``;
    ``log Z`` from ``normaliser_samples`` uniform samples over ``Omega`` at every step.
    """

    normaliser_samples: int = 512
    n_samples: int = 128

    #: The ``EnergySampler`` subclass that draws the samples of ``P_f``.
    sampler_type: ClassVar[type[EnergySampler]]

    def _sampler_options(self) -> dict:
        """The sampler's own keyword arguments (beyond box, sample count and seed)."""
        raise NotImplementedError

    def _make_trainer(self, network, box):
        sampler = self.sampler_type(
            box, self.n_samples, seed=self.random_state, **self._sampler_options()
        )
        return EnergyOnePlusEpsTrainer(
            network, sampler, self.gamma, self.eps, self.normaliser_samples
        )


@baseline
class HMCEnergyOPE(_EnergyOPE):
    """Energy OPE with HMC: ``1/2 (L+ + gamma * L- + (1 - eps) * L0_E)``, eq. (11).

    ``L0_E`` (eq. (10)) on samples of ``P_f ~ 1[x in Omega] exp(logit(x))`` (eq. (9)) from
    persistent Hamiltonian Monte Carlo chains (``HMCEnergySampler``); ``log Z`` from uniform
    samples over ``Omega`` at every step. Score ``-logit f(x)``.

    Args:
        n_samples: persistent chains, i.e. samples of ``P_f`` per step.
        hmc_steps: HMC transitions per training step.
        leapfrog_steps: leapfrog steps per transition.
        step_size: leapfrog step size (in the sampler's unconstrained space).
        normaliser_samples: uniform samples per estimate of ``log Z``.
        hidden_units, epochs, batch_size, learning_rate, gamma, eps, box_margin: see
            ``BruteForceOPE``; verbose, contamination, random_state, categorical_columns,
            log_transform: see ``KerasBaseline``.

    Attributes:
        classifier_: the Keras network ``x -> logit f(x)``; ``trainer_``: its trainer (holds
        the sampler); ``history_``: the Keras history dict.

    References:
        Borisyak et al., arXiv 1906.06096; Ryzhikov et al., arXiv 1912.09323, eq. (8)-(11) and
        section 4 (baseline "hmc-eope").
    """

    hmc_steps: int = 1
    leapfrog_steps: int = 5
    step_size: float = 0.25

    sampler_type = HMCEnergySampler

    def _sampler_options(self):
        return {
            "num_steps": self.hmc_steps,
            "num_leapfrog_steps": self.leapfrog_steps,
            "step_size": self.step_size,
        }


@baseline
class RMSPropEnergyOPE(_EnergyOPE):
    """Energy OPE with RMSProp sampling: ``1/2 (L+ + gamma * L- + (1 - eps) * L0_E)``, eq. (11).

    ``L0_E`` (eq. (10)) on approximate samples of ``P_f`` (eq. (9)): a few RMSProp-preconditioned
    ascent steps on ``logit(x)`` with Langevin noise, from uniform starts in ``Omega``
    (``RMSPropEnergySampler``);
    ``log Z`` from uniform samples over ``Omega`` at every step. Score ``-logit f(x)``.

    Args:
        n_samples: samples of ``P_f`` per step.
        langevin_steps: preconditioned Langevin steps per sample.
        step_size: Langevin step size (in the sampler's unconstrained space).
        damping: added to the RMSProp root mean square; bounds the preconditioner.
        normaliser_samples, hidden_units, epochs, batch_size, learning_rate, gamma, eps,
            box_margin, verbose, contamination, random_state, categorical_columns,
            log_transform: see ``HMCEnergyOPE``.

    Attributes:
        classifier_, trainer_, history_: see ``HMCEnergyOPE``.

    References:
        As ``HMCEnergyOPE``; section 4 of Ryzhikov et al. calls it "rmsprop-eope".
    """

    n_samples: int = 64
    langevin_steps: int = 20
    step_size: float = 0.5
    damping: float = 0.1

    sampler_type = RMSPropEnergySampler

    def _sampler_options(self):
        return {
            "num_steps": self.langevin_steps,
            "step_size": self.step_size,
            "damping": self.damping,
        }


@baseline
class DeepEnergyOPE(_EnergyOPE):
    """Energy OPE with a generator: ``1/2 (L+ + gamma * L- + (1 - eps) * L0_E)``, eq. (11).

    ``L0_E`` (eq. (10)) on samples of a generator network trained, alternately with the
    classifier, to match ``P_f`` (eq. (9)) by ``min KL(P_G || P_f)`` with a nearest-neighbour
    entropy estimate (``GeneratorEnergySampler``); ``log Z`` from uniform samples over
    ``Omega`` at every step. Score ``-logit f(x)``.

    Args:
        n_samples: generator samples per step.
        latent_units: width of the generator's noise input.
        generator_hidden_units: hidden widths of the generator.
        generator_learning_rate: Adam learning rate of the generator.
        entropy_weight: weight of the generator's entropy term.
        generator_steps: generator steps per classifier step.
        normaliser_samples, hidden_units, epochs, batch_size, learning_rate, gamma, eps,
            box_margin, verbose, contamination, random_state, categorical_columns,
            log_transform: see ``HMCEnergyOPE``.

    Attributes:
        classifier_, history_: see ``HMCEnergyOPE``; ``trainer_``: the classifier's trainer
        (holds the generator).

    References:
        As ``HMCEnergyOPE``; section 4 of Ryzhikov et al. calls it "deep-eope".
    """

    latent_units: int = 16
    generator_hidden_units: tuple[int, ...] = (64,)
    generator_learning_rate: float = 1e-2
    entropy_weight: float = 1.0
    generator_steps: int = 5

    sampler_type = GeneratorEnergySampler

    def _sampler_options(self):
        return {
            "latent_units": self.latent_units,
            "hidden_units": tuple(self.generator_hidden_units),
            "learning_rate": self.generator_learning_rate,
            "entropy_weight": self.entropy_weight,
            "num_steps": self.generator_steps,
        }
