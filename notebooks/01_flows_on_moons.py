# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Normalizing flows on two moons
#
# This notebook shows, on a 2-D toy set, the pieces of *Normalizing flows for deep anomaly
# detection* (Ryzhikov, Borisyak, Ustyuzhanin, Derkach, arXiv 1912.09323) that the detector
# builds on:
#
# 1. the five flows of `tfp_flowad.flows` fitted to `make_moons` by maximum likelihood;
# 2. the bijection between the base Gaussian and the data, with the Gaussian's tail marked
#    (the paper's figure 5);
# 3. how a flow distorts density, `log p(z)` against `log p(x)`, with and without the Jacobian
#    regulariser (figure 6);
# 4. probability distillation of a MAF into an IAF, and surrogate anomalies drawn from the tail
#    and pushed through the flow, then a classifier trained on them (figure 7).
#
# Each flow is a Keras model: it owns its weights and builds a TensorFlow Probability
# distribution on every call, so `compile` / `fit` train it and `log_prob`, `sample`, `forward`
# and `inverse` use it.
#
# The first cell reads a size switch: the test suite sets `TFP_FLOWAD_NOTEBOOK_SMALL=1` to run
# the notebook in seconds with tiny fits. Unset, it runs in a few minutes on a laptop CPU.

# %%
import os
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TensorFlow's start-up chatter

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
from scipy.stats import spearmanr
from sklearn.neighbors import KernelDensity

from tfp_flowad.datasets import load_moons
from tfp_flowad.flows import IAF, MAF, PlanarFlow, RadialFlow, RealNVP
from tfp_flowad.nn.mlp import make_mlp
from tfp_flowad.sampling import TailSampler, sample_gaussian_tail, tail_radius_squared
from tfp_flowad.training.classifier import OnePlusEpsTrainer, make_classifier_dataset, steps_per_pass
from tfp_flowad.training.distillation import Distiller, distillation_steps

SMALL = os.environ.get("TFP_FLOWAD_NOTEBOOK_SMALL") == "1"
N_TRAIN = 1000 if SMALL else 3000  # training rows
EPOCHS = 3 if SMALL else 60  # epochs per flow fit
THIN_LAYERS, DEEP_LAYERS = (4, 2) if SMALL else (16, 5)  # planar/radial steps; other flows' steps
DISTILLATION_EPOCHS = 2 if SMALL else 20  # of 100 steps each
CLASSIFIER_EPOCHS = 3 if SMALL else 40
GRID = 60 if SMALL else 120  # density maps are GRID x GRID
P_VALUE = 0.05  # mass of the base Gaussian's tail that surrogate anomalies come from
LAMBDA = 1.0  # Jacobian penalty weight of the regularised flow, eq. (41)

warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")
# %matplotlib inline
plt.rcParams.update({"figure.dpi": 80, "savefig.dpi": 80, "axes.titlesize": 11})
keras.utils.set_random_seed(0)
print(f"SMALL={SMALL}: {N_TRAIN} training rows, {EPOCHS} epochs per flow")

# %% [markdown]
# ## The data
#
# Two interleaving half circles with a little noise, standardised with the training rows' mean
# and standard deviation so that they live on the same scale as the base Gaussian `N(0, I)`.

# %%
X, _ = load_moons(N_TRAIN + 1000, noise=0.08, seed=0)
mean, std = X[:N_TRAIN].mean(0), X[:N_TRAIN].std(0)
X = (X - mean) / std
x_train, x_test = X[:N_TRAIN], X[N_TRAIN:]

x_shown = x_train[:1500]  # the training rows drawn under other points (keeps the figures light)

# A fixed window and grid for every map below.
LIMITS = (-3.0, 3.0)
axis = np.linspace(*LIMITS, GRID, dtype=np.float32)
grid_x, grid_y = np.meshgrid(axis, axis)
grid = np.stack([grid_x.ravel(), grid_y.ravel()], axis=1)

fig, ax = plt.subplots(figsize=(4, 4))
ax.scatter(*x_train.T, s=2, color="0.3")
ax.set(xlim=LIMITS, ylim=LIMITS, aspect="equal", title=f"{N_TRAIN} training rows")
plt.show()

