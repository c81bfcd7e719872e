#!/usr/bin/env python3
"""Writes an IDX data set (MNIST, Fashion-MNIST, KMNIST, ...) out as image folders, one folder
per class, the layout `"dataset": "folder"` reads:

    OUT/train/<class>/<index>.png
    OUT/test/<class>/<index>.png

Class folders are named by the data set's classes.txt (one name per line) when it has one, else
by `--classes`, else by label number. Only the standard library is used (PNG is zlib-compressed
rows), so it runs anywhere Python 3 does.

    python3 benches/idx_to_folders.py ../shared/data/mnist /tmp/mnist-png
"""

import argparse
import gzip
import os
import re
import struct
import sys
import zlib

SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(folder, name):
    for path in (os.path.join(folder, name), os.path.join(folder, name + ".gz")):
        if os.path.isfile(path):
            with open(path, "rb") as f:
                data = f.read()
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            dims = data[3]
            shape = struct.unpack(">" + "I" * dims, data[4 : 4 + 4 * dims])
            return shape, data[4 + 4 * dims :]
    sys.exit(f"{folder}: no {name} (raw or .gz)")


def png(pixels, width, height):
    rows = b"".join(b"\x00" + pixels[r * width : (r + 1) * width] for r in range(height))

    def chunk(kind, body):
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 6))
        + chunk(b"IEND", b"")
    )


def folder_name(name):
    """A class name as a folder name: separators and other awkward characters become '-'."""
    return re.sub(r"[^\w.+ -]", "-", name).strip() or "class"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("idx_dir", help="folder holding the four IDX files, raw or .gz")
    parser.add_argument("out", help="folder to write train/ and test/ into")
    parser.add_argument("--classes", help="class names, comma-separated, in label order")
    parser.add_argument("--limit", type=int, help="write only the first N images of each split")
    args = parser.parse_args()

    names = None
    classes_file = os.path.join(args.idx_dir, "classes.txt")
    if args.classes:
        names = [n.strip() for n in args.classes.split(",")]
    elif os.path.isfile(classes_file):
        with open(classes_file) as f:
            names = [line.strip() for line in f if line.strip()]

    for split, (images_name, labels_name) in SPLITS.items():
        (count, height, width), pixels = read_idx(args.idx_dir, images_name)
        (label_count,), labels = read_idx(args.idx_dir, labels_name)
        if label_count != count:
            sys.exit(f"{split}: {count} images but {label_count} labels")
        count = min(count, args.limit or count)
        size = width * height
        for i in range(count):
            label = labels[i]
            name = folder_name(names[label]) if names else str(label)
            folder = os.path.join(args.out, split, name)
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, f"{i:05d}.png"), "wb") as f:
                f.write(png(pixels[i * size : (i + 1) * size], width, height))
        print(f"{split}: {count} images in {os.path.join(args.out, split)}")


if __name__ == "__main__":
    main()
