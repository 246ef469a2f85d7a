"""Robustness of the CapsNet against the CNN baseline: MNIST test accuracy under the Transforms tab's transform
families at increasing magnitudes, and under an affNIST-style random affine (Sabour, Frosst & Hinton 2017, section
5.2: trained on shifted MNIST, the CapsNet reached 79% on affNIST where a CNN of similar MNIST accuracy reached 66%).

    python -m capsnet.robustness [--checkpoint PATH] [--cnn-checkpoint PATH] [--data-dir DIR] [--limit N]

Both models see the same transformed batch (it is generated once per family and magnitude). The families and
magnitudes are GRID: rotation counter-clockwise in degrees, scale as a factor about the image centre, shift_x (right)
and shift_y (down) in pixels, reported separately, and stroke thickness in morphological steps (+ dilate, - erode),
all exactly as capsnet.equivariance applies them (bilinear, zero fill, clipped to [0, 1]).

The affNIST files are not at hand, so the random affine test is generated from the MNIST test digits: one affine
per digit, drawn from torch.Generator().manual_seed(AFFINE_SEED), as the forward map about the image centre
    p_out = R(angle) @ [[1, shear], [0, 1]] @ diag(scale_x, scale_y) @ (p_in - centre) + centre + (dx, dy)
(x right, y down, R counter-clockwise on screen) with every parameter uniform and independent in AFFINE_RANGES:
angle within +-20 degrees, shear within +-0.2 (the matrix entry), scale_x and scale_y within 0.8-1.2, as affNIST;
translation within +-3 px in x and y instead of affNIST's placement anywhere inside a 40x40 canvas, because our
canvas stays 28x28: with +-3 px most digits keep all their ink inside the frame (the run reports the share).

Stores the results (grids, recipe, accuracies, n digits, command, runtime, date) as `robustness` in the CapsNet's
model card, unless --limit is given (then it only prints them).
"""
from __future__ import annotations

import argparse
import datetime
import math
import sys
import time
from pathlib import Path
from typing import Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .baseline import class_scores
from .equivariance import IDENTITY, IMAGE_SIZE, UNITS, apply_transform, check_name

GRID: dict[str, tuple[float, ...]] = {  # the magnitudes per family; each starts at (or passes) the identity
    "rotation": (0.0, 10.0, 20.0, 30.0, 45.0, 60.0),
    "scale": (0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4),
    "shift_x": (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0),
    "shift_y": (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0),
    "thickness": (-2.0, -1.0, 0.0, 1.0, 2.0),
}
AFFINE_RANGES: dict[str, tuple[float, float]] = {
    "angle_deg": (-20.0, 20.0),  # counter-clockwise on screen
    "shear": (-0.2, 0.2),  # x' = x + shear * y before rotation
    "scale_x": (0.8, 1.2),
    "scale_y": (0.8, 1.2),
    "dx": (-3.0, 3.0),  # px, right
    "dy": (-3.0, 3.0),  # px, down
}
AFFINE_SEED = 0
INK = 0.5  # a pixel brighter than this is stroke, for the "digit stays inside the frame" share


def predictions(models: Mapping[str, nn.Module], images: torch.Tensor,
                batch_size: int = 500) -> dict[str, torch.Tensor]:  # fmt: skip
    """Predicted classes (N,) of each model on images (N, 1, 28, 28), in batches, in eval mode (the caller's
    train/eval state is restored), so dropout cannot change an answer."""
    out = {name: torch.empty(len(images), dtype=torch.long) for name in models}
    states = {name: m.training for name, m in models.items()}
    try:
        with torch.inference_mode():
            for m in models.values():
                m.eval()
            for start in range(0, len(images), batch_size):
                x = images[start:start + batch_size]
                for name, m in models.items():
                    device = next(m.parameters()).device
                    out[name][start:start + len(x)] = class_scores(m, x.to(device)).argmax(1).cpu()
    finally:
        for name, m in models.items():
            m.train(states[name])
    return out


def accuracy_under(models: nn.Module | Mapping[str, nn.Module], images: torch.Tensor, labels: torch.Tensor,
                   transform_name: str, magnitudes: Sequence[float], batch_size: int = 500,
                   clean: Mapping[str, float] | float | None = None,
                   progress=None) -> dict[str, list[float]] | list[float]:  # fmt: skip
    """Accuracy of each model (a model, or {name: model}) on images (N, 1, 28, 28) in [0, 1] under every magnitude
    of one capsnet.equivariance transform: each transformed batch is made once and scored by all models.

    The identity magnitude leaves the input as it is, so its accuracy is the plain one; pass it as `clean`
    ({name: accuracy}, or a number for a single model) to skip that pass. Returns {name: [accuracy per magnitude]}
    (a list for a single model)."""
    check_name(transform_name)
    single = isinstance(models, nn.Module)
    named = {"model": models} if single else dict(models)
    clean = {"model": clean} if single and isinstance(clean, (int, float)) else clean
    result = {name: [] for name in named}
    for value in magnitudes:
        if clean is not None and float(value) == IDENTITY[transform_name]:
            acc = dict(clean)
        else:
            correct = {name: 0 for name in named}
            for start in range(0, len(images), batch_size):
                with torch.inference_mode():
                    x = apply_transform(images[start:start + batch_size], transform_name, [float(value)])[:, 0]
                preds = predictions(named, x, batch_size)
                for name in named:
                    correct[name] += int((preds[name] == labels[start:start + len(x)]).sum())
            acc = {name: correct[name] / max(1, len(images)) for name in named}
        for name in named:
            result[name].append(acc[name])
        if progress:
            progress(transform_name, value, acc)
    return result["model"] if single else result


