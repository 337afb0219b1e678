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
# # 02 · KDD-99 quickstart: `NFADetector`
#
# `NFADetector` runs the paper's Algorithm 1 on a table:
#
# 1. fit a MAF to the normal rows by maximum likelihood with the Jacobian regulariser,
#    `max L_NF - lambda L_J` (eq. (39)-(41));
# 2. distil it into an IAF, `min KL(P_IAF || P_MAF)` (eq. (34));
# 3. draw surrogate anomalies from the tail of the base Gaussian through the IAF (section 3.1);
# 4. train a classifier with the (1 + eps)-class loss (eq. (6)) on normal rows, known anomalies
#    and surrogates.
#
# This notebook fits it to the KDD Cup 1999 network-intrusion data that ships with the package,
# once with no labelled attacks (one-class) and once with two known attack classes, and looks at
# the training curves, ROC curves, the choice of a threshold and the surrogate anomalies.
#
# With `TFP_FLOWAD_NOTEBOOK_SMALL=1` (set by the test suite) it trains on a few thousand rows
# for a step or two; unset, it uses all rows and the detector's defaults (a few minutes).

# %%
import os
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TensorFlow's start-up chatter

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import tensorflow as tf
from matplotlib.ticker import MaxNLocator
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score, roc_curve

from tfp_flowad import NFADetector
from tfp_flowad.datasets import kdd99_tasks, load_kdd99
from tfp_flowad.sampling import sample_gaussian_tail

SMALL = os.environ.get("TFP_FLOWAD_NOTEBOOK_SMALL") == "1"
# Full size: the detector's defaults. Small: a smoke test of the same steps with tiny fits.
FIT_ARGS = (
    dict(flow_layers=2, flow_epochs=1, flow_min_steps=1, distillation_steps=20,
         classifier_epochs=1, classifier_min_steps=1)
    if SMALL
    else {}
)
N_NORMAL_TRAIN = 5000 if SMALL else None  # normal training rows (None: all)
N_TEST = 8000 if SMALL else None  # test rows (None: all)

warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")
tf.get_logger().setLevel("ERROR")  # switching `score_kind` retraces the scoring function; TF warns
# %matplotlib inline
plt.rcParams.update({"figure.dpi": 80, "savefig.dpi": 80, "axes.titlesize": 11})
print(f"SMALL={SMALL}")

# %% [markdown]
# ## The data
#
# `load_kdd99()` reads the 10% training file of KDD Cup 1999 that is installed with the package:
# 41 columns (38 numeric, `protocol_type`, `service` and `flag` categorical) and a label,
# `normal` or one of 22 attack types. Exact duplicate rows are dropped, as the benchmark's
# protocol asks (`docs/BENCHMARK.md`).

# %%
X, labels = load_kdd99()
print(f"{X.shape[0]} rows, {X.shape[1]} columns")
print(labels.value_counts().to_string())
X.head(3)

# %% [markdown]
# `kdd99_tasks(seed, ks)` builds the protocol's train / test splits: 80% of the normal rows train
# and 20% test; each attack class goes half to a "known pool" and half to the test. Task `k`
# trains on the training normals plus the pools of `k` randomly chosen attack classes (`y = 1`
# marks them); the test always holds every attack class. `extra_tests["unseen"]` is the test
# without the rows of the known classes, to measure detection of attack types the detector never
# saw (below, a mask over the test rows picks the same rows).

# %%
one_class, known = kdd99_tasks(seed=0, ks=(0, 2))
print(f"known attack classes of task {known.name!r}: {known.known_classes}")


def training_rows(task):
    # All training rows, or (small size) the first N_NORMAL_TRAIN normal rows and every known anomaly.
    if N_NORMAL_TRAIN is None:
        return task.X_train, task.y_train
    keep = np.sort(np.concatenate([np.flatnonzero(task.y_train == 0)[:N_NORMAL_TRAIN], np.flatnonzero(task.y_train == 1)]))
    return task.X_train.iloc[keep], task.y_train[keep]


