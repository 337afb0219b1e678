"""Loaders for tabular anomaly-detection sets in ADBench's ``.npz`` format.

Each file holds two arrays: ``X`` (rows x features, numbers) and ``y`` (one label a row,
1 = anomaly, 0 = normal). Ten classic sets ship in the repository's ``benchmarks/data/adbench``
folder (see :func:`adbench_paths`); ``16_http`` and ``34_smtp`` are derived from KDD-99.
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

import numpy as np

from tfp_flowad.datasets.kdd99 import benchmark_data_dir

__all__ = ["ADBENCH_SETS", "adbench_paths", "load_adbench", "resolve_adbench_path"]

#: The ten sets shipped in ``benchmarks/data/adbench`` (file stems).
ADBENCH_SETS: tuple[str, ...] = (
    "2_annthyroid",
    "6_cardio",
    "10_cover",
    "16_http",
    "22_magic.gamma",
    "23_mammography",
    "31_satimage-2",
    "32_shuttle",
    "34_smtp",
    "38_thyroid",
)


def _natural_key(stem: str) -> tuple[int, str]:
    match = re.match(r"(\d+)_", stem)
    return (int(match.group(1)) if match else 1 << 30, stem)


def adbench_paths() -> dict[str, Path]:
    """The ADBench-format files in ``benchmark_data_dir() / "adbench"``.

    Returns:
        ``{stem: path}`` for every ``*.npz`` there (the ten :data:`ADBENCH_SETS` in a checkout,
        plus any file a user adds), ordered by ADBench's leading number, e.g.
        ``{"2_annthyroid": ..., "6_cardio": ..., ...}``.

    Raises:
        FileNotFoundError: the folder is missing or holds no ``.npz`` file.
    """
    folder = benchmark_data_dir() / "adbench"
    if not folder.is_dir():
        raise FileNotFoundError(f"ADBench folder {str(folder)!r} does not exist")
    paths = {path.stem: path for path in folder.glob("*.npz") if path.is_file()}
    if not paths:
        raise FileNotFoundError(f"ADBench folder {str(folder)!r} holds no .npz file")
    return {stem: paths[stem] for stem in sorted(paths, key=_natural_key)}


def resolve_adbench_path(path_or_name: str | os.PathLike) -> Path:
    """Turn a set name (``"6_cardio"``) or a path into the path of an ``.npz`` file.

    Args:
        path_or_name: a stem listed by :func:`adbench_paths`, or a path to an ``.npz`` file.

    Returns:
        The path (not checked for existence when given as a path).

    Raises:
        FileNotFoundError: a bare name that is neither a listed set nor an existing file.
    """
    path = Path(path_or_name).expanduser()
    if path.suffix == ".npz" or len(path.parts) > 1:
        return path
    try:
        shipped = adbench_paths()
    except FileNotFoundError as error:
        if path.is_file():
            return path
        raise FileNotFoundError(
            f"{str(path_or_name)!r} is neither an .npz file nor a shipped ADBench set ({error})"
        ) from error
    if str(path_or_name) in shipped:
        return shipped[str(path_or_name)]
    if path.is_file():
        return path
    raise FileNotFoundError(
        f"{str(path_or_name)!r} is neither an .npz file nor a shipped ADBench set; "
        f"known sets: {', '.join(shipped)}"
    )


def load_adbench(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Load an ADBench-format ``.npz`` file.

    Args:
        path: the file, holding arrays ``X`` (2-D, numeric) and ``y`` (1-D, 0/1, 1 = anomaly).

    Returns:
        ``(X, y)``: ``X`` as ``float64`` of shape ``(n, d)``, ``y`` as ``int64`` of shape ``(n,)``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: not a readable ``.npz``, ``X`` or ``y`` missing, wrong dimensions, row counts
            that disagree, non-numeric or non-finite ``X``, or labels other than 0/1. The message
            names the path.

    Examples:
        >>> X, y = load_adbench(adbench_paths()["6_cardio"])
        >>> X.shape, int(y.sum())
        ((1831, 21), 176)
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"ADBench file {str(path)!r} does not exist")
    where = f"ADBench file {str(path)!r}"
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise ValueError(f"{where} is a single .npy array, expected an .npz with X and y")
            missing = [key for key in ("X", "y") if key not in archive.files]
            if missing:
                raise ValueError(
                    f"{where} lacks array(s) {missing}; it holds {sorted(archive.files)}"
                )
            X_raw = archive["X"]
            y_raw = archive["y"]
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise ValueError(f"{where} is not a readable .npz archive: {error}") from error
    except ValueError as error:
        if str(error).startswith(where):
            raise
        raise ValueError(f"{where} could not be read (object arrays?): {error}") from error

    if X_raw.ndim != 2:
        raise ValueError(f"{where}: X must be 2-D (rows x features), got shape {X_raw.shape}")
    if y_raw.ndim == 2 and y_raw.shape[1] == 1:
        y_raw = y_raw[:, 0]
    if y_raw.ndim != 1:
        raise ValueError(f"{where}: y must be 1-D, got shape {y_raw.shape}")
    if len(X_raw) != len(y_raw):
        raise ValueError(f"{where}: X has {len(X_raw)} rows but y has {len(y_raw)}")
    if len(y_raw) == 0:
        raise ValueError(f"{where} holds no rows")
    if not (np.issubdtype(X_raw.dtype, np.number) or X_raw.dtype == np.bool_):
        raise ValueError(f"{where}: X must be numeric, got dtype {X_raw.dtype}")
    X = X_raw.astype(np.float64)
    if not np.isfinite(X).all():
        raise ValueError(f"{where}: X holds NaN or infinite values")
    if not (np.issubdtype(y_raw.dtype, np.number) or y_raw.dtype == np.bool_):
        raise ValueError(f"{where}: y must be numeric 0/1, got dtype {y_raw.dtype}")
    bad = ~np.isin(y_raw, (0, 1))
    if bad.any():
        raise ValueError(
            f"{where}: labels must be 0 (normal) or 1 (anomaly), got e.g. "
            f"{np.unique(y_raw[bad])[:5].tolist()}"
        )
    return X, y_raw.astype(np.int64)