# %% [markdown]
# ## Five flows, fitted by maximum likelihood
#
# A flow is a bijection `x = f(z)` from the base Gaussian `z ~ N(0, I)` to the data. The change
# of variables (eq. (13), (39)) gives the exact likelihood
#
# `log p(x) = log N(f^{-1}(x); 0, I) - log|det J(f | f^{-1}(x))|`,
#
# and `fit` minimises its negative mean, `-L_NF` (eq. (37)-(39)). The families differ in what a
# step can do and which direction is cheap:
#
# | flow | one step | cheap direction |
# |---|---|---|
# | planar, eq. (14)-(17) | `z + u h(w.z + b)`: bends space along one hyperplane | sampling (`log_prob` inverts numerically) |
# | radial, eq. (18)-(19) | `z + beta h(alpha, r)(z - z0)`: pulls or pushes around a point | both |
# | RealNVP, eq. (22)-(26) | affine coupling: half of the coordinates rescale and shift the other half | both |
# | MAF, eq. (27)-(30) | autoregressive affine map, `z_i = (x_i - mu_i(x_<i)) exp(-alpha_i(x_<i))` | density (one pass); sampling takes `D` passes |
# | IAF, eq. (31)-(33) | the same map the other way round | sampling (one pass); density takes `D` passes |
#
# Planar and radial steps are thin, so they are stacked 16 deep; RealNVP, MAF and IAF use 5
# steps with a 64-64 hidden network each (fewer steps at small size). Here `D = 2`, so the slow
# directions are cheap too.

# %%
flows = {  # one seeded model per family
    "planar": PlanarFlow(2, num_layers=THIN_LAYERS, seed=0),
    "radial": RadialFlow(2, num_layers=THIN_LAYERS, seed=0),
    "RealNVP": RealNVP(2, num_layers=DEEP_LAYERS, hidden_units=(64, 64), seed=0),
    "MAF": MAF(2, num_layers=DEEP_LAYERS, hidden_units=(64, 64), seed=0),
    "IAF": IAF(2, num_layers=DEEP_LAYERS, hidden_units=(64, 64), seed=0),
}


def fit_flow(flow, epochs=EPOCHS):
    flow.compile(optimizer=keras.optimizers.Adam(3e-3))
    return flow.fit(x_train, batch_size=256, epochs=epochs, verbose=0).history


gaussian_nll = float(np.mean(0.5 * (x_test**2).sum(1) + np.log(2 * np.pi)))
print(f"held-out NLL of the base Gaussian itself: {gaussian_nll:.3f}")
for name, flow in flows.items():
    start = time.perf_counter()
    fit_flow(flow)
    nll = -float(tf.reduce_mean(flow.log_prob(x_test)))
    print(f"{name:8s} held-out NLL {nll:.3f}   fit {time.perf_counter() - start:5.1f} s")

# %% [markdown]
# Samples (`flow.sample(n)`: `z ~ N(0, I)` pushed through `f`) on top, the density
# `p(x) = exp(flow.log_prob(x))` on a grid below. Planar and radial steps need many layers to
# bend a Gaussian into two crescents and still smear mass between them; the coupling and
# autoregressive flows separate the moons.

# %%
fig, axes = plt.subplots(2, len(flows), figsize=(3 * len(flows), 6.2), sharex=True, sharey=True)
for column, (name, flow) in enumerate(flows.items()):
    samples = flow.sample(800).numpy()
    density = np.exp(flow.log_prob(grid).numpy()).reshape(GRID, GRID)
    axes[0, column].scatter(*samples.T, s=2, color="tab:blue")
    axes[0, column].set_title(f"{name}: samples")
    axes[1, column].contourf(grid_x, grid_y, density, levels=12, cmap="viridis")
    axes[1, column].set_title(f"{name}: p(x)")
for ax in axes.ravel():
    ax.set(xlim=LIMITS, ylim=LIMITS, aspect="equal")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The bijection and the tail of the base Gaussian (figure 5)
#
# The detector samples surrogate anomalies from the *tail* of the base Gaussian: the points with
# `||z||^2 >= q`, where `q` is the `1 - p` quantile of the chi-squared distribution with `D`
# degrees of freedom, so that the tail holds probability mass `p` (a hyperparameter, here
# `p = 0.05`). `tail_radius_squared(D, p)` computes `q`; `sample_gaussian_tail(n, D, p, seed)`
# draws exactly from the tail, with no rejection loop.
#
# Below, left: base space. Points are coloured by their angle, circles of radius 1 and 2 are
# drawn thin and the tail's boundary `||z|| = sqrt(q)` thick, tail samples in red. Right: the
# same points and circles after the MAF's `forward` map `x = f(z)`, over the training rows in
# grey. The tail's boundary becomes a closed curve around the moons, and tail samples land
# outside it.

