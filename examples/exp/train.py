"""Fit y = 3x + 1 by gradient descent: a stand-in for a training script.

Usage: python3 train.py PARAMS_FILE OUT_DIR. Reads train.lr and train.epochs from the params
file (YAML), writes OUT_DIR/loss.csv (one row per epoch) and OUT_DIR/metrics.json.
"""

import json
import os
import random
import sys


def read_params(path):
    """The two-level `section: {key: value}` YAML this example uses (no PyYAML needed)."""
    params, section = {}, None
    with open(path) as f:
        for line in f:
            text = line.split("#", 1)[0].rstrip()
            if not text.strip():
                continue
            key, _, value = text.strip().partition(":")
            if not line.startswith((" ", "\t")):
                section = params.setdefault(key, {})
            elif section is not None:
                section[key] = float(value) if "." in value or "e" in value else int(value)
    return params


def main():
    params_file, out_dir = sys.argv[1], sys.argv[2]
    train = read_params(params_file)["train"]
    lr, epochs = float(train["lr"]), int(train["epochs"])
    rng = random.Random(0)
    data = [(x, 3.0 * x + 1.0 + rng.gauss(0, 0.1)) for x in (rng.uniform(-1, 1) for _ in range(64))]
    w = b = 0.0
    losses = []
    for _ in range(epochs):
        gw = sum(2 * (w * x + b - y) * x for x, y in data) / len(data)
        gb = sum(2 * (w * x + b - y) for x, y in data) / len(data)
        w, b = w - lr * gw, b - lr * gb
        losses.append(sum((w * x + b - y) ** 2 for x, y in data) / len(data))
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "loss.csv"), "w") as f:
        f.write("epoch,loss\n")
        for i, loss in enumerate(losses, 1):
            f.write(f"{i},{loss:.6g}\n")
    with open(os.path.join(out_dir, "metrics.json"), "w") as f:
        json.dump({"loss": round(losses[-1], 6), "best_loss": round(min(losses), 6)}, f)


if __name__ == "__main__":
    main()
