"""Tests of ``tfp_flowad.bijectors``: log-determinants against autodiff Jacobians, inverses,
invertibility for any unconstrained parameters, gradients, and composition with TFP bijectors.
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flowad.bijectors import Planar, Radial

tfb = tfp.bijectors
tfd = tfp.distributions

EVENT_SIZE = 3
DTYPES = [np.float32, np.float64]
# Tolerances: (log-det vs autodiff, round trip).
TOLERANCES = {np.float32: (2e-3, 1e-4), np.float64: (1e-4, 1e-6)}


def planar_params(rng, dtype, scale=1.0, batch=(), event_size=EVENT_SIZE):
    return {
        "w": scale * rng.normal(size=(*batch, event_size)).astype(dtype),
        "u": scale * rng.normal(size=(*batch, event_size)).astype(dtype),
        "b": scale * rng.normal(size=batch).astype(dtype),
    }


def radial_params(rng, dtype, scale=1.0, batch=(), event_size=EVENT_SIZE):
    return {
        "x0": scale * rng.normal(size=(*batch, event_size)).astype(dtype),
        "alpha_unconstrained": scale * rng.normal(size=batch).astype(dtype),
        "beta_unconstrained": scale * rng.normal(size=batch).astype(dtype),
    }


FAMILIES = {"planar": (Planar, planar_params), "radial": (Radial, radial_params)}


def fresh(tensor):
    """A new tensor with the same value, so TFP's forward/inverse cache cannot answer."""
    return tf.constant(np.asarray(tensor))


def autodiff_slogdet(bijector, x):
    """``(sign, log|det|)`` of the Jacobian of ``bijector.forward`` at each row of ``x``."""
    x = fresh(x)  # a cached forward(x) would not depend on the watched x
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = bijector.forward(x)
    return tf.linalg.slogdet(tape.batch_jacobian(y, x))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family", FAMILIES)
