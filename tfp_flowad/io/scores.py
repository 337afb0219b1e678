"""Scoring a table of any size as a stream: read a chunk of rows, score it, write it, go on.

``score_file(detector, source, out)`` reads ``source`` through ``tfp_flowad.io.tables`` (a
file, a folder or a glob, a chunk of ``chunk_rows`` rows at a time, with the column types the
model fixes), scores each chunk (``anomaly_scores``) and appends its scores to ``out``, so
memory holds one chunk whatever the size of the table.

The scores file: columns ``keep_columns`` (as read), ``anomaly_score`` (the first of
``kinds``), ``<kind>_score`` for each other kind, then ``is_anomaly`` (1 where
``anomaly_score`` is above that kind's threshold, else 0), one row per row of ``source`` in
its order: the columns ``tfp-flowad score`` has always written, with the kept columns first.
Its format follows ``out``'s name: ``.parquet`` is Parquet, ``.gz`` a gzip-compressed CSV, any
other name a CSV. It is written through ``tfp_flowad.atomic``: it appears whole once every row
is scored, or not at all, and never replaces an input file.
"""

import codecs
import contextlib
import gzip
import io
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from tfp_flowad.atomic import atomic_file
from tfp_flowad.io.tables import Chunk, parquet_rows, read_chunks, table_files

__all__ = ["ScoreSummary", "score_file"]


@dataclass(frozen=True)
class ScoreSummary:
    """What ``score_file`` did: ``rows`` scored, ``flagged`` of them (``is_anomaly`` 1), from
    ``files`` files, in ``seconds`` from the first read to the last write."""

    rows: int
    flagged: int
    seconds: float
    files: int

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


def score_file(
    detector,
    source,
    out,
    keep_columns: Sequence[str] = (),
    kinds: Sequence[str] | None = None,
    chunk_rows: int = 65536,
    progress: bool = True,
    *,
    name: str = "source",
    read_columns: Sequence[str] = (),
    on_chunk: Callable[[Chunk, dict], None] | None = None,
    before_commit: Callable[[], None] | None = None,
) -> ScoreSummary:
    """Scores the rows of ``source`` chunk by chunk and writes the scores to ``out`` as it
    goes, in the rows' order (the scores file of the module docstring).

    Args:
        detector: a fitted ``NFADetector``.
        source: a CSV or Parquet file, a folder or a glob (``table_files``), or a list of files.
        out: the scores file (``.csv``, ``.csv.gz``, ``.parquet``; not an input file), or a
            text stream such as ``sys.stdout`` to write CSV to as the rows are scored.
        keep_columns: columns of ``source`` written first, as read, so that scores join back
            to their rows (e.g. an id and a timestamp).
        kinds: the score kinds to write (``detector.available_scores()``); the first is
            ``anomaly_score`` and decides ``is_anomaly``. Default: ``detector.score_kind``.
        chunk_rows: rows read and scored at a time.
        progress: print a line on stderr every few seconds and at the end.
        name: how messages call ``source`` (e.g. a command-line option).
        read_columns: other columns of ``source`` read for ``on_chunk``, not written.
        on_chunk: called with each ``Chunk`` and its scores (``{kind: array}``) before they
            are written; raising stops the stream and nothing is written.
        before_commit: called after the last chunk, before the scores file is renamed into
            place; raising leaves ``out`` as it was.

    Returns:
        a ``ScoreSummary``.

    Raises:
        ValueError: bad arguments, or bad rows (naming ``name``, the file, the rows, the
            column and the value); ``out`` then keeps its previous content.
        OSError: writing ``out`` failed; ``out`` keeps its previous content.
    """
    kinds = _check_kinds(detector, kinds)
    keep = _check_keep(keep_columns, kinds)
    files = list(source) if isinstance(source, list | tuple) else table_files(source, name)
    chunks = read_chunks(files, detector.encoder_, [*keep, *read_columns], chunk_rows, name)
    threshold = detector.thresholds_[kinds[0]]
    report = _Progress(parquet_rows(files)) if progress else None
    start = time.perf_counter()
    rows = flagged = 0
    try:
        with _scores_writer(out, files) as write:
            for chunk in chunks:
                scores = _scores(detector, chunk, kinds, name)
                if on_chunk is not None:
                    on_chunk(chunk, scores)
                flags = (scores[kinds[0]] > threshold).astype(np.int64)
                write(_scores_table(chunk, keep, kinds, scores, flags), chunk.where(name))
                rows, flagged = rows + len(flags), flagged + int(flags.sum())
                if report is not None:
                    report.update(rows, flagged, chunk.path)
            if rows == 0:
                raise ValueError(f"{name}: {[str(path) for path in files][:10]} hold no rows")
            if before_commit is not None:
                before_commit()
    except OSError as error:  # reading errors are ValueErrors: this is the write
        if not error.strerror:  # tfp_flowad.atomic's own, which names the file
            raise
        target = str(getattr(out, "name", out))
        failure = OSError(f"cannot write {target!r}: {error.strerror}")
        failure.errno = error.errno
        raise failure from None
    summary = ScoreSummary(rows, flagged, time.perf_counter() - start, len(files))
    if report is not None:
        report.update(rows, flagged, None, final=True)
    return summary


