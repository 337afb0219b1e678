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

What the encoder accepts (at fit and at scoring alike; each refusal is a ``ValueError`` naming
the argument, the column, the row and the value):

* column kinds: a column is categorical when it is declared (``categorical_columns``), or, with
  ``"auto"``, when its dtype is bool or category, or when it holds text (object or string
  dtype) of which at most half the non-empty values read as numbers. A text column whose values
  are mostly numbers is numeric, and its few non-numbers are refused (the count and the first
  one shown), never turned into categories;
* numeric values must be finite and within the float32 range (``|x| <= 3.4e38``), the precision
  the encoder and the networks compute in;
* no empty cells, numeric or categorical: fill them before fitting or scoring;
* column names must be unique.
"""

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

__all__ = [
    "FLOAT32_MAX",
    "TabularEncoder",
    "as_frame",
    "categorical_values",
    "check_table",
    "column_kinds",
    "numeric_values",
    "refuse_cells",
]


#: The largest magnitude of a numeric value: the encoder and the networks compute in float32.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def as_frame(X, name: str = "X", columns: list[str] | None = None) -> pd.DataFrame:
    """``X`` as a DataFrame; a 2-D array or list of rows gets columns ``x0 .. x{D-1}`` (or
    ``columns``). Lists of rows and object arrays keep each column's own type, so numbers
    mixed with text columns stay numbers.

    Raises:
        ValueError: ``X`` is not 2-D, has no rows, has duplicated column names, or lacks / adds
            columns versus ``columns``.
    """
    if isinstance(X, pd.DataFrame):
        frame = X if all(isinstance(c, str) for c in X.columns) else X.rename(columns=str)
    else:
        try:
            array = np.asarray(X)
            if array.dtype.kind in "OUS" and not isinstance(X, np.ndarray):
                array = np.asarray(X, dtype=object)  # the cells' own types, not their text
        except ValueError:
            raise ValueError(
                f"{name} must be 2-D [n_rows, n_features] with rows of equal length; got "
                f"{type(X).__name__} with rows of different lengths"
            ) from None
        if array.ndim != 2:
            raise ValueError(f"{name} must be 2-D [n_rows, n_features]; got shape {array.shape}")
        # The columns of an array are x0, x1, ... in order, or, when the training rows had
        # other names, those of ``columns`` in order.
        names = [f"x{i}" for i in range(array.shape[1])]
        if columns is not None and len(columns) == len(names) and set(columns) != set(names):
            names = list(columns)
        if array.dtype.kind in "OUS":
            frame = pd.DataFrame(array.astype(object), columns=names).infer_objects()
        else:
            frame = pd.DataFrame(array, columns=names)
    if len(frame) == 0:
        raise ValueError(f"{name} has no rows; got shape {frame.shape}")
    duplicated = frame.columns[frame.columns.duplicated()].unique().tolist()
    if duplicated:
        raise ValueError(
            f"{name} has duplicated column names {duplicated[:10]}: each column needs its own name"
        )
    if columns is not None:
        missing = [c for c in columns if c not in frame.columns]
        unknown = [c for c in frame.columns if c not in set(columns)]
        if missing or unknown:
            raise ValueError(
                f"{name} must have the training columns; missing {missing[:10]}, "
                f"unknown {unknown[:10]} (got {frame.shape[1]} columns)"
            )
    return frame


def column_kinds(frame: pd.DataFrame, categorical_columns="auto", name: str = "X"):
    """``(numeric, categorical)`` column names of ``frame`` by the rule of the module docstring.

    Args:
        frame: the training rows.
        categorical_columns: names of the categorical columns, or ``"auto"``.
        name: the argument's name, used in error messages.

    Raises:
        ValueError: ``categorical_columns`` names columns that ``frame`` lacks.
    """
    if isinstance(categorical_columns, str) and categorical_columns == "auto":
        categorical = [c for c in frame.columns if _looks_categorical(frame[c])]
    else:
        if isinstance(categorical_columns, str):
            categorical_columns = [categorical_columns]
        categorical = [str(c) for c in categorical_columns]
        unknown = [c for c in categorical if c not in frame.columns]
        if unknown:
            raise ValueError(
                f"categorical_columns names columns that {name} lacks: {unknown}; "
                f"{name} has {list(frame.columns)[:20]}"
            )
    return [c for c in frame.columns if c not in set(categorical)], categorical


def check_table(X, name: str = "X", categorical_columns="auto") -> pd.DataFrame:
    """``X`` as a DataFrame after the checks ``TabularEncoder.fit`` makes, on every row.

    A caller that holds the rows under another name (a command-line option, a file) calls it
    first, so that errors name that and come before any fitting.

    Raises:
        ValueError: as ``TabularEncoder.fit``, with ``name`` in the message.
    """
    frame = as_frame(X, name)
    numeric, categorical = column_kinds(frame, categorical_columns, name)
    numeric_values(frame, numeric, name)
    for column in categorical:
        categorical_values(frame, column, name)
    return frame


def _looks_categorical(column: pd.Series) -> bool:
    if isinstance(column.dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(column):
        return True
    if not (column.dtype == object or pd.api.types.is_string_dtype(column)):
        return False
    present = column.dropna()
    numbers = pd.to_numeric(present, errors="coerce").notna().sum()
    return bool(numbers * 2 <= len(present))


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
        scaling = zip(self.numeric_columns, self.means, self.stds, strict=True)
        for column, mean, std in scaling:
            if not (np.isfinite(mean) and np.isfinite(std) and std > 0):
                raise ValueError(
                    f"TabularEncoder: the scaling of column {column!r} must be finite with "
                    f"std > 0; got mean {mean}, std {std}"
                )
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
            categorical_columns: names, or ``"auto"`` (the rule of the module docstring).
            log_transform: ``"auto"`` applies ``log1p`` to numeric columns with min >= 0,
                max > 1 and skewness > 2; ``True`` to every non-negative column; ``False`` to none.
            max_categories: keep at most this many most frequent values per categorical column.

        Raises:
            ValueError: unknown categorical column names, or values the module docstring
                refuses (non-numbers in a numeric column, empty cells, NaN, infinite values or
                values beyond the float32 range).
        """
        frame = as_frame(X, "X")
        numeric, categorical = column_kinds(frame, categorical_columns, "X")
        values = numeric_values(frame, numeric, "X")
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
            counts = categorical_values(frame, column, "X").value_counts()
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
    def check_rows(self, X, name: str = "X") -> pd.DataFrame:
        """``X`` as a DataFrame after the checks that scoring makes (the training columns, and
        values the module docstring accepts).

        Raises:
            ValueError: the first problem found, naming ``name``, the column and the row.
        """
        frame = as_frame(X, name, self.input_columns)
        numeric_values(frame, self.numeric_columns, name)
        for column in self.categorical_columns:
            categorical_values(frame, column, name)
        return frame

    def raw_matrix(self, X, name: str = "X") -> np.ndarray:
        """``[n, D]`` float32: raw numeric values, then the one-hot blocks (no scaling yet)."""
        frame = as_frame(X, name, self.input_columns)
        blocks = [numeric_values(frame, self.numeric_columns, name)]
        for column, vocab in zip(self.categorical_columns, self.vocabularies, strict=True):
            codes = pd.Categorical(categorical_values(frame, column, name), categories=vocab).codes
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
        """The raw columns of ``X`` as the dict of tensors that ``call`` takes.

        Raises:
            ValueError: ``X`` lacks or adds columns, or holds values the module docstring
                refuses; the message names ``name``, the column and the row.
        """
        frame = as_frame(X, name, self.input_columns)
        values = numeric_values(frame, self.numeric_columns, name)
        tensors = {
            c: tf.constant(values[:, i], tf.float32) for i, c in enumerate(self.numeric_columns)
        }
        for column in self.categorical_columns:
            text = categorical_values(frame, column, name).to_numpy(dtype=object)
            tensors[column] = tf.constant(text, tf.string)
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


