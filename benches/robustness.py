#!/usr/bin/env python3
"""How well trained runs read digits that are not MNIST's: makes the held-out test sets, has
`lenet predict` read every image as a user's picture, and prints a table per source, with each
run's MNIST test accuracy beside.

    benches/robustness.py --run artifacts/lenet-best --run artifacts/lenet

The sets (written under --sets, made once and reused):

- fonts-clean, fonts-tilted, fonts-marker, fonts-pencil: the ten digits of each held-out
  handwriting font (HELD_OUT below: families no config of this project trains on), twice each,
  40-90 pixels tall, drawn dark on white; turned 8-20 degrees; in a felt marker (strokes
  widened by 3-5% of the digit's height) on grey paper with noise; in thin pencil on a
  photographed page (uneven light, noise, blur, JPEG).
- uci-8x8: real handwriting from another set, at low resolution: the 1,797 digits of the UCI
  optical digits set that scikit-learn ships (43 writers, scanned, 8x8 pixels of 17 levels),
  dark on white.

Needs Pillow, NumPy and scikit-learn, and the fonts of Debian's packages fonts-bwht,
fonts-comic-neue, fonts-humor-sans, fonts-kristi, fonts-klee, fonts-sjfonts, fonts-tomsontalks
and fonts-yusei-magic. `--check MIN` exits 1 if a run reads any source below MIN percent
(CI uses it). Reads `lenet` from $LENET, else target/release/lenet.
"""

import argparse
import json
import os
import random
import subprocess
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

# Handwriting font families kept out of every config's data.synthetic.fonts: the test of
# reading other people's digits is on hands the model never saw.
HELD_OUT = [
    "/usr/share/fonts/opentype/bwht/BecauseWeConnect-Regular.otf",
    "/usr/share/fonts/opentype/bwht/BecauseWeOrganize-Regular.otf",
    "/usr/share/fonts/opentype/comic-neue/ComicNeue-Regular.otf",
    "/usr/share/fonts/truetype/humor-sans/Humor-Sans.ttf",
    "/usr/share/fonts/truetype/kristi/Kristi.ttf",
    "/usr/share/fonts/truetype/klee/KleeOne-Regular.ttf",
    "/usr/share/fonts/truetype/sjfonts/SteveHand.ttf",
    "/usr/share/fonts/truetype/tomsontalks/TomsonTalks.ttf",
    "/usr/share/fonts/truetype/yusei-magic/YuseiMagic-Regular.ttf",
]

FONT_STYLES = ["clean", "tilted", "marker", "pencil"]


