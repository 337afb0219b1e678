"""Label checks shared by the detector and the baselines (the rows' checks are the
``TabularEncoder``'s, in ``tfp_flowad.preprocessing``).

Every check raises ``ValueError`` (or ``TypeError``) whose message names the argument and the
value received, so a user sees at once which input is wrong and how.
"""

import numpy as np
import pandas as pd

__all__ = ["check_labels", "check_min_normal_rows"]


def check_labels(y, n_rows: int, name: str = "y") -> np.ndarray:
    """Returns ``y`` as an int array of 0 (normal) / 1 (known anomaly).

    Args:
        y: array-like of shape ``[n_rows]`` with values in {0, 1}; ``None`` means all normal.
        n_rows: the number of rows of the matching ``X``.
        name: the argument's name, used in error messages.

    Raises:
        ValueError: wrong length, missing labels (None or NaN), or values other than 0 and 1.
    """
    if y is None:
        return np.zeros(n_rows, dtype=np.int64)
    labels = np.asarray(y if np.ndim(y) > 0 else [y])
    if labels.dtype.kind in "US" and not isinstance(y, np.ndarray):
        labels = np.asarray(y if np.ndim(y) > 0 else [y], dtype=object)  # numbers stay numbers
    labels = labels.reshape(-1)
    if labels.shape[0] != n_rows:
        raise ValueError(f"{name} must have {n_rows} labels (one per row of X); got {len(labels)}")
    missing = pd.isna(labels)
    if missing.any():
        raise ValueError(
            f"{name} has {int(missing.sum())} missing labels (None or NaN), the first at row "
            f"{int(np.argmax(missing))}; every row needs 0 (normal) or 1 (known anomaly)"
        )
    values = set(pd.unique(labels).tolist())  # no sorting: labels may mix numbers and text
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
