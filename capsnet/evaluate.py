"""Test-set evaluation of a checkpoint: `python -m capsnet.evaluate [--checkpoint PATH] [--routing-study]`."""
from __future__ import annotations

import argparse
import datetime
import sys
import time

import torch

from .data import MNISTSplit, MNISTUnavailable, load_mnist
from .losses import reconstruction_sse
from .model import CapsNet
from .routing import dynamic_routing

SLICE = 1000  # the fixed slice (first 1000 test images) the fast test checks


@torch.no_grad()
def evaluate(model, split: MNISTSplit, batch_size: int = 500, routing_iterations: int | None = None,
             device: str | torch.device = "cpu") -> dict:
    """Accuracy, mean per-image reconstruction SSE (decoder masked by the prediction; CapsNet only), per-class
    accuracy, confusion matrix (rows = true class) and the misclassified indices, for a CapsNet or the CNN baseline
    (a model whose forward returns logits)."""
    was_training = model.training
    model.eval()
    n, k = len(split), model.config.num_classes
    preds = torch.zeros(n, dtype=torch.long)
    sse = torch.zeros(n)
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(n, start + batch_size))
        x, y = split.batch(idx)
        if not isinstance(model, CapsNet):
            preds[idx] = model(x.to(device)).argmax(1).cpu()
            continue
        out = model(x.to(device), routing_iterations=routing_iterations)
        preds[idx] = out.predictions.cpu()
        sse[idx] = reconstruction_sse(out.reconstructions, x.to(device)).cpu()
    model.train(was_training)
    correct = preds == split.labels
    confusion = torch.zeros(k, k, dtype=torch.long)
    confusion.index_put_((split.labels, preds), torch.ones(n, dtype=torch.long), accumulate=True)
    per_class = (confusion.diag().float() / confusion.sum(1).clamp(min=1)).tolist()
    return {
        "n": n,
        "accuracy": correct.float().mean().item(),
        "slice_accuracy": correct[:SLICE].float().mean().item(),
        "slice_size": min(SLICE, n),
        **({"reconstruction_sse": sse.mean().item()} if isinstance(model, CapsNet) else {}),
        "per_class_accuracy": per_class,
        "confusion_matrix": confusion.tolist(),
        "misclassified": torch.nonzero(~correct).flatten().tolist(),
        "misclassified_predictions": preds[~correct].tolist(),
    }


STUDY_ITERATIONS = (1, 2, 3, 5)


@torch.no_grad()
def routing_study(model: CapsNet, split: MNISTSplit, iterations=STUDY_ITERATIONS, batch_size: int = 500,
                  device: str | torch.device = "cpu") -> dict:
    """Does routing matter for this checkpoint? Test accuracy for each number of routing iterations, and how many
    predictions the model's routing changes against uniform couplings (every c_ij = 1/10, which is exactly one
    iteration: the logits start at zero). The votes are computed once per batch and routed for every r."""
    was_training = model.training
    model.eval()
    n, default_r = len(split), model.config.routing_iterations
    rs = sorted({int(r) for r in iterations} | {1, default_r})
    preds = {r: torch.zeros(n, dtype=torch.long) for r in rs}
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(n, start + batch_size))
        x, _ = split.batch(idx)
        u_hat = model.votes(x.to(device))
        for r in rs:
            v, _ = dynamic_routing(u_hat, r)
            preds[r][idx] = v.norm(dim=-1).argmax(dim=1).cpu()
    model.train(was_training)
    labels, uniform = split.labels, preds[1]
    routed = preds[default_r]
    return {
        "n": n,
        "routing_iterations": default_r,
        "iterations": rs,
        "accuracy": {str(r): (preds[r] == labels).float().mean().item() for r in rs},
        "changed_vs_uniform": {str(r): int((preds[r] != uniform).sum()) for r in rs},
        "changed_by_routing": int((routed != uniform).sum()),
        "fixed_by_routing": int(((routed == labels) & (uniform != labels)).sum()),
        "broken_by_routing": int(((routed != labels) & (uniform == labels)).sum()),
        "changed_indices": torch.nonzero(routed != uniform).flatten().tolist(),
        "uniform": "every coupling fixed at 0.1, i.e. one routing iteration",
    }


def print_routing_study(s: dict) -> None:
    print(f"routing study on {s['n']} test images (the model routes with r = {s['routing_iterations']}):")
    for r in s["iterations"]:
        print(f"  r = {r}: accuracy {100 * s['accuracy'][str(r)]:.2f}%, "
              f"{s['changed_vs_uniform'][str(r)]} predictions differ from uniform couplings")
    print(f"routing changes {s['changed_by_routing']} of {s['n']} predictions against uniform couplings "
          f"({s['fixed_by_routing']} fixed, {s['broken_by_routing']} broken)")


def main(argv: list[str] | None = None) -> int:
    from .checkpoint import CheckpointError, load_pretrained
    from .cli import checkpoint_flags

    ap = argparse.ArgumentParser(prog="python -m capsnet.evaluate", description=__doc__, parents=[checkpoint_flags()])
    ap.add_argument("--routing-iterations", type=int, default=None)
    ap.add_argument("--limit", type=int, default=None, help="evaluate only the first N test images")
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--routing-study", action="store_true",
                    help="accuracy at r = 1, 2, 3, 5 and how many predictions routing changes against uniform "
                    "couplings; stored in the model card (routing_study) unless --limit is given")
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
    if args.routing_study:
        return run_routing_study(model, test, args)
    r = evaluate(model, test, args.batch_size, args.routing_iterations)
    print(f"test images:         {r['n']}")
    print(f"test accuracy:       {100 * r['accuracy']:.2f}%  ({r['n'] - len(r['misclassified'])}/{r['n']})")
    print(f"reconstruction SSE:  {r['reconstruction_sse']:.2f} per image (decoder masked by the prediction)")
    print("per-class accuracy:  " + " ".join(f"{d}:{100 * a:.1f}" for d, a in enumerate(r["per_class_accuracy"])))
    return 0


def run_routing_study(model: CapsNet, test: MNISTSplit, args) -> int:
    from .checkpoint import CheckpointError, default_checkpoint, update_model_card

    t0 = time.perf_counter()
    study = routing_study(model, test, batch_size=args.batch_size)
    study["runtime_s"] = round(time.perf_counter() - t0, 1)
    study["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    study["command"] = "python -m capsnet.evaluate --routing-study"
    print_routing_study(study)
    print(f"took {study['runtime_s']} s")
    if args.limit:
        print("not stored in the model card: --limit evaluates only part of the test set")
        return 0
    weights = args.checkpoint or default_checkpoint()
    try:
        update_model_card(weights, routing_study=study)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"stored as routing_study in the model card beside {weights}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