# %%
maf = flows["MAF"]
q = tail_radius_squared(2, P_VALUE)
print(f"tail of N(0, I_2) with mass p = {P_VALUE}: ||z||^2 >= q = {q:.3f} (radius {np.sqrt(q):.3f})")

z_bulk = tf.random.stateless_normal((1200, 2), seed=[0, 1]).numpy()
z_tail = sample_gaussian_tail(300, 2, P_VALUE, seed=1).numpy()
angle = np.arctan2(z_bulk[:, 1], z_bulk[:, 0])
circle = np.linspace(0.0, 2.0 * np.pi, 400)
circles = {r: r * np.stack([np.cos(circle), np.sin(circle)], 1).astype(np.float32) for r in (1.0, 2.0, np.sqrt(q))}

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 5))
left.add_patch(plt.Circle((0, 0), 10, color="mistyrose", zorder=0))
left.add_patch(plt.Circle((0, 0), np.sqrt(q), color="white", zorder=0))
right.scatter(*x_shown.T, s=2, color="0.75", zorder=0)
for ax, to_space in ((left, lambda z: z), (right, lambda z: maf.forward(z).numpy())):
    ax.scatter(*to_space(z_bulk).T, s=3, c=angle, cmap="twilight", zorder=1)
    ax.scatter(*to_space(z_tail).T, s=6, color="tab:red", zorder=2, label="tail samples")
    for radius, ring in circles.items():
        bold = radius == np.sqrt(q)
        ax.plot(*to_space(ring).T, color="k", lw=2 if bold else 0.6, zorder=3)
left.set(title="base space z ~ N(0, I); tail shaded", xlim=(-4, 4), ylim=(-4, 4), aspect="equal")
right.set(title="data space x = f(z) (MAF)", xlim=(-4, 4), ylim=(-4, 4), aspect="equal")
left.legend(loc="upper right")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Density distortion and the Jacobian regulariser (figure 6)
#
# The density of a point changes on the way through the flow by the Jacobian's determinant,
# `log p(x) = log p(z) - log|det J(f|z)|` (eq. (13), (39)). Where the flow stretches space
# (`|det J| > 1`) density drops, where it squeezes space density rises. So a point in the
# Gaussian's tail (low `log p(z)`) may land where `p(x)` is high, and a point from the bulk may
# land where `p(x)` is low: tail sampling then misses some anomalies and produces some normal
# points.
#
# The paper's fix is a penalty on non-unit Jacobians, estimated with fresh base samples
# (eq. (40)-(41)):
#
# `L_J = E_{z ~ N(0, I)} [ log|det J(f|z)|^2 ]`,   `max_theta  L_NF - lambda * L_J`.
#
# `Flow(..., jacobian_penalty=lambda)` adds it to the training loss, and `fit` logs `nll`,
# `jacobian_penalty` and their sum `loss`. Below, a MAF with `lambda = 1` beside the one fitted
# above (`lambda = 0`). In each row: the data plane coloured by `log p(z)` of the point's
# pre-image `z = f^{-1}(x)`, then by `log p(x)`, then the two against each other for samples of
# the flow (tail samples in red; the dashed line is `log p(x) = log p(z)`). With the
# regulariser the two maps agree and the tail of `z` is the low-density region of `x`.

# %%
maf_regularised = MAF(2, num_layers=DEEP_LAYERS, hidden_units=(64, 64), jacobian_penalty=LAMBDA, seed=0)
history = fit_flow(maf_regularised)
print("last epoch:", {key: round(values[-1], 3) for key, values in history.items()})
print(f"held-out NLL, lambda = {LAMBDA}: {-float(tf.reduce_mean(maf_regularised.log_prob(x_test))):.3f}")

