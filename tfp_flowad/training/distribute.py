"""Training under ``tf.distribute``: how many replicas train, what share of a global batch each
takes, and the sums across replicas that make a step's loss the global batch's mean.

``NFADetector.fit`` run inside ``strategy.scope()`` builds every network there, so Keras trains
each TF stage with that strategy: ``tf.distribute.MirroredStrategy`` (devices of one machine)
or ``tf.distribute.MultiWorkerMirroredStrategy`` (machines named by ``TF_CONFIG``). Keras 3 on
TensorFlow then runs ``train_step`` once per replica on that replica's slice of the global
batch, and its optimizer *sums* the replicas' gradients before the update; it applies
``global_clipnorm`` / ``clipnorm`` / ``clipvalue`` on each replica before that sum.

The contract of a ``train_step`` here. Replica ``r`` of ``N`` differentiates its contribution to
the global loss, ``c_r = m_r * w_r / W``, where ``m_r`` is its mean of a term over its own
``w_r`` rows (or total weight) and ``W = sum_r w_r`` (``share``); then ``sum_r c_r`` is the mean
over the global batch and the summed gradient is that mean's gradient, as on one device. A term
drawn in equal counts on every replica (the samples of a data-free stage, ``replica_rows`` each)
has ``w_r / W = 1 / N``. Logged values are ``sum_over_replicas(c_r)``: the global mean, the same
on every replica. ``StepModel.apply_finite_step`` sums the gradients itself where the optimizer
clips, so that the clip sees the global gradient, and skips a step on every replica when any
replica's loss or gradient is not finite. Random draws inside a step (``normal``, ``uniform``)
fold the replica's id into the seed, so replicas draw different samples; the seed generators
advance in step on every replica.

With one replica (no strategy, or a strategy of one device) every function here returns its
input or the plain Keras draw, and a step traces the same graph as a model that never calls them:
the default fit is unchanged to the last bit.
"""

import math

import keras
import tensorflow as tf

__all__ = [
    "replicas",
    "in_replicas",
    "replica_rows",
    "sum_over_replicas",
    "share",
    "contribution",
    "clip_gradients",
    "normal",
    "uniform",
    "multi_worker",
    "loggable",
    "make_strategy",
    "is_chief",
    "STRATEGIES",
]

#: the names ``make_strategy`` (and ``tfp-flowad fit --strategy``) takes.
STRATEGIES = ("none", "mirrored", "multi-worker")


def replicas() -> int:
    """``N``: the replicas of the strategy in scope (1 without one)."""
    return int(tf.distribute.get_strategy().num_replicas_in_sync)


def in_replicas() -> bool:
    """Whether this runs in one of ``N > 1`` replicas (inside ``strategy.run``, as a
    ``train_step`` does), where the functions below sum across replicas."""
    return replicas() > 1 and tf.distribute.in_cross_replica_context() is False


def replica_rows(rows: int) -> int:
    """``ceil(rows / N)``: the rows each replica draws of a global batch of ``rows`` in a stage
    that reads no data (``N * ceil(rows / N)`` rows in all, ``rows`` when ``N`` divides it)."""
    return max(1, math.ceil(int(rows) / replicas()))


def sum_over_replicas(value):
    """``sum_r value_r`` across the replicas (a tensor or a list of them); ``value`` itself
    outside replicas."""
    if not in_replicas():
        return value
    return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, value)


def share(local_total) -> tf.Tensor:
    """``w_r / W``: this replica's part of the global batch's rows (or total weight), ``W =
    sum_r w_r``; 0 where ``W`` is 0. Multiply a replica's mean by it to get its contribution to
    the global mean."""
    local_total = tf.cast(local_total, tf.float32)
    return tf.math.divide_no_nan(local_total, sum_over_replicas(local_total))


def contribution(mean, local_total) -> tf.Tensor:
    """``c_r = m_r * w_r / W``: this replica's ``mean`` over its ``local_total`` rows (or
    weight) as its part of the global batch's mean; 0 from a replica with no rows (whose mean
    is NaN or 0)."""
    local_total = tf.cast(local_total, mean.dtype)
    part = tf.cast(share(local_total), mean.dtype)
    return tf.where(local_total > 0, mean, tf.zeros_like(mean)) * part