def _scores(detector, chunk: Chunk, kinds, name: str) -> dict:
    """``anomaly_scores`` of the chunk's rows; a bad row is refused naming its file and row."""
    rows = chunk.frame[detector.encoder_.input_columns]
    try:
        return detector.anomaly_scores(rows, kinds)
    except ValueError:  # checked again, to name the chunk
        detector.encoder_.check_rows(rows, chunk.where(name))
        raise


def _check_kinds(detector, kinds) -> tuple[str, ...]:
    available = detector.available_scores()
    kinds = (
        (detector.score_kind,)
        if kinds is None
        else (kinds,)
        if isinstance(kinds, str)
        else tuple(kinds)
    )
    if not kinds or any(k not in available for k in kinds) or len(set(kinds)) < len(kinds):
        raise ValueError(
            f"kinds must be distinct score kinds of this detector, {list(available)}; got "
            f"{list(kinds)}"
        )
    return kinds


def _check_keep(keep_columns, kinds) -> list[str]:
    keep = [keep_columns] if isinstance(keep_columns, str) else list(keep_columns)
    scores = {"anomaly_score", "is_anomaly", *(f"{kind}_score" for kind in kinds[1:])}
    for column in keep:
        if not isinstance(column, str) or keep.count(column) > 1 or column in scores:
            raise ValueError(
                "keep_columns must be distinct column names other than the score columns "
                f"{sorted(scores)}; got {keep!r}"
            )
    return keep


def _scores_table(chunk: Chunk, keep, kinds, scores, flags) -> pa.Table:
    columns = {column: chunk.table.column(column) for column in keep}
    columns["anomaly_score"] = pa.array(scores[kinds[0]], pa.float64())
    for kind in kinds[1:]:
        columns[f"{kind}_score"] = pa.array(scores[kind], pa.float64())
    columns["is_anomaly"] = pa.array(flags, pa.int64())
    return pa.table(columns)


@contextlib.contextmanager
def _scores_writer(out, inputs):
    """Yields ``write(table, where)``, which appends a table of scores to ``out``: a text
    stream (CSV), or a file written through ``atomic_file`` (format by its name)."""
    if hasattr(out, "write"):
        writer = _TableWriter(_TextSink(out), parquet=False)
        yield writer.write
        writer.close()
        return
    name = os.fspath(out)
    with contextlib.ExitStack() as stack:
        temporary = stack.enter_context(atomic_file(name, not_same_as=inputs))
        sink = stack.enter_context(open(temporary, "wb"))
        if name.endswith(".gz"):
            sink = stack.enter_context(gzip.GzipFile(fileobj=sink, mode="wb"))
        writer = _TableWriter(sink, parquet=name.endswith(".parquet"))
        try:
            yield writer.write
        except BaseException:
            writer.abandon()
            raise
        writer.close()


class _TableWriter:
    """Appends tables of one schema (the first table's) to a binary sink as CSV or Parquet."""

    def __init__(self, sink, parquet: bool):
        self._sink, self._parquet = sink, parquet
        self._writer = self._schema = None

    def write(self, table: pa.Table, where: str) -> None:
        if self._writer is None:
            self._schema = table.schema
            if self._parquet:
                self._writer = pq.ParquetWriter(self._sink, table.schema)
            else:
                plain = all(re.fullmatch(r"[\w.-]+", c) for c in table.column_names)
                options = pa_csv.WriteOptions(quoting_header="none" if plain else "needed")
                self._writer = pa_csv.CSVWriter(self._sink, table.schema, write_options=options)
        schema = self._schema
        if table.schema != schema:
            try:
                table = table.cast(schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
                raise ValueError(
                    f"{where}: the kept columns' types {table.schema.types} differ from those "
                    f"of the rows written before, {schema.types}: {error}"
                ) from None
        self._writer.write_table(table)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()

    def abandon(self) -> None:
        """Closes after a failure, whose file is removed: errors are moot and not raised."""
        with contextlib.suppress(Exception):
            self.close()
        if self._parquet and self._writer is not None:
            self._writer.is_open = False  # else it tries to close again when collected


class _TextSink(io.RawIOBase):
    """A binary sink that writes UTF-8 bytes to a text stream."""

    def __init__(self, text):
        self._text, self._decoder = text, codecs.getincrementaldecoder("utf-8")()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._text.write(self._decoder.decode(bytes(data)))
        return len(data)


class _Progress:
    """A line on stderr about the rows scored, at the first chunk, then at most every
    ``every`` seconds, and at the end."""

    def __init__(self, total: int | None, every: float = 5.0):
        self._total, self._every = total, every
        self._start = time.perf_counter()
        self._last = None

    def update(self, rows: int, flagged: int, path: Path | None, final: bool = False) -> None:
        now = time.perf_counter()
        if not final and self._last is not None and now - self._last < self._every:
            return
        self._last = now
        total = "" if self._total is None else f" of {self._total:,}"
        rate = rows / max(now - self._start, 1e-9)
        where = "done" if final else f"reading {path.name}"
        print(
            f"scored {rows:,}{total} rows, {flagged:,} flagged, {rate:,.0f} rows/s; {where}",
            file=sys.stderr,
            flush=True,
        )
