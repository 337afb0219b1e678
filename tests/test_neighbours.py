"""The combined score's neighbour term: ``NearestReference`` against brute force, and its place
in the detector (weights, training scores, persistence)."""

import keras
import numpy as np
import pytest

import tfp_flowad.nn.neighbours as neighbours_module
from tfp_flowad.nn.neighbours import NearestReference, nearest_reference_network


def brute_force(rows: np.ndarray, references: np.ndarray) -> np.ndarray:
    """Distance (float64) to the nearest reference row unequal to the row."""
    distances = np.sqrt(((rows[:, None, :] - references[None, :, :]) ** 2).sum(-1))
    distances[distances == 0] = np.inf
    return distances.min(1)


@pytest.fixture(scope="module")
def references():
    rng = np.random.default_rng(0)
    # Far from the origin, where the product form of the distance loses digits.
    return (rng.normal(size=(300, 7)) * 5 + 30).astype(np.float32)


def test_distances_match_brute_force_and_leave_each_reference_out(references):
    rng = np.random.default_rng(1)
    rows = np.concatenate([(rng.normal(size=(500, 7)) * 5 + 30).astype(np.float32), references])
    network = nearest_reference_network(references)
    distances = network(rows).numpy()
    expected = brute_force(rows.astype(np.float64), references.astype(np.float64))
    np.testing.assert_allclose(distances, expected, rtol=1e-5, atol=1e-5)
    # A reference row's own distance is to its nearest other reference, never 0.
    assert distances[500:].min() > 0.1


def test_one_copy_of_the_row_is_set_aside():
    base = np.float32([[0.0, 0.0], [3.0, 4.0], [0.0, 0.5]])
    network = nearest_reference_network(base[:2])
    # Each reference's distance is to the other one; a new row's to the nearest.
    np.testing.assert_allclose(network(base).numpy(), [5.0, 5.0, 0.5])
    # [0, 0] twice among the references: one copy set aside, the other is 0 away.
    copies = nearest_reference_network(base[[0, 0, 1]])
    np.testing.assert_allclose(copies(base[:2]).numpy(), [0.0, 5.0])


def test_distances_come_out_alike_in_chunks_of_any_size(references, monkeypatch):
    rows = np.random.default_rng(2).normal(size=(1000, 7)).astype(np.float32) * 5 + 30
    whole = nearest_reference_network(references)(rows).numpy()
    monkeypatch.setattr(neighbours_module, "ELEMENTS_PER_CHUNK", 300 * 64)  # 64 rows a chunk
    chunked = nearest_reference_network(references)
    for count in (1, 64, 1000):  # one row, one full chunk, 16 chunks with padding
        np.testing.assert_allclose(chunked(rows[:count]).numpy(), whole[:count], rtol=1e-6)


def test_network_saves_and_loads_with_its_references(references, tmp_path):
    network = nearest_reference_network(references)
    keras.saving.save_model(network, tmp_path / "neighbours.keras")
    loaded = keras.saving.load_model(tmp_path / "neighbours.keras")
    rows = references[:50] + 0.5
    np.testing.assert_array_equal(loaded(rows).numpy(), network(rows).numpy())


def test_bad_references_get_clear_errors():
    with pytest.raises(ValueError, match=r"num_references must be at least 2; got 1"):
        NearestReference(1)
    with pytest.raises(ValueError, match=r"references must be a 2-d array; got shape \(5,\)"):
        nearest_reference_network(np.zeros(5))


def test_rows_beyond_float32_range_are_infinitely_far(references):
    far = np.full((2, 7), 3e38, np.float32)
    distances = nearest_reference_network(references)(far).numpy()
    assert not np.isfinite(distances).any()
