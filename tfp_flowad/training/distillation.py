"""Probability distillation of a MAF teacher into an IAF student, eq. (34)-(36)."""

import keras
import tensorflow as tf

from tfp_flowad.losses import distillation_kl
from tfp_flowad.training import distribute
from tfp_flowad.training.base import StepModel

__all__ = ["Distiller", "distillation_steps"]


@keras.saving.register_keras_serializable(package="tfp_flowad")
class Distiller(StepModel):
    """Fits a student flow to a frozen teacher: ``min KL(P_S || P_T)``, eq. (34).

    Each step draws ``x_i = f_S(z_i)`` from the student with ``log P_S(x_i)`` (one fast pass of
    an IAF) and scores them under the teacher, ``log P_T(x_i)`` (one fast pass of a MAF's
    inverse), then descends ``mean(log P_S - log P_T)`` in the student's weights only. No
    training data is used; the student never inverts. Logs ``kl``.

    Args:
        teacher: the fitted ``Flow`` (frozen here).
        student: the ``Flow`` to fit (needs a fast ``sample_and_log_prob``).
        batch_size: student samples per step.
    """

    def __init__(self, teacher, student, batch_size: int = 256, **kwargs):
        super().__init__(**kwargs)
        if teacher.event_size != student.event_size:
            raise ValueError(
                "teacher and student must have the same event_size; got "
                f"{teacher.event_size} and {student.event_size}"
            )
        self.teacher = teacher
        self.student = student
        self.batch_size = int(batch_size)
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.build()

    @property
    def metrics(self):
        return [self.kl_tracker]

    def build(self, input_shape=None):
        """Nothing to create: the teacher and the student arrive built (so Keras, which builds
        a model before a fit under a strategy, needs no ``call``)."""

    def _kl(self) -> tf.Tensor:
        """The KL estimate on ``batch_size`` student samples; under ``N`` replicas, this
        replica's part of it: its own ``ceil(batch_size / N)`` samples' mean, divided by ``N``
        (``tfp_flowad.training.distribute``)."""
        x, student_log_prob = self.student.sample_and_log_prob(
            distribute.replica_rows(self.batch_size)
        )
        kl = distillation_kl(student_log_prob, self.teacher.log_prob(x))
        if distribute.in_replicas():
            kl = kl / distribute.replicas()
        return kl

    @property
    def trained_variables(self) -> list:
        return self.student.trainable_variables

    def train_step(self, data):
        """One step on the KL estimate; a step whose estimate or gradient is not finite (a
        student sample where the teacher's inverse overflows) is skipped, and left out of the
        logged ``kl``."""
        variables = self.trained_variables
        with tf.GradientTape() as tape:
            kl = self._kl()
        weight = self.apply_finite_step(kl, tape.gradient(kl, variables), variables)
        kl = distribute.sum_over_replicas(kl)
        self.kl_tracker.update_state(tf.where(weight > 0, kl, 0.0), sample_weight=weight)
        return distribute.loggable({"kl": self.kl_tracker.result()})

    def test_step(self, data):
        self.kl_tracker.update_state(distribute.sum_over_replicas(self._kl()))
        return distribute.loggable({"kl": self.kl_tracker.result()})

    def get_config(self):
        config = super().get_config()
        config.update(
            teacher=keras.saving.serialize_keras_object(self.teacher),
            student=keras.saving.serialize_keras_object(self.student),
            batch_size=self.batch_size,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["teacher"] = keras.saving.deserialize_keras_object(config["teacher"])
        config["student"] = keras.saving.deserialize_keras_object(config["student"])
        return cls(**config)


def distillation_steps(steps: int) -> tf.data.Dataset:
    """A dataset of ``steps`` dummy elements: ``Distiller.fit`` needs no data, only a step count.

    Each element is a scalar; under a strategy of ``N > 1`` replicas a batch of ``N`` zeros, so
    that each replica gets a batch of one (Keras splits every element along its first axis, and
    a replica left with no rows fails the step).
    """
    n = distribute.replicas()
    return tf.data.Dataset.from_tensors(tf.zeros(() if n == 1 else (n,))).repeat(steps)
