"""HIGGS and SUSY loaders (Baldi, Sadowski, Whiteson 2014; UCI data sets 280 and 279).

Two file layouts are read:

* the public samples under ``benchmark_data_dir()`` (``higgs/higgs_sample.csv.gz``,
  ``susy/susy_sample.csv.gz``): a header row, ``label`` first, then the features;
* the full UCI files a user downloads (``HIGGS.csv.gz``, 11,000,000 rows; ``SUSY.csv.gz``,
  5,000,000 rows): no header, the label first. They are recognised by the missing header and
  read in chunks of ``chunksize`` rows as ``float32`` (HIGGS in float64 would take about 2.5 GB),
  stopping after ``max_rows`` rows. The customary test set is the last 500,000 rows
  (:func:`full_uci_split`).

Label 1 is the signal (the anomaly class C-), 0 the background (the normal class C+).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from tfp_flowad.datasets.kdd99 import benchmark_data_dir

__all__ = [
    "HIGGS_FEATURES",
    "SUSY_FEATURES",
    "UCI_TEST_ROWS",
    "full_uci_split",
    "load_higgs",
    "load_physics",
    "load_susy",
]

#: The 28 HIGGS features in UCI order (21 low-level kinematic features, then 7 high-level masses).
HIGGS_FEATURES: tuple[str, ...] = (
    "lepton_pT",
    "lepton_eta",
    "lepton_phi",
    "missing_energy_magnitude",
    "missing_energy_phi",
    "jet_1_pt",
    "jet_1_eta",
    "jet_1_phi",
    "jet_1_btag",
    "jet_2_pt",
    "jet_2_eta",
    "jet_2_phi",
    "jet_2_btag",
    "jet_3_pt",
    "jet_3_eta",
    "jet_3_phi",
    "jet_3_btag",
    "jet_4_pt",
    "jet_4_eta",
    "jet_4_phi",
    "jet_4_btag",
    "m_jj",
    "m_jjj",
    "m_lv",
    "m_jlv",
    "m_bb",
    "m_wbb",
    "m_wwbb",
)

#: The 18 SUSY features in UCI order (8 low-level, then 10 high-level).
SUSY_FEATURES: tuple[str, ...] = (
    "lepton 1 pT",
    "lepton 1 eta",
    "lepton 1 phi",
    "lepton 2 pT",
    "lepton 2 eta",
    "lepton 2 phi",
    "missing energy magnitude",
    "missing energy phi",
    "MET_rel",
    "axial MET",
    "M_R",
    "M_TR_2",
    "R",
    "MT2",
    "S_R",
    "M_Delta_R",
    "dPhi_r_b",
    "cos(theta_r1)",
)

#: Size of the customary test set of the full UCI files (their last rows).
UCI_TEST_ROWS = 500_000

_LABEL = "label"
_SAMPLES = {
    "higgs": ("higgs", "higgs_sample.csv.gz", HIGGS_FEATURES),
    "susy": ("susy", "susy_sample.csv.gz", SUSY_FEATURES),
}


def _first_row(path: Path) -> list[str]:
    """The fields of the file's first line."""
    try:
        first = pd.read_csv(path, header=None, nrows=1, dtype=str)
    except (ValueError, pd.errors.ParserError, OSError, EOFError) as error:
        raise ValueError(f"{str(path)!r} is not a readable CSV file: {error}") from error
    return [str(value) for value in first.iloc[0]]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_chunks(
    path: Path, header: int | None, names: list[str] | None, dtype: type, chunksize: int
) -> Iterator[pd.DataFrame]:
    """``pd.read_csv(..., chunksize=...)`` whose parse errors name the file."""
    with pd.read_csv(path, header=header, names=names, dtype=dtype, chunksize=chunksize) as reader:
        while True:
            try:
                chunk = next(reader)
            except StopIteration:
                return
            except (ValueError, pd.errors.ParserError) as error:
                raise ValueError(
                    f"{str(path)!r} could not be parsed as numbers: {error}"
                ) from error
            yield chunk