# --------------------------------------------------------------------------- the affNIST-style random affine


def random_affine_params(n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """n independent draws of every AFFINE_RANGES parameter, uniform (float64, (n,) each); the first k of n draws
    do not depend on n, so a --limit run sees the same affines as the full one on its digits."""
    u = torch.rand(n, len(AFFINE_RANGES), generator=generator, dtype=torch.float64)
    return {k: lo + (hi - lo) * u[:, i] for i, (k, (lo, hi)) in enumerate(AFFINE_RANGES.items())}


def forward_maps(params: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(A (n, 2, 2), t (n, 2)) of p_out = A (p_in - centre) + centre + t in pixels (x right, y down), with
    A = R(angle) @ shear @ diag(scale_x, scale_y), R counter-clockwise on screen as capsnet.equivariance rotates."""
    p = {k: torch.as_tensor(params[k], dtype=torch.float64) for k in AFFINE_RANGES}
    a = p["angle_deg"] * (math.pi / 180.0)
    cos, sin, one, zero = torch.cos(a), torch.sin(a), torch.ones_like(a), torch.zeros_like(a)
    rot = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)
    shear = torch.stack([torch.stack([one, p["shear"]], -1), torch.stack([zero, one], -1)], -2)
    scale = torch.diag_embed(torch.stack([p["scale_x"], p["scale_y"]], -1))
    return rot @ shear @ scale, torch.stack([p["dx"], p["dy"]], -1)


def grid_matrices(A: torch.Tensor, t: torch.Tensor, size: int = IMAGE_SIZE) -> torch.Tensor:
    """(n, 2, 3) affine_grid matrices (output -> input, normalised coordinates, align_corners=False) for the forward
    maps (A, t): the image is square, so A is the same in normalised coordinates and t scales by 2/size."""
    inv = torch.linalg.inv(A)
    return torch.cat([inv, -(inv @ (t * (2.0 / size))[..., None])], -1).float()


def warp(images: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """images (N, 1, 28, 28) through their own matrices (N, 2, 3) with capsnet.equivariance.affine's conventions:
    bilinear, zero fill, clipped to [0, 1]."""
    grid = F.affine_grid(theta.to(images.device), list(images.shape), align_corners=False)
    return F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False).clamp_(0, 1)


def random_affine(images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Each image of (N, 1, 28, 28) under its own random affine (the module docstring's recipe); returns the warped
    images and the parameters drawn ({name: (N,)}), so a caller can show or check them."""
    params = random_affine_params(len(images), generator)
    A, t = forward_maps(params)
    return warp(images, grid_matrices(A, t, images.shape[-1])), params


def inside_frame(images: torch.Tensor, A: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(N,) bool: every stroke pixel (> INK) of each image lands, under its forward map, inside the frame, so the
    warp cuts off none of the digit."""
    size = images.shape[-1]
    c = (size - 1) / 2.0
    r = torch.arange(size, dtype=torch.float64)
    ys, xs = torch.meshgrid(r, r, indexing="ij")
    p = torch.stack([xs.flatten(), ys.flatten()], -1) - c  # (784, 2) pixel centres about the image centre
    q = torch.einsum("nij,pj->npi", A, p) + c + t[:, None, :]  # (N, 784, 2)
    ok = ((q >= -0.5) & (q <= size - 0.5)).all(-1)
    return (ok | (images.flatten(1) <= INK)).all(1)


def affine_accuracy(models: Mapping[str, nn.Module], images: torch.Tensor, labels: torch.Tensor,
                    seed: int = AFFINE_SEED, batch_size: int = 500) -> dict:  # fmt: skip
    """Accuracy of each model on the random affine copies of images (the same copies for every model), and the
    share of digits the affine keeps wholly inside the frame."""
    params = random_affine_params(len(images), torch.Generator().manual_seed(seed))
    A, t = forward_maps(params)
    correct, inside = {name: 0 for name in models}, 0
    for start in range(0, len(images), batch_size):
        rows = slice(start, start + batch_size)
        with torch.inference_mode():
            x = warp(images[rows], grid_matrices(A[rows], t[rows], images.shape[-1]))
        preds = predictions(models, x, batch_size)
        for name in models:
            correct[name] += int((preds[name] == labels[rows]).sum())
        inside += int(inside_frame(images[rows], A[rows], t[rows]).sum())
    n = max(1, len(images))
    return {"accuracy": {name: correct[name] / n for name in models}, "inside_frame": inside / n}


# --------------------------------------------------------------------------- the whole test set, both models


def measure(models: Mapping[str, nn.Module], images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500,
            progress=None) -> dict:  # fmt: skip
    """The card's `robustness` section (without command, runtime and date) for images (N, 1, 28, 28) in [0, 1]."""
    clean = {name: float((p == labels).double().mean()) for name, p in predictions(models, images, batch_size).items()}
    families = {}
    for name, magnitudes in GRID.items():
        acc = accuracy_under(models, images, labels, name, magnitudes, batch_size, clean, progress)
        families[name] = {"unit": UNITS[name], "magnitudes": list(magnitudes), "accuracy": acc}
    affine = affine_accuracy(models, images, labels, AFFINE_SEED, batch_size)
    return {
        "n": len(images), "models": list(models), "clean_accuracy": clean, "families": families,
        "random_affine": {"recipe": recipe(), "seed": AFFINE_SEED,
                          "ranges": {k: list(v) for k, v in AFFINE_RANGES.items()}, "ink_threshold": INK, **affine},
    }  # fmt: skip


def recipe() -> str:
    """The random affine's recipe: the module docstring's paragraph on it, on one line (stored with the results)."""
    paragraphs = (__doc__ or "").split("\n\n")
    return next((" ".join(p.split()) for p in paragraphs if p.startswith("The affNIST files")), "")


def table(result: dict) -> str:
    """The result as a plain-text table: one row per (family, magnitude), one accuracy column per model."""
    models = result["models"]
    lines = [f"{'family':<10} {'magnitude':>9}  " + "  ".join(f"{m:>8}" for m in models)]
    rows = [("clean", "", result["clean_accuracy"])]
    for fam, r in result["families"].items():
        rows += [(fam, f"{v:g}", {m: r["accuracy"][m][i] for m in models}) for i, v in enumerate(r["magnitudes"])]
    ra = result["random_affine"]
    rows.append(("affine", "random", ra["accuracy"]))
    for fam, mag, acc in rows:
        lines.append(f"{fam:<10} {mag:>9}  " + "  ".join(f"{100 * acc[m]:7.2f}%" for m in models))
    lines.append(f"{result['n']} MNIST test digits; the random affine (seed {ra['seed']}) keeps "
                 f"{100 * ra['inside_frame']:.1f}% of them "
                 f"wholly inside the 28x28 frame (every pixel > {ra['ink_threshold']:g})")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from .baseline import default_cnn_checkpoint, load_pretrained_cnn
    from .checkpoint import CheckpointError, default_checkpoint, load_pretrained
    from .cli import checkpoint_flags, error_line, store_in_card
    from .data import MNISTUnavailable, load_mnist

    ap = argparse.ArgumentParser(prog="python -m capsnet.robustness", description=__doc__.split("\n\n")[0],
                                 parents=[checkpoint_flags()])  # fmt: skip
    ap.add_argument("--cnn-checkpoint", default=None, help="CNN baseline weights; default: checkpoints/cnn.safetensors")
    ap.add_argument("--limit", type=int, default=None, help="only the first N test digits, printed, not stored")
    ap.add_argument("--batch-size", type=int, default=500, help="images per forward pass")
    args = ap.parse_args(argv)
    if (args.limit is not None and args.limit < 1) or args.batch_size < 1:
        print("error: --limit and --batch-size must be at least 1", file=sys.stderr)
        return 2
    weights = Path(args.checkpoint) if args.checkpoint else default_checkpoint()
    try:  # not cli.model_and_test_set: the CNN's checkpoint too
        capsnet, cnn = load_pretrained(weights), load_pretrained_cnn(args.cnn_checkpoint)
        test = load_mnist(args.data_dir, train=False)
    except (CheckpointError, MNISTUnavailable) as e:
        print(error_line(e), file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    images, labels = test.images[: args.limit].unsqueeze(1).float().div(255.0), test.labels[: args.limit]
    def progress(name, value, acc):
        print(f"{name} {value:g}: " + ", ".join(f"{m} {100 * a:.2f}%" for m, a in acc.items()), flush=True)

    result = measure({"capsnet": capsnet, "cnn": cnn}, images, labels, args.batch_size, progress)
    result.update({
        "grid": {k: list(v) for k, v in GRID.items()},
        "cnn_checkpoint": str(args.cnn_checkpoint or default_cnn_checkpoint()),
        "command": " ".join(["python -m capsnet.robustness", *(sys.argv[1:] if argv is None else argv)]),
        "runtime_s": round(time.perf_counter() - t0, 1), "torch_threads": torch.get_num_threads(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    })  # fmt: skip
    print(table(result))
    print(f"took {result['runtime_s']} s")
    if args.limit is not None:
        print("not stored in the model card: --limit evaluates only part of the test set")
        return 0
    return store_in_card(weights, robustness=result)


__all__ = ["AFFINE_RANGES", "AFFINE_SEED", "GRID", "accuracy_under", "affine_accuracy", "forward_maps", "grid_matrices",
           "inside_frame", "main", "measure", "predictions", "random_affine", "random_affine_params", "table", "warp"]


if __name__ == "__main__":
    sys.exit(main())
