"""Scoring tables of billions of rows on a Dask cluster with an exported SavedModel.

``score_with_dask(model_dir, source, out)`` scores the rows of ``source`` (CSV or Parquet
files, a folder or a glob, as ``tfp_flowad.io.tables.table_files`` resolves them) with the
SavedModel that ``export_saved_model`` wrote, on the workers of a Dask cluster, and writes a
folder of Parquet part files. Every check is made on the client before any task is sent: the
model, the files, every file's columns, the output path.

The work is split into pieces: a Parquet file's row groups gathered up to ``partition_rows``
rows, or a whole CSV file. A task reads its piece with pyarrow a chunk of ``chunk_rows`` rows at
a time, scores the chunk with the SavedModel's ``serving_default`` and appends it to its part
file, so a worker's memory holds a chunk whatever the size of a file. The SavedModel's files
are sent to each worker once and loaded there once per worker process; the workers therefore
need no access to ``model_dir``, but they read ``source`` and write ``out`` at the same paths
as the client (one machine, or a file system shared by the cluster).

The output folder ``out`` holds ``part-NNNNNN.parquet`` files (the piece's number, so sorted
names are the rows' order) with the columns ``keep_columns`` (as read: Parquet types, CSV text
exactly as written), ``anomaly_score`` (float64) and ``is_anomaly`` (int64, from the
SavedModel's threshold), one row per input row, and ``_tfp_flowad_scores.json`` (a summary).
``pandas.read_parquet(out)`` reads it back in order. It is written through
``tfp_flowad.atomic.atomic_directory``: it appears whole once every piece is scored, or not at
all; it replaces only a folder of scores this module wrote, and no input file is written.

Cells are checked as ``decision_function`` checks them (numbers finite and within float32,
no empty cells) and a bad one stops the run with a ``ValueError`` that names the file, the
rows, the column, the row and the value. A CSV file's categorical cells are sent as written;
``tfp-flowad score``'s own engine reads ``true`` as ``True`` where pandas read the training
column as booleans, which a SavedModel (holding no vocabulary) cannot know.

Why Dask: it installs from pure pip wheels (``dask``, ``distributed``) next to TensorFlow, runs
on one machine (``LocalCluster``) and on a cluster (a scheduler address) with the same code,
and its tasks read with pyarrow, which this library already uses. Apache Beam's TensorFlow
RunInference needs ``tfx-bsl``, whose releases for TensorFlow 2.21 pin ``absl-py<2``,
``protobuf<7`` and ``tensorflow-serving-api<2.20``, against this library's requirements. Ray
Data is one wheel of some 80 MB with its own runtime and object store, more than batch
scoring of files needs. Dask's dataframe readers are not used: a task streams its piece (a
compressed CSV file cannot be split) and knows its file and first row, for the messages.
"""

import contextlib
import hashlib
import json
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from tfp_flowad.atomic import atomic_directory
from tfp_flowad.io.scores import ScoreSummary
from tfp_flowad.io.tables import EMPTY_CELLS, table_columns, table_files
from tfp_flowad.preprocessing import categorical_values, numeric_values

__all__ = ["MARKER", "DaskScoreSummary", "saved_model_directory", "score_with_dask"]

#: The summary file of an output folder; its presence marks a folder this module wrote.
MARKER = "_tfp_flowad_scores.json"
_SCORE_COLUMNS = ("anomaly_score", "is_anomaly")
_ABORT = "_abort"  # created in the staging folder to stop the running tasks after a failure
_READ_ERRORS = (pa.ArrowException, OSError, EOFError, UnicodeDecodeError)
_DEFAULT_NAMES = {k: k for k in ("model_dir", "source", "out", "keep_columns")}


@dataclass(frozen=True)
class DaskScoreSummary(ScoreSummary):
    """``score_file``'s summary (``rows``, ``flagged``, ``seconds`` from the first task sent to
    the last part written, ``files``), and the ``parts`` written and ``model_loads``: how
    many worker processes loaded the SavedModel."""

    parts: int
    model_loads: int


@dataclass(frozen=True)
class _Piece:
    """One task's rows: row groups of a Parquet file, or (``row_groups`` None) a CSV file."""

    number: int
    path: str
    row_groups: tuple[int, ...] | None
    first_row: int


