"""Gradient-boosted trees as a Keras layer: a classifier of eq. (6) that scores in TensorFlow.

Scikit-learn's ``HistGradientBoostingClassifier`` fits the trees (``tfp_flowad.training.trees``);
``BoostedTrees`` holds them as flat arrays and walks every tree for a batch of rows at once, so
the fitted classifier saves, loads and exports like the MLP (no scikit-learn at scoring time).
"""

import keras
import numpy as np
import tensorflow as tf

__all__ = ["BoostedTrees", "boosted_trees_network", "tree_arrays"]


def tree_arrays(model) -> dict[str, np.ndarray]:
    """The trees of a fitted binary ``HistGradientBoostingClassifier`` as flat arrays.

    Trees are ordered deepest first and their nodes renumbered tree by tree in breadth-first
    order, so that every split node's right child directly follows its left child; a row at
    node ``n`` moves to ``left[n] + (x[feature[n]] > threshold[n])``. A leaf points to itself
    with an infinite threshold, so walking ``depth`` steps from the roots ends every row at its
    leaf in every tree. Thresholds are rounded down to float32, which keeps ``x <= t`` exact
    for float32 ``x``.

    Returns:
        ``feature`` (int32), ``threshold`` (float32), ``left`` (int32), ``value`` (float32,
        the leaf values, 0 at split nodes), ``roots`` (int32, one per tree), ``bias`` (float32,
        ``[1]``: the baseline logit), ``depth`` (the deepest leaf's depth) and
        ``active_trees`` (``[depth]`` ints: step ``s`` of the walk moves only the first
        ``active_trees[s]`` trees, those deeper than ``s``; the others sit at their leaves).
    """
    predictors = getattr(model, "_predictors", None)
    if predictors is None or any(len(per_class) != 1 for per_class in predictors):
        raise ValueError(
            "model must be a fitted binary HistGradientBoostingClassifier; got "
            f"{type(model).__name__}"
        )
    trees = sorted((p.nodes for (p,) in predictors), key=lambda n: -int(n["depth"].max()))
    tree_depths = np.array([int(nodes["depth"].max()) for nodes in trees])
    feature, threshold, left, value, roots = [], [], [], [], []
    for nodes in trees:
        if nodes["is_categorical"].any():
            raise ValueError("categorical splits are not supported; pass numeric features")
        roots.append(len(feature))
        order = [0]  # breadth-first: children appended in pairs
        new_id = {0: roots[-1]}
        for old in order:
            node = nodes[old]
            if node["is_leaf"]:
                feature.append(0)
                threshold.append(np.inf)
                left.append(new_id[old])
                value.append(float(node["value"]))
                continue
            for child in (int(node["left"]), int(node["right"])):
                new_id[child] = roots[-1] + len(order)
                order.append(child)
            feature.append(int(node["feature_idx"]))
            threshold.append(float(node["num_threshold"]))
            left.append(new_id[int(node["left"])])
            value.append(0.0)
    threshold = np.asarray(threshold)
    rounded = threshold.astype(np.float32)
    above = rounded.astype(np.float64) > threshold
    rounded[above] = np.nextafter(rounded[above], np.float32(-np.inf))
    return {
        "feature": np.asarray(feature, dtype=np.int32),
        "threshold": rounded,
        "left": np.asarray(left, dtype=np.int32),
        "value": np.asarray(value, dtype=np.float32),
        "roots": np.asarray(roots, dtype=np.int32),
        "bias": np.asarray(model._baseline_prediction, dtype=np.float32).reshape(1),
        "depth": int(tree_depths[0]),
        "active_trees": [int((tree_depths > step).sum()) for step in range(tree_depths[0])],
    }


