"""The method's pieces: losses, tail sampling, distillation, the (1 + eps)-class trainer."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats
from sklearn.metrics import roc_auc_score

from tfp_flowad import losses
from tfp_flowad.flows import IAF, MAF
from tfp_flowad.nn.mlp import make_mlp, select_members
from tfp_flowad.sampling import (
    TailSampler,
    UniformBoxSampler,
    sample_gaussian_tail,
    tail_radius_squared,
)
from tfp_flowad.training.classifier import (
    OnePlusEpsTrainer,
    make_classifier_dataset,
    steps_per_pass,
)
from tfp_flowad.training.distillation import Distiller, distillation_steps
from tfp_flowad.training.students import (
    STUDENT_TARGET_WIDTH,
    fit_score_student,
    perturbed_normal_rows,
    soft_anomaly_targets,
)


def test_one_plus_eps_loss_matches_eq_6_by_hand():
    normal, anomaly, surrogate = (
        tf.constant([0.5, -1.0]),
        tf.constant([2.0]),
        tf.constant([0.0, 1.0, -2.0]),
    )
    f = tf.sigmoid
    terms = losses.one_plus_eps_loss(normal, anomaly, surrogate, gamma=2.0, eps=0.25)
    l_plus = -np.mean(np.log(f(normal).numpy()))
    l_minus = -np.mean(np.log(1 - f(anomaly).numpy()))
    l_zero = -np.mean(np.log(1 - f(surrogate).numpy()))
    expected = 0.5 * (l_plus + 2.0 * l_minus + 0.75 * l_zero)
    np.testing.assert_allclose(terms["loss"].numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(terms["surrogate"].numpy(), l_zero, rtol=1e-6)


def test_one_plus_eps_loss_without_known_anomalies_has_zero_anomaly_term():
    terms = losses.one_plus_eps_loss(tf.constant([1.0]), tf.zeros([0]), tf.constant([1.0]), 1, 0)
    assert terms["anomaly"].numpy() == 0.0


def test_jacobian_penalty_and_kl_are_the_formulas():
    log_det = tf.constant([1.0, -2.0, 3.0])
    assert losses.jacobian_penalty(log_det).numpy() == pytest.approx(14.0 / 3.0)
    kl = losses.distillation_kl(tf.constant([-1.0, -2.0]), tf.constant([-1.5, -3.0]))
    assert kl.numpy() == pytest.approx(0.75)


@pytest.mark.parametrize("dim,p_value", [(2, 0.05), (30, 0.01), (118, 0.2)])
def test_tail_radii_follow_the_truncated_chi_square(dim, p_value):
    z = sample_gaussian_tail(4000, dim, p_value, seed=3, dtype=tf.float64).numpy()
    radius_sq = (z**2).sum(1)
    threshold = tail_radius_squared(dim, p_value)
    assert threshold == pytest.approx(stats.chi2.isf(p_value, dim), rel=1e-6)
    assert radius_sq.min() >= threshold * (1 - 1e-9)

    def truncated_cdf(r):
        return 1.0 - stats.chi2.sf(r, dim) / p_value

    assert stats.kstest(radius_sq, truncated_cdf).pvalue > 0.01
    directions = z / np.sqrt(radius_sq)[:, None]
    np.testing.assert_allclose(directions.mean(0), 0.0, atol=0.1)


def test_tail_sampling_rejects_a_bad_p_value():
    with pytest.raises(ValueError, match="p_value"):
        sample_gaussian_tail(3, 2, 0.0, seed=0)


def test_distillation_makes_the_student_agree_with_the_teacher():
    keras.utils.set_random_seed(0)
    teacher = MAF(2, num_layers=2, hidden_units=(16, 16), seed=0)
    rng = np.random.default_rng(0)
    for variable in teacher.trainable_variables:
        variable.assign(variable + 0.3 * rng.standard_normal(variable.shape).astype("float32"))
    student = IAF(2, num_layers=3, hidden_units=(32, 32), seed=1)
    distiller = Distiller(teacher, student, batch_size=256)
    distiller.compile(optimizer=keras.optimizers.Adam(3e-3))
    teacher.trainable = False
    start = float(distiller.evaluate(distillation_steps(5), verbose=0))
    distiller.fit(distillation_steps(400), epochs=1, shuffle=False, verbose=0)
    end = float(distiller.evaluate(distillation_steps(5), verbose=0))
    assert end < 0.5 * start and end < 0.05
    x, student_log_prob = student.sample_and_log_prob(2000)
    gap = np.abs(student_log_prob.numpy() - teacher.log_prob(x).numpy())
    assert np.median(gap) < 0.15


class _OverflowingTeacher:
    """A teacher density ``log p(x) = -exp(17 x_0)``: beyond ``x_0 ~ 2.5`` its gradient's
    global norm overflows float32 (beyond ~5.2 the value itself), as a MAF's inverse does far
    from its data."""

    event_size = 2

    def log_prob(self, x):
        return -tf.exp(17.0 * x[:, 0])


def test_distillation_skips_steps_where_the_teacher_overflows():
    keras.utils.set_random_seed(0)
    student = IAF(2, num_layers=2, hidden_units=(8,), seed=0)
    distiller = Distiller(_OverflowingTeacher(), student, batch_size=64)
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = [w.copy() for w in student.get_weights()]
    history = distiller.fit(distillation_steps(30), epochs=1, shuffle=False, verbose=0).history
    weights = student.get_weights()
    # Without the guard the first overflowing sample turns every weight into NaN.
    assert all(np.isfinite(w).all() for w in weights)
    assert any(not np.array_equal(a, b) for a, b in zip(before, weights, strict=True))
    assert np.isfinite(history["kl"][-1])


class _SometimesInfiniteSampler(keras.layers.Layer):
    """Box surrogates of which about 2 % are infinite (a flow's sample out of float32 range)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.box = UniformBoxSampler([-4, -4], [4, 4], seed=0)

    def sample(self, n):
        x, _ = self.box.sample(n)
        return tf.where(x[:, :1] > 3.84, np.inf, x), None


def _fit_passes(trainer, normal, batch_size: int, passes: int):
    """``trainer`` fitted on ``passes`` passes of the stream of ``normal`` rows, one Keras
    epoch each; returns the history."""
    return trainer.fit(
        make_classifier_dataset(normal, None, batch_size, seed=0),
        epochs=passes,
        steps_per_epoch=steps_per_pass(len(normal), batch_size),
        shuffle=False,
        verbose=0,
    )


def test_one_plus_eps_trainer_skips_steps_with_infinite_surrogates():
    keras.utils.set_random_seed(0)
    normal = np.random.default_rng(0).normal(0, 1, (512, 2)).astype("float32")
    trainer = OnePlusEpsTrainer(make_mlp(2, (8,)), _SometimesInfiniteSampler(), eps=0.1)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = _fit_passes(trainer, normal, 64, passes=3)
    assert all(np.isfinite(w).all() for w in trainer.network.get_weights())
    assert np.isfinite(history.history["loss"]).all()
    logits = trainer(np.array([[0, 0], [3.5, -3.5]], "float32")).numpy()
    assert logits[0] > logits[1]  # it learned from the finite steps


def test_tail_sampler_pushes_tail_samples_through_the_flow():
    flow = IAF(3, num_layers=2, hidden_units=(8,), seed=0)
    sampler = TailSampler(flow, p_value=0.01, seed=0)
    x, weights = sampler.sample(500)
    assert weights is None and x.shape == (500, 3)
    z = flow.inverse(x).numpy()
    assert (z**2).sum(1).min() >= tail_radius_squared(3, 0.01) * 0.999


def test_one_plus_eps_trainer_separates_normals_from_surrogates_and_known_anomalies():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    normal = rng.normal(0, 1, (2000, 2)).astype("float32")
    anomaly = rng.normal(6, 0.3, (20, 2)).astype("float32")
    sampler = UniformBoxSampler(low=[-8, -8], high=[8, 8], seed=0)
    trainer = OnePlusEpsTrainer(make_mlp(2, (32, 32)), sampler, gamma=1.0, eps=0.1)
    trainer.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = trainer.fit(
        make_classifier_dataset(normal, anomaly, 256, seed=0),
        epochs=8,
        steps_per_epoch=steps_per_pass(len(normal), 256),
        shuffle=False,
        verbose=0,
    )
    assert set(history.history) >= {"loss", "normal", "anomaly", "surrogate"}
    assert history.history["loss"][-1] < history.history["loss"][0]
    logits = trainer(np.array([[0, 0], [6, 6], [-7, 7]], "float32")).numpy()
    assert logits[0] > logits[1] and logits[0] > logits[2]


def test_classifier_dataset_is_one_endless_stream_for_the_whole_fit():
    # Fitted with steps_per_epoch, Keras keeps one iterator of it for every epoch, so the order
    # is the seed's alone, not the prefetch threads' timing (see make_classifier_dataset).
    normal = np.arange(300, dtype="float32")[:, None] * np.ones((1, 2), "float32")
    anomaly = -np.ones((30, 2), "float32")
    dataset = make_classifier_dataset(normal, anomaly, 32, seed=0)
    assert dataset.cardinality() == tf.data.INFINITE_CARDINALITY
    # Batches run across passes; each pass holds every normal row once, in a new order.
    batches = dataset.take(steps_per_pass(len(normal), 32, passes=3))
    rows = np.concatenate([batch["normal"].numpy()[:, 0] for batch in batches])
    passes = rows[:900].reshape(3, 300)
    for one_pass in passes:
        np.testing.assert_array_equal(np.sort(one_pass), np.arange(300))
    assert not np.array_equal(passes[0], passes[1])
    # For evaluation: one pass, in order.
    evaluation = make_classifier_dataset(normal, None, 32, seed=0, training=False)
    rows = np.concatenate([batch["normal"].numpy()[:, 0] for batch in evaluation])
    np.testing.assert_array_equal(rows, np.arange(300))
    trainer = OnePlusEpsTrainer(make_mlp(2, (4,)), UniformBoxSampler([-1, -1], [2, 2], seed=0))
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3))
    trainer.fit(dataset, epochs=3, steps_per_epoch=10, shuffle=False, verbose=0)
    assert int(trainer.optimizer.iterations) == 30


