"""The flows: change of variables against autodiff, invertibility, gradients, training, saving."""

import gc
import warnings
import weakref

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from tensorflow.python.framework import ops

from tfp_flowad.flows import FLOWS
from tfp_flowad.nn import MADE

FLOW_NAMES = sorted(FLOWS)


def small_flow(name, dim=3, dtype="float32", **kwargs):
    extra = {"hidden_units": (16, 16)} if name in ("maf", "iaf", "realnvp") else {}
    return FLOWS[name](dim, num_layers=3, seed=1, dtype=dtype, **extra, **kwargs)


def perturb_weights(flow, scale=0.3, seed=0):
    """Moves the weights away from the near-identity start so the checks are not trivial."""
    rng = np.random.default_rng(seed)
    for variable in flow.trainable_variables:
        value = variable.numpy()
        variable.assign(value + scale * rng.standard_normal(value.shape).astype(value.dtype))


@pytest.mark.parametrize("temperature", [1.0, 0.5])
@pytest.mark.parametrize("name", FLOW_NAMES)
def test_log_prob_matches_change_of_variables_with_autodiff_jacobian(name, temperature):
    """``log p_T(x) = log N(f^{-1}(x); 0, T^2 I) + log|det d f^{-1} / dx|`` (T = 1: eq. 39)."""
    flow = small_flow(name, dtype="float64")
    perturb_weights(flow)
    x = tf.constant(np.random.default_rng(1).standard_normal((5, 3)), tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(x)
        z = flow.inverse(x)
    jacobian = tape.batch_jacobian(z, x)
    _, log_abs_det = tf.linalg.slogdet(jacobian)
    t = temperature
    base = -0.5 * tf.reduce_sum(z**2, axis=-1) / t**2 - 1.5 * np.log(2 * np.pi * t**2)
    np.testing.assert_allclose(
        flow.log_prob(x, temperature).numpy(), (base + log_abs_det).numpy(), atol=1e-4
    )


@pytest.mark.parametrize("name", FLOW_NAMES)
def test_forward_log_det_matches_autodiff(name):
    flow = small_flow(name, dtype="float64")
    perturb_weights(flow, seed=2)
    z = tf.constant(np.random.default_rng(3).standard_normal((4, 3)), tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(z)
        x = flow.forward(z)
    _, log_abs_det = tf.linalg.slogdet(tape.batch_jacobian(x, z))
    np.testing.assert_allclose(flow.forward_log_det_jacobian(z).numpy(), log_abs_det, atol=1e-4)


@pytest.mark.parametrize("name", FLOW_NAMES)
def test_sample_and_log_prob_match_the_inverse_and_its_autodiff_jacobian(name):
    """The one-pass sampler's ``log p(x)`` (the IAF's, which distillation trains on) against
    ``log N(f^{-1}(x)) + log|det d f^{-1} / dx|`` by autodiff."""
    flow = small_flow(name, dtype="float64")
    perturb_weights(flow, seed=4)
    x, log_prob = flow.sample_and_log_prob(6)
    with tf.GradientTape() as tape:
        tape.watch(x)
        z = flow.inverse(x)
    _, log_abs_det = tf.linalg.slogdet(tape.batch_jacobian(z, x))
    base = -0.5 * tf.reduce_sum(z**2, axis=-1) - 1.5 * np.log(2 * np.pi)
    np.testing.assert_allclose(log_prob.numpy(), (base + log_abs_det).numpy(), atol=1e-6)
    np.testing.assert_allclose(flow.log_prob(x).numpy(), log_prob.numpy(), atol=1e-6)


@pytest.mark.parametrize("name,method", [("maf", "log_prob"), ("iaf", "sample_and_log_prob")])
def test_each_made_runs_once_per_one_pass_density(name, method, monkeypatch):
    """The one-pass direction of an autoregressive flow calls each step's MADE once: its
    outputs serve both the image and the log-determinant (``_reusing_last_call``; the tests
    above check that the numbers are the change of variables)."""
    flow = small_flow(name)
    perturb_weights(flow, seed=2)
    x = tf.constant(np.random.default_rng(3).standard_normal((5, 3)), tf.float32)
    args = {"log_prob": (x,), "sample_and_log_prob": (5,)}[method]
    calls = []
    call = MADE.call
    monkeypatch.setattr(MADE, "call", lambda self, inputs: calls.append(1) or call(self, inputs))
    tf.function(lambda: getattr(flow, method)(*args)).get_concrete_function()
    assert len(calls) == flow.num_layers


@pytest.mark.parametrize("dtype,tol", [("float32", 1e-4), ("float64", 1e-8)])
@pytest.mark.parametrize("name", FLOW_NAMES)
def test_inverse_of_forward_is_identity(name, dtype, tol):
    flow = small_flow(name, dtype=dtype)
    perturb_weights(flow, seed=4)
    z = tf.constant(np.random.default_rng(5).standard_normal((16, 3)), dtype)
    x = flow.forward(z)
    assert x.dtype == dtype and x.shape == (16, 3)
    np.testing.assert_allclose(flow.inverse(x).numpy(), z.numpy(), atol=tol * 10, rtol=tol * 10)
    sample, log_prob = flow.sample_and_log_prob(7)
    assert sample.shape == (7, 3) and log_prob.shape == (7,)
    np.testing.assert_allclose(flow.log_prob(sample).numpy(), log_prob.numpy(), atol=1e-3)


@pytest.mark.parametrize("name", FLOW_NAMES)
def test_gradients_reach_every_weight(name):
    flow = small_flow(name, jacobian_penalty=0.5)
    x = tf.constant(np.random.default_rng(6).standard_normal((8, 3)), tf.float32)
    with tf.GradientTape() as tape:
        loss = -tf.reduce_mean(flow.log_prob(x)) + tf.reduce_mean(
            flow.forward_log_det_jacobian(flow.sample_base(8)) ** 2
        )
    grads = tape.gradient(loss, flow.trainable_variables)
    assert flow.trainable_variables
    for variable, grad in zip(flow.trainable_variables, grads, strict=True):
        assert grad is not None, variable.path
        assert np.all(np.isfinite(grad.numpy())), variable.path
        assert np.any(grad.numpy() != 0), variable.path


@pytest.mark.parametrize("name", FLOW_NAMES)
def test_save_load_round_trip_gives_same_log_prob(name, tmp_path):
    flow = small_flow(name)
    perturb_weights(flow, seed=7)
    x = np.random.default_rng(8).standard_normal((10, 3)).astype(np.float32)
    path = tmp_path / f"{name}.keras"
    with warnings.catch_warnings():  # e.g. Keras' warning on saving an unbuilt model
        warnings.simplefilter("error", UserWarning)
        flow.save(path)
        loaded = keras.saving.load_model(path)
    assert type(loaded) is type(flow)
    np.testing.assert_allclose(loaded.log_prob(x).numpy(), flow.log_prob(x).numpy(), atol=1e-5)


def grid_log_prob(flow, limit=4.0, steps=161, temperature=1.0):
    axis = np.linspace(-limit, limit, steps, dtype=np.float32)
    grid = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
    return flow.log_prob(grid, temperature).numpy(), (axis[1] - axis[0]) ** 2


@pytest.mark.parametrize("name", ["maf", "realnvp"])
def test_fit_on_moons_beats_the_base_gaussian_and_integrates_to_one(name, moons):
    train, test = moons
    keras.utils.set_random_seed(0)
    flow = FLOWS[name](2, num_layers=4, hidden_units=(32, 32), seed=0)
    flow.compile(optimizer=keras.optimizers.Adam(5e-3))
    history = flow.fit(train, batch_size=128, epochs=12, verbose=0)
    assert set(history.history) >= {"loss", "nll", "jacobian_penalty"}
    held_out_nll = -flow.log_prob(test).numpy().mean()
    gaussian_nll = 0.5 * (test**2).sum(1).mean() + np.log(2 * np.pi)
    assert held_out_nll < gaussian_nll - 0.3
    for temperature in (1.0, 0.5):  # the tempered flow, x = f(T z), is a density too
        log_prob, cell = grid_log_prob(flow, temperature=temperature)
        assert abs(np.exp(log_prob).sum() * cell - 1.0) < 0.02


def test_jacobian_penalty_lowers_the_squared_log_det_on_base_samples(moons):
    train, _ = moons
    squared_log_det = {}
    for penalty in (0.0, 1.0):
        keras.utils.set_random_seed(0)
        flow = FLOWS["maf"](
            2,
            num_layers=3,
            hidden_units=(32, 32),
            seed=0,
            jacobian_penalty=penalty,
            penalty_batch_size=128,
        )
        flow.compile(optimizer=keras.optimizers.Adam(5e-3))
        flow.fit(train, batch_size=128, epochs=6, verbose=0)
        z = tf.random.stateless_normal((2000, 2), seed=[1, 2])
        squared_log_det[penalty] = float(tf.reduce_mean(flow.forward_log_det_jacobian(z) ** 2))
    assert squared_log_det[1.0] < 0.5 * squared_log_det[0.0]


@pytest.mark.parametrize("dim", [1, 4])
def test_maf_penalty_gradients_equal_autodiff_through_the_sampling_pass(dim):
    """The MAF's implicit differentiation of ``L_J`` (eq. 40) gives the gradient of
    ``mean(log|det J(f|z)|^2)`` that autodiff through TFP's sequential forward pass gives."""
    flow = small_flow("maf", dim=dim, dtype="float64", jacobian_penalty=1.0)
    perturb_weights(flow, seed=4)
    z = tf.constant(np.random.default_rng(5).standard_normal((8, dim)), tf.float64)
    penalty, gradients = flow._penalty_and_gradients(z)
    with tf.GradientTape() as tape:
        expected_penalty = tf.reduce_mean(flow.forward_log_det_jacobian(z) ** 2)
    expected = tape.gradient(expected_penalty, flow.trainable_variables)
    np.testing.assert_allclose(penalty.numpy(), expected_penalty.numpy(), rtol=1e-10)
    assert len(gradients) == len(expected)
    for got, want in zip(gradients, expected, strict=True):
        want = np.zeros(got.shape) if want is None else want.numpy()
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-7, atol=1e-10)
    assert sum(float(np.abs(g).sum()) for g in expected if g is not None) > 1.0


def test_penalty_every_k_steps_is_logged_and_trains():
    x = np.random.default_rng(0).standard_normal((512, 3)).astype(np.float32) * 0.2
    flow = small_flow("maf", jacobian_penalty=0.1, penalty_every=4, penalty_batch_size=16)
    flow.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = flow.fit(x, batch_size=64, epochs=2, validation_data=(x[:128],), verbose=0)
    assert history.history["jacobian_penalty"][0] > 0
    assert "val_nll" in history.history


def test_validation_reports_the_mean_nll_and_draws_nothing():
    """``evaluate`` and the callback the detector's flow fit uses (``HeldOutNLL``) report the
    mean of the batches' mean NLL, and draw no random numbers."""
    from tfp_flowad.training.held_out import HeldOutNLL

    x = np.random.default_rng(1).standard_normal((300, 3)).astype(np.float32)
    flow = small_flow("maf", jacobian_penalty=0.5, penalty_batch_size=16)
    perturb_weights(flow)
    flow.compile(optimizer=keras.optimizers.Adam(1e-3))
    state = flow.seed_generator.state.numpy().copy()
    logs = flow.evaluate(x, batch_size=64, verbose=0, return_dict=True)
    batches = [x[i : i + 64] for i in range(0, 300, 64)]  # the last one holds 44 rows
    batch_nll = [-flow.log_prob(batch).numpy().mean() for batch in batches]
    assert set(logs) == {"nll"}
    np.testing.assert_allclose(logs["nll"], np.mean(batch_nll), rtol=1e-5)
    epoch_logs = {"nll": 1.0}
    HeldOutNLL(flow, batches).on_epoch_end(0, epoch_logs)
    assert set(epoch_logs) == {"nll", "val_nll"}
    np.testing.assert_allclose(epoch_logs["val_nll"], logs["nll"], rtol=1e-6)
    np.testing.assert_array_equal(flow.seed_generator.state.numpy(), state)


def test_fit_and_evaluate_leave_no_trace_behind():
    """TFP's bijector cache keeps no graph tensor and TensorFlow's gradient registry no new
    custom gradient after ``fit`` / ``evaluate``, so a dropped flow is freed."""
    x = np.random.default_rng(2).standard_normal((256, 3)).astype(np.float32)
    gradients_before = set(ops._gradient_registry.list())
    flow = small_flow("maf", jacobian_penalty=0.1, penalty_batch_size=16)
    flow.compile(optimizer=keras.optimizers.Adam(1e-3))
    flow.fit(x, batch_size=64, epochs=1, validation_data=(x[:64],), verbose=0)
    flow.evaluate(x, batch_size=64, verbose=0)
    storage = tfp.bijectors.Bijector.__dict__["_cache"].storage
    cached = [value for key in list(storage) for value in tf.nest.flatten(key())]
    assert not any(tf.is_symbolic_tensor(value) for value in cached)
    assert set(ops._gradient_registry.list()) <= gradients_before
    made = weakref.ref(flow.mades[0])
    del flow
    gc.collect()
    assert made() is None


def test_a_non_finite_batch_leaves_the_weights_finite():
    x = np.random.default_rng(0).standard_normal((256, 3)).astype(np.float32)
    x[70] = 3e38  # log p overflows: the batch holding it must not poison the weights
    flow = small_flow("maf")
    flow.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = flow.fit(x, batch_size=64, epochs=2, shuffle=False, verbose=0)
    assert all(np.isfinite(v.numpy()).all() for v in flow.trainable_variables)
    assert np.isfinite(history.history["nll"]).all()
    assert np.isfinite(flow.log_prob(x[:64]).numpy()).all()


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="jacobian_penalty"):
        FLOWS["maf"](2, jacobian_penalty=-1.0)
    with pytest.raises(ValueError, match="event_size"):
        FLOWS["maf"](0)