X_test, y_test = known.X_test[:N_TEST], known.y_test[:N_TEST]  # the same test set for both tasks
test_labels = labels.loc[X_test.index].to_numpy()  # attack names, for the plots
for task in (one_class, known):
    X_fit, y_fit = training_rows(task)
    print(f"{task.name:9s} train: {int((y_fit == 0).sum())} normal + {int(y_fit.sum())} known anomalies")
print(f"test: {int((y_test == 0).sum())} normal + {int(y_test.sum())} attacks")

# %% [markdown]
# ## Fitting
#
# `fit(X, y)` takes the raw table: a `TabularEncoder` learned from the normal training rows
# scales the numeric columns (with `log1p` for heavy-tailed counts) and one-hot encodes the
# categorical ones, and travels with the model. `y = 1` marks known anomalies; `y=None` (or all
# zeros) is the one-class case. The stages' Keras histories land in `history_` and their wall
# times in `fit_seconds_`.

# %%
detectors = {}
for task in (one_class, known):
    X_fit, y_fit = training_rows(task)
    detectors[task.name] = NFADetector(random_state=0, **FIT_ARGS).fit(X_fit, y_fit)
    seconds = {stage: round(value, 1) for stage, value in detectors[task.name].fit_seconds_.items()}
    print(f"{task.name:9s} fit seconds per stage: {seconds}")
detector = detectors[known.name]
print(f"{detector.encoder_.output_dim} features after encoding")
print(f"{known.name}: density weight scaled by {detector.density_scale_:g}, chosen on held-out known anomalies "
      f"(ROC AUC per candidate: { {k: round(v, 4) for k, v in (detector.density_scale_aucs_ or {}).items()} })")
print(f"{known.name}: classifier kept: {detector.classifier_model_} "
      f"(held-out ROC AUC with and without the trees: {detector.classifier_model_aucs_})")

# %% [markdown]
# ## Training curves
#
# `history_` holds one Keras history per stage:
#
# * `"flow"`: `nll` (`-L_NF`), `jacobian_penalty` (the estimate of `L_J`, eq. (40)) and
#   `loss = nll + lambda * jacobian_penalty` per epoch, with `val_` twins on the 10% of normal rows
#   held out for early stopping;
# * `"distillation"`: the mean `kl` of eq. (34) over its steps (one epoch of `distillation_steps`
#   steps, so a single value);
# * `"classifier"`: `loss` of eq. (6) and its terms `normal` (`L+`), `anomaly` (`L-`, zero in
#   the one-class case) and `surrogate` (`L0`), each a mean over the batch. With
#   at least `selection_min_known` known anomalies (20 by default) a second MLP trains in
#   the same steps without a fifth of the known anomalies, and its terms are in the means too;
#   those held-out rows choose the density's weight in the combined score (`density_scale_`,
#   with the held-out ROC AUC of each candidate in `density_scale_aucs_`; `fit_seconds_` times
#   that choice as `"weight_selection"`). With known anomalies the default classifier also
#   has gradient-boosted trees beside the MLP (stage `"boosted_trees"`, no Keras
#   history), kept only if the same held-out rows rank at least as well with them
#   (`classifier_model_`; notebook 04).
#
# The flow stage sees only normal rows, so it is almost the same for both tasks; the tasks
# differ in the classifier stage.
#
# Two things to read in the curves. The training NLL is a mean over an epoch's batches, taken
# while the weights move and on dequantised rows; a few batches with huge NLL dominate it (mind
# the log axis), so early stopping watches the held-out NLL instead and restores the best
# epoch. And the `L_J` estimate grows as the flow fits: with the default
# `flow_jacobian_penalty=1e-3`, `lambda * L_J` is a small share of the loss (compare a
# thousandth of the last `L_J` estimate printed below with the held-out NLL beside it), so the
# flow is free to stretch and squeeze volume in these 70-odd dimensions. A larger
# `flow_jacobian_penalty` holds `L_J` down at some cost in likelihood, as notebook 01 showed
# in 2-D.

