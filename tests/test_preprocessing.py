"""TabularEncoder: the TF graph (used by scoring and the export) against the numpy path."""

import numpy as np
import pandas as pd
import pytest

from tfp_flowad.preprocessing import TabularEncoder


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "bytes": rng.lognormal(5.0, 2.0, 300).round(),
            "rate": rng.uniform(0.0, 1.0, 300),
            "protocol": rng.choice(["tcp", "udp", "icmp"], 300),
            "service": rng.choice([f"svc_{i}" for i in range(40)], 300),
        }
    )


def test_graph_encoding_equals_numpy_encoding(frame):
    encoder = TabularEncoder.fit(frame)
    assert encoder.categorical_columns == ["protocol", "service"]
    assert encoder.output_dim == 2 + 3 + 40
    np.testing.assert_allclose(
        encoder.transform(frame), encoder.finish(encoder.raw_matrix(frame)).numpy(), atol=1e-6
    )


def test_unseen_category_encodes_as_zeros(frame):
    encoder = TabularEncoder.fit(frame)
    new = frame.head(3).copy()
    new["service"] = ["svc_999", "never seen", ""]
    onehot = encoder.transform(new)[:, 2 + 3 :]
    np.testing.assert_array_equal(onehot, 0.0)
    known = encoder.transform(frame.head(3))[:, 2 + 3 :]
    np.testing.assert_array_equal(known.sum(axis=1), 1.0)
