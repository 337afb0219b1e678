"""Runs every tutorial notebook at small size; a cell that raises fails the test.

Each notebook is read into memory and executed there (the committed file and its outputs are
left alone), with ``TFP_FLOWAD_NOTEBOOK_SMALL=1`` and the notebooks folder as working
directory.
"""

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
KERNEL = "python3"


@pytest.fixture(scope="session")
def kernel_name() -> str:
    """The ``python3`` kernel spec, registered for this interpreter if it is missing."""
    if KERNEL not in KernelSpecManager().find_kernel_specs():
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--user"], check=True)
    return KERNEL


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda path: path.name)
def test_notebook_runs(path, kernel_name, monkeypatch):
    monkeypatch.setenv("TFP_FLOWAD_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name=kernel_name,
        timeout=600,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell and the error, if a cell fails


def test_every_notebook_is_collected():
    names = sorted(path.name for path in NOTEBOOKS.glob("*.ipynb"))
    assert names == [
        "01_flows_on_moons.ipynb",
        "02_kdd99_quickstart.ipynb",
        "03_serving.ipynb",
        "04_boosted_trees.ipynb",
    ]