def test_one_plus_eps_trainer_gradients_reach_every_classifier_weight():
    network = make_mlp(2, (8, 8))
    trainer = OnePlusEpsTrainer(network, UniformBoxSampler([-1, -1], [1, 1], seed=0))
    data = {"normal": tf.ones((4, 2)), "anomaly": tf.zeros((2, 2))}
    with tf.GradientTape() as tape:
        loss = trainer._loss_terms(data, training=True)["loss"]
    for grad in tape.gradient(loss, network.trainable_variables):
        assert grad is not None and np.any(grad.numpy() != 0)


# Which of the 3 known anomalies each of the 3 members trains on (None: all of them).
HELD_OUT_ROWS = [None, np.array([[1, 1, 0], [1, 0, 1], [1, 0, 1]], dtype="float32")]


@pytest.mark.parametrize("anomaly_members", HELD_OUT_ROWS, ids=["all-rows", "held-out-rows"])
def test_ensemble_loss_is_the_mean_of_each_members_own_loss(anomaly_members):
    """With ``make_mlp(..., members=3)`` every term of eq. (6) is the mean of the members'
    terms, and each member's gradient is its own loss's gradient over 3: no member's weights
    feel another member's logits. With ``anomaly_members`` a member's own loss is eq. (6) on
    its own known anomalies only, and the rows it does not train on do not reach it."""
    keras.utils.set_random_seed(0)
    members = make_mlp(2, (8,), members=3)
    trainer = OnePlusEpsTrainer(members, UniformBoxSampler([-2, -2], [2, 2], seed=0), eps=0.2)
    data = {"normal": tf.random.normal((6, 2)), "anomaly": tf.random.normal((3, 2)) + 3}
    mask = np.ones((3, 3), dtype=bool)
    if anomaly_members is not None:
        data["anomaly_members"] = tf.constant(anomaly_members)
        mask = anomaly_members.astype(bool)
    surrogate, _ = trainer.sampler.sample(6)
    trainer.sampler.sample = lambda n: (surrogate, None)  # the same surrogates for both sides
    with tf.GradientTape(persistent=True) as tape:
        terms = trainer._loss_terms(data, training=True)
        logits = members(tf.concat([data["normal"], surrogate, data["anomaly"]], 0))
        own = [
            losses.one_plus_eps_loss(
                logits[:6, k], logits[12:, k][mask[:, k]], logits[6:12, k], 1.0, 0.2
            )
            for k in range(3)
        ]
    for name in ("loss", "normal", "anomaly", "surrogate"):
        expected = np.mean([terms_k[name].numpy() for terms_k in own])
        np.testing.assert_allclose(terms[name].numpy(), expected, rtol=1e-6)
    weights = members.trainable_variables  # each [members, ...]: member k's slice is [k]
    joint = tape.gradient(terms["loss"], weights)
    for k in range(3):
        alone = tape.gradient(own[k]["loss"], weights)
        for weight, g_joint, g_alone in zip(weights, joint, alone, strict=True):
            others = np.delete(g_alone.numpy(), k, axis=0)
            assert np.any(g_alone.numpy()[k]) and not np.any(others), weight.path
            np.testing.assert_allclose(
                g_joint.numpy()[k], g_alone.numpy()[k] / 3, rtol=1e-5, atol=1e-8
            )
    np.testing.assert_allclose(
        trainer(data["normal"]).numpy(), members(data["normal"]).numpy().mean(1), rtol=1e-6
    )


