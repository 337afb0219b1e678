"""The rows a detector trains on, drawn in one pass from a table of any size.

``training_rows(X, y)`` reads ``X`` once, a chunk at a time, and keeps a uniform sample of at
most ``max_rows`` normal rows and, apart from them, up to ``max_anomaly_rows`` known anomalies,
so memory holds the sample and one chunk whatever the size of ``X``. ``BaseDetector.fit`` calls
it, so every detector fits from the same sources.

Sources (``X``):

* rows in memory: a 2-D array, a list of rows or a DataFrame (as ``fit`` has always taken);
* a CSV file with a header (``.csv``; also compressed: ``.csv.gz``, ``.csv.bz2``,
  ``.csv.zst``), a Parquet file (``.parquet``), a
  folder of them or a glob (``tfp_flowad.io.tables.table_files``), or a list of those, read in
  that order (each folder's or glob's files in sorted order). Every file must have the same
  columns;
* a ``tf.data.Dataset`` whose elements are dicts ``{column name: tensor}``: each tensor a scalar
  (one row per element) or a vector (a batch of rows per element, the same length in every
  column of an element). Numbers stay numbers, ``tf.string`` tensors are text (UTF-8).

Labels (``y``): ``None`` (every row normal), or, with a source other than an array, the name of
its label column (1 = known anomaly, 0 = normal; with ``normal_value``, rows whose label, read
as text, is not ``normal_value`` are the anomalies). Rows in memory may instead come with a
label array, as ``fit`` has always taken them.

The sample: every normal row gets a random key, and the rows with the ``max_rows`` smallest
keys are kept (a reservoir sample by random keys: each set of ``max_rows`` normal rows is
equally likely). The keys are a function of the row's number among the normal rows and of
``random_state`` alone, drawn in fixed blocks of ``KEY_BLOCK_ROWS``, so the sample depends
only on the rows, their order and ``random_state``: not on the chunk size, and not on whether
the rows came from memory, a file or a dataset. The known anomalies are sampled the same way,
with keys of their own. The kept rows are returned in their order in ``X``; with at most
``max_rows`` normal rows (and ``max_anomaly_rows`` anomalies) they are all the rows, in order.

Checks: every row read is checked, not only the kept ones, with the checks of
``TabularEncoder`` (``tfp_flowad.preprocessing``): empty cells, NaN, infinite values and values
beyond the float32 range are refused at the chunk that holds them, naming the column, the row
(counted from 0 in each file, the first row after a CSV header being row 0) and the file. A
text column whose values are mostly numbers is numeric, and its non-numbers are refused once
the whole source is read (only then is the column's kind known). Column types of a CSV file:
a chunk's column is integers when all its cells are, else decimals when all are numbers, else
booleans when all read as booleans (as pandas reads ``True``, ``true``, ``TRUE``...), else
text; the column's kind (numeric or categorical) is decided on all the rows read, by the rule
of ``tfp_flowad.preprocessing`` (``categorical_columns``).
"""

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow as tf

from tfp_flowad.io.reservoir import Reservoir, sample_keys, smallest_keys
from tfp_flowad.io.tables import file_tables, is_parquet, table_columns, table_files
from tfp_flowad.preprocessing import (
    FLOAT32_MAX,
    as_frame,
    check_table,
    column_kinds,
    numeric_values,
    refuse_cells,
)
from tfp_flowad.validation import check_labels

__all__ = [
    "DEFAULT_MAX_ROWS",
    "MAX_ANOMALY_ROWS",
    "TrainingRows",
    "is_source",
    "training_rows",
]

#: The normal rows a fit trains on at most, by default (``fit(..., max_rows=...)``).
DEFAULT_MAX_ROWS = 1_000_000
#: The known anomalies a fit keeps at most (a uniform sample of them beyond that).
MAX_ANOMALY_ROWS = 100_000
#: The names of the files read: CSV (compressed too) and Parquet.
_FILE_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst", ".parquet")
#: The texts pandas reads as booleans.
_BOOLEANS = {"True": True, "true": True, "TRUE": True, "False": False, "false": False}
_BOOLEANS["FALSE"] = False


@dataclass(frozen=True)
class TrainingRows:
    """The rows a detector trains on (``training_rows``), and what was read to draw them.

    Attributes:
        frame: the kept rows, in their order in the source, without the label column; its
            index is each row's number in the source (over all its files, from 0), or, for
            rows in memory, their own index.
        labels: 0 (normal) / 1 (known anomaly) for each row of ``frame``.
        categorical_columns: the categorical columns, decided on every row read (a source), or
            the ``categorical_columns`` given (rows in memory, left to the encoder).
        rows_read, normal_rows_read, anomaly_rows_read: the rows of the source, and how many
            of them were normal and known anomalies.
    """

    frame: pd.DataFrame
    labels: np.ndarray
    categorical_columns: object
    rows_read: int
    normal_rows_read: int
    anomaly_rows_read: int

    @property
    def sampled(self) -> bool:
        """Whether rows were left out (more normal rows or anomalies than the caps)."""
        return len(self.frame) < self.rows_read