# %%
fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
for (name, fitted), style in zip(detectors.items(), ("-", "--"), strict=True):
    flow, classifier = fitted.history_["flow"], fitted.history_["classifier"]
    epochs = np.arange(1, len(flow["nll"]) + 1)
    axes[0].plot(epochs, flow["nll"], style, color="tab:blue", marker="o", label=f"{name}: train")
    axes[0].plot(epochs, flow["val_nll"], style, color="tab:orange", marker="o", label=f"{name}: held out")
    axes[1].plot(epochs, flow["jacobian_penalty"], style, color="tab:green", marker="o", label=name)
    for term, color in (("normal", "tab:blue"), ("anomaly", "tab:red"), ("surrogate", "tab:purple")):
        axes[2].plot(np.arange(1, len(classifier[term]) + 1), classifier[term], style, color=color, marker="o", label=f"{name}: {term}")
    print(f"{name:9s} flow: {len(epochs)} epochs, held-out NLL {min(flow['val_nll']):.1f}, last L_J estimate "
          f"{flow['jacobian_penalty'][-1]:.0f}; distillation: mean KL {fitted.history_['distillation']['kl'][-1]:.2f}")
axes[0].set(title="flow: NLL per row", xlabel="epoch", yscale="log")
axes[1].set(title="flow: L_J estimate", xlabel="epoch")
axes[2].set(title="classifier: terms of eq. (6)", xlabel="epoch")
for ax in axes:
    ax.legend(fontsize=7)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
fig.tight_layout()
plt.show()

# %% [markdown]
# ## ROC curves: which score?
#
# `decision_function(X)` returns one anomaly score per row, higher = more abnormal. The
# `score_kind` attribute picks it (it may be changed after `fit`, everything is fitted either
# way; `anomaly_scores(X)` returns every kind in one pass):
#
# * `"density"`: `-log p(x)` of the regularised MAF;
# * `"classifier"`: `-logit f(x)`, the paper's output, `f(x) ~ P(normal | x)` from eq. (6);
# * `"combined"` (the default): the density, the distance to the nearest of the normal
#   training rows kept as references (`neighbour_rows`, 4096) and a softplus of the
#   classifier, each first scaled by its median and interquartile range on the normal training
#   rows (details below);
# * `"student"`: the logit of one small network fitted, at the end of `fit`, to rank rows like
#   the combined score (`student_steps`): what a SavedModel should serve when it must score
#   many rows a second (notebook 03).
#
# Below, ROC curves on the whole test set (false-positive rate on a log axis, since a detector
# is used at low false-alarm rates) and ROC AUC on all attacks and on the attack types unseen in
# training.

# %%
unseen = ~np.isin(test_labels, known.known_classes)  # normal rows and the attack types not known to task k=2
rows, scores = [], {}
fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharey=True)
for ax, (name, fitted) in zip(axes, detectors.items(), strict=True):
    for kind, color in (("density", "tab:blue"), ("classifier", "tab:red"), ("student", "tab:green"), ("combined", "k")):
        fitted.score_kind = kind
        scores[name, kind] = fitted.decision_function(X_test)
        auc = roc_auc_score(y_test, scores[name, kind])
        rows.append({"task": name, "score": kind, "ROC AUC, all attacks": auc, "ROC AUC, unseen attack types": roc_auc_score(y_test[unseen], scores[name, kind][unseen])})
        fpr, tpr, _ = roc_curve(y_test, scores[name, kind])
        ax.plot(fpr, tpr, color=color, label=f"{kind} (AUC {auc:.4f})")
    fitted.score_kind = "combined"
    ax.set(xscale="log", xlim=(1e-4, 1), ylim=(0, 1.01), xlabel="false-positive rate", title=f"task {name}")
    ax.legend(loc="lower right")
axes[0].set_ylabel("true-positive rate")
fig.tight_layout()
plt.show()
pd.DataFrame(rows).round(4)

