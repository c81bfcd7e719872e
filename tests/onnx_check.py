"""Checks an ONNX file `lenet export --format onnx` wrote, in ONNX Runtime, against Burn.

    python tests/onnx_check.py MODEL.onnx BURN_LOGITS.f32 MNIST_DIR

BURN_LOGITS.f32 holds Burn's logits on the 10,000 MNIST test images, little-endian f32,
[10000, classes]. Prints one JSON line: onnx.checker's verdict, the largest difference between
the runtime's logits and Burn's, the runtime's correct answers, and how far the probabilities
output is from summing to 1. tests/onnx.rs runs it; it asserts nothing itself.
"""

import gzip
import json
import sys

import numpy as np
import onnx
import onnxruntime


def read_idx(path):
    with gzip.open(path) if path.endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def find(folder, name):
    for candidate in (f"{folder}/{name}.gz", f"{folder}/{name}"):
        try:
            open(candidate, "rb").close()
            return candidate
        except OSError:
            pass
    raise SystemExit(f"{folder}: no {name}")


model_path, logits_path, mnist = sys.argv[1:4]
onnx.checker.check_model(model_path, full_check=True)
images = read_idx(find(mnist, "t10k-images-idx3-ubyte")).astype(np.float32) / 255.0
labels = read_idx(find(mnist, "t10k-labels-idx1-ubyte"))
session = onnxruntime.InferenceSession(model_path, providers=["CPUExecutionProvider"])
outputs = [o.name for o in session.get_outputs()]
logits, probabilities = [], []
for start in range(0, len(images), 1000):
    batch = images[start : start + 1000, None, :, :]
    answer = dict(zip(outputs, session.run(outputs, {"pixels": batch})))
    logits.append(answer["logits"])
    if "probabilities" in answer:
        probabilities.append(answer["probabilities"])
logits = np.concatenate(logits)
burn = np.fromfile(logits_path, dtype="<f4").reshape(logits.shape)
sums = np.concatenate(probabilities).sum(axis=1) if probabilities else np.ones(1)
print(
    json.dumps(
        {
            "checker": "passed",
            "outputs": outputs,
            "classes": json.loads(onnx.load(model_path).metadata_props[0].value),
            "max_logit_difference": float(np.abs(logits - burn).max()),
            "correct": int((logits.argmax(axis=1) == labels).sum()),
            "burn_correct": int((burn.argmax(axis=1) == labels).sum()),
            "probability_sum_error": float(np.abs(sums - 1).max()),
        }
    )
)