def clip_gradients(optimizer: keras.optimizers.Optimizer, grads: list) -> list:
    """``grads`` clipped as ``optimizer`` clips (``global_clipnorm``, else ``clipnorm`` per
    tensor, else ``clipvalue``), for gradients already summed across replicas."""
    present = [g for g in grads if g is not None]
    if optimizer.global_clipnorm:
        clipped = iter(tf.clip_by_global_norm(present, optimizer.global_clipnorm)[0])
        return [None if g is None else next(clipped) for g in grads]
    if optimizer.clipnorm:
        return [None if g is None else tf.clip_by_norm(g, optimizer.clipnorm) for g in grads]
    if optimizer.clipvalue:
        v = optimizer.clipvalue
        return [None if g is None else tf.clip_by_value(g, -v, v) for g in grads]
    return grads


def _replica_seed(seed) -> tf.Tensor:
    """A stateless seed drawn from ``seed`` (a ``keras.random.SeedGenerator`` or an int) with
    this replica's id folded in."""
    drawn = seed.next() if isinstance(seed, keras.random.SeedGenerator) else [int(seed), 0]
    replica = tf.distribute.get_replica_context().replica_id_in_sync_group
    return tf.random.experimental.stateless_fold_in(
        tf.cast(drawn, tf.int64), tf.cast(replica, tf.int64)
    )


def normal(shape, dtype, seed) -> tf.Tensor:
    """``keras.random.normal(shape, dtype=dtype, seed=seed)``; inside replicas, each replica's
    own draw (``seed`` advances once, as on one device)."""
    if not in_replicas():
        return keras.random.normal(shape, dtype=dtype, seed=seed)
    return tf.random.stateless_normal(shape, _replica_seed(seed), dtype=dtype)


def uniform(shape, dtype, seed, minval=0.0, maxval=1.0) -> tf.Tensor:
    """``keras.random.uniform(shape, minval, maxval, dtype=dtype, seed=seed)``; inside replicas,
    each replica's own draw."""
    if not in_replicas():
        return keras.random.uniform(shape, minval=minval, maxval=maxval, dtype=dtype, seed=seed)
    return tf.random.stateless_uniform(
        shape, _replica_seed(seed), minval=minval, maxval=maxval, dtype=dtype
    )


def multi_worker() -> bool:
    """Whether the strategy in scope spans several workers (a ``TF_CONFIG`` cluster)."""
    resolver = getattr(tf.distribute.get_strategy(), "cluster_resolver", None)
    return resolver is not None and len(resolver.cluster_spec().as_dict()) > 0


def loggable(logs: dict) -> dict:
    """A ``train_step``'s ``logs`` as Keras can reduce them: across workers, each a ``[1]``
    tensor; else untouched.

    Keras 3 reduces a step's logs across the workers of a ``MultiWorkerMirroredStrategy`` by
    ``strategy.reduce("MEAN", value, axis=0)``, which fails on a scalar: "ValueError: Invalid
    reduction dimension 0 for input with 0 dimensions". On ``[1]`` it is the mean over the
    replicas. (Each epoch's logs are the metrics' results, scalars again.)
    """
    if not multi_worker():
        return logs
    return {name: tf.reshape(value, [1]) for name, value in logs.items()}


def make_strategy(name: str) -> tf.distribute.Strategy | None:
    """The strategy called ``name`` (one of ``STRATEGIES``): ``None`` for ``"none"``,
    ``MirroredStrategy()`` over every local GPU (else the CPU), or
    ``MultiWorkerMirroredStrategy()``, which reads the cluster from ``TF_CONFIG``. Create it
    before anything else runs TensorFlow ops (a multi-worker one must)."""
    if name == "none":
        return None
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}; got {name!r}")


def is_chief(strategy: tf.distribute.Strategy | None) -> bool:
    """Whether this process writes the results: always, but in a multi-worker cluster only the
    ``chief`` task (or, with none, worker 0)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief
