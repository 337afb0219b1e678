"""Feature handling learned from the training rows, as a Keras layer that takes raw columns.

``TabularEncoder`` maps a table of numeric and categorical (string) columns to a float matrix:

* numeric column ``c``: ``(t(x) - mean_c) / std_c`` with ``t = log1p`` for heavy-tailed
  non-negative columns (chosen on the training rows) and ``t = identity`` otherwise;
* categorical column: one-hot over the vocabulary seen in training; an unseen value encodes as
  all zeros (the "unseen" bucket).

The same layer runs in ``NFADetector.decision_function`` and inside the exported SavedModel, so
a client sends records as they come. For flow training, ``dequantise`` adds uniform noise of
one unit to discrete columns (integer-valued numeric and one-hot) in raw space, so that the
flow's likelihood stays finite (Uria et al. 2013; Theis et al. 2016).
"""

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

__all__ = ["TabularEncoder", "as_frame"]


def as_frame(X, name: str = "X", columns: list[str] | None = None) -> pd.DataFrame:
    """``X`` as a DataFrame; a 2-D array gets columns ``x0 .. x{D-1}`` (or ``columns``).

    Raises:
        ValueError: ``X`` is not 2-D, has no rows, or lacks / adds columns versus ``columns``.
    """
    if isinstance(X, pd.DataFrame):
        frame = X if all(isinstance(c, str) for c in X.columns) else X.rename(columns=str)
    else:
        array = np.asarray(X)
        if array.ndim != 2:
            raise ValueError(f"{name} must be 2-D [n_rows, n_features]; got shape {array.shape}")
        names = columns if columns is not None and len(columns) == array.shape[1] else None
        frame = pd.DataFrame(array, columns=names or [f"x{i}" for i in range(array.shape[1])])
    if len(frame) == 0:
        raise ValueError(f"{name} has no rows; got shape {frame.shape}")
    if columns is not None:
        missing = [c for c in columns if c not in frame.columns]
        unknown = [c for c in frame.columns if c not in set(columns)]
        if missing or unknown:
            raise ValueError(
                f"{name} must have the training columns; missing {missing[:10]}, "
                f"unknown {unknown[:10]} (got {frame.shape[1]} columns)"
            )
    return frame


@keras.saving.register_keras_serializable(package="tfp_flowad")
class TabularEncoder(keras.layers.Layer):
    """Raw columns -> ``[batch, D]`` float features (see the module docstring for the maps).

    Build it with ``TabularEncoder.fit(X)``; the constructor takes the learned state (that is
    what ``get_config`` stores).

    Args:
        numeric_columns: names of numeric columns, in output order.
        categorical_columns: names of categorical columns, one-hot blocks after the numeric ones.
        vocabularies: one list of strings per categorical column.
        log_columns: numeric columns that get ``log1p`` before scaling.
        integer_columns: numeric columns whose training values are all integers (dequantised).
        means: per numeric column, mean of ``t(x)`` on the training rows.
        stds: per numeric column, std of ``t(x)`` (1 where the column is constant).
    """

    def __init__(
        self,
        numeric_columns=(),
        categorical_columns=(),
        vocabularies=(),
        log_columns=(),
        integer_columns=(),
        means=(),
        stds=(),
        **kwargs,
    ):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.numeric_columns = [str(c) for c in numeric_columns]
        self.categorical_columns = [str(c) for c in categorical_columns]
        self.vocabularies = [[str(v) for v in vocab] for vocab in vocabularies]
        self.log_columns = [str(c) for c in log_columns]
        self.integer_columns = [str(c) for c in integer_columns]
        self.means = [float(m) for m in means]
        self.stds = [float(s) for s in stds]
        log_set = set(self.log_columns)
        self._log_mask = np.array(
            [c in log_set for c in self.numeric_columns] + [False] * self.n_onehot, bool
        )
        self._scale = np.concatenate([self.stds, np.ones(self.n_onehot)]).astype(np.float32)
        self._shift = np.concatenate([self.means, np.zeros(self.n_onehot)]).astype(np.float32)
        integer_set = set(self.integer_columns)
        self.discrete_mask = np.array(
            [c in integer_set for c in self.numeric_columns] + [True] * self.n_onehot, bool
        )
        self._vocabulary_hashes = [_vocabulary_fingerprints(v) for v in self.vocabularies]

    # ------------------------------------------------------------------------- learning
    @classmethod
    def fit(
        cls,
        X,
        categorical_columns: list[str] | str = "auto",
        log_transform: str | bool = "auto",
        max_categories: int = 200,
    ) -> "TabularEncoder":
        """Learns the encoding from training rows ``X`` (DataFrame or 2-D array).

        Args:
            X: training rows.
            categorical_columns: names, or ``"auto"``: columns of object, string, category or
                bool dtype.
            log_transform: ``"auto"`` applies ``log1p`` to numeric columns with min >= 0,
                max > 1 and skewness > 2; ``True`` to every non-negative column; ``False`` to none.
            max_categories: keep at most this many most frequent values per categorical column.

        Raises:
            ValueError: unknown categorical column names, NaN or infinite numeric values.
        """
        frame = as_frame(X, "X")
        if categorical_columns == "auto":
            categorical = [
                c
                for c in frame.columns
                if frame[c].dtype == object
                or isinstance(frame[c].dtype, pd.CategoricalDtype | pd.StringDtype)
                or frame[c].dtype == bool
            ]
        else:
            categorical = [str(c) for c in categorical_columns]
            unknown = [c for c in categorical if c not in frame.columns]
            if unknown:
                raise ValueError(
                    f"categorical_columns names columns that X lacks: {unknown}; "
                    f"X has {list(frame.columns)[:20]}"
                )
        numeric = [c for c in frame.columns if c not in set(categorical)]
        values = _numeric_values(frame, numeric, "X")
        log_columns, integer_columns, means, stds = [], [], [], []
        for index, column in enumerate(numeric):
            col = values[:, index]
            if np.all(col == np.round(col)):
                integer_columns.append(column)
            if _wants_log(col, log_transform):
                log_columns.append(column)
                col = np.log1p(col)
            means.append(float(col.mean()))
            std = float(col.std())
            stds.append(std if std > 1e-12 else 1.0)
        vocabularies = []
        for column in categorical:
            counts = frame[column].astype(str).value_counts()
            vocabularies.append(sorted(counts.index[:max_categories].tolist()))
        return cls(numeric, categorical, vocabularies, log_columns, integer_columns, means, stds)

    # ------------------------------------------------------------------------- properties
    @property
    def n_onehot(self) -> int:
        return sum(len(v) for v in self.vocabularies)

    @property
    def input_columns(self) -> list[str]:
        return self.numeric_columns + self.categorical_columns

    @property
    def output_dim(self) -> int:
        return len(self.numeric_columns) + self.n_onehot

    @property
    def feature_names(self) -> list[str]:
        names = list(self.numeric_columns)
        for column, vocab in zip(self.categorical_columns, self.vocabularies, strict=True):
            names += [f"{column}={value}" for value in vocab]
        return names

    # ------------------------------------------------------------------------- encoding
    def raw_matrix(self, X, name: str = "X") -> np.ndarray:
        """``[n, D]`` float32: raw numeric values, then the one-hot blocks (no scaling yet)."""
        frame = as_frame(X, name, self.input_columns)
        blocks = [_numeric_values(frame, self.numeric_columns, name)]
        for column, vocab in zip(self.categorical_columns, self.vocabularies, strict=True):
            codes = pd.Categorical(frame[column].astype(str), categories=vocab).codes
            onehot = np.zeros((len(frame), len(vocab)), np.float32)
            known = codes >= 0
            onehot[np.nonzero(known)[0], codes[known]] = 1.0
            blocks.append(onehot)
        return np.concatenate(blocks, axis=1).astype(np.float32)

    def finish(self, raw: tf.Tensor) -> tf.Tensor:
        """``(t(raw) - shift) / scale`` column-wise, ``t = log1p`` on the log columns."""
        raw = tf.convert_to_tensor(raw, tf.float32)
        mask = tf.constant(self._log_mask)
        # log1p of the raw value clipped at -0.5: dequantisation noise may dip below 0.
        logged = tf.where(mask, tf.math.log1p(tf.maximum(raw, -0.5)), raw)
        return (logged - tf.constant(self._shift)) / tf.constant(self._scale)

    def unfinish(self, features: tf.Tensor) -> tf.Tensor:
        """The inverse of ``finish``: raw values ``t^{-1}(features * scale + shift)``."""
        logged = tf.convert_to_tensor(features, tf.float32) * tf.constant(
            self._scale
        ) + tf.constant(self._shift)
        # expm1 is clipped so far-off generated rows stay finite.
        return tf.where(
            tf.constant(self._log_mask), tf.math.expm1(tf.minimum(logged, 30.0)), logged
        )

    def requantise(self, features: tf.Tensor) -> tf.Tensor:
        """Rounds discrete columns of encoded ``features`` back onto their grid (in raw space).

        Generated rows (a flow fitted to dequantised data) then look like real encoded rows:
        integers stay integers and one-hot columns are 0 or 1, so a classifier cannot tell
        real from generated rows by the dequantisation noise alone.
        """
        raw = self.unfinish(features)
        rounded = tf.where(tf.constant(self.discrete_mask), tf.round(raw), raw)
        return self.finish(rounded)

    def dequantise(self, raw: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """``raw + u * discrete_mask``, ``u ~ U(-1/2, 1/2)``; ``seed`` is a stateless ``[2]`` seed."""
        noise = tf.random.stateless_uniform(tf.shape(raw), seed, -0.5, 0.5, dtype=raw.dtype)
        return raw + noise * tf.constant(self.discrete_mask, raw.dtype)

    def transform(self, X, name: str = "X") -> np.ndarray:
        """Encoded features of ``X`` as float32 numpy (the same TF ops as ``call``)."""
        return self.call(self.to_tensors(X, name)).numpy()

    def to_tensors(self, X, name: str = "X") -> dict[str, tf.Tensor]:
        """The raw columns of ``X`` as the dict of tensors that ``call`` takes."""
        frame = as_frame(X, name, self.input_columns)
        values = _numeric_values(frame, self.numeric_columns, name)
        tensors = {
            c: tf.constant(values[:, i], tf.float32) for i, c in enumerate(self.numeric_columns)
        }
        for column in self.categorical_columns:
            tensors[column] = tf.constant(frame[column].astype(str).to_numpy(dtype=object))
        return tensors

    def input_signature(self) -> dict[str, tf.TensorSpec]:
        """The ``serving_default`` inputs: one ``[None]`` tensor per raw column."""
        spec = {c: tf.TensorSpec([None], tf.float32, name=c) for c in self.numeric_columns}
        spec.update({c: tf.TensorSpec([None], tf.string, name=c) for c in self.categorical_columns})
        return spec

    def call(self, inputs):
        columns = [tf.cast(tf.reshape(inputs[c], [-1]), tf.float32) for c in self.numeric_columns]
        parts = [tf.stack(columns, axis=1)] if columns else []
        for column, hashes in zip(self.categorical_columns, self._vocabulary_hashes, strict=True):
            # One-hot by comparing 64-bit fingerprints of the value and of the vocabulary: an
            # unseen value matches nothing and encodes as all zeros. Integer comparisons are
            # ten times faster than string ones, and there is no lookup-table resource, so an
            # export can be frozen.
            values = _fingerprints(tf.reshape(inputs[column], [-1]))[:, None]
            parts.append(tf.cast(tf.equal(values, tf.constant(hashes)[None, :]), tf.float32))
        return self.finish(tf.concat(parts, axis=1))

    def get_config(self):
        config = super().get_config()
        config.update(
            numeric_columns=self.numeric_columns,
            categorical_columns=self.categorical_columns,
            vocabularies=self.vocabularies,
            log_columns=self.log_columns,
            integer_columns=self.integer_columns,
            means=self.means,
            stds=self.stds,
        )
        return config


#: ``Fingerprint64(s) mod _HASH_BUCKETS`` identifies a category value.
_HASH_BUCKETS = 2**62


def _fingerprints(values: tf.Tensor) -> tf.Tensor:
    """``int64`` fingerprints ``Fingerprint64(s) mod _HASH_BUCKETS`` of a string tensor."""
    return tf.strings.to_hash_bucket_fast(values, _HASH_BUCKETS)


def _vocabulary_fingerprints(vocabulary: list[str]) -> np.ndarray:
    """The fingerprints of a vocabulary's values, as numpy.

    Raises:
        ValueError: two different values share a fingerprint.
    """
    hashes = _fingerprints(tf.constant(vocabulary, tf.string)).numpy()
    if len(set(hashes.tolist())) != len(vocabulary):
        raise ValueError(f"vocabulary values share a 64-bit fingerprint: {vocabulary}")
    return hashes


def _numeric_values(frame: pd.DataFrame, columns: list[str], name: str) -> np.ndarray:
    """The numeric columns as float64 ``[n, len(columns)]``; clear errors for bad values."""
    if not columns:
        return np.zeros((len(frame), 0), np.float64)
    try:
        values = frame[columns].to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}: numeric columns hold non-numbers: {error}") from None
    bad = ~np.isfinite(values)
    if bad.any():
        rows, cols = np.nonzero(bad)
        raise ValueError(
            f"{name} holds {int(bad.sum())} NaN or infinite values, first at row {rows[0]}, "
            f"column {columns[cols[0]]!r} (value {values[rows[0], cols[0]]})"
        )
    return values


def _wants_log(column: np.ndarray, log_transform) -> bool:
    if log_transform is False or column.min() < 0:
        return False
    if log_transform is True:
        return True
    if log_transform != "auto":
        raise ValueError(f"log_transform must be 'auto', True or False; got {log_transform!r}")
    std = column.std()
    if column.max() <= 1 or std == 0:
        return False
    skewness = np.mean(((column - column.mean()) / std) ** 3)
    return bool(skewness > 2)
