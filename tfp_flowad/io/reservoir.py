"""A uniform sample of a stream of rows, drawn by random keys: the rows with the smallest keys.

Each row of a stream gets a key uniform in [0, 1) that depends only on its number in the stream
and a seed (``sample_keys``); the sample of ``capacity`` rows is the rows with the smallest keys
(``Reservoir``), so every set of ``capacity`` rows is equally likely and the sample does not
depend on how the rows are chunked or where they come from. ``tfp_flowad.io.training_rows``
draws the rows a detector trains on with it.
"""

import numpy as np
import pandas as pd

__all__ = ["KEY_BLOCK_ROWS", "Reservoir", "sample_keys", "smallest_keys"]

#: The keys are drawn in blocks of this many rows, each from its own seed.
KEY_BLOCK_ROWS = 65536


def sample_keys(seed: int, stream: int, first: int, count: int) -> np.ndarray:
    """The keys of rows ``first`` to ``first + count - 1`` of a stream of rows (0: normal rows,
    1: known anomalies): uniform in [0, 1), block ``b`` of ``KEY_BLOCK_ROWS`` keys drawn from
    ``numpy.random.default_rng([seed, stream, b])``, so a row's key does not depend on how the
    rows are read."""
    if count == 0:
        return np.zeros(0)
    blocks = range(first // KEY_BLOCK_ROWS, (first + count - 1) // KEY_BLOCK_ROWS + 1)
    keys = np.concatenate(
        [np.random.default_rng([seed, stream, b]).random(KEY_BLOCK_ROWS) for b in blocks]
    )
    offset = first - blocks[0] * KEY_BLOCK_ROWS
    return keys[offset : offset + count]


def smallest_keys(keys: np.ndarray, positions: np.ndarray, capacity: int) -> np.ndarray:
    """The indices of the ``capacity`` smallest keys (ties: the earlier position first)."""
    if len(keys) <= capacity:
        return np.arange(len(keys))
    return np.lexsort((positions, keys))[:capacity]


class Reservoir:
    """The rows of the smallest ``capacity`` keys among those added, a uniform sample of them.

    Rows arrive a chunk at a time (``add``); each gets its key from ``sample_keys`` by its
    number in the stream, and only rows whose key is below the largest key kept so far are
    stored. When more than ``capacity`` plus a slack (a quarter of it, at least 1,024) are
    stored, the smallest ``capacity`` are kept (``smallest_keys``), so memory holds at most
    ``1.25 capacity`` rows and one chunk.
    """

    def __init__(self, capacity: int, seed: int, stream: int):
        self.capacity, self.seed, self.stream = capacity, seed, stream
        self.seen = 0  # rows added so far
        self.pieces: list[tuple[np.ndarray, np.ndarray, pd.DataFrame]] = []
        self.kept = 0
        # rows with a key at or above it cannot be kept
        self.threshold = np.inf if capacity > 0 else -np.inf
        self.slack = max(capacity // 4, 1024)

    def add(self, frame: pd.DataFrame, positions: np.ndarray) -> None:
        """Adds the next ``len(frame)`` rows of the stream (``positions``: in the source)."""
        keys = sample_keys(self.seed, self.stream, self.seen, len(frame))
        self.seen += len(frame)
        keep = keys < self.threshold
        if keep.any():
            self.pieces.append((keys[keep], positions[keep], frame[keep]))
            self.kept += int(keep.sum())
        if self.kept > self.capacity + self.slack:
            self._prune()

    def _prune(self) -> None:
        keys = np.concatenate([piece[0] for piece in self.pieces])
        positions = np.concatenate([piece[1] for piece in self.pieces])
        frame = pd.concat([piece[2] for piece in self.pieces])
        chosen = np.sort(smallest_keys(keys, positions, self.capacity))
        if self.capacity and len(chosen) == self.capacity:
            self.threshold = keys[chosen].max()
        self.pieces = [(keys[chosen], positions[chosen], frame.iloc[chosen])]
        self.kept = len(chosen)

    def rows(self) -> tuple[np.ndarray, list[pd.DataFrame]]:
        """The kept rows' positions and frames (the pieces, each in source order)."""
        if self.kept > self.capacity:
            self._prune()
        return (
            np.concatenate([piece[1] for piece in self.pieces] or [np.zeros(0, np.int64)]),
            [piece[2] for piece in self.pieces],
        )