# %% [markdown]
# How to read the four scores (these are single fits, and the figures move between seeds;
# `docs/RESULTS.md` gives each score's mean and spread over five seeds of the benchmark):
#
# * **`density`** ranks nearly every attack above the normal rows: most attack rows get a
#   log-density far below that of any normal row.
# * **`classifier`** alone is the weak part. It learns "anomaly" only where it saw surrogates or
#   known anomalies. Most test attacks here are `neptune` (see the label counts above), which
#   lie where neither fell, and there the classifier extrapolates as it likes: in some fits it
#   calls many of them normal, most often when it trained on a handful of known rows, and
#   one-class, trained on surrogates alone, it is the least steady score between seeds. With
#   known anomalies its weights are the average of its last training steps
#   (`classifier_averaging`), which steadies that guess.
# * **`combined`** (the default) is `w_d z_density + w_n z_neighbour + w_c softplus(z_classifier)`
#   on scores standardised on the normal training rows, `neighbour` being the distance to the
#   nearest reference normal row (`neighbour_rows`). The flow smooths over the gaps between tight
#   clusters of normal rows, and some attack types sit in those gaps (`warezclient`, `nmap`,
#   `pod`); the distance to real normal rows does not smooth. The density and the neighbour term
#   share one weight (`w_d`, `w_n`: half each, times their own separation of the known
#   anomalies); the softplus lets the classifier raise a row's score but hardly lower it, so
#   where it wrongly calls an attack type normal the distances still decide; `w_c`
#   (`combined_classifier_weight`) is 0.25 one-class and 1 with known anomalies. On KDD-99 the
#   neighbour term raises its ROC AUC in every task (`nf-no-neighbours` in the KDD-99 table of
#   `docs/RESULTS.md` leaves it out).
# * **`student`** follows the combined score closely (compare their rows in the table) for a
#   fraction of its cost: it is one network of the classifier's shape, taught on normal
#   rows, surrogates, known anomalies and normal rows pushed off in random directions, with a
#   sigmoid of the combined score (centred at the normal rows' 99th percentile) as soft labels.

# %% [markdown]
# ## Choosing a threshold
#
# `predict(X)` says 1 where the score exceeds `threshold_`, which `fit` sets to the
# `1 - contamination` quantile of the training rows' scores (`contamination=0.01` by default).
# With known anomalies among the training rows that mixes two things. A clearer rule is a target
# false-alarm rate on normal rows: take the `1 - rate` quantile of the normal training rows'
# scores (`decision_scores_` holds the training scores) and assign it to `threshold_`. The
# training rows are the ones the flow was fitted to, so the realised rate on new normal rows can
# come out a little higher than the target.

# %%
X_fit, y_fit = training_rows(known)
normal_train_scores = detector.decision_scores_[y_fit == 0]
test_scores = scores[known.name, "combined"]
rows = [{"threshold": "threshold_ from contamination", "value": detector.threshold_}]
for rate in (0.001, 0.01, 0.05):
    rows.append({"threshold": f"{rate:.1%} of normal training rows above", "value": np.quantile(normal_train_scores, 1 - rate)})
for row in rows:
    flagged = test_scores > row["value"]
    row["false-positive rate (test)"] = flagged[y_test == 0].mean()
    row["recall, all attacks"] = flagged[y_test == 1].mean()
    row["recall, unseen types"] = flagged[(y_test == 1) & unseen].mean()
thresholds = pd.DataFrame(rows).set_index("threshold")

fig, ax = plt.subplots(figsize=(10, 3.8))
bins = np.linspace(*np.quantile(test_scores, [0.0, 0.999]), 120)
ax.hist(test_scores[y_test == 0], bins=bins, alpha=0.6, label="normal test rows", color="tab:blue")
ax.hist(test_scores[y_test == 1], bins=bins, alpha=0.6, label="attack test rows", color="tab:red")
for (name, row), style in zip(thresholds.iterrows(), (":", "--", "-", "-."), strict=True):
    ax.axvline(row["value"], color="k", linestyle=style, label=name)
ax.set(yscale="log", xlabel="combined anomaly score", ylabel="rows", title=f"task {known.name}: test scores")
ax.legend(fontsize=8)
plt.show()
thresholds.round(4)

# %%
# Use the 1% rule from here on; predict() now flags rows above it.
detector.threshold_ = float(thresholds["value"].iloc[2])
flags = detector.predict(X_test)
pd.crosstab(pd.Series(y_test, name="true (1 = attack)"), pd.Series(flags, name="predicted"))