def numeric_values(frame: pd.DataFrame, columns: list[str], name: str) -> np.ndarray:
    """The numeric columns as float64 ``[n, len(columns)]``.

    Raises:
        ValueError: a column holds non-numbers, empty cells, NaN or infinite values, or values
            beyond the float32 range; the message names the column, the row and the value.
    """
    values = np.zeros((len(frame), len(columns)), np.float64)
    for index, column in enumerate(columns):
        cells = frame[column]
        if cells.dtype.kind in "mMc":
            raise ValueError(
                f"{name}: column {column!r} is of dtype {cells.dtype}; give it as real numbers "
                "(e.g. seconds) or as text"
            )
        if pd.api.types.is_numeric_dtype(cells) and not pd.api.types.is_bool_dtype(cells):
            numbers = cells.astype(np.float64)
        else:
            numbers = pd.to_numeric(cells, errors="coerce").astype(np.float64)
            refuse_cells(
                cells.notna() & numbers.isna(),
                cells,
                name,
                "cells that are not numbers, though most of its values are",
                "; fix or drop those rows, or declare the column in categorical_columns",
            )
        refuse_cells(cells.isna(), cells, name, "empty cells (NaN)", "; fill or drop those rows")
        refuse_cells(np.isinf(numbers), cells, name, "infinite values")
        refuse_cells(
            numbers.abs() > FLOAT32_MAX,
            cells,
            name,
            f"values beyond the float32 range (|x| > {FLOAT32_MAX:.4g})",
        )
        values[:, index] = numbers.to_numpy()
    return values


def categorical_values(frame: pd.DataFrame, column: str, name: str) -> pd.Series:
    """A categorical column's values as text.

    Raises:
        ValueError: the column has empty cells.
    """
    cells = frame[column]
    refuse_cells(
        cells.isna(), cells, name, "empty cells", "; fill them with a value, e.g. 'missing'"
    )
    return cells.astype(str)


def refuse_cells(bad, cells: pd.Series, name: str, what: str, advice: str = "") -> None:
    """Raises ``ValueError`` when the boolean mask ``bad`` marks any of ``cells``: the message
    names the column, says ``what`` it has (e.g. "empty cells"), how many of its cells, and the
    first one's row and value, then ``advice``."""
    bad = np.asarray(bad, bool)
    if bad.any():
        first = int(np.argmax(bad))
        row, value = (_plain(v) for v in (cells.index[first], cells.iloc[first]))
        raise ValueError(
            f"{name}: column {cells.name!r} has {what}: {int(bad.sum())} of {len(cells)}, the "
            f"first at row {row!r}: {value!r}{advice}"
        )


def _plain(value):
    """A numpy scalar as the Python value it holds (its repr is the one users type)."""
    return value.item() if isinstance(value, np.generic) else value


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