@keras.saving.register_keras_serializable(package="tfp_flowad")
class BoostedTrees(keras.layers.Layer):
    """``logit(x) = b + sum_t v_t(leaf_t(x))``: a sum of regression trees, ``[batch, D] ->
    [batch, 1]``.

    Every tree is walked for the whole batch at once: ``depth`` steps of
    ``n <- left[n] + (x[feature[n]] > threshold[n])`` from the roots (``tree_arrays`` gives the
    arrays), then the leaves' values are summed. Step ``s`` moves only the trees still above
    their deepest leaf (the first ``active_trees[s]``; the trees come deepest first), so a
    shallow tree costs its own depth, not the deepest one's. The arrays are non-trainable
    weights, so the layer saves with Keras and freezes into an exported graph like any other.

    Args:
        num_nodes: nodes of all trees together.
        num_trees: number of trees.
        depth: the deepest leaf's depth (steps of the walk).
        active_trees: trees moved at each step (``depth`` non-increasing ints); ``None``
            moves all at every step.
    """

    def __init__(self, num_nodes: int, num_trees: int, depth: int, active_trees=None, **kwargs):
        super().__init__(**kwargs)
        self.num_nodes = int(num_nodes)
        self.num_trees = int(num_trees)
        self.depth = int(depth)
        if active_trees is None:
            active_trees = [self.num_trees] * self.depth
        self.active_trees = [int(count) for count in active_trees]
        counts = np.asarray(self.active_trees)
        if len(counts) != self.depth or not (
            (counts >= 1).all()
            and (counts <= self.num_trees).all()
            and (np.diff(counts) <= 0).all()
        ):
            raise ValueError(
                f"active_trees must be {self.depth} non-increasing counts in "
                f"[1, {self.num_trees}]; got {active_trees!r}"
            )

    def build(self, input_shape):
        def array(name, shape, dtype):
            return self.add_weight(
                name=name, shape=shape, dtype=dtype, initializer="zeros", trainable=False
            )

        # One row per node, (feature, threshold's float32 bits, left child): a step of the
        # walk gathers one row instead of three values.
        self.nodes = array("nodes", (self.num_nodes, 3), "int32")
        self.value = array("value", (self.num_nodes,), "float32")
        self.roots = array("roots", (self.num_trees,), "int32")
        self.bias = array("bias", (1,), "float32")

    def call(self, x):
        x = tf.cast(x, "float32")
        rows, width = tf.shape(x)[0], tf.shape(x)[1]
        flat_x = tf.reshape(x, [-1])
        row_start = (tf.range(rows) * width)[:, tf.newaxis]
        node = tf.tile(self.roots[tf.newaxis], [rows, 1])
        leaf_values, walking = [], self.num_trees
        for active in self.active_trees:
            if active < walking:  # the trees from ``active`` on have reached their leaves
                leaf_values.append(tf.gather(self.value, node[:, active:]))
                node, walking = node[:, :active], active
            feature, threshold_bits, left = tf.unstack(tf.gather(self.nodes, node), axis=-1)
            values = tf.gather(flat_x, row_start + feature)
            node = left + tf.cast(values > tf.bitcast(threshold_bits, "float32"), "int32")
        leaf_values.append(tf.gather(self.value, node))
        return tf.reduce_sum(tf.concat(leaf_values, -1), -1, keepdims=True) + self.bias

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_nodes=self.num_nodes,
            num_trees=self.num_trees,
            depth=self.depth,
            active_trees=self.active_trees,
        )
        return config


def boosted_trees_network(model, input_dim: int, name: str = "boosted_trees") -> keras.Model:
    """A Keras model ``[batch, input_dim] -> [batch, 1]`` computing the decision function of a
    fitted binary ``HistGradientBoostingClassifier`` (``BoostedTrees`` with its arrays)."""
    arrays = tree_arrays(model)
    layer = BoostedTrees(
        len(arrays["feature"]), len(arrays["roots"]), arrays["depth"], arrays["active_trees"]
    )
    network = keras.Sequential([keras.Input((input_dim,)), layer], name=name)
    nodes = np.stack([arrays["feature"], arrays["threshold"].view(np.int32), arrays["left"]], 1)
    layer.set_weights([nodes, arrays["value"], arrays["roots"], arrays["bias"]])
    return network
