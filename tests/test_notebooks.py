"""The tutorial notebooks: each .ipynb matches its script, and each runs at small size.

Every notebook is a pair (``notebooks/jupytext.toml``): the percent-format script
(``01_flows_on_moons.py``) is the source people edit, the .ipynb holds the same cells with the
outputs of a full-size run. ``test_notebook_matches_its_script`` fails when one of the two was
edited without ``jupytext --sync``. ``test_notebook_runs`` executes the script's cells in a
kernel, in memory (no file is written), with ``TFP_FLOWAD_NOTEBOOK_SMALL=1`` and the notebooks
folder as working directory; a cell that raises fails it.
"""

import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NAMES = ["01_flows_on_moons", "02_kdd99_quickstart", "03_serving", "04_boosted_trees"]
KERNEL = "python3"


@pytest.fixture(scope="session")
def kernel_name() -> str:
    """The ``python3`` kernel spec, registered for this interpreter if it is missing."""
    if KERNEL not in KernelSpecManager().find_kernel_specs():
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--user"], check=True)
    return KERNEL


def cells(notebook: nbformat.NotebookNode) -> list[tuple[str, str]]:
    """The notebook's cells as ``(cell type, source)``, outputs and metadata left out."""
    return [(cell.cell_type, cell.source) for cell in notebook.cells]


def test_every_notebook_is_collected():
    assert sorted(path.stem for path in NOTEBOOKS.glob("*.ipynb")) == NAMES
    assert sorted(path.stem for path in NOTEBOOKS.glob("[0-9][0-9]_*.py")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_notebook_matches_its_script(name):
    script = jupytext.read(NOTEBOOKS / f"{name}.py")
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    assert cells(notebook) == cells(script), (
        f"{name}.ipynb and {name}.py hold different cells: run `jupytext --sync notebooks/{name}.ipynb`"
    )
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert any(cell.outputs for cell in code_cells), f"{name}.ipynb is committed without outputs"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs(name, kernel_name, monkeypatch):
    monkeypatch.setenv("TFP_FLOWAD_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    notebook = jupytext.read(NOTEBOOKS / f"{name}.py")
    client = NotebookClient(
        notebook,
        kernel_name=kernel_name,
        timeout=600,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell and the error, if a cell fails
