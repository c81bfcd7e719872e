#!/usr/bin/env python3
"""PyTorch's side of `cargo bench --bench ops`: forward and backward of each layer of the modern
LeNet-5, the loss and the Adam step, timed one at a time, median of --reps runs (ms).

    python3 benches/pytorch_ops.py --threads 2 [--batch-size 64] [--device cpu|cuda]
"""

import argparse
import time

import torch
from torch import nn
from torch.nn import functional as F


def median_ms(device, reps, prepare, timed):
    times = []
    for rep in range(reps + 5):
        value = prepare()
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        timed(value)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if rep >= 5:
            times.append((time.perf_counter() - started) * 1e3)
    times.sort()
    return times[len(times) // 2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--reps", type=int, default=50)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    n = args.batch_size
    c1, c3, c5 = nn.Conv2d(1, 6, 5, padding=2), nn.Conv2d(6, 16, 5), nn.Conv2d(16, 120, 5)
    f6, f7 = nn.Linear(120, 84), nn.Linear(84, 10)
    for layer in (c1, c3, c5, f6, f7):
        layer.to(device)
    flat = lambda layer: lambda x: layer(x.flatten(1))
    # As lenet's table times them: each convolution with its relu and pool as one row.
    block = lambda conv: lambda x: F.max_pool2d(torch.relu(conv(x)), 2)
    layers = [
        ("C1 + relu + S2 max pool", (n, 1, 28, 28), False, block(c1)),
        ("C3 + relu + S4 max pool", (n, 6, 14, 14), True, block(c3)),
        ("C5 conv 16->120, 5x5", (n, 16, 5, 5), True, c5),
        ("relu 120", (n, 120, 1, 1), True, torch.relu),
        ("F6 dense 120->84", (n, 120, 1, 1), True, flat(f6)),
        ("relu 84", (n, 84, 1, 1), True, torch.relu),
        ("F7 dense 84->10", (n, 84, 1, 1), True, flat(f7)),
    ]
    print(f"pytorch {torch.__version__} {args.device} ({torch.get_num_threads()} threads), "
          f"batch {n}, median of {args.reps} runs (ms)")
    print(f"{'operation':<30} {'forward':>9} {'backward':>9} {'total':>9}")
    total = 0.0

    def row(name, forward, backward):
        nonlocal total
        total += forward + backward
        print(f"{name:<30} {forward:>9.3f} {backward:>9.3f} {forward + backward:>9.3f}")

    for name, shape, input_grad, layer in layers:
        with torch.no_grad():
            forward = median_ms(device, args.reps, lambda: torch.randn(shape, device=device), layer)
        backward = median_ms(
            device,
            args.reps,
            lambda: layer(torch.randn(shape, device=device, requires_grad=input_grad)).sum(),
            lambda y: y.backward(),
        )
        row(name, forward, backward)

    targets = torch.arange(n, device=device) % 10
    logits = lambda: torch.randn((n, 10), device=device, requires_grad=True)
    row(
        "cross-entropy loss",
        median_ms(device, args.reps, logits, lambda x: F.cross_entropy(x, targets)),
        median_ms(device, args.reps, lambda: F.cross_entropy(logits(), targets), lambda l: l.backward()),
    )

    model = nn.Sequential(c1, nn.ReLU(), nn.MaxPool2d(2), c3, nn.ReLU(), nn.MaxPool2d(2), c5,
                          nn.ReLU(), nn.Flatten(), f6, nn.ReLU(), f7)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-8)
    images = torch.randn((n, 1, 28, 28), device=device)

    def gradients():
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(images), targets).backward()

    row("Adam step (61,706 parameters)", 0.0,
        median_ms(device, args.reps, gradients, lambda _: optimizer.step()))
    print(f"{'sum of the above':<30} {total:>29.3f}")

    def step(_):
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(images), targets)
        loss.backward()
        optimizer.step()
        loss.item()

    whole = median_ms(device, args.reps, lambda: None, step)
    print(f"{'whole training step':<30} {whole:>29.3f}")
    print(f"{'-> seconds per 60,000 images':<30} {whole * 60000 / n / 1e3:>29.2f}")


if __name__ == "__main__":
    main()