def is_source(X) -> bool:
    """Whether ``X`` is read as a stream: a path, a list of paths or a ``tf.data.Dataset``."""
    if isinstance(X, str | os.PathLike | tf.data.Dataset):
        return True
    return (
        isinstance(X, list | tuple)
        and len(X) > 0
        and all(isinstance(item, str | os.PathLike) for item in X)
    )


def training_rows(
    X,
    y=None,
    *,
    max_rows: int = DEFAULT_MAX_ROWS,
    max_anomaly_rows: int = MAX_ANOMALY_ROWS,
    random_state: int | None = None,
    categorical_columns="auto",
    chunk_rows: int = 65536,
    name: str = "X",
    label_name: str = "y",
    normal_value: str | None = None,
    normal_value_name: str | None = None,
) -> TrainingRows:
    """The rows to train on: all of ``X``'s rows, or a uniform sample (module docstring).

    Args:
        X: rows in memory, a file, folder or glob, a list of them, or a ``tf.data.Dataset``
            (module docstring); a ``TrainingRows`` is returned as it is (``y`` must be None).
        y: ``None``, the label column's name, or (rows in memory) a 0/1 array.
        max_rows: the most normal rows kept, an integer >= 1.
        max_anomaly_rows: the most known anomalies kept, an integer >= 0.
        random_state: the sample's seed (``None``: a fresh one); the detector's seed.
        categorical_columns: ``"auto"`` or the categorical columns' names (as the detector's).
        chunk_rows: rows read at a time from a file (memory grows with it); it does not change
            the sample.
        name, label_name: how messages call ``X`` and ``y`` (e.g. command-line options).
        normal_value: the label of normal rows, compared as text; ``None``: labels 0 / 1.
        normal_value_name: how messages call ``normal_value`` (``None``: it is not offered).

    Raises:
        ValueError: bad caps; a path that does not exist or holds no table file, files with
            different columns, an empty source, a missing label column, labels other than
            0 / 1 (or no row labelled ``normal_value``), and the values the module docstring
            refuses; each message names the argument and the value.
        TypeError: ``y`` that is neither ``None`` nor a column name with a source, or a dataset
            whose elements are not dicts of scalars or vectors.
    """
    if isinstance(X, TrainingRows):
        if y is not None:
            raise TypeError(f"{label_name} must be None with TrainingRows (they hold the labels)")
        return X
    _check_cap("max_rows", max_rows, 1)
    _check_cap("max_anomaly_rows", max_anomaly_rows, 0)
    seed = _seed(random_state)
    if not is_source(X):
        return _rows_in_memory(
            X, y, max_rows, max_anomaly_rows, seed, categorical_columns, name, label_name
        )
    if y is not None and not isinstance(y, str):
        raise TypeError(
            f"{label_name} must be None or the name of {name}'s label column when {name} is a "
            f"file or a dataset; got {type(y).__name__}"
        )
    chunks = (
        _dataset_chunks(X, chunk_rows, name)
        if isinstance(X, tf.data.Dataset)
        else _file_chunks(X, y, chunk_rows, name, label_name)
    )
    labels = _Labels(y, normal_value, label_name, normal_value_name)
    return _Stream(
        chunks, labels, max_rows, max_anomaly_rows, seed, categorical_columns, name
    ).finish()


