#!/usr/bin/env python3
"""PyTorch reference for `lenet bench`: the same modern LeNet-5, the same data and the same loop.

Reads MNIST from the same IDX files (raw or .gz), normalises pixels the way the Rust code does
((x/255 - 0.1307) / 0.3081), trains with Adam (lr 1e-3, eps 1e-8) and cross-entropy on shuffled
batches, and prints the same figures as `lenet bench`: train images/s over full epochs, eval
images/s over the test set, single-image predict latency (p50/p99) and peak memory.

Needs only torch and numpy:
    python3 benches/pytorch_reference.py --data-dir ../shared/data/mnist --threads 2
The last line is one JSON object, so scripts (benches/compare.sh) can read the figures.

With --speedrun CONFIG (configs/speedrun.json) it runs that config's recipe instead, the way
`lenet --config CONFIG` runs it, and times the whole process as that command is timed: reading
the data, the epochs with the one-cycle learning rate (linear warm-up, cosine decay, stepped
per batch), the config's label smoothing and weight average (`ema`, the average evaluated as
lenet evaluates it), evaluating the test set after each epoch, and the final test accuracy.
"""

import argparse
import copy
import gzip
import json
import os
import resource
import sys
import time

import numpy as np
import torch
from torch import nn


def read_idx(folder, name):
    for candidate in (name, name + ".gz"):
        path = os.path.join(folder, candidate)
        if os.path.exists(path):
            opener = gzip.open if candidate.endswith(".gz") else open
            with opener(path, "rb") as f:
                data = f.read()
            dims = data[3]
            shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
            return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)
    sys.exit(f"{folder}: no {name} or {name}.gz")


def load(folder, split):
    images = read_idx(folder, f"{split}-images-idx3-ubyte")
    labels = read_idx(folder, f"{split}-labels-idx1-ubyte")
    x = (torch.from_numpy(images.astype(np.float32)) / 255.0 - 0.1307) / 0.3081
    return x.unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


class LeNet5(nn.Module):
    """The modern LeNet-5 of docs/design.md: zero padding 2, ReLU, max pooling, 61,706 parameters."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, 5, padding=2)
        self.c3 = nn.Conv2d(6, 16, 5)
        self.c5 = nn.Conv2d(16, 120, 5)
        self.f6 = nn.Linear(120, 84)
        self.f7 = nn.Linear(84, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.c1(x)), 2)
        x = nn.functional.max_pool2d(torch.relu(self.c3(x)), 2)
        x = torch.relu(self.c5(x)).flatten(1)
        return self.f7(torch.relu(self.f6(x)))


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def percentile(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def seeded_setup(args):
    """The device, a freshly seeded model on it, and MNIST's four tensors there."""
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    train_x, train_y = load(args.data_dir, "train")
    test_x, test_y = load(args.data_dir, "t10k")
    data = tuple(t.to(device) for t in (train_x, train_y, test_x, test_y))
    return device, LeNet5().to(device), data


def speedrun(args, config_path, started):
    """The recipe of a lenet config (Adam, one-cycle schedule, batch size, epochs, label smoothing,
    weight average), end to end."""
    config = json.load(open(config_path))
    optimizer_config, schedule = config["optimizer"], config["lr_schedule"]
    assert optimizer_config["type"] == "adam" and schedule["type"] == "onecycle", config
    device, model, (train_x, train_y, test_x, test_y) = seeded_setup(args)
    peak = optimizer_config["learning_rate"]
    optimizer = torch.optim.Adam(model.parameters(), lr=peak, eps=1e-8)
    batch, epochs = config["batch_size"], config["epochs"]
    per_epoch = (len(train_x) + batch - 1) // batch
    total = epochs * per_epoch
    warmup = max(1, round(schedule["warmup_epochs"] * per_epoch))
    start, floor = schedule["initial_lr"], schedule.get("min_lr", 0.0)

    def rate(step):
        if step < warmup:
            return (start + (peak - start) * step / warmup) / peak
        progress = (step - warmup) / max(1, total - warmup)
        return (floor + (peak - floor) * 0.5 * (1 + np.cos(np.pi * progress))) / peak

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.get("label_smoothing", 0.0))
    # lenet's `ema`: after step t, average = d * average + (1 - d) * weights, with
    # d = min(decay, (1 + t) / (10 + t)); the average is what is evaluated.
    ema = config.get("ema")  # absent or null: none, as lenet reads it
    decay = ema.get("decay", 0.999) if ema is not None else None
    average = [p.detach().clone() for p in model.parameters()] if decay is not None else None
    steps = 0

    def update_average():
        d = min(decay, (1 + steps) / (10 + steps))
        with torch.no_grad():
            for a, p in zip(average, model.parameters()):
                a.mul_(d).add_(p.detach(), alpha=1 - d)

    def test_accuracy():
        evaluated = model
        if average is not None:
            # A copy, not a fresh LeNet5(): initialising one would draw from the generator that
            # shuffles the next epoch.
            evaluated = copy.deepcopy(model)
            with torch.no_grad():
                for target, a in zip(evaluated.parameters(), average):
                    target.copy_(a)
        evaluated.eval()
        with torch.no_grad():
            correct = sum(
                int((evaluated(test_x[i : i + 1000]).argmax(1) == test_y[i : i + 1000]).sum())
                for i in range(0, len(test_x), 1000)
            )
        model.train()
        return correct / len(test_x)

    for _ in range(epochs):
        order = torch.randperm(len(train_x), device=device)
        for i in range(0, len(order), batch):
            index = order[i : i + batch]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(train_x[index]), train_y[index]).backward()
            optimizer.step()
            scheduler.step()
            steps += 1
            if average is not None:
                update_average()
        accuracy = test_accuracy()  # lenet validates on the test set after each epoch
    sync(device)
    seconds = time.perf_counter() - started
    result = {
        "framework": f"pytorch {torch.__version__}",
        "device": args.device,
        "threads": torch.get_num_threads(),
        "recipe": config_path,
        "seed": args.seed,
        "test_accuracy": accuracy,
        "wall_seconds": seconds,
    }
    print(
        f"pytorch {args.device} ({result['threads']} threads), {config_path}, seed {args.seed}: "
        f"{accuracy:.2%} in {seconds:.2f} s",
        file=sys.stderr,
    )
    print(json.dumps(result))


