"""tfp_flowad: normalizing flows for deep anomaly detection.

Implements Ryzhikov, Borisyak, Ustyuzhanin, Derkach, "Normalizing flows for deep anomaly
detection" (arXiv 1912.09323): a MAF fitted to normal data with a Jacobian regulariser, distilled
into an IAF whose tail samples serve as surrogate anomalies for a (1 + eps)-class classifier.
"""

__version__ = "0.3.0"

from tfp_flowad.detector import NFADetector  # noqa: E402
from tfp_flowad.export import export_saved_model  # noqa: E402

__all__ = ["__version__", "NFADetector", "export_saved_model"]
