"""Tables of any size: read as a stream of chunks (``tables``), scored chunk by chunk into
a scores file (``scores``), and sampled in one pass for training (``training_rows``, by the
random keys of ``reservoir``)."""

from tfp_flowad.io.scores import ScoreSummary, score_file
from tfp_flowad.io.tables import (
    EMPTY_CELLS,
    TABLE_SUFFIXES,
    Chunk,
    read_chunks,
    table_columns,
    table_files,
)
from tfp_flowad.io.training_rows import (
    DEFAULT_MAX_ROWS,
    MAX_ANOMALY_ROWS,
    TrainingRows,
    training_rows,
)

__all__ = [
    "DEFAULT_MAX_ROWS",
    "EMPTY_CELLS",
    "MAX_ANOMALY_ROWS",
    "TABLE_SUFFIXES",
    "Chunk",
    "ScoreSummary",
    "TrainingRows",
    "read_chunks",
    "score_file",
    "table_columns",
    "table_files",
    "training_rows",
]