def test_anomaly_members_stay_with_their_rows_through_the_shuffle():
    anomaly = np.arange(10, dtype="float32")[:, None] * np.ones((1, 2), dtype="float32")
    anomaly_members = np.stack([np.arange(10) % 2, np.ones(10)], axis=1)
    normal = np.zeros((40, 2), dtype="float32")
    dataset = make_classifier_dataset(normal, anomaly, 8, seed=0, anomaly_members=anomaly_members)
    for batch in dataset.take(3):
        rows = batch["anomaly"].numpy()[:, 0].astype(int)
        np.testing.assert_array_equal(batch["anomaly_members"].numpy(), anomaly_members[rows])


def test_members_side_by_side_are_the_networks_built_one_after_another(tmp_path):
    """``make_mlp(..., members=3)`` computes what three ``make_mlp`` networks built in turn
    from the same seed compute, from their initial weights, and survives save / load."""
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    keras.utils.set_random_seed(1)
    separate = [make_mlp(4, (6, 3)) for _ in range(3)]
    keras.utils.set_random_seed(1)
    members = make_mlp(4, (6, 3), members=3)
    expected = np.concatenate([network(x).numpy() for network in separate], axis=1)
    np.testing.assert_allclose(members(x).numpy(), expected, rtol=1e-6, atol=1e-7)
    members.save(tmp_path / "members.keras")
    loaded = keras.saving.load_model(tmp_path / "members.keras")
    np.testing.assert_array_equal(loaded(x).numpy(), members(x).numpy())
    # Members taken out keep their weights; one member is the plain MLP of make_mlp.
    pair = select_members(members, [0, 2])
    np.testing.assert_allclose(pair(x).numpy(), expected[:, [0, 2]], rtol=1e-6, atol=1e-7)
    single = select_members(members, [1])
    assert [type(layer) for layer in single.layers] == [type(layer) for layer in separate[1].layers]
    np.testing.assert_allclose(single(x).numpy(), expected[:, [1]], rtol=1e-6, atol=1e-7)


