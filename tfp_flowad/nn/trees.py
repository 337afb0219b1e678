"""Gradient-boosted trees as a Keras layer: a classifier of eq. (6) that scores in TensorFlow.

Scikit-learn's ``HistGradientBoostingClassifier`` fits the trees (``tfp_flowad.training.trees``);
``BoostedTrees`` holds them as dense arrays and evaluates every split of every tree for a batch
of rows with two matrix products, so the fitted classifier saves, loads and exports like the MLP
(no scikit-learn at scoring time).
"""

import keras
import numpy as np
import tensorflow as tf

from tfp_flowad.nn.chunks import map_row_chunks

__all__ = ["BoostedTrees", "boosted_trees_network", "tree_arrays"]

ROWS_PER_CHUNK = 256  # rows scored at once: bounds the [trees, leaves, rows] intermediates


def tree_arrays(model) -> dict[str, np.ndarray]:
    """The trees of a fitted binary ``HistGradientBoostingClassifier`` as dense arrays.

    Tree ``t`` has split nodes ``s`` (padded to the largest tree's count) and leaves ``l``
    (padded likewise). A row goes right at a split when ``x[feature[t, s]] > threshold[t, s]``
    (``c_ts`` = 1, else 0) and reaches leaf ``l`` exactly when every split on the leaf's path
    sends it the path's way. With ``paths[t, l, s]`` = +1 where that path turns right, -1 where
    it turns left and 0 off the path, ``sum_s paths[t, l, s] c_ts`` equals the path's number of
    right turns ``r_tl`` at the reached leaf and is smaller at every other, so
    ``relu(sum_s paths[t, l, s] c_ts + leaf_offset[t, l])`` with ``leaf_offset = 1 - r_tl`` is 1
    at the reached leaf and 0 elsewhere (integers, exact in float32). Padded splits never fire
    (infinite threshold, zero path entries); padded leaves have a zero offset and value.
    Thresholds are rounded down to float32, which keeps ``x <= t`` exact for float32 ``x``.

    Returns:
        ``feature`` (int32, ``[trees, splits]``), ``threshold`` (float32, ``[trees, splits]``),
        ``paths`` (float32, ``[trees, leaves, splits]``), ``leaf_offset`` and ``value``
        (float32, ``[trees, leaves]``) and ``bias`` (float32, ``[1]``: the baseline logit).
    """
    predictors = getattr(model, "_predictors", None)
    if predictors is None or any(len(per_class) != 1 for per_class in predictors):
        raise ValueError(
            "model must be a fitted binary HistGradientBoostingClassifier; got "
            f"{type(model).__name__}"
        )
    trees = [predictor.nodes for (predictor,) in predictors]
    if any(nodes["is_categorical"].any() for nodes in trees):
        raise ValueError("categorical splits are not supported; pass numeric features")
    num_splits = max(1, max(int((nodes["is_leaf"] == 0).sum()) for nodes in trees))
    num_leaves = max(int(nodes["is_leaf"].sum()) for nodes in trees)
    shape = (len(trees), num_splits)
    feature, threshold = np.zeros(shape, np.int32), np.full(shape, np.inf)
    paths = np.zeros((len(trees), num_leaves, num_splits), np.float32)
    leaf_offset = np.zeros((len(trees), num_leaves), np.float32)
    value = np.zeros((len(trees), num_leaves), np.float32)
    for t, nodes in enumerate(trees):
        split_ids, leaf_ids = {}, {}
        for node_id, node in enumerate(nodes):
            ids = leaf_ids if node["is_leaf"] else split_ids
            ids[node_id] = len(ids)
        for node_id, s in split_ids.items():
            feature[t, s] = nodes[node_id]["feature_idx"]
            threshold[t, s] = nodes[node_id]["num_threshold"]
        turns = {0: []}  # node -> its path from the root: [(split, +1 right / -1 left)]
        stack = [0]
        while stack:
            node_id = stack.pop()
            node = nodes[node_id]
            if node["is_leaf"]:
                leaf = leaf_ids[node_id]
                for s, turn in turns[node_id]:
                    paths[t, leaf, s] = turn
                leaf_offset[t, leaf] = 1 - sum(turn > 0 for _, turn in turns[node_id])
                value[t, leaf] = node["value"]
                continue
            for child, turn in ((int(node["left"]), -1), (int(node["right"]), 1)):
                turns[child] = turns[node_id] + [(split_ids[node_id], turn)]
                stack.append(child)
    rounded = threshold.astype(np.float32)
    above = rounded.astype(np.float64) > threshold
    rounded[above] = np.nextafter(rounded[above], np.float32(-np.inf))
    return {
        "feature": feature,
        "threshold": rounded,
        "paths": paths,
        "leaf_offset": leaf_offset,
        "value": value,
        "bias": np.asarray(model._baseline_prediction, dtype=np.float32).reshape(1),
    }


