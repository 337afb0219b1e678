"""Tables too large for memory, read as a stream of chunks of rows with fixed column types.

Sources (``table_files``): a CSV file with a header (compressed when its name ends in ``.gz``,
``.bz2`` or ``.zst``), a Parquet file, a folder (every ``.csv``, ``.csv.gz`` and ``.parquet``
file under it, leaving out names that start with ``.`` or ``_``), or a glob such as
``data/*.parquet``. Files are read in the order of their sorted paths, one chunk of
``chunk_rows`` rows at a time (``read_chunks``); memory holds a chunk (and, for Parquet, the
row group being read), whatever the size of the table. Each file holds the model's input
columns and the columns asked for; its other columns are not read.

Column types: a CSV file has no types, and types guessed chunk by chunk could change from one
chunk to the next (a column whose first rows hold integers and later rows decimals). The
model's encoder fixes them instead, so that every chunk reads as pandas reads the whole file:

* numeric columns are numbers; a cell that is not one is left as text, for the encoder's
  check to refuse naming the file, the row and the column;
* categorical columns are text, spelled as pandas spells the training values: where those
  were all ``True`` / ``False`` (pandas read the column as booleans), ``true`` and ``TRUE``
  read as ``True``; where they were all integers (or all decimals), ``007`` reads as ``7``
  (``1.50`` as ``1.5``). Other text is taken as written;
* other columns (an id, a label) are text exactly as written, so an id keeps its leading
  zeros;
* the cells pandas reads as empty (``EMPTY_CELLS``) are empty.

Parquet columns keep their stored types. Rows are counted from 0 in each file, as pandas
counts them (row 0 of a CSV file is the line after the header).
"""

import csv
import glob
import io
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

__all__ = [
    "EMPTY_CELLS",
    "TABLE_SUFFIXES",
    "Chunk",
    "parquet_rows",
    "read_chunks",
    "table_columns",
    "table_files",
]

#: The names of the files a folder contributes.
TABLE_SUFFIXES = (".csv", ".csv.gz", ".parquet")
#: The cells of a CSV file read as empty: those ``pandas.read_csv`` reads as empty by default.
EMPTY_CELLS = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)  # fmt: skip
#: Bytes of a CSV file parsed at a time (a chunk gathers as many blocks as its rows need).
_CSV_BLOCK_BYTES = 4 << 20
#: The name pandas gives an unnamed index it stores in a Parquet file.
_UNNAMED_INDEX = re.compile(r"__index_level_\d+__")
_READ_ERRORS = (pa.ArrowException, OSError, EOFError, UnicodeDecodeError, csv.Error)


@dataclass(frozen=True)
class Chunk:
    """Rows ``start`` to ``start + len(frame) - 1`` of the file ``path``.

    Attributes:
        path: the file.
        start: the row number, in its file, of the chunk's first row.
        frame: the model's input columns with the types of the module docstring, then the
            other columns read; its index is the rows' numbers in the file.
        table: the columns as read (Parquet types, or text for CSV), in the same order.
    """

    path: Path
    start: int
    frame: pd.DataFrame
    table: pa.Table

    def where(self, name: str = "source") -> str:
        """``"{name} '{path}', rows {first} to {last}"``, for messages."""
        last = self.start + len(self.frame) - 1
        return f"{name} {str(self.path)!r}, rows {self.start} to {last}"


def table_files(source, name: str = "source") -> list[Path]:
    """The files of ``source``, a file, a folder or a glob, in sorted order (module docstring).

    Raises:
        ValueError: ``source`` does not exist, a glob matches nothing, or a folder holds no
            table file; the message names ``name`` and ``source``.
    """
    text = os.fspath(source)
    path = Path(text)
    if path.is_dir():
        files = _folder_files(path)
    elif path.exists():
        if not path.is_file():
            raise ValueError(f"{name}: {text!r} is neither a file nor a folder")
        files = [path]
    elif any(character in text for character in "*?["):
        matches = sorted(Path(match) for match in glob.glob(text, recursive=True))
        if not matches:
            raise ValueError(f"{name}: no file matches {text!r}")
        files = [
            f for match in matches for f in (_folder_files(match) if match.is_dir() else [match])
        ]
    else:
        raise ValueError(f"{name}: file {text!r} does not exist")
    if not files:
        raise ValueError(f"{name}: {text!r} holds no {', '.join(TABLE_SUFFIXES)} file")
    return files