# %% [markdown]
# ## Surrogate anomalies next to real attacks
#
# The classifier never saw most attack types; what it saw as "anomaly" were surrogates: `z`
# from the tail of `N(0, I_D)` with mass `surrogate_tail_p_value`, pushed through the distilled
# IAF (`sampler_flow_.forward`), then rounded back onto the grid of the discrete columns
# (`encoder_.requantise`, so that integers and one-hot columns look like real rows). Half of the
# classifier's surrogates come from this tail and half uniformly from the bounding box of the
# normal rows (`surrogate_box_share=0.5`); below are the tail ones, drawn here the same way.
#
# The picture is a 2-D PCA of the encoded features (`encoder_.transform`), fitted on the normal
# training rows. It squeezes the 70-odd encoded dimensions into two, so closeness on the plane
# does not mean closeness in feature space; the log-densities printed below it tell the rest.

# %%
encoder = detector.encoder_
normal_features = encoder.transform(X_fit[y_fit == 0])
test_features = encoder.transform(X_test)
z_tail = sample_gaussian_tail(2000, encoder.output_dim, detector.surrogate_tail_p_value, seed=0)
surrogates = encoder.requantise(detector.sampler_flow_.forward(z_tail)).numpy()

pca = PCA(2, random_state=0).fit(normal_features)
projected = {"normal test rows": pca.transform(test_features[y_test == 0]), "surrogates": pca.transform(surrogates)}
attack_types = pd.Series(test_labels[y_test == 1]).value_counts().index[:6]
for attack in attack_types:
    projected[attack] = pca.transform(test_features[test_labels == attack])

everything = np.concatenate(list(projected.values()))
low, high = np.quantile(everything, [0.005, 0.995], axis=0)
pad = 0.1 * (high - low)
fig, axes = plt.subplots(1, 2, figsize=(13, 5.5), sharex=True, sharey=True)
for ax in axes:
    ax.scatter(*projected["normal test rows"].T, s=3, color="0.7", label="normal test rows")
for attack, color in zip(attack_types, plt.cm.tab10.colors, strict=False):
    marker = "^" if attack in known.known_classes else "o"
    axes[0].scatter(*projected[attack].T, s=8, color=color, marker=marker, label=attack + (" (known)" if attack in known.known_classes else ""))
axes[1].scatter(*projected["surrogates"].T, s=6, color="k", marker="x", label="tail surrogates")
axes[0].set(title="real attacks (six largest test classes)", xlim=(low[0] - pad[0], high[0] + pad[0]), ylim=(low[1] - pad[1], high[1] + pad[1]))
axes[1].set(title=f"surrogates from the tail, p = {detector.surrogate_tail_p_value}")
for ax in axes:
    ax.set(xlabel="PC 1", ylabel="PC 2")
    ax.legend(fontsize=8, markerscale=2)
fig.tight_layout()
plt.show()

log_density = {
    "normal test rows": detector.flow_.log_prob(test_features[y_test == 0]).numpy(),
    "attack test rows": detector.flow_.log_prob(test_features[y_test == 1]).numpy(),
    "tail surrogates": detector.flow_.log_prob(surrogates).numpy(),
}
pd.DataFrame({name: np.quantile(values, [0.05, 0.5, 0.95]) for name, values in log_density.items()}, index=["5%", "median", "95%"]).T.round(1).rename_axis("log p(x) under the MAF")

# %% [markdown]
# The tail surrogates form a cloud around the bulk of the normal rows. Their log-density under
# the MAF lies below that of the least likely normal rows (the surrogates' 95% column against
# the normal rows' 5% column): past the edge of the normal class, which is where tail sampling
# aims. Most real attacks lie much further out (compare the medians), and in directions the
# surrogates do not reach. So the classifier learns a boundary between the normal rows and a
# nearby shell, and its verdict on far-away attacks is an extrapolation (its ROC curve above),
# while the flow's density keeps falling the further out a row lies. Half of the classifier's
# surrogates come uniformly from the bounding box for that reason, and the default `combined`
# score keeps the density in the decision.
#
# Next: `03_serving.ipynb` exports a detector as a SavedModel and serves it.
