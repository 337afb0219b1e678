"""Two interleaving half circles: a tiny 2-D data set for tutorials and smoke tests."""

from __future__ import annotations

import numpy as np

__all__ = ["load_moons"]


def load_moons(
    n: int = 1000, noise: float = 0.05, seed: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Sample scikit-learn's two moons as ``float32``.

    Args:
        n: number of points (split as evenly as possible between the two moons).
        noise: standard deviation of the Gaussian noise added to the points.
        seed: seed of the sampler (``None``: not reproducible).

    Returns:
        ``(X, moon)``: ``X`` of shape ``(n, 2)`` in ``float32``; ``moon`` the ``int64`` index
        (0 or 1) of the half circle each point was drawn from.

    Raises:
        ValueError: ``n`` is not a positive integer or ``noise`` is negative.

    Examples:
        >>> X, moon = load_moons(200, noise=0.1, seed=1)
        >>> X.shape, X.dtype.name
        ((200, 2), 'float32')
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    from sklearn.datasets import make_moons  # imported here: scikit-learn takes ~1 s to load

    X, moon = make_moons(n_samples=int(n), noise=float(noise), random_state=seed)
    return X.astype(np.float32), moon.astype(np.int64)