def glyph(font_path, digit, height, stroke_share=0.0):
    """The digit as an ink mask (255 = ink), `height` pixels tall whatever the font's metrics
    (some handwriting fonts draw their digits a third of the size of others), its outline
    widened by `stroke_share` of that height, as a thicker pen would draw it."""
    probe = ImageFont.truetype(font_path, 100)
    left, top, right, bottom = probe.getbbox(str(digit))
    size = max(8, round(100 * height / max(1, bottom - top)))
    font = ImageFont.truetype(font_path, size)
    stroke = round(stroke_share * height)
    canvas = Image.new("L", (size * 3, size * 3), 0)
    ImageDraw.Draw(canvas).text(
        (size, size // 2), str(digit), font=font, fill=255, stroke_width=stroke, stroke_fill=255
    )
    return canvas.crop(canvas.getbbox())


def on_paper(mask, side, ink, paper, rng, offset=0.15):
    """The mask's ink laid on paper of `side` pixels, somewhere near the middle."""
    page = Image.new("L", (side, side), paper)
    room_x, room_y = side - mask.width, side - mask.height
    x = int(room_x / 2 + rng.uniform(-offset, offset) * room_x)
    y = int(room_y / 2 + rng.uniform(-offset, offset) * room_y)
    page.paste(Image.new("L", mask.size, ink), (x, y), mask)
    return page


def font_digit(style, font_path, digit, rng):
    if style == "clean":
        mask = glyph(font_path, digit, rng.randint(40, 70))
        return on_paper(mask, 128, 0, 255, rng)
    if style == "tilted":
        mask = glyph(font_path, digit, rng.randint(40, 70))
        angle = rng.choice([-1, 1]) * rng.uniform(8, 20)
        mask = mask.rotate(angle, resample=Image.BICUBIC, expand=True)
        return on_paper(mask, 140, 0, 255, rng)
    if style == "marker":
        # A felt marker: strokes widened by 3-5% of the digit's height on each side.
        mask = glyph(font_path, digit, rng.randint(60, 90), rng.uniform(0.03, 0.05))
        page = np.asarray(on_paper(mask, 160, 45, 165, rng), dtype=np.float32)
        page += np.random.default_rng(rng.getrandbits(32)).normal(0, 8, page.shape)
        return Image.fromarray(page.clip(0, 255).astype(np.uint8))
    # pencil: a thin grey line on a page lit from one side, out of focus, saved as a JPEG.
    mask = glyph(font_path, digit, rng.randint(45, 75))
    mask = mask.point(lambda v: int(v * 0.6))
    page = np.asarray(on_paper(mask, 200, 0, 255, rng), dtype=np.float32)
    light = np.linspace(rng.uniform(0.6, 0.8), 1.0, page.shape[1])[None, :]
    page = page * light + np.random.default_rng(rng.getrandbits(32)).normal(0, 6, page.shape)
    image = Image.fromarray(page.clip(0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.2))
    return image


def make_font_sets(root):
    missing = [f for f in HELD_OUT if not os.path.isfile(f)]
    if missing:
        sys.exit("missing held-out fonts (install the Debian packages the --help names): " + " ".join(missing))
    for style in FONT_STYLES:
        folder = os.path.join(root, "fonts-" + style)
        if os.path.isdir(folder):
            continue
        os.makedirs(folder + ".part", exist_ok=True)
        rng = random.Random("fonts-" + style)
        for font_path in HELD_OUT:
            family = os.path.splitext(os.path.basename(font_path))[0]
            for copy in range(2):
                for digit in range(10):
                    image = font_digit(style, font_path, digit, rng)
                    ending = "jpg" if style == "pencil" else "png"
                    name = f"{family}-{copy}-{digit}.{ending}"
                    path = os.path.join(folder + ".part", name)
                    if ending == "jpg":
                        image.save(path, quality=60)
                    else:
                        image.save(path)
        os.rename(folder + ".part", folder)


def make_uci_set(root):
    folder = os.path.join(root, "uci-8x8")
    if os.path.isdir(folder):
        return
    from sklearn.datasets import load_digits

    digits = load_digits()
    os.makedirs(folder + ".part", exist_ok=True)
    for index, (values, label) in enumerate(zip(digits.images, digits.target)):
        pixels = (255 - values * 255 / 16).round().astype(np.uint8)
        Image.fromarray(pixels, "L").save(os.path.join(folder + ".part", f"{index:04d}-{label}.png"))
    os.rename(folder + ".part", folder)


def label_of(path):
    """Every file is named ...-<digit>.<ending>."""
    return os.path.splitext(os.path.basename(path))[0].rsplit("-", 1)[1]


def read_set(lenet, run, folder):
    """Right answers and images: a file predict could not read counts as wrong."""
    out = subprocess.run(
        [lenet, "predict", "--run", run, "--json", folder], capture_output=True, text=True
    )
    try:
        answers = json.loads(out.stdout)
    except json.JSONDecodeError:
        sys.exit(f"{lenet} predict --run {run} {folder} failed: {out.stderr.strip()}")
    files = len(os.listdir(folder))
    if len(answers) != files:
        sys.exit(f"{folder}: {files} files but {len(answers)} answers: {out.stderr.strip()}")
    right = sum(1 for a in answers if a.get("name") == label_of(a["file"]))
    return right, len(answers)


def check_held_out(run):
    """Refuses a run that trained on a held-out font: its figure would not measure anything."""
    with open(os.path.join(run, "config.json")) as f:
        config = json.load(f)
    trained = (config.get("data", {}).get("synthetic") or {}).get("fonts", [])
    family = lambda path: os.path.splitext(os.path.basename(path))[0].split("-")[0].lower()
    overlap = {family(f) for f in trained} & {family(f) for f in HELD_OUT}
    if overlap:
        sys.exit(f"{run} trained on held-out font families: {', '.join(sorted(overlap))}")


def mnist_accuracy(run):
    with open(os.path.join(run, "summary.json")) as f:
        summary = json.load(f)
    return summary["test_accuracy"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="append", required=True, help="a finished run's folder (repeatable)")
    parser.add_argument("--sets", default="artifacts/robustness-sets", help="where the test sets are made")
    parser.add_argument("--check", type=float, help="exit 1 if any run reads a source below this percentage")
    args = parser.parse_args()
    lenet = os.environ.get("LENET", "target/release/lenet")
    make_font_sets(args.sets)
    make_uci_set(args.sets)
    sources = [("fonts-" + s, f"held-out handwriting fonts, {s}") for s in FONT_STYLES]
    sources.append(("uci-8x8", "UCI digits, 8x8 scans (real handwriting)"))
    table = {run: {} for run in args.run}
    for run in args.run:
        check_held_out(run)
        total_right = total = 0
        for folder, _ in sources:
            right, count = read_set(lenet, run, os.path.join(args.sets, folder))
            table[run][folder] = (right, count)
            if folder.startswith("fonts-"):
                total_right, total = total_right + right, total + count
        table[run]["fonts"] = (total_right, total)
    runs = [os.path.basename(os.path.normpath(r)) for r in args.run]
    print("| source | images | " + " | ".join(runs) + " |")
    print("|---|---:|" + "---:|" * len(runs))
    rows = [(f, d) for f, d in sources[:4]] + [("fonts", "**all held-out font digits**")] + sources[4:]
    failed = False
    for folder, description in rows:
        cells = []
        for run in args.run:
            right, count = table[run][folder]
            cells.append(f"{100 * right / count:.2f}%")
            failed |= args.check is not None and 100 * right / count < args.check
        count = table[args.run[0]][folder][1]
        print(f"| {description} | {count:,} | " + " | ".join(cells) + " |")
    mnist = " | ".join(f"{100 * mnist_accuracy(r):.2f}%" for r in args.run)
    print(f"| MNIST test set | 10,000 | {mnist} |")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