@dataclass(frozen=True)
class _ModelFiles:
    """A SavedModel's files (relative path -> bytes; ``None`` for a folder) and their digest."""

    digest: str
    files: dict


def score_with_dask(
    model_dir,
    source,
    out,
    *,
    keep_columns: Sequence[str] = (),
    client=None,
    n_workers: int | None = None,
    chunk_rows: int = 65536,
    partition_rows: int = 1_048_576,
    progress: bool = False,
    names: dict | None = None,
) -> DaskScoreSummary:
    """Scores ``source`` with the SavedModel ``model_dir`` on Dask workers into the Parquet
    folder ``out`` (module docstring), whole or not at all.

    Args:
        model_dir: a SavedModel written by ``export_saved_model`` (``saved_model_directory``).
        source: a CSV or Parquet file, a folder or a glob (``table_files``).
        out: the output folder: a new path, or a folder of scores this function wrote (it is
            replaced). Not inside a ``source`` folder and holding no input file.
        keep_columns: columns of ``source`` written first, so scores join back to their rows.
        client: a ``distributed.Client``, a scheduler address such as ``"tcp://host:8786"``,
            or ``None`` for a ``LocalCluster`` of ``n_workers`` processes (one thread each)
            that lives as long as the call.
        n_workers: the local cluster's workers (default: Dask's, one per core).
        chunk_rows: rows read and scored at a time by a task.
        partition_rows: rows of Parquet row groups gathered into one task and part file.
        progress: print a line on stderr every few seconds and at the end.
        names: how messages call the arguments (e.g. ``{"source": "--data"}``).

    Returns:
        a ``DaskScoreSummary``.

    Raises:
        ImportError: Dask is not installed (``pip install 'tfp_flowad[dask]'``).
        ValueError: a bad argument (before any task is sent), naming it and the value; or a
            bad cell (naming the file, the rows, the column and the value); ``out`` is then
            left as it was.
        TypeError: ``client`` is neither a Client, an address nor ``None``.
    """
    try:
        from distributed import Client
    except ImportError:
        raise ImportError(
            "scoring with Dask needs dask and distributed: pip install 'tfp_flowad[dask]'"
        ) from None
    names = {**_DEFAULT_NAMES, **(names or {})}
    for label, value in (("chunk_rows", chunk_rows), ("partition_rows", partition_rows)):
        _check_count(label, value)
    if n_workers is not None:
        _check_count("n_workers", n_workers)
    if not (client is None or isinstance(client, str | Client)):
        raise TypeError(f"client must be a distributed.Client, an address or None; got {client!r}")
    keep = _check_keep(keep_columns, names["keep_columns"])
    model = saved_model_directory(model_dir, names["model_dir"])
    inputs = _model_inputs(model, names["model_dir"])
    files = table_files(source, names["source"])
    _check_columns(files, inputs, keep, names)
    target = _check_out(out, source, files, names["out"])
    pieces, total = _pieces(files, partition_rows)
    if not pieces or total == 0:
        raise ValueError(f"{names['source']}: {[str(f) for f in files][:10]} hold no rows")
    model_files = _read_model(model)
    with (
        _connected(client, n_workers) as dask_client,
        atomic_directory(target, may_replace=is_scores_folder) as staging,
    ):
        start = time.perf_counter()
        report = total if progress else False
        done = _run(dask_client, pieces, model_files, inputs, keep, staging, chunk_rows,
                    names["source"], report)  # fmt: skip
        rows, flagged = sum(d["rows"] for d in done), sum(d["flagged"] for d in done)
        if rows == 0:
            raise ValueError(f"{names['source']}: {[str(f) for f in files][:10]} hold no rows")
        parts, loads = sum(d["rows"] > 0 for d in done), sum(d["loaded"] for d in done)
        seconds = time.perf_counter() - start
        summary = DaskScoreSummary(rows, flagged, seconds, len(files), parts, loads)
        record = dict(rows=rows, flagged=flagged, parts=parts, model=str(model))
        record.update(source=os.fspath(source), columns=[*keep, *_SCORE_COLUMNS])
        (staging / MARKER).write_text(json.dumps(record, indent=1) + "\n")
    return summary


