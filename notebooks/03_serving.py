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
# # 03 · Serving a detector with TensorFlow Serving
#
# A fitted `NFADetector` exports to a SavedModel whose `serving_default` signature takes the
# *raw* columns by name (`float32` for numeric columns, `string` for categorical ones, each of
# shape `[batch]`) and returns `anomaly_score` (higher = more abnormal) and `is_anomaly`
# (`anomaly_score > threshold_`). The encoder (scaling, `log1p`, one-hot), the flow and the
# classifier are inside, with the weights frozen into constants, so a client sends records as
# they come.
#
# This notebook fits a detector, exports it, reads the signature with `saved_model_cli`, scores
# raw records in a fresh Python process, and builds the request bodies of TF Serving's REST and
# gRPC APIs. TF Serving itself cannot run here; the commands to start it come at the end.
#
# With `TFP_FLOWAD_NOTEBOOK_SMALL=1` (set by the test suite) the detector is fitted on a few
# thousand rows for a step or two.

# %%
import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TensorFlow's start-up chatter

import numpy as np
import tensorflow as tf

from tfp_flowad import NFADetector
from tfp_flowad.datasets import kdd99_tasks

SMALL = os.environ.get("TFP_FLOWAD_NOTEBOOK_SMALL") == "1"
# Full size: the detector's defaults. Small: a smoke test of the same steps with tiny fits.
FIT_ARGS = (
    dict(flow_layers=2, flow_epochs=1, flow_min_steps=1, distillation_steps=20,
         classifier_epochs=1, classifier_min_steps=1)
    if SMALL
    else {}
)
N_NORMAL_TRAIN = 5000 if SMALL else None  # normal training rows (None: all)
MODEL_NAME = "kdd99"
WORK = Path(tempfile.mkdtemp(prefix="tfp_flowad_serving_"))  # scratch space, not the repository
CLI = Path(sys.executable).with_name("saved_model_cli")  # installed with tensorflow

warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")
tf.get_logger().setLevel("WARNING")  # no INFO line per saved asset
print(f"SMALL={SMALL}")

# %% [markdown]
# ## Fit and export
#
# A detector on KDD-99 with one known attack class (notebook 02 explains the data and the
# fit). `export_saved_model(base)` writes `base/<version>/` atomically, the next free integer
# version by default: the layout TF Serving watches, serving the highest version it finds. In a
# project you would export to `saved_models/kdd99`; here it goes to a scratch directory.

# %%
task = kdd99_tasks(seed=0, ks=(1,))[0]
X_fit, y_fit = task.X_train, task.y_train
if N_NORMAL_TRAIN is not None:
    keep = np.sort(np.concatenate([np.flatnonzero(y_fit == 0)[:N_NORMAL_TRAIN], np.flatnonzero(y_fit == 1)]))
    X_fit, y_fit = X_fit.iloc[keep], y_fit[keep]
detector = NFADetector(random_state=0, **FIT_ARGS).fit(X_fit, y_fit)
print(f"fitted on {len(X_fit)} rows ({int(y_fit.sum())} known {task.known_classes[0]!r} attacks); "
      f"score_kind={detector.score_kind!r}, threshold_={detector.threshold_:.3f}")

version_dir = detector.export_saved_model(WORK / MODEL_NAME)
for path in sorted(version_dir.rglob("*")):
    print(path.relative_to(WORK))


# %% [markdown]
# ## Read the signature: `saved_model_cli show`
#
# `saved_model_cli` comes with TensorFlow. `show --all` prints every signature and the saved
# functions; the part a client needs is `serving_default`: one input per raw column with its
# dtype, and the two outputs.

# %%
def run(*command):
    # Runs a command line tool and returns its standard output (TensorFlow logs go to stderr).
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} failed with status {result.returncode}:\n{result.stderr[-4000:]}")
    return result.stdout


print(f"$ saved_model_cli show --dir {version_dir.relative_to(WORK)} --tag_set serve --signature_def serving_default")
print(run(CLI, "show", "--dir", version_dir, "--tag_set", "serve", "--signature_def", "serving_default"))

# %% [markdown]
# `saved_model_cli run` feeds the signature from the command line. Here three raw test records,
# one Python list per input:

