"""Input checks shared by the detector, the baselines and the command line.

Every check raises ``ValueError`` (or ``TypeError``) whose message names the argument and the
value received, so a user sees at once which input is wrong and how.
"""

import numpy as np

__all__ = ["check_matrix", "check_labels", "check_min_normal_rows"]


def check_matrix(X, name: str = "X", n_features: int | None = None) -> np.ndarray:
    """Returns ``X`` as a 2-D float array after checking shape and finiteness.

    Args:
        X: array-like of shape ``[n_rows, n_features]``.
        name: the argument's name, used in error messages.
        n_features: the expected number of columns, if known.

    Returns:
        ``np.ndarray`` of dtype float32 (float64 input keeps float64).

    Raises:
        ValueError: not 2-D, no rows, wrong column count, or NaN / infinite values.
        TypeError: values that are not numbers.
    """
    try:
        array = np.asarray(X)
        if array.dtype.kind not in "fiub":
            array = array.astype(np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must hold numbers only; got {type(X).__name__}: {error}") from None
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D [n_rows, n_features]; got shape {array.shape}")
    if array.shape[0] == 0:
        raise ValueError(f"{name} has no rows; got shape {array.shape}")
    if n_features is not None and array.shape[1] != n_features:
        raise ValueError(
            f"{name} must have {n_features} columns (as in training); got shape {array.shape}"
        )
    if array.dtype != np.float64:
        array = array.astype(np.float32)
    bad = ~np.isfinite(array)
    if bad.any():
        rows, cols = np.nonzero(bad)
        raise ValueError(
            f"{name} holds {bad.sum()} NaN or infinite values, first at row {rows[0]}, "
            f"column {cols[0]} (value {array[rows[0], cols[0]]})"
        )
    return array


def check_labels(y, n_rows: int, name: str = "y") -> np.ndarray:
    """Returns ``y`` as an int array of 0 (normal) / 1 (known anomaly).

    Args:
        y: array-like of shape ``[n_rows]`` with values in {0, 1}; ``None`` means all normal.
        n_rows: the number of rows of the matching ``X``.
        name: the argument's name, used in error messages.

    Raises:
        ValueError: wrong length, or values other than 0 and 1.
    """
    if y is None:
        return np.zeros(n_rows, dtype=np.int64)
    labels = np.asarray(y).reshape(-1) if np.ndim(y) > 0 else np.asarray([y])
    if labels.shape[0] != n_rows:
        raise ValueError(f"{name} must have {n_rows} labels (one per row of X); got {len(labels)}")
    values = set(np.unique(labels).tolist())
    if not values <= {0, 1}:
        shown = sorted(map(str, values - {0, 1}))[:5]
        raise ValueError(
            f"{name} must hold only 0 (normal) and 1 (known anomaly); got other values {shown}"
        )
    return labels.astype(np.int64)


def check_min_normal_rows(y: np.ndarray, minimum: int, name: str = "y") -> None:
    """Raises ``ValueError`` when fewer than ``minimum`` rows are labelled normal (0)."""
    n_normal = int((y == 0).sum())
    if n_normal < minimum:
        raise ValueError(
            f"{name} marks {n_normal} rows as normal (0); at least {minimum} are needed to fit"
        )
