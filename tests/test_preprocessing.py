"""TabularEncoder: the TF graph (used by scoring and the export) against the numpy path, and the
rules for the columns and values it accepts."""

import re

import numpy as np
import pandas as pd
import pytest

from tfp_flowad.preprocessing import TabularEncoder, check_table, column_kinds


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


def test_column_kinds_follow_one_rule():
    frame = pd.DataFrame(
        {
            "numbers_as_text": ["1.5", "2", "3e2", "-4"],
            "codes": ["a1", "200", "b7", "c"],  # mostly text: categorical
            "flag": [True, False, True, True],
            "level": pd.Categorical(["lo", "hi", "lo", "lo"]),
            "count": [1, 2, 3, 4],
        }
    )
    numeric, categorical = column_kinds(frame)
    assert numeric == ["numbers_as_text", "count"]
    assert categorical == ["codes", "flag", "level"]
    assert column_kinds(frame, ["count"])[1] == ["count"]
    with pytest.raises(
        ValueError, match=r"categorical_columns names columns that X lacks: \['c'\]"
    ):
        column_kinds(frame, ["c"])


def test_lists_of_rows_keep_each_cells_type():
    rows = [[1.5, "tcp", 3], [2.0, "udp", 4], [0.5, "tcp", 5]]
    encoder = TabularEncoder.fit(rows)
    assert encoder.numeric_columns == ["x0", "x2"] and encoder.categorical_columns == ["x1"]
    np.testing.assert_allclose(
        encoder.transform(rows), encoder.transform(pd.DataFrame(rows, columns=["x0", "x1", "x2"]))
    )


@pytest.mark.parametrize(
    "value, problem",
    [
        ("abc", "has cells that are not numbers, though most of its values are"),
        (1e308, "has values beyond the float32 range (|x| > 3.403e+38)"),
        (-np.inf, "has infinite values"),
        (np.nan, "has empty cells (NaN)"),
    ],
)
def test_bad_numbers_are_refused_at_fit_and_at_scoring(frame, value, problem):
    bad = frame.astype({"rate": object})
    bad.loc[17, "rate"] = value
    message = re.escape(f"column 'rate' {problem}: 1 of 300, the first at row 17: {value!r}")
    with pytest.raises(ValueError, match="^X: " + message):
        TabularEncoder.fit(bad)
    encoder = TabularEncoder.fit(frame)
    for check in (encoder.check_rows, encoder.to_tensors, encoder.raw_matrix):
        with pytest.raises(ValueError, match="^rows: " + message):
            check(bad, "rows")
    with pytest.raises(ValueError, match="^--data: " + message):
        check_table(bad, "--data")


def test_largest_float32_values_keep_the_scaling_finite(frame):
    edge = frame.copy()
    edge.loc[0, "rate"] = -3.4e38
    encoder = TabularEncoder.fit(edge)
    assert np.isfinite(encoder.means).all() and np.isfinite(encoder.stds).all()
    assert np.isfinite(encoder.transform(edge)).all()
    with pytest.raises(ValueError, match="the scaling of column 'a' must be finite"):
        TabularEncoder(numeric_columns=["a"], means=[0.0], stds=[np.inf])


def test_empty_categories_and_repeated_names_are_refused(frame):
    bad = frame.copy()
    bad.loc[[4, 9], "service"] = None
    with pytest.raises(ValueError, match="column 'service' has empty cells: 2 of 300, the first"):
        TabularEncoder.fit(bad)
    with pytest.raises(ValueError, match="column 'service' has empty cells"):
        TabularEncoder.fit(frame).to_tensors(bad)
    repeated = frame.set_axis(["bytes", "rate", "bytes", "service"], axis=1)
    with pytest.raises(ValueError, match=r"X has duplicated column names \['bytes'\]"):
        TabularEncoder.fit(repeated)
