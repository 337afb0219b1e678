"""Scoring on distributed engines, an optional extra (``pip install 'tfp_flowad[dask]'``).

``score_with_dask`` scores tables with an exported SavedModel on a Dask cluster
(``tfp_flowad.engines.dask_scoring``). Dask is imported only when it runs, so the base
package never needs it.
"""

from tfp_flowad.engines.dask_scoring import (
    MARKER,
    DaskScoreSummary,
    saved_model_directory,
    score_with_dask,
)

__all__ = ["MARKER", "DaskScoreSummary", "saved_model_directory", "score_with_dask"]