# %%
records = task.X_test.iloc[:3]
categorical = set(detector.encoder_.categorical_columns)
input_exprs = ";".join(
    f"{name}={[str(v) for v in records[name]] if name in categorical else [float(v) for v in records[name]]}"
    for name in records.columns
)
print(f"$ saved_model_cli run --dir {version_dir.relative_to(WORK)} --tag_set serve --signature_def serving_default \\\n"
      f"    --input_exprs \"{input_exprs[:100]}...\"")
print(run(CLI, "run", "--dir", version_dir, "--tag_set", "serve", "--signature_def", "serving_default", "--input_exprs", input_exprs))
print(f"true labels of the three records (1 = attack): {task.y_test[:3].tolist()}")

# %% [markdown]
# ## Score raw records in a fresh process
#
# A client needs TensorFlow and the SavedModel, nothing from `tfp_flowad`. The script below runs
# in a new Python process: it loads the model with `tf.saved_model.load`, reads raw records from
# a JSON file (as a service would receive them) and feeds each column as a tensor of the
# signature's dtype.

# %%
CLIENT = """
import json
import sys

import tensorflow as tf

serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
records = json.load(open(sys.argv[2]))
inputs = {
    name: tf.constant([record[name] for record in records], dtype=spec.dtype)
    for name, spec in serve.structured_input_signature[1].items()
}
outputs = serve(**inputs)
print(json.dumps({name: value.numpy().tolist() for name, value in outputs.items()}))
"""
(WORK / "score_records.py").write_text(CLIENT)
rows = task.X_test.iloc[:200]
raw_records = json.loads(rows.to_json(orient="records"))
(WORK / "records.json").write_text(json.dumps(raw_records))
print(f"first record: {raw_records[0]}")

result = json.loads(run(sys.executable, WORK / "score_records.py", version_dir, WORK / "records.json"))
fresh_scores = np.array(result["anomaly_score"])
print(f"anomaly_score of the first 5 records (fresh process): {np.round(fresh_scores[:5], 3).tolist()}")
print(f"largest difference from detector.decision_function: {np.max(np.abs(fresh_scores - detector.decision_function(rows))):.1e}")
print(f"is_anomaly equals detector.predict: {np.array_equal(result['is_anomaly'], detector.predict(rows) == 1)}")

# %% [markdown]
# ## The REST request body
#
# TF Serving's REST API takes `POST /v1/models/<name>:predict` with a JSON body. In the *row*
# format, `"instances"` is a list with one object per record, holding every named input of the
# signature; numbers are JSON numbers and strings JSON strings. The answer comes back in the
# same shape, `{"predictions": [{"anomaly_score": ..., "is_anomaly": ...}, ...]}`. (The
# *columnar* format, `{"inputs": {"duration": [...], ...}}`, is the other choice.)
#
# The raw records above are already in that form. To check the body against the signature
# without a server, the cell feeds it to the loaded model the way the server does: one tensor
# per input, batched over the instances.

# %%
body = {"signature_name": "serving_default", "instances": raw_records[:3]}
(WORK / "request.json").write_text(json.dumps(body))
print(json.dumps({"signature_name": body["signature_name"], "instances": body["instances"][:1]}))

serve = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
input_specs = serve.structured_input_signature[1]
outputs = serve(**{
    name: tf.constant([instance[name] for instance in body["instances"]], spec.dtype)
    for name, spec in input_specs.items()
})
predictions = [
    {"anomaly_score": round(float(score), 4), "is_anomaly": bool(flag)}
    for score, flag in zip(outputs["anomaly_score"].numpy(), outputs["is_anomaly"].numpy(), strict=True)
]
print("\nthe answer TF Serving would send:", json.dumps({"predictions": predictions}))

# %% [markdown]
# ## The gRPC `PredictRequest`
#
# The gRPC API (port 8500) takes a `tensorflow.serving.PredictRequest`: the model's name, the
# signature's name and a map from input name to `TensorProto`. `tf.make_tensor_proto` builds the
# tensors; the request message comes from the `tensorflow-serving-api` package (in
# `requirements.txt`, the release that matches TensorFlow 2.21). The cell serialises the request,
# parses the bytes back as the server does, decodes the tensors with `tf.make_ndarray` and scores
# them.

# %%
from tensorflow_serving.apis import predict_pb2

tensor_protos = {
    name: tf.make_tensor_proto(
        [str(v) for v in records[name]] if spec.dtype == tf.string else records[name].to_numpy(np.float32),
        dtype=spec.dtype,
    )
    for name, spec in input_specs.items()
}