z_check = tf.random.stateless_normal((4000, 2), seed=[2, 3])
log_pz_tail = -0.5 * q - np.log(2 * np.pi)  # log N(z) on the tail's boundary
fig, axes = plt.subplots(2, 3, figsize=(13, 8.4), layout="constrained")
for row, (label, flow) in enumerate([("lambda = 0", maf), (f"lambda = {LAMBDA:g}", maf_regularised)]):
    log_det = flow.forward_log_det_jacobian(z_check).numpy()
    z_grid = flow.inverse(grid).numpy()
    log_pz = (-0.5 * (z_grid**2).sum(1) - np.log(2 * np.pi)).reshape(GRID, GRID)
    log_px = flow.log_prob(grid).numpy().reshape(GRID, GRID)
    levels = np.linspace(-12, 0, 13)
    for ax, values, title in ((axes[row, 0], log_pz, "log p(z), z = f^-1(x)"), (axes[row, 1], log_px, "log p(x)")):
        mesh = ax.contourf(grid_x, grid_y, np.clip(values, -12, 0), levels=levels, cmap="viridis")
        ax.contour(grid_x, grid_y, log_pz, levels=[log_pz_tail], colors="tab:red", linewidths=1.5)
        ax.set(title=f"{label}: {title}", aspect="equal")
    fig.colorbar(mesh, ax=axes[row, :2], shrink=0.8, label="log density")

    x_samples, log_px_samples = flow.sample_and_log_prob(2000)
    z_samples = flow.inverse(x_samples).numpy()
    log_pz_samples = -0.5 * (z_samples**2).sum(1) - np.log(2 * np.pi)
    in_tail = log_pz_samples <= log_pz_tail
    rho = spearmanr(log_pz_samples, log_px_samples.numpy())[0]
    ax = axes[row, 2]
    ax.scatter(log_pz_samples[~in_tail], log_px_samples.numpy()[~in_tail], s=2, color="tab:blue")
    ax.scatter(log_pz_samples[in_tail], log_px_samples.numpy()[in_tail], s=4, color="tab:red")
    ax.plot([-12, 0], [-12, 0], "k--", lw=1)
    ax.set(xlim=(-12, 0), ylim=(-12, 2), xlabel="log p(z)", ylabel="log p(x)",
           title=f"{label}: Spearman rho {rho:.2f}\nE[log|det J|^2] = {np.mean(log_det**2):.3f}")
plt.show()

# %% [markdown]
# The red contour in the maps is the image of the tail's boundary. Without the regulariser the
# flow trades volume for density freely: stretches of the moons map to `z` of low base density
# and vice versa, and the rank correlation between `log p(z)` and `log p(x)` of the flow's own
# samples is weak. With `lambda = 1` the flow keeps `|det J|` near 1, `log p(x)` follows
# `log p(z)`, and "far in the tail of `z`" means "improbable under the data". The price is some
# likelihood: compare the held-out NLL of the two MAFs printed above.
#
# ## Probability distillation: a fast sampler (eq. (34)-(36))
#
# A MAF scores fast but samples slowly (`D` sequential passes); an IAF is the other way round.
# The detector therefore fits a MAF teacher to the data and then a fresh IAF student to the
# teacher, with no data at all: the student samples `x ~ P_S` with `log P_S(x)` in one pass, the
# frozen teacher scores them, and the student descends
#
# `KL(P_S || P_T) = E_{x ~ P_S} [ log P_S(x) - log P_T(x) ]`  (eq. (34)).
#
# `Distiller(teacher, student)` is that trainer; `distillation_steps(n)` is an empty dataset of
# `n` steps for its `fit`.

# %%
student = IAF(2, num_layers=DEEP_LAYERS, hidden_units=(64, 64), seed=1)
distiller = Distiller(maf_regularised, student, batch_size=256)
distiller.compile(optimizer=keras.optimizers.Adam(3e-3))
maf_regularised.trainable = False  # the teacher is frozen
kl = distiller.fit(distillation_steps(100), epochs=DISTILLATION_EPOCHS, verbose=0).history["kl"]
maf_regularised.trainable = True
for name, flow in (("teacher (MAF)", maf_regularised), ("student (IAF)", student)):
    print(f"held-out NLL of the {name}: {-float(tf.reduce_mean(flow.log_prob(x_test))):.3f}")

fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
left.plot(np.arange(1, len(kl) + 1) * 100, kl, marker="o")
left.set(xlabel="distillation step", ylabel="KL(P_S || P_T), epoch mean", title="distillation")
right.scatter(*x_shown.T, s=2, color="0.75")
right.scatter(*student.sample(1000).numpy().T, s=2, color="tab:blue")
right.set(xlim=LIMITS, ylim=LIMITS, aspect="equal", title="student samples over training rows")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Surrogate anomalies from the tail (figure 7)
#
# The detector's surrogate anomalies are `x = f(z)` with `z` drawn from the base Gaussian's tail
# (`sample_gaussian_tail`) and `f` the sampler flow's `forward` map (the distilled IAF). Ideally
# they fall where normal data is rare. To check this without trusting any of the flows, a kernel
# density estimate of the training rows serves as referee: a surrogate counts as *inside the
# data* when the estimate there is higher than at 95% of the held-out normal rows. The same tail
# draws go through the unregularised MAF, the regularised MAF and its distilled IAF student.

