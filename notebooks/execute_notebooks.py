"""Runs tutorial notebooks top to bottom and writes their outputs into the .ipynb files.

    python notebooks/execute_notebooks.py                        # every notebook, full size
    python notebooks/execute_notebooks.py 02_kdd99_quickstart    # the named ones

Each notebook is first synced with its paired script (``jupytext --sync``: the cells come from
whichever of the two was edited last), then run in a fresh ``python3`` kernel with this folder
as working directory, and its .ipynb rewritten with the outputs. The notebooks read
``TFP_FLOWAD_NOTEBOOK_SMALL`` from the environment: leave it unset for the full-size run whose
outputs are committed (their first cell prints ``SMALL=False``).

The kernel leaves low-level output alone (``--IPKernelApp.capture_fd_output=False``): what the
cells' Python code prints lands in the notebook as usual, while the lines TensorFlow's C++
runtime writes straight to the process's stderr at start-up (which ``TF_CPP_MIN_LOG_LEVEL``
does not silence) go to this terminal instead of into the committed outputs.
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent


def sync(path: Path) -> None:
    """Brings the notebook and its paired script in line (``jupytext --sync``)."""
    subprocess.run([sys.executable, "-m", "jupytext", "--sync", "--quiet", str(path)], check=True)


def execute(path: Path) -> float:
    """Runs the notebook at ``path`` (an .ipynb) in place; returns the wall seconds it took."""
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=None,  # full-size fits take minutes per cell
        resources={"metadata": {"path": str(HERE)}},
        extra_arguments=["--IPKernelApp.capture_fd_output=False"],
    ).execute()
    nbformat.write(notebook, path)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "names", nargs="*", help="notebook names without suffix (default: every .ipynb here)"
    )
    args = parser.parse_args()
    paths = [HERE / f"{name}.ipynb" for name in args.names] or sorted(HERE.glob("*.ipynb"))
    for path in paths:
        sync(path)
        seconds = execute(path)
        print(f"{path.name}: executed in {seconds:.0f} s")


if __name__ == "__main__":
    main()
