"""Installs tfp_flowad and its console script ``tfp-flowad``."""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(
    r'__version__ = "([^"]+)"', (HERE / "tfp_flowad" / "__init__.py").read_text()
).group(1)

setup(
    name="tfp_flowad",
    version=VERSION,
    description="Normalizing flows for deep anomaly detection (TensorFlow Probability + Keras 3)",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["tfp_flowad", "tfp_flowad.*"]),
    package_data={"tfp_flowad.datasets": ["data/*.gz", "data/*.txt"]},
    install_requires=[
        "tensorflow>=2.21",
        "tensorflow-probability[tf]>=0.25",
        "keras>=3.15",
        "numpy",
        "pandas",
        "scipy",
        "scikit-learn",
        "threadpoolctl",
        "pyarrow>=15",
    ],
    # Scoring on a Dask cluster (tfp_flowad.engines): pip install 'tfp_flowad[dask]'
    extras_require={"dask": ["dask[distributed]>=2024.1"]},
    entry_points={"console_scripts": ["tfp-flowad=tfp_flowad.cli:main"]},
)
