"""lenet explain's C1 maps and logits recomputed outside Burn, for tests/explain.rs: C1 with NumPy
from the weights of the exported ONNX graph's first convolution, the logits by ONNX Runtime
running that graph. Prints the largest differences as JSON.

Usage: explain_check.py MODEL.onnx EXPLAINED.json VARIANT ACTIVATION
  VARIANT: modern or lecun98; ACTIVATION: relu, tanh or scaled_tanh
"""

import json
import sys

import numpy as np
import onnx
import onnxruntime
from onnx import numpy_helper

MEAN, STD = 0.1307, 0.3081
BACKGROUND, FOREGROUND = -0.1, 1.175
ACTIVATIONS = {
    "relu": lambda a: np.maximum(a, 0.0),
    "tanh": np.tanh,
    "scaled_tanh": lambda a: 1.7159 * np.tanh(2.0 * a / 3.0),
}


def conv2d(x, weight, bias):
    """A valid 2-D convolution of x [in, h, w] with weight [out, in, kh, kw]."""
    _, _, kh, kw = weight.shape
    h, w = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    result = np.zeros((weight.shape[0], h, w))
    for i in range(kh):
        for j in range(kw):
            result += np.einsum("oc,chw->ohw", weight[:, :, i, j], x[:, i : i + h, j : j + w])
    return result + bias[:, None, None]


def main(model_path, explained_path, variant, activation):
    graph = onnx.load(model_path).graph
    weights = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in graph.initializer}
    c1 = next(node for node in graph.node if node.op_type == "Conv")
    weight, bias = weights[c1.input[1]], weights[c1.input[2]]

    explained = json.load(open(explained_path))[0]
    pixels = np.array(explained["input"], dtype=np.float64).reshape(1, 28, 28)
    layers = {layer["name"]: np.array(layer["values"], dtype=np.float64) for layer in explained["layers"]}
    if variant == "lecun98":
        x = pixels * (FOREGROUND - BACKGROUND) + BACKGROUND
        x = np.pad(x, ((0, 0), (2, 2), (2, 2)), constant_values=BACKGROUND)
    else:
        x = np.pad((pixels - MEAN) / STD, ((0, 0), (2, 2), (2, 2)))
    maps = ACTIVATIONS[activation](conv2d(x, weight, bias))
    c1_difference = float(np.abs(maps.ravel() - layers["c1"]).max())

    session = onnxruntime.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"pixels": pixels.astype(np.float32)[None]})
    # The 1998 network's f7 is its distances to the RBF prototypes; its logits are -distance/32.
    expected = -layers["f7"] / 32.0 if variant == "lecun98" else layers["f7"]
    logit_difference = float(np.abs(logits[0].astype(np.float64) - expected).max())
    print(json.dumps({"c1_difference": c1_difference, "logit_difference": logit_difference}))


if __name__ == "__main__":
    main(*sys.argv[1:5])