request = predict_pb2.PredictRequest()
request.model_spec.name = MODEL_NAME
request.model_spec.signature_name = "serving_default"
for name, proto in tensor_protos.items():
    request.inputs[name].CopyFrom(proto)
wire = request.SerializeToString()  # the bytes a gRPC client sends to port 8500
print(f"PredictRequest for model {request.model_spec.name!r}: {len(request.inputs)} inputs, {len(wire)} bytes serialised")
print("inputs['service']:", request.inputs["service"], "inputs['src_bytes']:", request.inputs["src_bytes"], sep="\n")

received = predict_pb2.PredictRequest.FromString(wire)  # what the server parses
decoded = serve(**{name: tf.constant(tf.make_ndarray(proto)) for name, proto in received.inputs.items()})
print("scores of the decoded request:", decoded["anomaly_score"].numpy())
print("same as from the REST body:", np.allclose(decoded["anomaly_score"].numpy(), outputs["anomaly_score"].numpy()))

# %% [markdown]
# A client sends it with the generated stub:
#
# ```python
# import grpc
# from tensorflow_serving.apis import prediction_service_pb2_grpc
#
# stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel("localhost:8500"))
# response = stub.Predict(request, timeout=10.0)
# scores = tf.make_ndarray(response.outputs["anomaly_score"])
# flags = tf.make_ndarray(response.outputs["is_anomaly"])
# ```

# %% [markdown]
# ## Which score to serve
#
# The export computes the detector's `score_kind`. The default, `"combined"`, runs the flow,
# the distances to the reference rows (`neighbour_rows`, 4096) and the classifier for
# every row; `"student"` runs one small network fitted at the end of `fit` to rank rows like
# the combined score. The cell exports the student as version 2 (TF Serving serves the highest
# version) and times both SavedModels on the same raw rows with `served_rows_per_second`
# (after a warm-up call), beside each score's ROC AUC on the test set.

# %%
from sklearn.metrics import roc_auc_score

from tfp_flowad.export import served_rows_per_second

BATCH_ROWS, SERVED_ROWS = (20_000, 100_000) if SMALL else (250_000, 1_000_000)
batch = detector.encoder_.to_tensors(task.X_test.sample(BATCH_ROWS, replace=True, random_state=0))
detector.score_kind = "student"
student_dir = detector.export_saved_model(WORK / MODEL_NAME)  # the next version: 2
for kind, path in (("combined", version_dir), ("student", student_dir)):
    detector.score_kind = kind
    rate = served_rows_per_second(path, batch, rows=SERVED_ROWS)
    auc = roc_auc_score(task.y_test, detector.decision_function(task.X_test))
    print(f"{kind:9s} {path.relative_to(WORK)}: {rate:>12,.0f} rows/s, test ROC AUC {auc:.4f}")
detector.score_kind = "combined"

# %% [markdown]
# ## Serving it
#
# Export into the directory the server watches, then start TF Serving on it (neither command
# runs in this notebook). The model base path must be absolute; TF Serving loads the highest
# version directory and switches to a new one when it appears (export again to add `2/`). Use a
# TF Serving release at least as new as the TensorFlow that wrote the model (2.21 here).
#
# ```python
# detector.score_kind = "student"  # or keep "combined", the slower, exact score
# detector.export_saved_model("saved_models/kdd99")  # writes saved_models/kdd99/1/
# ```
#
# ```bash
# # Docker: gRPC on 8500, REST on 8501
# docker run --rm -p 8500:8500 -p 8501:8501 \
#   --mount type=bind,source="$PWD/saved_models/kdd99",target=/models/kdd99 \
#   -e MODEL_NAME=kdd99 -t tensorflow/serving
#
# # or the server binary
# tensorflow_model_server --port=8500 --rest_api_port=8501 \
#   --model_name=kdd99 --model_base_path="$PWD/saved_models/kdd99"
#
# # check it, then score the body written above
# curl localhost:8501/v1/models/kdd99             # version status
# curl localhost:8501/v1/models/kdd99/metadata    # the signature, as saved_model_cli shows it
# curl -X POST -d @request.json localhost:8501/v1/models/kdd99:predict
# ```
#
# The export fixes the detector's `score_kind` and `threshold_` at export time; to serve another
# score or threshold, change the attribute and export a new version.
