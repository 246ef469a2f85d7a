"""Test-set evaluation of a checkpoint: `python -m capsnet.evaluate [--checkpoint PATH]`."""
from __future__ import annotations

import argparse
import sys

import torch

from .data import DEFAULT_DATA_DIR, MNISTSplit, MNISTUnavailable, load_mnist
from .losses import reconstruction_sse
from .model import CapsNet

SLICE = 1000  # the fixed slice (first 1000 test images) the fast test checks


@torch.no_grad()
def evaluate(model: CapsNet, split: MNISTSplit, batch_size: int = 500, routing_iterations: int | None = None,
             device: str | torch.device = "cpu") -> dict:
    """Accuracy, mean per-image reconstruction SSE (decoder masked by the prediction), per-class
    accuracy, confusion matrix (rows = true class) and the misclassified indices."""
    was_training = model.training
    model.eval()
    n, k = len(split), model.config.num_classes
    correct = torch.zeros(n, dtype=torch.bool)
    preds = torch.zeros(n, dtype=torch.long)
    sse = torch.zeros(n)
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(n, start + batch_size))
        x, y = split.batch(idx)
        out = model(x.to(device), routing_iterations=routing_iterations)
        p = out.predictions.cpu()
        preds[idx] = p
        correct[idx] = p == y
        sse[idx] = reconstruction_sse(out.reconstructions, x.to(device)).cpu()
    model.train(was_training)
    confusion = torch.zeros(k, k, dtype=torch.long)
    confusion.index_put_((split.labels, preds), torch.ones(n, dtype=torch.long), accumulate=True)
    per_class = (confusion.diag().float() / confusion.sum(1).clamp(min=1)).tolist()
    return {
        "n": n,
        "accuracy": correct.float().mean().item(),
        "slice_accuracy": correct[:SLICE].float().mean().item(),
        "slice_size": min(SLICE, n),
        "reconstruction_sse": sse.mean().item(),
        "per_class_accuracy": per_class,
        "confusion_matrix": confusion.tolist(),
        "misclassified": torch.nonzero(~correct).flatten().tolist(),
        "misclassified_predictions": preds[~correct].tolist(),
    }


def main(argv: list[str] | None = None) -> int:
    from .checkpoint import CheckpointError, load_pretrained

    ap = argparse.ArgumentParser(prog="python -m capsnet.evaluate", description=__doc__)
    ap.add_argument("--checkpoint", default=None, help="weights (.safetensors); default: the shipped checkpoint")
    ap.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="MNIST folder (torchvision root or the four .gz files)")
    ap.add_argument("--routing-iterations", type=int, default=None)
    ap.add_argument("--limit", type=int, default=None, help="evaluate only the first N test images")
    ap.add_argument("--batch-size", type=int, default=500)
    args = ap.parse_args(argv)
    try:
        model = load_pretrained(args.checkpoint)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        test = load_mnist(args.data_dir, train=False)
    except MNISTUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.limit:
        test = MNISTSplit(test.images[: args.limit], test.labels[: args.limit])
    r = evaluate(model, test, args.batch_size, args.routing_iterations)
    print(f"test images:         {r['n']}")
    print(f"test accuracy:       {100 * r['accuracy']:.2f}%  ({r['n'] - len(r['misclassified'])}/{r['n']})")
    print(f"reconstruction SSE:  {r['reconstruction_sse']:.2f} per image (decoder masked by the prediction)")
    print("per-class accuracy:  " + " ".join(f"{d}:{100 * a:.1f}" for d, a in enumerate(r["per_class_accuracy"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