def _check_positive(name: str, value: int | None, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def load_physics(
    name: str,
    path: str | os.PathLike | None = None,
    max_rows: int | None = None,
    chunksize: int = 500_000,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Load HIGGS or SUSY from the packaged-with-the-repository sample or a user-given file.

    The file is read in chunks of ``chunksize`` rows (never all at once), stopping after
    ``max_rows`` rows. A file whose first line is all numbers is taken to be the full UCI file
    (no header, label first) and read as ``float32``; a file with a header row (the samples) must
    have ``label`` as its first column and is read as ``float64``.

    Args:
        name: ``"higgs"`` or ``"susy"``.
        path: the CSV (optionally gzip-compressed); ``None`` reads the sample under
            :func:`~tfp_flowad.datasets.benchmark_data_dir`.
        max_rows: read at most this many rows from the start of the file (``None``: all).
        chunksize: rows per chunk.

    Returns:
        ``(X, y)``: ``X`` is a DataFrame of the named features (``float64`` for a file with a
        header, ``float32`` for a header-less UCI file) with index ``0 .. n-1``; ``y`` is an
        ``int64`` array, 1 = signal, 0 = background.

    Raises:
        FileNotFoundError: the file (or, for the default, the benchmark data folder) is missing.
        ValueError: unknown ``name``, bad ``max_rows`` / ``chunksize``, wrong number of columns,
            a header whose first column is not ``label``, missing values or labels other than 0/1.
    """
    key = str(name).lower()
    if key not in _SAMPLES:
        raise ValueError(f"name must be 'higgs' or 'susy', got {name!r}")
    folder, sample_file, features = _SAMPLES[key]
    _check_positive("max_rows", max_rows, allow_none=True)
    _check_positive("chunksize", chunksize, allow_none=False)
    path = benchmark_data_dir() / folder / sample_file if path is None else Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{key.upper()} file {str(path)!r} does not exist")

    first = _first_row(path)
    if len(first) != 1 + len(features):
        raise ValueError(
            f"{key.upper()} file {str(path)!r} has {len(first)} columns, expected "
            f"{1 + len(features)} (label + {len(features)} features)"
        )
    if all(_is_number(value) for value in first):  # the full UCI file: no header
        header, names, dtype = None, [_LABEL, *features], np.float32
    else:
        if first[0] != _LABEL:
            raise ValueError(
                f"{key.upper()} file {str(path)!r} has a header whose first column is "
                f"{first[0]!r}, expected {_LABEL!r}"
            )
        header, names, dtype = 0, None, np.float64
    step = chunksize if max_rows is None else min(chunksize, max_rows)

    blocks: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    columns: list[str] | None = None
    n_read = 0
    with contextlib.closing(_read_chunks(path, header, names, dtype, step)) as chunks:
        for chunk in chunks:
            if columns is None:
                columns = [str(column) for column in chunk.columns]
            if max_rows is not None and n_read + len(chunk) > max_rows:
                chunk = chunk.iloc[: max_rows - n_read]
            values = chunk.to_numpy(dtype=dtype)
            if np.isnan(values).any():
                raise ValueError(
                    f"{key.upper()} file {str(path)!r} has missing values or short rows near "
                    f"row {n_read + int(np.isnan(values).any(axis=1).argmax())}"
                )
            blocks.append(values[:, 1:])
            labels.append(values[:, 0])
            n_read += len(values)
            if max_rows is not None and n_read >= max_rows:
                break
    if not blocks:
        raise ValueError(f"{key.upper()} file {str(path)!r} holds no rows")

    label_values = np.concatenate(labels)
    if not np.isin(label_values, (0.0, 1.0)).all():
        bad = np.unique(label_values[~np.isin(label_values, (0.0, 1.0))])[:5]
        raise ValueError(
            f"{key.upper()} file {str(path)!r} has labels other than 0/1, e.g. {bad.tolist()}"
        )
    y = label_values.astype(np.int64)
    X = pd.DataFrame(
        np.concatenate(blocks) if len(blocks) > 1 else blocks[0],
        columns=columns[1:],
        copy=False,
    )
    return X, y


def _sample_set_loader(
    name: str, sample_rows: int, sample_signal: int
) -> Callable[..., tuple[pd.DataFrame, np.ndarray]]:
    """The loader ``load_<name>(path, max_rows, chunksize)``: :func:`load_physics` of one set.

    Args:
        name: a key of ``_SAMPLES`` (``"higgs"`` or ``"susy"``).
        sample_rows: rows of the set's packaged sample (for the docstring and its example).
        sample_signal: signal rows of that sample (likewise).
    """
    title = name.upper()
    n_features = len(_SAMPLES[name][2])

    def load(
        path: str | os.PathLike | None = None,
        max_rows: int | None = None,
        chunksize: int = 500_000,
    ) -> tuple[pd.DataFrame, np.ndarray]:
        return load_physics(name, path, max_rows=max_rows, chunksize=chunksize)

    load.__name__ = load.__qualname__ = f"load_{name}"
    load.__doc__ = f"""Load {title}: the {sample_rows:,}-row sample by default, or the full
    ``{title}.csv.gz`` from ``path``.

    See :func:`load_physics` for the file layouts, arguments and errors.

    Returns:
        ``(X, y)``: {n_features} named features; ``y`` 1 = signal, 0 = background.

    Examples:
        >>> X, y = load_{name}()
        >>> X.shape, int(y.sum())
        (({sample_rows}, {n_features}), {sample_signal})
    """
    return load


load_higgs = _sample_set_loader("higgs", sample_rows=15_977, sample_signal=8_501)
load_susy = _sample_set_loader("susy", sample_rows=10_000, sample_signal=4_553)


def full_uci_split(
    X: pd.DataFrame | np.ndarray, y: np.ndarray, n_test: int = UCI_TEST_ROWS
) -> tuple[pd.DataFrame | np.ndarray, pd.DataFrame | np.ndarray, np.ndarray, np.ndarray]:
    """Split a full UCI HIGGS/SUSY table as the paper does: the last ``n_test`` rows are the test.

    Args:
        X: features in file order.
        y: labels in file order.
        n_test: rows at the end that form the test set.

    Returns:
        ``(X_train, X_test, y_train, y_test)`` (scikit-learn's order); the parts are slices of
        the inputs, in file order.

    Raises:
        ValueError: ``X`` and ``y`` differ in length, or there are not more than ``n_test`` rows.
    """
    _check_positive("n_test", n_test, allow_none=False)
    y = np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
    if len(y) <= n_test:
        raise ValueError(
            f"need more than n_test={n_test} rows for a train/test split, got {len(y)}; "
            "the full UCI files have 11,000,000 (HIGGS) and 5,000,000 (SUSY) rows"
        )
    cut = len(y) - n_test
    if isinstance(X, pd.DataFrame):
        return X.iloc[:cut], X.iloc[cut:], y[:cut], y[cut:]
    X = np.asarray(X)
    return X[:cut], X[cut:], y[:cut], y[cut:]
