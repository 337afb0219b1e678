"""Saving and loading a fitted ``NFADetector``: one directory, derived from its fitted parts.

A model directory holds ``detector.json`` (the manifest: the format and its version, the
parameters, the encoder's configuration and every fitted value of ``VALUES``), one
``<name>.keras`` file per fitted network of ``NETWORKS`` that the detector has, and
``training_scores.npz`` (the training rows' scores of every kind, from which
``decision_scores_``, ``labels_`` and ``predict_proba`` are computed). What is written and what
is read back come from the same lists, so a fitted part cannot be saved and then forgotten.

The directory is written through ``tfp_flowad.atomic.atomic_directory``: it appears whole or
not at all, and replaces only a directory that holds a saved detector. ``load`` refuses a
directory written under another ``FORMAT_VERSION`` with a message that says which.
"""

import json
from pathlib import Path

import keras
import numpy as np
from sklearn.exceptions import NotFittedError

from tfp_flowad import __version__
from tfp_flowad.atomic import atomic_directory
from tfp_flowad.preprocessing import TabularEncoder

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "NETWORKS",
    "VALUES",
    "save",
    "load",
    "is_saved_detector",
]

FORMAT = "tfp_flowad.NFADetector"
#: the version of the directory layout; ``load`` reads this version only.
FORMAT_VERSION = 4
MANIFEST = "detector.json"
SCORES_FILE = "training_scores.npz"
#: the fitted Keras networks, each saved as ``<name without the trailing _>.keras``; a network
#: that is ``None`` is not written, one that is the same object as an earlier one is written
#: once (the sampler flow of a flow that samples itself is the flow).
NETWORKS = ("flow_", "sampler_flow_", "classifier_", "neighbours_", "student_")
#: the fitted values, saved in the manifest as JSON.
VALUES = (
    "thresholds_",
    "score_scaling_",
    "density_auc_",
    "neighbour_auc_",
    "eps_",
    "density_scale_",
    "density_scale_aucs_",
    "classifier_model_",
    "classifier_model_aucs_",
    "fit_seconds_",
    "history_",
)


def save(detector, path) -> Path:
    """Writes the fitted ``detector`` to the directory ``path`` and returns it.

    An existing directory at ``path`` is replaced only if it holds a saved detector (its
    manifest names ``FORMAT``); parent directories are created.

    Raises:
        NotFittedError: the detector is not fitted.
        FileExistsError: ``path`` exists and is not a saved detector.
        ValueError: ``path`` is a file.
    """
    if not hasattr(detector, "training_scores_"):
        raise NotFittedError("NFADetector is not fitted yet: call fit(X, y) before save(path)")
    path = Path(path)
    if path.is_dir() and not is_saved_detector(path):
        raise FileExistsError(f"path {str(path)!r} exists and is not a saved NFADetector")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_directory(path, may_replace=is_saved_detector) as staging:
        networks = {}
        for name in NETWORKS:
            network = getattr(detector, name)
            earlier = [n for n in networks if getattr(detector, n) is network]
            if network is None or earlier:
                networks[name] = earlier[0] if earlier else None
                continue
            networks[name] = name.rstrip("_") + ".keras"
            keras.saving.save_model(network, staging / networks[name])
        np.savez(staging / SCORES_FILE, **detector.training_scores_)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "library_version": __version__,
            "params": _jsonable(detector.get_params()),
            "encoder": detector.encoder_.get_config(),
            "networks": networks,
            "values": {name: _jsonable(getattr(detector, name)) for name in VALUES},
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return path


def load(cls, path):
    """Reads a directory written by ``save`` into a new ``cls`` (``NFADetector``).

    Raises:
        FileNotFoundError: ``path``, its manifest or one of its network files is missing.
        ValueError: the directory was written under another format version, or a file in it is
            corrupt (the message names the file).
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"model directory {str(path)!r} does not exist")
    manifest = _read_manifest(path)
    try:
        # JSON has no tuples: the tuple-valued parameters (hidden units) come back as lists.
        params = {
            name: tuple(value) if isinstance(value, list) else value
            for name, value in manifest["params"].items()
        }
        detector = cls(**params)
        detector._check_parameters()
        detector.encoder_ = TabularEncoder.from_config(manifest["encoder"])
        for name in VALUES:
            setattr(detector, name, manifest["values"][name])
        networks = manifest["networks"]
        for name in NETWORKS:
            file = networks[name]
            network = None
            if file in NETWORKS:  # the same network as an earlier one
                network = getattr(detector, file)
            elif file is not None:
                network = _load_keras(path / file)
            setattr(detector, name, network)
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(
            f"model directory {str(path)!r}: corrupt {MANIFEST}: missing or malformed entry {error}"
        ) from None
    except ValueError as error:
        raise ValueError(f"model directory {str(path)!r}: {MANIFEST}: {error}") from None
    detector.training_scores_ = _load_scores(path / SCORES_FILE, detector.thresholds_)
    detector.feature_names_in_ = list(detector.encoder_.input_columns)
    detector.n_features_in_ = len(detector.feature_names_in_)
    detector._scorers = {}
    detector.score_kind = detector.score_kind  # sets threshold_ and decision_scores_
    return detector


def _read_manifest(path: Path) -> dict:
    """The manifest of the model directory ``path``, checked for its format and version."""
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise FileNotFoundError(
            f"model directory {str(path)!r} has no {MANIFEST}: not a saved NFADetector"
        )
    try:
        manifest = json.loads(manifest_path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"model directory {str(path)!r}: corrupt {MANIFEST}: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        shown = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise ValueError(
            f"model directory {str(path)!r}: {MANIFEST} is not a saved NFADetector "
            f"(format {shown!r})"
        )
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"model directory {str(path)!r} was written in model format version {version!r} "
            f"(tfp_flowad {manifest.get('library_version', 'before 0.2')}); this tfp_flowad "
            f"({__version__}) reads format version {FORMAT_VERSION} only: fit the detector again"
        )
    return manifest


def is_saved_detector(path: Path) -> bool:
    """Whether the directory ``path`` holds a saved detector (of any format version)."""
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == FORMAT


def _load_keras(file: Path):
    if not file.is_file():
        raise FileNotFoundError(f"model file {str(file)!r} is missing: the directory is partial")
    try:
        return keras.saving.load_model(file)
    except Exception as error:  # Keras raises many types for a damaged archive
        raise ValueError(f"model file {str(file)!r} is corrupt: {error}") from None


def _load_scores(file: Path, thresholds: dict) -> dict[str, np.ndarray]:
    """The training scores of every kind in ``thresholds``, from ``file``."""
    if not file.is_file():
        raise FileNotFoundError(f"model file {str(file)!r} is missing: the directory is partial")
    try:
        with np.load(file) as stored:
            return {kind: stored[kind] for kind in thresholds}
    except Exception as error:  # numpy raises many types for a damaged archive
        raise ValueError(f"model file {str(file)!r} is corrupt: {error}") from None


def _jsonable(value):
    """Tuples -> lists and numpy scalars -> Python numbers, recursively."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
