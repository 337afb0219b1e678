"""Saving and loading a fitted detector: the same scores, and one clear error for every broken
model directory."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_FIT

from tfp_flowad import NFADetector
from tfp_flowad.detector.persistence import FORMAT_VERSION, MANIFEST

TINY = TINY_FIT


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.standard_normal((400, 3)), columns=["a", "b", "c"])
    frame["kind"] = rng.choice(["x", "y"], size=len(frame))
    return frame


@pytest.fixture(scope="module")
def saved(rows, tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "model"
    detector = NFADetector(**TINY).fit(rows)
    detector.save(path)
    return detector, path


def copy_of(path, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    return copy


def rewrite_manifest(path, change):
    manifest = json.loads((path / MANIFEST).read_text())
    (path / MANIFEST).write_text(json.dumps(change(manifest)))


def test_a_loaded_detector_saves_again_and_scores_alike(saved, rows, tmp_path):
    detector, path = saved
    loaded = NFADetector.load(path)
    again = NFADetector.load(loaded.save(tmp_path / "again"))
    for model in (loaded, again):
        np.testing.assert_allclose(
            model.decision_function(rows), detector.decision_function(rows), atol=1e-5
        )
        np.testing.assert_array_equal(model.labels_, detector.labels_)
        assert model.get_params() == detector.get_params()
    assert json.loads((path / MANIFEST).read_text())["format_version"] == FORMAT_VERSION


def test_replacing_a_saved_detector_leaves_nothing_hidden(saved, tmp_path):
    detector, _ = saved
    path = detector.save(tmp_path / "model")
    detector.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


@pytest.mark.parametrize(
    "case, change, error, words",
    [
        ("null manifest", lambda m: None, ValueError, "not a saved NFADetector"),
        ("list manifest", lambda m: [m], ValueError, "not a saved NFADetector"),
        ("other format", lambda m: {**m, "format": "pyod"}, ValueError, "format 'pyod'"),
        (
            "older format version",
            lambda m: {**m, "format_version": 1},
            ValueError,
            "format version 1",
        ),
        (
            "no format version",
            lambda m: {k: v for k, v in m.items() if k != "format_version"},
            ValueError,
            "format version None",
        ),
        (
            "no score scaling",
            lambda m: {
                **m,
                "values": {k: v for k, v in m["values"].items() if k != "score_scaling_"},
            },
            ValueError,
            "score_scaling_",
        ),
        (
            "no networks",
            lambda m: {k: v for k, v in m.items() if k != "networks"},
            ValueError,
            "networks",
        ),
        (
            "bad parameter",
            lambda m: {**m, "params": {**m["params"], "flow": "glow"}},
            ValueError,
            "flow",
        ),
    ],
)
def test_a_broken_manifest_is_one_clear_error(saved, tmp_path, case, change, error, words):
    path = copy_of(saved[1], tmp_path)
    rewrite_manifest(path, change)
    with pytest.raises(error, match=words):
        NFADetector.load(path)


def test_missing_and_damaged_files_are_named(saved, tmp_path):
    path = copy_of(saved[1], tmp_path)
    (path / "sampler_flow.keras").unlink()
    with pytest.raises(FileNotFoundError, match="sampler_flow.keras.*partial"):
        NFADetector.load(path)
    path = copy_of(saved[1], tmp_path / "2")
    data = (path / "flow.keras").read_bytes()
    (path / "flow.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="flow.keras.* corrupt"):
        NFADetector.load(path)
    (path / MANIFEST).write_text("{not json")
    with pytest.raises(ValueError, match=f"corrupt {MANIFEST}"):
        NFADetector.load(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        NFADetector.load(tmp_path / "nowhere")
