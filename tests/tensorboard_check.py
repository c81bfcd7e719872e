"""Reads a lenet run's TensorBoard folder with TensorBoard's own reader, as `tensorboard
--logdir` reads it, and prints what it holds as one JSON object: each scalar tag's [step, value]
points, each picture's step and size, and the HParams plugin's session start (hyperparameters
and group) and end status.

    python tests/tensorboard_check.py RUN/tensorboard
"""

import json
import sys

from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import plugin_data_pb2


def plain(value):
    kind = value.WhichOneof("kind")
    return {
        "number_value": value.number_value,
        "string_value": value.string_value,
        "bool_value": value.bool_value,
    }.get(kind)


events = event_accumulator.EventAccumulator(
    sys.argv[1],
    size_guidance={event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0},
)
events.Reload()
tags = events.Tags()
out = {
    "scalars": {t: [[e.step, e.value] for e in events.Scalars(t)] for t in tags["scalars"]},
    "images": {
        t: [{"step": e.step, "width": e.width, "height": e.height} for e in events.Images(t)]
        for t in tags["images"]
    },
    "hparams": None,
    "group": None,
    "end_status": None,
}
for content in events.PluginTagToContent("hparams").values():
    data = plugin_data_pb2.HParamsPluginData.FromString(content)
    if data.HasField("session_start_info"):
        start = data.session_start_info
        out["hparams"] = {k: plain(v) for k, v in start.hparams.items()}
        out["group"] = start.group_name
    if data.HasField("session_end_info"):
        out["end_status"] = data.session_end_info.status
print(json.dumps(out))