def saved_model_directory(model_dir, name: str = "model_dir") -> Path:
    """The SavedModel folder of ``model_dir``: itself when it holds ``saved_model.pb``, else
    its highest integer version folder that holds one (as TF Serving picks).

    Raises:
        ValueError: neither; the message names ``name`` and ``model_dir``.
    """
    path = Path(os.fspath(model_dir))
    if (path / "saved_model.pb").is_file():
        return path
    versions = [p for p in path.iterdir() if p.name.isdigit()] if path.is_dir() else []
    versions = [p for p in versions if (p / "saved_model.pb").is_file()]
    if versions:
        return max(versions, key=lambda p: int(p.name))
    raise ValueError(
        f"{name}: {os.fspath(model_dir)!r} is not a SavedModel (no saved_model.pb in it, nor in "
        "a version folder such as 1/); write one with export_saved_model or 'tfp-flowad export'"
    )


def is_scores_folder(path) -> bool:
    """Whether ``path`` is a folder of scores written by ``score_with_dask``."""
    return (Path(path) / MARKER).is_file()


def _check_count(label: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{label} must be an integer >= 1; got {value!r}")


def _check_keep(keep_columns, name: str) -> list[str]:
    keep = [keep_columns] if isinstance(keep_columns, str) else list(keep_columns)
    for column in keep:
        if not isinstance(column, str) or keep.count(column) > 1 or column in _SCORE_COLUMNS:
            raise ValueError(
                f"{name} must be distinct column names other than {list(_SCORE_COLUMNS)}; "
                f"got {keep!r}"
            )
    return keep


def _model_inputs(model: Path, name: str) -> dict[str, bool]:
    """``{column: numeric?}`` of the SavedModel's ``serving_default`` inputs."""
    import tensorflow as tf
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    try:
        saved = saved_model_pb2.SavedModel.FromString((model / "saved_model.pb").read_bytes())
        signature = saved.meta_graphs[0].signature_def["serving_default"]
    except (DecodeError, IndexError, KeyError, OSError) as error:
        raise ValueError(f"{name}: cannot read the SavedModel {str(model)!r}: {error}") from None
    inputs = {column: tf.as_dtype(info.dtype) for column, info in signature.inputs.items()}
    if not {*_SCORE_COLUMNS} <= set(signature.outputs) or any(
        dtype not in (tf.float32, tf.string) for dtype in inputs.values()
    ):
        raise ValueError(
            f"{name}: {str(model)!r} is not a tfp_flowad export: its serving_default takes "
            f"{ {c: d.name for c, d in inputs.items()} } and returns {sorted(signature.outputs)}"
        )
    return {column: dtype == tf.float32 for column, dtype in sorted(inputs.items())}


def _check_columns(files, inputs, keep, names) -> None:
    """Every file has the model's columns and ``keep``, and a kept column one type in all."""
    types = {}
    for path in files:
        present = table_columns(path, names["source"])
        missing = [c for c in [*inputs, *keep] if c not in present]
        if missing:
            option = names["keep_columns"] if set(missing) - set(inputs) else "the model"
            raise ValueError(
                f"{names['source']} {str(path)!r} lacks the columns {missing[:10]} that "
                f"{option} needs; its columns are {present[:20]}"
            )
        schema = pq.read_schema(path) if path.suffix == ".parquet" else None
        for column in keep:
            kind = pa.string() if schema is None else schema.field(column).type
            first = types.setdefault(column, (kind, path))
            if first[0] != kind:
                raise ValueError(
                    f"{names['keep_columns']}: column {column!r} is {kind} in {str(path)!r} "
                    f"but {first[0]} in {str(first[1])!r}; its part files would not read as "
                    "one table"
                )


def _check_out(out, source, files, name: str) -> Path:
    path = Path(os.fspath(out)).absolute()
    text = os.fspath(out)
    if path.exists() and not (path.is_dir() and is_scores_folder(path)):
        raise ValueError(
            f"{name}: {text!r} exists and is not a folder of scores written by this engine; "
            "give a new path"
        )
    if not path.parent.is_dir():
        raise ValueError(f"{name}: directory {str(path.parent)!r} does not exist")
    resolved = path.resolve()
    folder = Path(os.fspath(source))
    if folder.is_dir() and (resolved == folder.resolve() or folder.resolve() in resolved.parents):
        raise ValueError(
            f"{name}: {text!r} is inside the input folder {os.fspath(source)!r}, where the "
            "next run would read its part files as data; write it elsewhere"
        )
    for file in files:
        if resolved in file.resolve().parents:
            raise ValueError(f"{name}: {text!r} holds the input file {str(file)!r}")
    return path


def _pieces(files, partition_rows: int) -> tuple[list[_Piece], int | None]:
    """The pieces of ``files`` in order, and their rows (``None`` when a CSV file is read)."""
    pieces, total = [], 0
    for path in files:
        if path.suffix != ".parquet":
            pieces.append(_Piece(len(pieces), str(path), None, 0))
            total = None
            continue
        metadata = pq.ParquetFile(path).metadata
        groups, rows, first = [], 0, 0
        for index in range(metadata.num_row_groups):
            groups.append(index)
            rows += metadata.row_group(index).num_rows
            if rows >= partition_rows or index == metadata.num_row_groups - 1:
                if rows:
                    pieces.append(_Piece(len(pieces), str(path), tuple(groups), first))
                first, groups, rows = first + rows, [], 0
        total = None if total is None else total + metadata.num_rows
    return pieces, total


def _read_model(model: Path) -> _ModelFiles:
    files = {
        path.relative_to(model).as_posix(): None if path.is_dir() else path.read_bytes()
        for path in sorted(model.rglob("*"))
    }
    digest = hashlib.sha256()
    for relative, data in files.items():
        digest.update(relative.encode() + b"\0" + (data or b""))
    return _ModelFiles(digest.hexdigest(), files)


@contextlib.contextmanager
def _connected(client, n_workers):
    """A client of ``client`` (an address), or of a local cluster started for the call and
    shut down after it. Dask's log lines below ERROR are left out while it lasts."""
    from distributed import Client, LocalCluster

    if isinstance(client, Client):
        yield client
        return
    dask_logs = logging.getLogger("distributed")
    level = dask_logs.level
    dask_logs.setLevel(logging.ERROR)  # its start and stop lines, workers killed at the stop
    try:
        with contextlib.ExitStack() as stack:
            if client is None:
                client = stack.enter_context(
                    LocalCluster(
                        n_workers=n_workers, threads_per_worker=1, processes=True,
                        dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR,
                    )
                )  # fmt: skip
            yield stack.enter_context(Client(client))
    finally:
        dask_logs.setLevel(level)


def _run(client, pieces, model_files, inputs, keep, staging, chunk_rows, name, total):
    """Runs one task per piece; on a failure, stops the others before it raises."""
    from distributed import as_completed, wait

    model = client.scatter(model_files, broadcast=True)
    futures = client.map(
        _score_piece, pieces, model=model, inputs=inputs, keep=keep, staging=str(staging),
        chunk_rows=chunk_rows, name=name, pure=False,
    )  # fmt: skip
    done, last = [], None
    try:
        for future in as_completed(futures):
            done.append(future.result())
            if total is not False and (last is None or time.perf_counter() - last > 5):
                last = time.perf_counter()
                _report(done, len(pieces), total)
    except BaseException:
        (staging / _ABORT).touch()  # running tasks stop at their next chunk, the others at once
        with contextlib.suppress(Exception):
            wait(futures)  # nothing writes into the staging folder once it is removed
        raise
    if total is not False:
        _report(done, len(pieces), total)
    return done


def _report(done, pieces: int, total) -> None:
    rows, flagged = sum(d["rows"] for d in done), sum(d["flagged"] for d in done)
    of = "" if total is None else f" of {total:,}"
    print(
        f"scored {rows:,}{of} rows, {flagged:,} flagged; {len(done)} of {pieces} pieces done",
        file=sys.stderr,
        flush=True,
    )


_MODELS: dict = {}  # digest -> the loaded SavedModel, in each worker process (the last few)
_KEPT_MODELS = 4
_LOCK = threading.Lock()


def _serving(model: _ModelFiles):
    """The SavedModel's ``serving_default`` in this process, and whether it was loaded now."""
    with _LOCK:
        if model.digest in _MODELS:
            return _MODELS[model.digest].signatures["serving_default"], False
        import tensorflow as tf

        while len(_MODELS) >= _KEPT_MODELS:  # a long-lived worker serves run after run
            _MODELS.pop(next(iter(_MODELS)))
        with tempfile.TemporaryDirectory(prefix="tfp_flowad-savedmodel-") as folder:
            for relative, data in model.files.items():
                path = Path(folder, relative)
                if data is None:
                    path.mkdir(parents=True, exist_ok=True)
                else:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(data)
            _MODELS[model.digest] = tf.saved_model.load(folder)
        return _MODELS[model.digest].signatures["serving_default"], True


def _score_piece(piece: _Piece, *, model, inputs, keep, staging, chunk_rows, name) -> dict:
    """A worker's task: scores one piece into ``staging/part-NNNNNN.parquet``."""
    abort = Path(staging, _ABORT)
    result = dict(rows=0, flagged=0, loaded=False)
    if abort.exists():
        return result
    serve, result["loaded"] = _serving(model)
    writer = None
    try:
        for start, table in _chunks(piece, list(dict.fromkeys([*inputs, *keep])), chunk_rows, name):
            if abort.exists():
                break
            where = f"{name} {piece.path!r}, rows {start} to {start + table.num_rows - 1}"
            tensors = {
                column: _tensor(table.column(column), column, numeric, start, where)
                for column, numeric in inputs.items()
            }
            served = serve(**tensors)
            flags = served["is_anomaly"].numpy().astype(np.int64)
            columns = {column: table.column(column) for column in keep}
            columns["anomaly_score"] = served["anomaly_score"].numpy().astype(np.float64)
            columns["is_anomaly"] = flags
            scores = pa.table(columns)
            if writer is None:
                part = Path(staging, f"part-{piece.number:06d}.parquet")
                writer = pq.ParquetWriter(part, scores.schema)
            writer.write_table(scores)
            result["rows"] += len(flags)
            result["flagged"] += int(flags.sum())
    finally:
        if writer is not None:
            writer.close()
    return result


def _chunks(piece: _Piece, columns, chunk_rows: int, name: str):
    """``(first row in the file, table)`` of at most ``chunk_rows`` rows of ``piece``."""
    start = piece.first_row
    try:
        with contextlib.ExitStack() as stack:
            if piece.row_groups is not None:
                # pre_buffer=False: one row group at a time, not the piece's column chunks.
                parquet = stack.enter_context(pq.ParquetFile(piece.path, pre_buffer=False))
                batches = parquet.iter_batches(chunk_rows, list(piece.row_groups), columns)
            else:  # every cell as text, as tfp_flowad.io.tables reads a CSV file
                options = pa_csv.ConvertOptions(
                    column_types={column: pa.string() for column in columns},
                    include_columns=columns, null_values=list(EMPTY_CELLS),
                    strings_can_be_null=True,
                )  # fmt: skip
                raw = stack.enter_context(pa.input_stream(piece.path, compression="detect"))
                batches = pa_csv.open_csv(raw, convert_options=options)
            for batch in batches:
                for offset in range(0, batch.num_rows, chunk_rows):
                    part = pa.Table.from_batches([batch.slice(offset, chunk_rows)])
                    yield start + offset, part
                start += batch.num_rows
    except _READ_ERRORS as error:
        raise ValueError(f"{name}: cannot read {piece.path!r}: {error}") from None


def _tensor(cells: pa.ChunkedArray, column: str, numeric: bool, start: int, where: str):
    """One column of a chunk as the SavedModel's input, checked as ``decision_function``
    checks its rows: numbers finite and within float32, no empty cells."""
    import tensorflow as tf

    if numeric and pa.types.is_string(cells.type):
        with contextlib.suppress(pa.ArrowInvalid):  # else the text is named below
            cells = pc.cast(cells, pa.float64())
    frame = cells.to_pandas().rename(column).to_frame()
    frame.index = pd.RangeIndex(start, start + len(frame))
    if not numeric:
        values = categorical_values(frame, column, where).to_numpy(dtype=object)
        return tf.constant(values, tf.string)
    return tf.constant(numeric_values(frame, [column], where)[:, 0], tf.float32)