def table_columns(path, name: str = "source") -> list[str]:
    """The column names of a table file: a CSV file's header, or a Parquet file's columns
    (an index pandas stored there is one when it has a name; an unnamed one,
    ``__index_level_0__``, is not).

    Raises:
        ValueError: the file cannot be read, or it repeats a column name.
    """
    path = Path(path)
    try:
        if is_parquet(path):
            names = [c for c in pq.read_schema(path).names if not _UNNAMED_INDEX.fullmatch(c)]
        else:
            with pa.input_stream(str(path), compression="detect") as raw:
                names = next(
                    csv.reader(io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")), []
                )
    except _READ_ERRORS as error:
        raise ValueError(f"{name}: cannot read {str(path)!r}: {error}") from None
    if not names:
        raise ValueError(f"{name}: {str(path)!r} has no header (no column names)")
    repeated = sorted({column for column in names if names.count(column) > 1})
    if repeated:  # pandas would rename the repeats ("a" -> "a.1"): refuse them instead
        raise ValueError(
            f"{name}: the header of {str(path)!r} repeats the column names {repeated[:10]}; "
            "each column needs its own name"
        )
    return names


def read_chunks(
    source, encoder, columns: Sequence[str] = (), chunk_rows: int = 65536, name: str = "source"
) -> Iterator[Chunk]:
    """The rows of ``source`` as ``Chunk``s of ``chunk_rows`` rows (a file's last chunk may
    hold fewer; no chunk spans two files), with the column types of the module docstring.

    Every file's columns are checked before this returns, so a missing column is refused
    before any row is read; the other columns of a file are not read.

    Args:
        source: a file, a folder or a glob (``table_files``), or a list of files.
        encoder: the model's ``TabularEncoder`` (``detector.encoder_``): the input columns and
            their kinds.
        columns: other columns to read, such as an id or a label.
        chunk_rows: rows per chunk, an integer >= 1.
        name: how messages call ``source`` (e.g. a command-line option).

    Raises:
        ValueError: a bad ``chunk_rows``; ``source`` as ``table_files``; a file lacks a model
            column or one of ``columns``, or cannot be read (when the chunks are read, naming
            the file).
    """
    if (
        isinstance(chunk_rows, bool)
        or not isinstance(chunk_rows, int | np.integer)
        or chunk_rows < 1
    ):
        raise ValueError(f"chunk_rows must be an integer >= 1; got {chunk_rows!r}")
    files = list(source) if isinstance(source, list | tuple) else table_files(source, name)
    wanted = list(dict.fromkeys([*encoder.input_columns, *columns]))
    for path in files:
        present = table_columns(path, name)
        for column in columns:
            if column not in present:
                raise ValueError(
                    f"{name} {str(path)!r} has no column {column!r}; its columns are {present[:20]}"
                )
        missing = [c for c in encoder.input_columns if c not in present]
        if missing:
            raise ValueError(
                f"{name} {str(path)!r} must have the training columns; missing {missing[:10]} "
                f"(it has {present[:20]})"
            )
    return _chunks(files, encoder, wanted, int(chunk_rows), name)


def _folder_files(folder: Path) -> list[Path]:
    """The table files under ``folder`` (any depth), sorted, without hidden or ``_`` names."""
    return sorted(
        path
        for path in folder.rglob("*")
        if path.name.endswith(TABLE_SUFFIXES)
        and path.is_file()
        and not any(part.startswith((".", "_")) for part in path.relative_to(folder).parts)
    )


def is_parquet(path: Path) -> bool:
    return path.suffix == ".parquet"


def _chunks(files, encoder, columns, chunk_rows, name) -> Iterator[Chunk]:
    spellings = {
        column: _pandas_spelling(vocabulary)
        for column, vocabulary in zip(
            encoder.categorical_columns, encoder.vocabularies, strict=True
        )
    }
    for path, start, table in file_tables(files, columns, chunk_rows, name):
        from_csv = not is_parquet(path)
        frame = pd.DataFrame(
            {
                column: _as_read(table.column(column), encoder, spellings, column, from_csv)
                for column in columns
            }
        )
        frame.index = pd.RangeIndex(start, start + table.num_rows)
        yield Chunk(path, start, frame, table)


def file_tables(files, columns, chunk_rows: int, name: str) -> Iterator[tuple[Path, int, pa.Table]]:
    """``(path, first row in the file, table)``: ``columns`` of ``files``, file after file, in
    tables of ``chunk_rows`` rows (a file's last one fewer); a CSV file's cells are text.
    Reading errors name the file."""
    for path in files:
        start = 0
        for table in _rechunked(_batches(path, columns, chunk_rows, name), chunk_rows):
            yield path, start, table
            start += table.num_rows


def _batches(path: Path, columns, chunk_rows, name) -> Iterator[pa.RecordBatch]:
    """The record batches of one file's ``columns``; reading errors name the file."""
    try:
        if is_parquet(path):
            # Without pre-buffering pyarrow reads one row group at a time; with it (the
            # default) it buffers the whole file's column chunks.
            parquet = pq.ParquetFile(path, pre_buffer=False)
            yield from parquet.iter_batches(batch_size=chunk_rows, columns=columns)
            return
        options = pa_csv.ConvertOptions(
            column_types={column: pa.string() for column in columns},
            include_columns=columns,
            null_values=list(EMPTY_CELLS),
            strings_can_be_null=True,
        )
        with pa.input_stream(str(path), compression="detect") as raw:
            reader = pa_csv.open_csv(
                raw,
                read_options=pa_csv.ReadOptions(block_size=_CSV_BLOCK_BYTES),
                convert_options=options,
            )
            yield from reader
    except _READ_ERRORS as error:
        raise ValueError(f"{name}: cannot read {str(path)!r}: {error}") from None


def _rechunked(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """The rows of ``batches`` as tables of ``rows`` rows, the last one possibly shorter."""
    pending, count = [], 0
    for batch in batches:
        pending.append(batch)
        count += batch.num_rows
        while count >= rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            pending, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(pending)


def _as_read(cells: pa.ChunkedArray, encoder, spellings, column, from_csv) -> pd.Series:
    """One column of a chunk as pandas, with the type of the module docstring."""
    if from_csv and column in spellings:
        return _spelled(cells.to_pandas(), spellings[column])
    if from_csv and column in encoder.numeric_columns:
        try:
            return pc.cast(cells, pa.float64()).to_pandas()
        except pa.ArrowInvalid:  # text the encoder's check names (or reads, as pandas would)
            return cells.to_pandas()
    return cells.to_pandas()


_INTEGER = re.compile(r"\s*[+-]?\d+\s*")
#: The texts pandas reads as booleans, spelled as pandas writes them.
_BOOLEANS = {
    "True": "True", "true": "True", "TRUE": "True",
    "False": "False", "false": "False", "FALSE": "False",
}  # fmt: skip


def _pandas_spelling(vocabulary: list[str]) -> Callable[[str], str] | None:
    """How pandas spelled a categorical column's training values, as a function of a CSV
    cell's text (``None``: as written); see the module docstring."""
    values = set(vocabulary)
    if values <= {"True", "False"}:
        return lambda text: _BOOLEANS.get(text, text)
    if all(_INTEGER.fullmatch(v) and v == str(int(v)) for v in values):
        return lambda text: str(int(text)) if _INTEGER.fullmatch(text) else text
    if all(_number_text(v) == v for v in values):
        return lambda text: _number_text(text) or text
    return None


def _number_text(text: str) -> str | None:
    """``text`` as pandas writes the float it reads from it, or ``None`` if it is no number."""
    try:
        return str(float(text))
    except ValueError:
        return None


def _spelled(cells: pd.Series, spelling) -> pd.Series:
    if spelling is None:
        return cells
    return cells.map({text: spelling(text) for text in cells.dropna().unique()})


def parquet_rows(files) -> int | None:
    """The rows of ``files`` when they are all Parquet (their metadata tells), else ``None``."""
    if not all(is_parquet(path) for path in files):
        return None
    return sum(pq.ParquetFile(path).metadata.num_rows for path in files)