# %%
referee = KernelDensity(bandwidth=0.15).fit(x_train)
dense = np.quantile(referee.score_samples(x_test), 0.05)  # 95% of normal rows are denser
z_tail = sample_gaussian_tail(1000, 2, P_VALUE, seed=3)
samplers = {
    "MAF, lambda = 0": maf,
    f"MAF, lambda = {LAMBDA:g}": maf_regularised,
    f"IAF distilled from the lambda = {LAMBDA:g} MAF": student,
}
fig, axes = plt.subplots(1, 3, figsize=(14, 5))
for ax, (label, sampler) in zip(axes, samplers.items(), strict=True):
    surrogates = sampler.forward(z_tail).numpy()
    inside = referee.score_samples(surrogates) > dense
    ax.scatter(*x_shown.T, s=2, color="0.6", label="normal rows")
    ax.scatter(*surrogates[~inside].T, s=4, color="tab:red", label="surrogates")
    ax.scatter(*surrogates[inside].T, s=12, color="tab:orange", marker="x", label="surrogates inside the data")
    ax.set(xlim=(-4, 4), ylim=(-4, 4), aspect="equal", title=f"{label}\n{inside.mean():.1%} of surrogates inside the data")
fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=3, markerscale=2)
fig.tight_layout(rect=(0, 0.06, 1, 1))
plt.show()

# %% [markdown]
# ### A classifier on normal rows and surrogates (eq. (6))
#
# The last step trains any classifier `f(x) ~ P(C+ | x)` with the (1 + eps)-class loss
#
# `L = 1/2 ( L+ + gamma L- + (1 - eps) L0 )`,  `L+ = -E_{C+} log f`, `L- = -E_{C-} log(1 - f)`,
# `L0 = -E_{surrogates} log(1 - f)`  (eq. (6)),
#
# on normal rows, known anomalies (none here: the one-class case, `L- = 0`) and surrogates that
# `TailSampler` draws afresh at every step. `OnePlusEpsTrainer` implements it; `NFADetector`
# (notebook 02) runs the whole chain. Below, `f(x)` after training with surrogates from each of
# the two samplers; the dashed contour is `f = 1/2`.

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), layout="constrained")
for ax, (label, sampler_flow) in zip(axes, [("MAF, lambda = 0", maf), (f"IAF distilled from the lambda = {LAMBDA:g} MAF", student)], strict=True):
    keras.utils.set_random_seed(0)
    classifier = make_mlp(2, (64, 64))
    trainer = OnePlusEpsTrainer(classifier, TailSampler(sampler_flow, P_VALUE, seed=0), gamma=1.0, eps=0.05)
    trainer.compile(optimizer=keras.optimizers.Adam(3e-3))
    # One endless stream of batches; an epoch is one pass over the normal rows.
    trainer.fit(make_classifier_dataset(x_train, None, batch_size=256, seed=0), epochs=CLASSIFIER_EPOCHS,
                steps_per_epoch=steps_per_pass(len(x_train), 256), verbose=0)
    p_normal = tf.sigmoid(classifier(grid)[:, 0]).numpy().reshape(GRID, GRID)
    false_alarms = np.mean(tf.sigmoid(classifier(x_test)[:, 0]).numpy() < 0.5)
    mesh = ax.contourf(grid_x, grid_y, p_normal, levels=np.linspace(0, 1, 11), cmap="RdYlBu")
    ax.contour(grid_x, grid_y, p_normal, levels=[0.5], colors="k", linestyles="--")
    ax.scatter(*x_shown.T, s=1, color="k", alpha=0.3)
    ax.set(xlim=LIMITS, ylim=LIMITS, aspect="equal",
           title=f"surrogates from the {label}\n{false_alarms:.1%} of held-out normal rows have f < 1/2")
fig.colorbar(mesh, ax=axes, shrink=0.8, label="f(x) = P(normal | x)")
plt.show()

# %% [markdown]
# Where surrogates fall on the data (the unregularised flow), the classifier learns to reject
# parts of the normal class and raises false alarms there. Surrogates from the regularised flow
# form a shell around the data, and the classifier draws a closed boundary around the moons.
# Inside the shell, for instance in the gap between the moons, no surrogate falls and the
# classifier extrapolates as it likes. That is why `NFADetector` also draws half of its
# surrogates uniformly from the data's bounding box (`surrogate_box_share`, as in the original
# (1 + eps)-class method) and, by default, adds the flow's own `-log p(x)` to the classifier's
# score (`score_kind="combined"`).
#
# Next: `02_kdd99_quickstart.ipynb` runs the whole method on network-intrusion data.
