"""Does the network recognise an input as a digit? The distance between an input and its reconstruction from the
winning digit capsule (Frosst, Sabour & Hinton 2018, "DARCCC: Detecting Adversaries by Reconstruction from Class
Conditional Capsules"), set against the same distance on the MNIST test digits the network classifies correctly.

`python -m capsnet.typicality [--checkpoint PATH] [--data-dir DIR] [--limit N]` stores `reconstruction_check` in the
model card: the distance's percentiles 0..100 over the correctly classified test digits, the threshold (their
THRESHOLD_PERCENTILE-th percentile), and the share of test digits above it: of the correct ones (the check's false
positive rate on the test set) and of the misclassified ones (how many of the network's own mistakes it flags).
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from .model import CapsNet

THRESHOLD_PERCENTILE = 99
DISTANCE = "Euclidean distance between the 28x28 input and its reconstruction from the predicted digit capsule"


def reconstruction_distance(images: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
    """(B,) Euclidean distance between images and reconstructions, both (B, 1, 28, 28) or (B, 28, 28) in [0, 1]."""
    return (images.float() - reconstructions.float()).flatten(1).pow(2).sum(1).sqrt()


@torch.inference_mode()
def measure(model: CapsNet, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> dict:
    """The card's `reconstruction_check` for images (N, 1, 28, 28) in [0, 1] and their labels (N,)."""
    distances, correct = [], []
    for i in range(0, len(images), batch_size):
        out = model(images[i:i + batch_size])
        distances.append(reconstruction_distance(images[i:i + batch_size], out.reconstructions))
        correct.append(out.lengths.argmax(1) == labels[i:i + batch_size])
    d, ok = torch.cat(distances).double(), torch.cat(correct)
    if int(ok.sum()) < 2:
        raise ValueError("need at least 2 correctly classified digits to set the threshold")
    q = torch.quantile(d[ok], torch.linspace(0, 1, 101, dtype=torch.float64))
    threshold = float(q[THRESHOLD_PERCENTILE])
    wrong = ~ok
    return {
        "distance": DISTANCE, "percentiles": [round(float(v), 4) for v in q],
        "threshold_percentile": THRESHOLD_PERCENTILE, "threshold": round(threshold, 4),
        "false_positive_rate": round(float((d[ok] > threshold).double().mean()), 4),
        "flagged_misclassified": round(float((d[wrong] > threshold).double().mean()), 4) if wrong.any() else None,
        "digits": len(d), "correct": int(ok.sum()),
    }  # fmt: skip


def percentile_of(check: dict | None, distance: float) -> float | None:
    """Where `distance` lies among the correctly classified test digits (0-100, interpolated between the stored
    percentiles), or None without a check."""
    q = (check or {}).get("percentiles")
    if not isinstance(q, list) or len(q) != 101:
        return None
    return round(float(np.interp(distance, q, np.arange(101))), 1)


def main(argv: list[str] | None = None) -> int:
    from .checkpoint import update_model_card
    from .cli import checkpoint_flags, model_and_test_set

    ap = argparse.ArgumentParser(prog="python -m capsnet.typicality", description=__doc__.split("\n\n")[0],
                                 parents=[checkpoint_flags()])
    ap.add_argument("--limit", type=int, default=None, help="only the first N test digits (default: all 10,000)")
    args = ap.parse_args(argv)
    if args.limit is not None and args.limit < 2:
        print("error: --limit must be at least 2", file=sys.stderr)
        return 2
    loaded = model_and_test_set(args.checkpoint, args.data_dir)
    if loaded is None:
        return 2
    weights, model, test = loaded
    start = time.perf_counter()
    images = test.images[: args.limit].unsqueeze(1).float().div(255.0)
    check = measure(model, images, test.labels[: args.limit])
    check["command"] = " ".join(["python -m capsnet.typicality", *(sys.argv[1:] if argv is None else argv)])
    update_model_card(weights, reconstruction_check=check)
    print(f"threshold {check['threshold']:.3f} (percentile {THRESHOLD_PERCENTILE} of {check['correct']} correctly "
          f"classified test digits): flags {check['false_positive_rate']:.1%} of them and "
          f"{check['flagged_misclassified'] or 0:.1%} of the misclassified ones; stored reconstruction_check in the "
          f"model card beside {weights} ({time.perf_counter() - start:.0f} s)")  # fmt: skip
    return 0


__all__ = ["DISTANCE", "THRESHOLD_PERCENTILE", "main", "measure", "percentile_of", "reconstruction_distance"]


if __name__ == "__main__":
    sys.exit(main())