def test_fldj_matches_autodiff(family, dtype, rng):
    cls, make_params = FAMILIES[family]
    bijector = cls(**make_params(rng, dtype))
    assert bijector.dtype == dtype
    x = tf.constant(2.0 * rng.normal(size=(16, EVENT_SIZE)).astype(dtype))
    sign, expected = autodiff_slogdet(bijector, x)
    actual = bijector.forward_log_det_jacobian(x, event_ndims=1)
    assert actual.dtype == dtype and actual.shape == (16,)
    np.testing.assert_array_equal(sign.numpy(), 1.0)
    np.testing.assert_allclose(actual, expected, atol=TOLERANCES[dtype][0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family", FAMILIES)
def test_round_trips_and_ildj(family, dtype, rng):
    cls, make_params = FAMILIES[family]
    bijector = cls(**make_params(rng, dtype))
    tolerance = TOLERANCES[dtype][1]
    x = 2.0 * rng.normal(size=(4, 5, EVENT_SIZE)).astype(dtype)
    y = bijector.forward(x)
    assert y.shape == x.shape and y.dtype == dtype
    np.testing.assert_allclose(bijector.inverse(fresh(y)), x, atol=tolerance)

    y = 2.0 * rng.normal(size=(4, 5, EVENT_SIZE)).astype(dtype)
    x = bijector.inverse(y)
    np.testing.assert_allclose(bijector.forward(fresh(x)), y, atol=tolerance)
    np.testing.assert_allclose(
        bijector.inverse_log_det_jacobian(y, event_ndims=1),
        -bijector.forward_log_det_jacobian(fresh(x), event_ndims=1),
        atol=tolerance,
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [1.0, 5.0])
@pytest.mark.parametrize("family", FAMILIES)
def test_invertible_for_any_parameters(family, scale, dtype, rng):
    # One bijector with a batch of 200 random parameter draws; row i of x uses draw i.
    cls, make_params = FAMILIES[family]
    num_draws = 200
    bijector = cls(**make_params(rng, dtype, scale=scale, batch=(num_draws,)))
    assert bijector.experimental_batch_shape() == (num_draws,)
    x = tf.constant(scale * rng.normal(size=(num_draws, EVENT_SIZE)).astype(dtype))
    sign, log_det = autodiff_slogdet(bijector, x)
    np.testing.assert_array_equal(sign.numpy(), 1.0)
    fldj = bijector.forward_log_det_jacobian(x, event_ndims=1)
    assert np.all(np.isfinite(fldj))

    y = bijector.forward(x)
    x_back = bijector.inverse(fresh(y)).numpy()
    # Away from (near-)singular Jacobians the inverse is well conditioned; compare x there and
    # y = f(f^-1(y)) everywhere, both relative to the scale of the values.
    tolerance = TOLERANCES[dtype][1] * max(scale, np.abs(y).max())
    well_conditioned = log_det.numpy() > -5.0
    assert well_conditioned.mean() > 0.5
    np.testing.assert_allclose(
        x_back[well_conditioned], x.numpy()[well_conditioned], atol=tolerance
    )
    np.testing.assert_allclose(bijector.forward(fresh(x_back)), y, atol=tolerance)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family", FAMILIES)
def test_gradients_reach_every_parameter(family, dtype, rng):
    cls, make_params = FAMILIES[family]
    params = {name: tf.Variable(value) for name, value in make_params(rng, dtype).items()}
    base = tfd.MultivariateNormalDiag(tf.zeros(EVENT_SIZE, dtype))
    x = tf.constant(rng.normal(size=(8, EVENT_SIZE)).astype(dtype))
    objectives = {
        # Density by the forward map (the bijector is built inside the tape, from tensors).
        "log_prob_invert": lambda: tfd.TransformedDistribution(
            base, tfb.Invert(cls(**params))
        ).log_prob(x),
        # Density by the inverse map (numerical for planar: implicit gradients).
        "log_prob": lambda: tfd.TransformedDistribution(base, cls(**params)).log_prob(x),
        "forward": lambda: cls(**params).forward(x),
    }
    for objective_name, objective in objectives.items():
        with tf.GradientTape() as tape:
            value = tf.reduce_sum(objective())
        grads = tape.gradient(value, params)
        for name, grad in grads.items():
            assert grad is not None, (objective_name, name)
            assert np.all(np.isfinite(grad)), (objective_name, name)
            assert np.any(grad.numpy() != 0), (objective_name, name)


@pytest.mark.parametrize("family", FAMILIES)
def test_inverse_gradients_match_finite_differences(family, rng):
    cls, make_params = FAMILIES[family]
    params = make_params(rng, np.float64, scale=2.0)
    y = tf.constant(rng.normal(size=(5, EVENT_SIZE)))
    weights = tf.constant(rng.normal(size=(5, EVENT_SIZE)))

    def objective(**values):
        bijector = cls(**values)
        return tf.reduce_sum(weights * bijector.inverse(y)) + tf.reduce_sum(
            bijector.inverse_log_det_jacobian(y, event_ndims=1)
        )

    variables = {name: tf.Variable(value) for name, value in params.items()}
    with tf.GradientTape() as tape:
        value = objective(**variables)
    grads = tape.gradient(value, variables)
    step = 1e-6
    for name, value in params.items():
        flat = np.array(value, dtype=np.float64).reshape(-1)
        numeric = np.empty_like(flat)
        for i in range(flat.size):
            shifted = {}
            for sign in (1.0, -1.0):
                perturbed = flat.copy()
                perturbed[i] += sign * step
                shifted[sign] = objective(
                    **{**params, name: perturbed.reshape(np.shape(value))}
                ).numpy()
            numeric[i] = (shifted[1.0] - shifted[-1.0]) / (2.0 * step)
        np.testing.assert_allclose(
            np.reshape(grads[name], -1), numeric, rtol=1e-5, atol=1e-6, err_msg=name
        )


@pytest.mark.parametrize("dtype", DTYPES)
def test_chain_with_permute(dtype, rng):
    planar = Planar(**planar_params(rng, dtype, event_size=2))
    radial = Radial(**radial_params(rng, dtype, event_size=2))
    chain = tfb.Chain([planar, tfb.Permute([1, 0]), radial])
    atol_log_det, atol_round_trip = TOLERANCES[dtype]
    x = tf.constant(2.0 * rng.normal(size=(10, 2)).astype(dtype))
    y = chain.forward(x)
    np.testing.assert_allclose(chain.inverse(fresh(y)), x, atol=atol_round_trip)
    np.testing.assert_allclose(chain.forward(fresh(chain.inverse(fresh(y)))), y, atol=1e-4)
    sign, expected = autodiff_slogdet(chain, x)
    # The swap has det -1: only |det J| is the density's business.
    np.testing.assert_array_equal(sign.numpy(), -1.0)
    np.testing.assert_allclose(
        chain.forward_log_det_jacobian(x, event_ndims=1), expected, atol=atol_log_det
    )
    inverted = tfb.Invert(chain)
    np.testing.assert_allclose(
        inverted.forward_log_det_jacobian(fresh(y), event_ndims=1),
        -chain.forward_log_det_jacobian(x, event_ndims=1),
        atol=atol_log_det,
    )


def test_degenerate_points_are_finite():
    # Planar with w = 0 is a translation; radial at its centre has r = 0.
    dtype = np.float64
    w = tf.Variable(np.zeros(EVENT_SIZE, dtype))
    u = tf.Variable(np.ones(EVENT_SIZE, dtype))
    b = tf.Variable(dtype(0.3))
    x0 = tf.Variable(np.arange(EVENT_SIZE, dtype=dtype))
    alpha_u, beta_u = tf.Variable(dtype(0.1)), tf.Variable(dtype(-0.4))
    with tf.GradientTape() as tape:
        planar = Planar(w, u, b)
        radial = Radial(x0, alpha_u, beta_u)
        planar_x = tf.ones([2, EVENT_SIZE], dtype)
        radial_x = tf.stack([tf.convert_to_tensor(x0), tf.convert_to_tensor(x0) + 1.0])
        planar_fldj = planar.forward_log_det_jacobian(planar_x, event_ndims=1)
        radial_fldj = radial.forward_log_det_jacobian(radial_x, event_ndims=1)
        total = (
            tf.reduce_sum(planar_fldj)
            + tf.reduce_sum(planar.forward(planar_x))
            + tf.reduce_sum(radial_fldj)
            + tf.reduce_sum(radial.forward(radial_x))
            + tf.reduce_sum(radial.inverse(fresh(radial_x)))
        )
    np.testing.assert_allclose(planar_fldj, 0.0)
    np.testing.assert_allclose(planar.forward(planar_x), 1.0 + np.tanh(0.3))
    np.testing.assert_allclose(planar.inverse(fresh(planar.forward(planar_x))), planar_x)
    np.testing.assert_allclose(radial.forward(radial_x)[0], x0.numpy())
    grads = tape.gradient(total, [w, u, b, x0, alpha_u, beta_u])
    assert all(g is not None and np.all(np.isfinite(g)) for g in grads)


def test_rejects_mismatched_event_sizes():
    with pytest.raises(ValueError, match="same event size"):
        Planar(tf.zeros(3), tf.zeros(2), 0.0)