@pytest.mark.parametrize("order", ["left-to-right", "right-to-left", [2, 0, 3, 1]])
def test_made_output_depends_only_on_earlier_inputs_in_its_order(order):
    made = MADE(4, hidden_units=(12, 12), input_order=order)
    x = tf.constant(np.random.default_rng(0).standard_normal((3, 4)), tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        shift, log_scale = made(x)
    named = {"left-to-right": [0, 1, 2, 3], "right-to-left": [3, 2, 1, 0]}
    sequence = named[order] if isinstance(order, str) else order
    rank = np.empty(4, int)
    rank[np.asarray(sequence)] = np.arange(4)  # rank[j]: position of input j in the order
    for output in (shift, log_scale):
        jacobian = np.abs(tape.batch_jacobian(output, x).numpy()).max(0)  # [out, in]
        allowed = rank[None, :] < rank[:, None]
        assert np.all(jacobian[~allowed] == 0)
        assert np.any(jacobian[allowed] != 0)


def test_a_trace_in_progress_keeps_its_custom_gradients():
    """A call decorated by ``releasing_finished_traces`` that returns while another trace is
    still being built (as in another thread) leaves that trace's custom gradients, which it
    has yet to take, registered."""
    from tfp_flowad.tracing import releasing_finished_traces

    @tf.custom_gradient
    def double(x):
        return 2.0 * x, lambda upstream: 2.0 * upstream

    @releasing_finished_traces
    def finishing_elsewhere(step):
        return step()

    @tf.function
    def gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = finishing_elsewhere(lambda: double(x))
        return tape.gradient(y, x)

    assert gradient(tf.constant(1.5)).numpy() == 2.0


def test_a_trace_in_progress_keeps_its_bijector_cache_entries():
    """Cache entries of a trace still being built survive a release; those of a finished
    trace do not."""
    from tfp_flowad.tracing import release_finished_bijector_calls

    flow = small_flow("maf")
    storage = tfp.bijectors.Bijector.__dict__["_cache"].storage
    x = tf.constant(np.random.default_rng(0).standard_normal((4, 3)), tf.float32)
    kept = []

    @tf.function
    def log_prob(rows):
        result = flow.log_prob(rows)
        release_finished_bijector_calls()
        kept.append(
            sum(tf.is_symbolic_tensor(v) for k in list(storage) for v in tf.nest.flatten(k()))
        )
        return result

    log_prob(x)
    assert kept[0] > 0
    release_finished_bijector_calls()
    assert not [v for k in list(storage) for v in tf.nest.flatten(k()) if tf.is_symbolic_tensor(v)]