def test_make_mlp_rejects_a_bad_number_of_members():
    for members in (0, 1.5, True):
        with pytest.raises(ValueError, match=f"members must be an integer >= 1; got {members!r}"):
            make_mlp(2, (4,), members=members)
    with pytest.raises(ValueError, match="network must end in a MemberMLP layer; got Dense"):
        select_members(make_mlp(2, (4,)), [0])


def test_weight_averaging_gives_the_network_the_average_of_its_iterates():
    """Adam's moving average (the detector's ``classifier_averaging``) ends in the network:
    ``w_avg = m w_avg + (1 - m) w_t`` over the steps' weights, the first step's taken as is,
    and a frozen sampler (an IAF, as in the detector) keeps its weights."""
    keras.utils.set_random_seed(0)
    network = make_mlp(3, (8,))
    flow = IAF(3, num_layers=2, hidden_units=(8,))
    sampler = TailSampler(flow, 0.05, seed=0)
    sampler.trainable = False
    flow_weights = [w.copy() for w in flow.get_weights()]
    trainer = OnePlusEpsTrainer(network, sampler)
    momentum = 0.8
    trainer.compile(optimizer=keras.optimizers.Adam(1e-2, use_ema=True, ema_momentum=momentum))
    iterates = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda *_, **__: iterates.append(network.get_weights())
    )
    normal = np.random.default_rng(0).normal(size=(320, 3)).astype("float32")
    trainer.fit(
        make_classifier_dataset(normal, None, 32, seed=0),
        steps_per_epoch=steps_per_pass(len(normal), 32),
        callbacks=[record],
        shuffle=False,
        verbose=0,
    )
    average = iterates[0]
    for weights in iterates[1:]:
        average = [momentum * a + (1 - momentum) * w for a, w in zip(average, weights, strict=True)]
    assert len(iterates) == 10
    assert not np.allclose(average[0], iterates[-1][0])
    for fitted, expected in zip(network.get_weights(), average, strict=True):
        np.testing.assert_allclose(fitted, expected, rtol=1e-5, atol=1e-6)
    for fitted, before in zip(flow.get_weights(), flow_weights, strict=True):
        np.testing.assert_array_equal(fitted, before)