def main():
    started = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("MNIST_DIR", "../shared/data/mnist"))
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=1, help="timed training epochs")
    parser.add_argument("--warmup-batches", type=int, default=20)
    parser.add_argument("--eval-batch-size", type=int, default=1000)
    parser.add_argument("--predict-samples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--speedrun", metavar="CONFIG", help="run a lenet config's recipe, timed")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.speedrun:
        return speedrun(args, args.speedrun, started)
    device, model, (train_x, train_y, test_x, test_y) = seeded_setup(args)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-8)
    loss_fn = nn.CrossEntropyLoss()

    def train_batch(x, y):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    # Warm-up batches: allocator, kernel selection, CUDA context; not timed.
    for start in range(0, args.warmup_batches * args.batch_size, args.batch_size):
        train_batch(train_x[start : start + args.batch_size], train_y[start : start + args.batch_size])
    sync(device)

    epoch_seconds = []
    for _ in range(args.epochs):
        order = torch.randperm(len(train_x), device=device)
        started = time.perf_counter()
        for start in range(0, len(order), args.batch_size):
            index = order[start : start + args.batch_size]
            train_batch(train_x[index], train_y[index])
        sync(device)
        epoch_seconds.append(time.perf_counter() - started)

    model.eval()
    with torch.no_grad():
        started = time.perf_counter()
        correct = 0
        for start in range(0, len(test_x), args.eval_batch_size):
            logits = model(test_x[start : start + args.eval_batch_size])
            correct += (logits.argmax(1) == test_y[start : start + args.eval_batch_size]).sum()
        correct = int(correct)
        eval_seconds = time.perf_counter() - started

        latencies = []
        for i in range(args.predict_samples):
            started = time.perf_counter()
            int(model(test_x[i : i + 1]).argmax(1))
            latencies.append(time.perf_counter() - started)
    latencies.sort()

    peak_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result = {
        "framework": f"pytorch {torch.__version__}",
        "device": args.device,
        "threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "epoch_seconds": epoch_seconds,
        "train_images_per_second": len(train_x) * len(epoch_seconds) / sum(epoch_seconds),
        "eval_images_per_second": len(test_x) / eval_seconds,
        "test_accuracy": correct / len(test_x),
        "predict_p50_ms": percentile(latencies, 0.50) * 1e3,
        "predict_p99_ms": percentile(latencies, 0.99) * 1e3,
        "peak_memory_mib": peak_bytes / 2**20,
    }
    if device.type == "cuda":
        result["peak_gpu_memory_mib"] = torch.cuda.max_memory_allocated() / 2**20
    print(
        f"pytorch {args.device} ({result['threads']} threads), batch {args.batch_size}: "
        f"train {result['train_images_per_second']:,.0f} img/s "
        f"({min(epoch_seconds):.2f} s/epoch), eval {result['eval_images_per_second']:,.0f} img/s, "
        f"predict p50 {result['predict_p50_ms']:.3f} ms p99 {result['predict_p99_ms']:.3f} ms, "
        f"peak memory {result['peak_memory_mib']:.0f} MiB, test accuracy "
        f"{result['test_accuracy']:.4f}",
        file=sys.stderr,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