def _check_cap(name: str, value, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
        raise ValueError(f"{name} must be an integer >= {least}; got {value!r}")


def _seed(random_state) -> int:
    """A non-negative integer seed of the keys: ``random_state``'s, or a fresh one."""
    if random_state is None:
        return int(np.random.SeedSequence().entropy)
    return int(random_state) % 2**64


# ----------------------------------------------------------------------- rows in memory
def _rows_in_memory(X, y, max_rows, max_anomaly_rows, seed, categorical_columns, name, label):
    """All of ``X`` when within the caps (as ``fit`` has always taken it), else the sample,
    after the checks of every row."""
    frame = as_frame(X, name)
    if isinstance(y, str) and isinstance(X, pd.DataFrame) and y in frame.columns:
        chunk_labels = _Labels(y, None, label, None)
        labels = chunk_labels.read(frame[y], name, None)
        frame = frame.drop(columns=[y])
        if len(frame.columns) == 0:
            raise ValueError(f"{name} has no columns besides the label column {y!r}")
    else:
        labels = check_labels(y, len(frame), label)
    normal = np.flatnonzero(labels == 0)
    anomaly = np.flatnonzero(labels == 1)
    if len(normal) <= max_rows and len(anomaly) <= max_anomaly_rows:
        return TrainingRows(
            frame, labels, categorical_columns, len(frame), len(normal), len(anomaly)
        )
    check_table(frame, name, categorical_columns)  # every row, not only the kept ones
    kept = np.sort(
        np.concatenate(
            [
                rows[smallest_keys(sample_keys(seed, stream, 0, len(rows)), rows, cap)]
                for stream, rows, cap in ((0, normal, max_rows), (1, anomaly, max_anomaly_rows))
            ]
        )
    )
    categorical = column_kinds(frame, categorical_columns, name)[1]
    return TrainingRows(
        frame.iloc[kept], labels[kept], categorical, len(frame), len(normal), len(anomaly)
    )


# ------------------------------------------------------------------------- the stream
@dataclass(frozen=True)
class _Chunk:
    """Rows ``start`` ... of ``path`` (``None``: a dataset) as typed columns, index = rows."""

    path: Path | None
    frame: pd.DataFrame

    def suffix(self) -> str:
        return "" if self.path is None else f" (in {str(self.path)!r})"


def _file_chunks(source, label, chunk_rows, name, label_name) -> Iterator[_Chunk]:
    """The chunks of every file of ``source``; the files' columns are checked first."""
    items = list(source) if isinstance(source, list | tuple) else [source]
    files = [path for item in items for path in table_files(item, name)]
    for path in files:
        if not path.name.endswith(_FILE_SUFFIXES):
            raise ValueError(
                f"{name}: {str(path)!r} is not a table file: its name must end in "
                f"{', '.join(_FILE_SUFFIXES)}"
            )
    columns = table_columns(files[0], name)
    for path in files[1:]:
        other = table_columns(path, name)
        if set(other) != set(columns):
            raise ValueError(
                f"{name}: the files have different columns: {str(files[0])!r} has "
                f"{columns[:20]}, {str(path)!r} has {other[:20]}"
            )
    if label is not None and label not in columns:
        raise ValueError(
            f"{label_name}: {label!r} is not a column of {name} ({str(files[0])!r}); columns "
            f"are {columns[:20]}"
        )
    if label is not None and len(columns) == 1:
        raise ValueError(f"{name} has no columns besides the label column {label!r}")
    return _read_files(files, columns, chunk_rows, name)


def _read_files(files, columns, chunk_rows, name) -> Iterator[_Chunk]:
    for path, start, table in file_tables(files, columns, chunk_rows, name):
        from_csv = not is_parquet(path)
        frame = pd.DataFrame(
            {
                column: _csv_cells(table.column(column))
                if from_csv
                else table.column(column).to_pandas()
                for column in columns
            }
        )
        frame.index = pd.RangeIndex(start, start + table.num_rows)
        yield _Chunk(path, frame)


def _csv_cells(cells: pa.ChunkedArray) -> pd.Series:
    """A CSV chunk's column (text) as integers, decimals, booleans or text (module
    docstring); empty cells are missing values."""
    for kind in (pa.int64(), pa.float64()):
        try:
            return pc.cast(cells, kind).to_pandas()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    text = cells.to_pandas()
    present = text.dropna()
    if len(present) and present.isin(list(_BOOLEANS)).all() and len(present) == len(text):
        return text.map(_BOOLEANS).astype(bool)
    return text


def _dataset_chunks(dataset: tf.data.Dataset, chunk_rows: int, name: str) -> Iterator[_Chunk]:
    """The elements of ``dataset`` (module docstring) as chunks; rows counted from 0."""
    spec = dataset.element_spec
    if not isinstance(spec, dict) or not spec:
        raise TypeError(
            f"{name}: a tf.data.Dataset's elements must be dicts {{column name: tensor}}; got "
            f"elements {spec!r}"
        )
    ranks = {tf.TensorShape(s.shape).rank for s in spec.values()}
    if not all(isinstance(s, tf.TensorSpec) for s in spec.values()) or not ranks <= {0, 1}:
        raise TypeError(
            f"{name}: a tf.data.Dataset's columns must all be scalars (a row per element) or "
            f"all vectors (a batch of rows per element); got {spec!r}"
        )
    if len(ranks) != 1:
        raise TypeError(f"{name}: mixes scalar and vector columns; got {spec!r}")
    if ranks == {0}:
        dataset = dataset.batch(chunk_rows)
    return _read_dataset(dataset, name)


def _read_dataset(dataset, name) -> Iterator[_Chunk]:
    start = 0
    for element in dataset.as_numpy_iterator():
        lengths = {len(values) for values in element.values()}
        if len(lengths) != 1:
            raise ValueError(
                f"{name}: an element's columns hold different numbers of rows, "
                f"{ {column: len(values) for column, values in element.items()} }"
            )
        frame = pd.DataFrame(
            {str(column): _dataset_cells(values) for column, values in element.items()}
        )
        frame.index = pd.RangeIndex(start, start + len(frame))
        start += len(frame)
        yield _Chunk(None, frame)


def _dataset_cells(values: np.ndarray) -> pd.Series:
    if values.dtype == object:  # tf.string
        return pd.Series([value.decode("utf-8") for value in values], dtype="str")
    return pd.Series(values)


class _Labels:
    """The label column of a stream, chunk by chunk: 0 / 1, or the rows' label against
    ``normal_value``; refuses empty or other labels, naming the row."""

    def __init__(self, column, normal_value, label_name, normal_value_name):
        self.column, self.normal_value = column, normal_value
        self.label_name, self.normal_value_name = label_name, normal_value_name
        self.values: set[str] = set()
        self.normal_seen = False

    def read(self, cells: pd.Series, name: str, path) -> np.ndarray:
        """The chunk's 0 / 1 labels."""
        where = "" if path is None else f" (in {str(path)!r})"
        empty = cells.isna().to_numpy()
        if empty.any():
            raise ValueError(
                f"{self.label_name} {self.column!r} has empty labels: {int(empty.sum())} of "
                f"{len(cells)}, the first at row {cells.index[empty.argmax()]}{where}; give "
                "every row a label"
            )
        if self.normal_value is not None:
            text = cells.astype(str)
            self.values |= set(text.unique()[:10].tolist())
            normal = (text == str(self.normal_value)).to_numpy()
            self.normal_seen |= bool(normal.any())
            return (~normal).astype(np.int64)
        numbers = pd.to_numeric(cells, errors="coerce") if cells.dtype != bool else cells
        other = ~np.isin(np.asarray(numbers, np.float64), (0.0, 1.0))
        if other.any():
            first = int(other.argmax())
            offer = (
                f"; give {self.normal_value_name}, or use labels 0 / 1"
                if self.normal_value_name
                else ""
            )
            shown = sorted(map(str, pd.unique(cells[other])))[:10]
            raise ValueError(
                f"{self.label_name} {self.column!r} must hold only 0 (normal) and 1 (known "
                f"anomaly); got other values {shown}, the first at row "
                f"{cells.index[first]}{where}{offer}"
            )
        return np.asarray(numbers, np.float64).astype(np.int64)

    def finish(self, name: str) -> None:
        if self.normal_value is not None and not self.normal_seen:
            raise ValueError(
                f"{self.normal_value_name or 'normal_value'} {self.normal_value!r} does not "
                f"occur in column {self.column!r} of {name}; values are {sorted(self.values)[:10]}"
            )


class _ColumnKinds:
    """What the checks of a column learn over the stream, to decide its kind at the end and to
    refuse a numeric column's non-numbers (module docstring)."""

    def __init__(self, name: str, categorical_columns):
        self.name = name
        self.declared = (
            None
            if isinstance(categorical_columns, str) and categorical_columns == "auto"
            else [categorical_columns]
            if isinstance(categorical_columns, str)
            else [str(c) for c in categorical_columns]
        )
        self.present: dict[str, int] = {}
        self.numbers: dict[str, int] = {}
        self.kinds: dict[str, set[str]] = {}
        self.first_bad: dict[str, list] = {}  # column -> [[count, message], ...] per problem

    def check(self, chunk: _Chunk) -> None:
        """Refuses the chunk's empty cells and bad numbers now; counts its numbers."""
        for column in chunk.frame.columns:
            cells = chunk.frame[column]
            self.present[column] = self.present.get(column, 0) + len(cells)
            declared = self.declared is not None and column in self.declared
            if pd.api.types.is_bool_dtype(cells) or isinstance(cells.dtype, pd.CategoricalDtype):
                kind = "category"
            elif pd.api.types.is_numeric_dtype(cells) or cells.dtype.kind in "mMc":
                kind = "number"
            else:
                kind = "text"
            self.kinds.setdefault(column, set()).add(kind)
            try:
                if kind == "number" and not declared:
                    numeric_values(chunk.frame, [column], self.name)
                else:
                    refuse_cells(
                        cells.isna(),
                        cells,
                        self.name,
                        "empty cells",
                        "; fill them with a value, e.g. 'missing'",
                    )
            except ValueError as error:
                raise ValueError(f"{error}{chunk.suffix()}") from None
            if kind == "number":
                self.numbers[column] = self.numbers.get(column, 0) + len(cells)
            elif kind == "text" and not declared:
                self._count_text(column, cells, chunk)

    def _count_text(self, column, cells, chunk) -> None:
        numbers = pd.to_numeric(cells, errors="coerce")
        self.numbers[column] = self.numbers.get(column, 0) + int(numbers.notna().sum())
        magnitude = numbers.abs()
        problems = (
            (numbers.isna(), "cells that are not numbers, though most of its values are",
             "; fix or drop those rows, or declare the column in categorical_columns"),
            (np.isinf(numbers), "infinite values", ""),
            (np.isfinite(numbers) & (magnitude > FLOAT32_MAX),
             f"values beyond the float32 range (|x| > {FLOAT32_MAX:.4g})", ""),
        )  # fmt: skip
        found = self.first_bad.setdefault(column, [[0, None] for _ in problems])
        for slot, (bad, what, advice) in zip(found, problems, strict=True):
            bad = np.asarray(bad, bool)
            if bad.any():
                first = int(bad.argmax())
                slot[0] += int(bad.sum())
                if slot[1] is None:
                    value = cells.iloc[first]
                    slot[1] = (what, cells.index[first], value, chunk.suffix(), advice)

    def categorical(self, columns: list[str]) -> list[str]:
        """The categorical columns; raises the first problem of a numeric text column."""
        if self.declared is not None:
            unknown = [c for c in self.declared if c not in columns]
            if unknown:
                raise ValueError(
                    f"categorical_columns names columns that {self.name} lacks: {unknown}; "
                    f"{self.name} has {columns[:20]}"
                )
            return list(self.declared)
        categorical = []
        for column in columns:
            kinds = self.kinds[column]
            if kinds == {"category"} or (
                "text" in kinds and self.numbers.get(column, 0) * 2 <= self.present[column]
            ):
                categorical.append(column)
                continue
            for count, first in self.first_bad.get(column, []):
                if first is not None:
                    what, row, value, where, advice = first
                    raise ValueError(
                        f"{self.name}: column {column!r} has {what}: {count} of "
                        f"{self.present[column]}, the first at row {row!r}: "
                        f"{value!r}{where}{advice}"
                    )
        return categorical


class _Stream:
    """One pass over the chunks: labels, checks, and the two reservoirs."""

    def __init__(self, chunks, labels, max_rows, max_anomaly_rows, seed, categorical, name):
        self.chunks, self.labels, self.name = chunks, labels, name
        self.normal = Reservoir(max_rows, seed, 0)
        self.anomaly = Reservoir(max_anomaly_rows, seed, 1)
        self.kinds = _ColumnKinds(name, categorical)
        self.columns: list[str] | None = None

    def finish(self) -> TrainingRows:
        read = 0
        for chunk in self.chunks:
            frame = chunk.frame
            if self.labels.column is not None:
                y = self.labels.read(frame[self.labels.column], self.name, chunk.path)
                frame = frame.drop(columns=[self.labels.column])
            else:
                y = np.zeros(len(frame), np.int64)
            if self.columns is None:
                self.columns = list(frame.columns)
            frame = frame[self.columns]
            self.kinds.check(_Chunk(chunk.path, frame))
            positions = np.arange(read, read + len(frame))
            normal = y == 0
            self.normal.add(frame[normal], positions[normal])
            self.anomaly.add(frame[~normal], positions[~normal])
            read += len(frame)
        if read == 0:
            raise ValueError(f"{self.name} holds no rows")
        if self.labels.column is not None and self.columns is None:
            raise ValueError(f"{self.name} has no columns besides the label column")
        self.labels.finish(self.name)
        categorical = self.kinds.categorical(self.columns)
        positions, pieces = [], []
        for reservoir in (self.normal, self.anomaly):
            kept, frames = reservoir.rows()
            positions.append(kept)
            pieces += frames
        positions = np.concatenate(positions)
        order = np.argsort(positions, kind="stable")
        labels = np.concatenate(
            [np.zeros(self.normal.kept, np.int64), np.ones(self.anomaly.kept, np.int64)]
        )
        frame = pd.concat(pieces) if pieces else pd.DataFrame(columns=self.columns)
        frame = frame.iloc[order]
        frame.index = pd.Index(positions[order])
        return TrainingRows(
            frame,
            labels[order],
            categorical,
            read,
            self.normal.seen,
            self.anomaly.seen,
        )