def test_steps_per_call_divides_an_endless_epoch_and_caps_a_finite_one():
    from tfp_flowad.training.base import MAX_STEPS_PER_CALL, steps_per_call

    assert MAX_STEPS_PER_CALL == 50
    assert [steps_per_call(n) for n in (1, 7, 62, 300, 3000, 101)] == [1, 7, 31, 50, 50, 1]
    assert [steps_per_call(n, data_ends=True) for n in (1, 7, 101, 3000)] == [1, 7, 50, 50]
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        assert steps_per_call(300) == 1


def test_several_steps_per_call_train_the_weights_one_step_per_call_does():
    """The classifier's fit with ``steps_per_execution``: the same batches, surrogates and
    steps as one step a call, so the same weights."""
    normal = np.random.default_rng(5).normal(size=(300, 3)).astype("float32")
    weights = []
    for per_call in (1, 5):
        keras.utils.set_random_seed(0)
        network = make_mlp(3, (8,))
        sampler = TailSampler(IAF(3, num_layers=2, hidden_units=(8,), seed=0), 0.05, seed=0)
        sampler.trainable = False
        trainer = OnePlusEpsTrainer(network, sampler)
        trainer.compile(optimizer=keras.optimizers.Adam(1e-2), steps_per_execution=per_call)
        history = _fit_passes(trainer, normal, 32, passes=2)
        assert int(trainer.optimizer.iterations) == 20
        weights.append((network.get_weights(), history.history["loss"]))
    (one, one_loss), (several, several_loss) = weights
    for a, b in zip(one, several, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(one_loss, several_loss)


def test_compile_builds_each_optimizer_over_the_weights_its_step_updates():
    teacher, student = (
        MAF(3, num_layers=2, hidden_units=(8,)),
        IAF(3, num_layers=2, hidden_units=(8,)),
    )
    network = make_mlp(3, (8,))
    models = {
        "flow": (teacher, teacher.trainable_variables),
        "distiller": (Distiller(teacher, student), student.trainable_variables),
        "trainer": (
            OnePlusEpsTrainer(network, UniformBoxSampler([-1] * 3, [1] * 3)),
            network.trainable_variables,
        ),
    }
    for name, (model, updated) in models.items():
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        assert model.optimizer.built, name
        tracked = {id(v) for v in model.optimizer._trainable_variables}
        assert tracked == {id(v) for v in updated}, name


def test_trainer_rejects_bad_hyperparameters():
    with pytest.raises(ValueError, match="eps"):
        OnePlusEpsTrainer(make_mlp(2), UniformBoxSampler([0], [1]), eps=1.5)


def test_soft_anomaly_targets_are_a_sigmoid_centred_where_normal_rows_end():
    targets = soft_anomaly_targets(np.array([-1e30, 1.0, 2.0, 4.0, 1e30]), centre=2.0, width=2.0)
    expected = [0.0, 1 / (1 + np.exp(0.5)), 0.5, 1 / (1 + np.exp(-1.0)), 1.0]
    np.testing.assert_allclose(targets, expected, atol=1e-7)
    assert targets.dtype == np.float32


def test_perturbed_normal_rows_are_noisy_copies_and_rows_crossed_with_others():
    rng = np.random.default_rng(0)
    normal = np.zeros((100, 200), "float32")  # every normal row at the origin
    surrogates = rng.normal(50.0, 1.0, size=(300, 200)).astype("float32")
    noisy, crossed = perturbed_normal_rows(normal, surrogates, 4001, rng)
    assert noisy.shape == crossed.shape == (4001, 200) and noisy.dtype == crossed.dtype
    # A noisy row is a normal row plus N(0, sigma^2 I), log sigma uniform over
    # [log 0.01, log 3]: its norm / sqrt(D) estimates sigma within a few percent.
    log_sigma = np.log(np.linalg.norm(noisy, axis=1) / np.sqrt(200))
    low, high = np.log(0.01), np.log(3.0)
    assert low - 0.2 < log_sigma.min() < low + 0.1 and high - 0.1 < log_sigma.max() < high + 0.2
    assert stats.kstest(log_sigma, stats.uniform(low, high - low).cdf).pvalue > 1e-3
    # The first half of the crossed rows keep a normal row's features but a share, uniform
    # over [0.02, 0.3] per row, taken from surrogates (values near 50).
    taken = crossed[:2000] != 0
    assert np.all(np.isin(crossed[:2000][taken], surrogates))
    share = taken.mean(1)
    assert 0.0 < share.min() < 0.04 and 0.27 < share.max() < 0.42  # binomial spread
    assert share.mean() == pytest.approx(0.16, abs=0.01)
    # The second half mixes two normal rows feature by feature: here, two copies of the origin.
    assert not crossed[2000:].any()
    two = np.array([[0.0] * 200, [1.0] * 200], "float32")
    mixed = perturbed_normal_rows(two, surrogates, 2000, rng)[1][1000:]
    taken_from_second = mixed.mean(1)[(mixed.min(1) == 0) & (mixed.max(1) == 1)]
    assert len(taken_from_second) > 400  # rows that mix the two differ from both
    assert taken_from_second.mean() == pytest.approx(0.5, abs=0.01)


def test_score_student_ranks_rows_like_its_teacher():
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)

    def teacher(rows):  # a score that rises with the distance from the normal rows' centre
        return np.linalg.norm(rows, axis=1) ** 2

    normal = rng.normal(size=(2000, 3)).astype("float32")
    far = rng.normal(size=(2000, 3)).astype("float32") * 4.0
    normal_scores = teacher(normal)
    spread = np.subtract(*np.percentile(normal_scores, [75, 25]))
    parts = [normal, far]
    scores = [teacher(rows) for rows in parts]
    student, history = fit_score_student(
        parts, scores, normal_scores, spread, (16,), 600, 128, 1e-2, target_quantile=0.9, seed=0
    )
    assert np.isfinite(history["loss"][-1])
    rows = rng.normal(size=(3000, 3)).astype("float32") * rng.uniform(0.5, 3.0, size=(3000, 1))
    logits = student(rows).numpy()[:, 0]
    # Its logit estimates (s - c) / w, c the teacher's 90th normal percentile, w 3 spreads,
    # wherever that is moderate, and keeps the teacher's order.
    centre = np.quantile(normal_scores, 0.9)
    z = (teacher(rows) - centre) / (STUDENT_TARGET_WIDTH * spread)
    moderate = np.abs(z) < 3
    assert np.corrcoef(logits[moderate], z[moderate])[0, 1] > 0.95
    slope, intercept = np.polyfit(z[moderate], logits[moderate], 1)
    assert 0.8 < slope < 1.25 and abs(intercept) < 0.3
    labels = (teacher(rows) > centre).astype(int)
    assert roc_auc_score(labels, logits) > 0.99
