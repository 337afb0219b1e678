"""KDD Cup 1999 loaders and the location of the repository's benchmark data.

The KDD-99 files are CSV without a header: 41 features (named in the packaged ``columns.txt``)
followed by the label, which ends with a dot (``normal.``, ``smurf.``, ...). The loaders strip the
dot and, by default, drop exact duplicate rows (the whole row, label included), as the evaluation
protocol (BENCHMARK.md) asks: the 10% training file keeps 87,832 normal rows and
57,754 attack rows in 22 classes.

The 10% training file ships inside the package (the default data set). The labelled test file
``corrected.gz`` and the other benchmark files live in the repository's ``benchmarks/data`` folder,
found by :func:`benchmark_data_dir`.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "BENCHMARK_DATA_ENV",
    "KDD99_CATEGORICAL",
    "KDD99_NORMAL",
    "benchmark_data_dir",
    "kdd99_columns",
    "load_kdd99",
    "load_kdd99_corrected",
    "packaged_data_dir",
]

#: Environment variable that overrides the location of the benchmark data folder.
BENCHMARK_DATA_ENV = "TFP_FLOWAD_BENCHMARK_DATA"

#: The three symbolic KDD-99 columns; the other 38 are numeric.
KDD99_CATEGORICAL: tuple[str, ...] = ("protocol_type", "service", "flag")

#: Label of the normal class (C+) after stripping the trailing dot.
KDD99_NORMAL = "normal"

_KDD99_TRAIN_FILE = "kddcup.data_10_percent.gz"
_KDD99_COLUMNS_FILE = "columns.txt"
_KDD99_CORRECTED_FILE = "corrected.gz"
_LABEL = "label"


def packaged_data_dir() -> Path:
    """Folder of the data files installed with the package.

    Returns:
        ``<site-packages>/tfp_flowad/datasets/data`` (or the same folder of a source checkout).
    """
    return Path(__file__).resolve().parent / "data"


def benchmark_data_dir() -> Path:
    """Folder of the repository's benchmark data (``corrected.gz``, HIGGS/SUSY samples, ADBench).

    The folder is ``$TFP_FLOWAD_BENCHMARK_DATA`` if that environment variable is set, else
    ``<repository root>/benchmarks/data`` (the repository root is the parent of the
    ``tfp_flowad`` package folder). These files are not part of the installed package.

    Returns:
        The folder, which exists.

    Raises:
        FileNotFoundError: the folder does not exist; the message names the path and the
            environment variable.
    """
    from_env = os.environ.get(BENCHMARK_DATA_ENV)
    if from_env:
        folder = Path(from_env).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(
                f"benchmark data folder {str(folder)!r} (from ${BENCHMARK_DATA_ENV}) does not "
                "exist; point the variable at a folder holding corrected.gz, higgs/, susy/ and "
                "adbench/"
            )
        return folder
    folder = Path(__file__).resolve().parents[2] / "benchmarks" / "data"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"benchmark data folder {str(folder)!r} does not exist (it ships with the source "
            f"repository, not with the installed package); set ${BENCHMARK_DATA_ENV} to a folder "
            "holding corrected.gz, higgs/, susy/ and adbench/, or pass an explicit path"
        )
    return folder


@functools.lru_cache(maxsize=1)
def kdd99_columns() -> tuple[str, ...]:
    """Names of the 41 KDD-99 feature columns, in file order (from the packaged ``columns.txt``).

    Returns:
        41 names; ``protocol_type``, ``service`` and ``flag`` are categorical.
    """
    lines = (packaged_data_dir() / _KDD99_COLUMNS_FILE).read_text().split()
    names = tuple(name.strip() for name in lines if name.strip())
    if names[-1] == _LABEL:
        names = names[:-1]
    if len(names) != 41:  # pragma: no cover - guards a broken installation
        raise RuntimeError(f"columns.txt lists {len(names)} feature names, expected 41")
    return names


def _read_kdd99(path: str | os.PathLike, drop_duplicates: bool) -> tuple[pd.DataFrame, pd.Series]:
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"KDD-99 file {str(path)!r} does not exist")
    features = kdd99_columns()
    names = [*features, _LABEL]
    dtypes = {
        name: (str if name in KDD99_CATEGORICAL or name == _LABEL else np.float64) for name in names
    }
    try:
        frame = pd.read_csv(path, header=None, names=names, dtype=dtypes)
    except (ValueError, pd.errors.ParserError) as error:
        raise ValueError(
            f"KDD-99 file {str(path)!r} is not a header-less CSV of 41 features + label: {error}"
        ) from error
    if frame.empty:
        raise ValueError(f"KDD-99 file {str(path)!r} holds no rows")
    if frame.isna().to_numpy().any():
        raise ValueError(
            f"KDD-99 file {str(path)!r} has missing values or rows with fewer than 42 fields"
        )
    frame[_LABEL] = frame[_LABEL].str.strip().str.removesuffix(".")
    if drop_duplicates:
        frame = frame.drop_duplicates(keep="first", ignore_index=True)
    labels = frame.pop(_LABEL)
    labels.name = _LABEL
    return frame, labels


def load_kdd99(
    path: str | os.PathLike | None = None, drop_duplicates: bool = True
) -> tuple[pd.DataFrame, pd.Series]:
    """Load a KDD Cup 1999 file (default: the packaged 10% training file).

    Reads the 41 features + label, strips the label's trailing dot and, by default, drops exact
    duplicate rows (whole row, label included; the first occurrence is kept, the file order is
    preserved and the index is reset to ``0 .. n-1``).

    Args:
        path: a KDD-99 CSV (optionally gzip-compressed), for example the full
            ``kddcup.data.gz``. ``None`` reads the packaged ``kddcup.data_10_percent.gz``.
        drop_duplicates: drop exact duplicate rows.

    Returns:
        ``(X, labels)``: ``X`` has the 41 named feature columns, ``protocol_type``, ``service``
        and ``flag`` as ``str`` and the other 38 as ``float64``; ``labels`` holds the class name
        of each row (``"normal"`` or an attack name such as ``"smurf"``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not a KDD-99 CSV.

    Examples:
        >>> X, labels = load_kdd99()
        >>> X.shape, int((labels == "normal").sum())
        ((145586, 41), 87832)
    """
    if path is None:
        path = packaged_data_dir() / _KDD99_TRAIN_FILE
    return _read_kdd99(path, drop_duplicates)


def load_kdd99_corrected(
    path: str | os.PathLike | None = None, drop_duplicates: bool = True
) -> tuple[pd.DataFrame, pd.Series]:
    """Load the labelled KDD-99 test file ``corrected`` (same format as :func:`load_kdd99`).

    It holds attack types that the training file lacks (and the service value ``icmp``, absent
    from the 10% training file).

    Args:
        path: the file; ``None`` reads ``benchmark_data_dir() / "corrected.gz"``.
        drop_duplicates: drop exact duplicate rows (whole row, label included).

    Returns:
        ``(X, labels)`` as in :func:`load_kdd99`.

    Raises:
        FileNotFoundError: the file (or, for the default, the benchmark data folder) is missing.
        ValueError: the file is not a KDD-99 CSV.
    """
    if path is None:
        path = benchmark_data_dir() / _KDD99_CORRECTED_FILE
    return _read_kdd99(path, drop_duplicates)