@keras.saving.register_keras_serializable(package="tfp_flowad")
class BoostedTrees(keras.layers.Layer):
    """``logit(x) = b + sum_t v_t(leaf_t(x))``: a sum of regression trees, ``[batch, D] ->
    [batch, 1]``.

    All splits are evaluated at once, ``c_ts = [x[feature[t, s]] > threshold[t, s]]``, then
    each tree's leaf indicator ``relu(paths_t c_t + leaf_offset_t)`` (one batched matrix
    product; ``tree_arrays`` derives why it is 1 at the reached leaf and 0 elsewhere) is
    weighted by the leaf values (a second one) and summed over the trees. Rows go through in
    chunks of ``ROWS_PER_CHUNK``. The arrays are non-trainable weights, so the layer saves with
    Keras and freezes into an exported graph like any other.

    Args:
        num_trees: number of trees.
        num_splits: split nodes per tree (the largest tree's; smaller ones padded).
        num_leaves: leaves per tree (likewise).
    """

    def __init__(self, num_trees: int, num_splits: int, num_leaves: int, **kwargs):
        super().__init__(**kwargs)
        for name, count in (
            ("num_trees", num_trees),
            ("num_splits", num_splits),
            ("num_leaves", num_leaves),
        ):
            if int(count) < 1:
                raise ValueError(f"{name} must be a positive count; got {count!r}")
        self.num_trees = int(num_trees)
        self.num_splits = int(num_splits)
        self.num_leaves = int(num_leaves)

    def build(self, input_shape):
        def array(name, shape, dtype="float32"):
            return self.add_weight(
                name=name, shape=shape, dtype=dtype, initializer="zeros", trainable=False
            )

        trees, splits, leaves = self.num_trees, self.num_splits, self.num_leaves
        self.feature = array("feature", (trees * splits,), "int32")
        self.threshold = array("threshold", (trees, splits, 1))
        self.paths = array("paths", (trees, leaves, splits))
        self.leaf_offset = array("leaf_offset", (trees, leaves, 1))
        self.value = array("value", (trees, 1, leaves))
        self.bias = array("bias", (1,))

    def _chunk_logit(self, x):
        """``[rows, D] -> [rows]``, every array laid out ``[trees, ..., rows]``."""
        split_values = tf.gather(tf.transpose(x), self.feature)
        split_values = tf.reshape(split_values, [self.num_trees, self.num_splits, -1])
        goes_right = tf.cast(split_values > self.threshold, "float32")
        reached = tf.nn.relu(tf.matmul(self.paths, goes_right) + self.leaf_offset)
        return tf.reduce_sum(tf.matmul(self.value, reached), [0, 1]) + self.bias

    def call(self, x):
        logits = map_row_chunks(self._chunk_logit, tf.cast(x, "float32"), ROWS_PER_CHUNK)
        return tf.reshape(logits, [-1, 1])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1)

    @classmethod
    def from_config(cls, config):
        if "num_nodes" in config:  # the node-by-node layout of tfp_flowad before commit 6219abb
            raise ValueError(
                "this BoostedTrees layer was saved by an older tfp_flowad, which walked the trees "
                "node by node (config keys num_nodes, depth); refit the detector with this version"
            )
        return super().from_config(config)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_trees=self.num_trees, num_splits=self.num_splits, num_leaves=self.num_leaves
        )
        return config


def boosted_trees_network(model, input_dim: int, name: str = "boosted_trees") -> keras.Model:
    """A Keras model ``[batch, input_dim] -> [batch, 1]`` computing the decision function of a
    fitted binary ``HistGradientBoostingClassifier`` (``BoostedTrees`` with its arrays)."""
    arrays = tree_arrays(model)
    num_trees, num_leaves, num_splits = arrays["paths"].shape
    layer = BoostedTrees(num_trees, num_splits, num_leaves)
    network = keras.Sequential([keras.Input((input_dim,)), layer], name=name)
    layer.set_weights(
        [
            arrays["feature"].reshape(-1),
            arrays["threshold"][..., None],
            arrays["paths"],
            arrays["leaf_offset"][..., None],
            arrays["value"][:, None, :],
            arrays["bias"],
        ]
    )
    return network
