"""Tables of any size: read as a stream of chunks (``tables``) and scored chunk by chunk into
a scores file (``scores``)."""

from tfp_flowad.io.scores import ScoreSummary, score_file
from tfp_flowad.io.tables import (
    EMPTY_CELLS,
    TABLE_SUFFIXES,
    Chunk,
    read_chunks,
    table_columns,
    table_files,
)

__all__ = [
    "EMPTY_CELLS",
    "TABLE_SUFFIXES",
    "Chunk",
    "ScoreSummary",
    "read_chunks",
    "score_file",
    "table_columns",
    "table_files",
]
