"""Equivariance of the digit capsules' pose: transform the input and see which pose dimensions follow.

Capsule networks claim the length of a digit capsule is invariant (the digit is present) while its pose
moves regularly with how the digit looks. Here one input is swept through one transform at a time
(rotation, scale, shift in x or y, stroke thickness), every transformed copy goes through ONE batched
forward pass, and each of the 16 pose dimensions is compared with the transform value by Spearman's rank
correlation (monotone, not necessarily linear, tracking).

    python -m capsnet.equivariance [--checkpoint PATH] [--data-dir DIR] [--per-class N]

measures the median |rho| of every (class, dimension, transform) over test digits and stores it in the
model card (`equivariance`), where the explorer reads it.

Conventions (shared with the explorer's input transforms): a positive angle rotates the digit
counter-clockwise as displayed, scale > 1 enlarges it, shift_x moves it right and shift_y down (pixels),
all about the image centre, with zero (background) fill; thickness > 0 dilates the strokes and < 0 erodes
them, one unit being one grey-scale morphological step with a 3x3 cross (fractions blend linearly between
neighbouring steps). Pixels are clipped to [0, 1].
"""
from __future__ import annotations

import argparse
import hashlib
import math
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from .model import CapsNet

IMAGE_SIZE = 28
TRANSFORMS = ("rotation", "scale", "shift_x", "shift_y", "thickness")
RANGES = {  # the sweep ranges the explorer and the offline matrix use
    "rotation": (-45.0, 45.0),
    "scale": (0.7, 1.3),
    "shift_x": (-4.0, 4.0),
    "shift_y": (-4.0, 4.0),
    "thickness": (-1.0, 1.0),
}
IDENTITY = {"rotation": 0.0, "scale": 1.0, "shift_x": 0.0, "shift_y": 0.0, "thickness": 0.0}
UNITS = {"rotation": "degrees, counter-clockwise", "scale": "factor", "shift_x": "px, right",
         "shift_y": "px, down", "thickness": "morphological steps (3x3 cross): + dilate, - erode"}  # fmt: skip
LIMITS = {  # what an API caller may ask for: beyond these the digit leaves the 28x28 frame or vanishes
    "rotation": (-180.0, 180.0),
    "scale": (0.25, 3.0),
    "shift_x": (-14.0, 14.0),
    "shift_y": (-14.0, 14.0),
    "thickness": (-3.0, 3.0),
}
SWEEP_POINTS = 19  # the explorer's sweep (identity in the middle)
OFFLINE_POINTS = 9  # per transform and digit in the offline matrix: 45,000 forward passes for 100 digits a class
MAX_VALUES = 64  # values in one request (one batched forward pass)


def sweep_values(name: str, n: int = SWEEP_POINTS) -> list[float]:
    """n evenly spaced values over the transform's range; an odd n puts the identity in the middle."""
    lo, hi = RANGES[check_name(name)]
    return [round(lo + (hi - lo) * i / (n - 1), 6) for i in range(n)] if n > 1 else [IDENTITY[name]]


def check_name(name: str) -> str:
    if name not in TRANSFORMS:
        raise ValueError(f"unknown transform {name!r}: use one of {', '.join(TRANSFORMS)}")
    return name


def check_values(name: str, values: Sequence[float]) -> list[float]:
    """Finite values inside the transform's limits, at most MAX_VALUES; a ValueError says what is wrong."""
    lo, hi = LIMITS[check_name(name)]
    try:
        vals = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"values must be a list of numbers, got {values!r:.80}") from None
    if not vals:
        raise ValueError("values is empty: give at least one value")
    if len(vals) > MAX_VALUES:
        raise ValueError(f"{len(vals)} values: at most {MAX_VALUES} per request")
    bad = [v for v in vals if not (math.isfinite(v) and lo <= v <= hi)]
    if bad:
        raise ValueError(f"{name} values must lie in [{lo:g}, {hi:g}] ({UNITS[name]}); got {bad[0]!r}")
    return vals


# --------------------------------------------------------------------------- transforms on (B,1,28,28)


def affine_matrices(angles_deg, scales, dxs, dys, size: int = IMAGE_SIZE) -> torch.Tensor:
    """(N, 2, 3) affine_grid matrices (output -> input, normalised coordinates) for the forward map
    p_out = R(angle) S (p_in - centre) + centre + (dx, dy); arguments broadcast."""
    f64 = dict(dtype=torch.float64)
    a = torch.as_tensor(angles_deg, **f64) * (math.pi / 180.0)
    s = torch.as_tensor(scales, **f64)
    tx, ty = torch.as_tensor(dxs, **f64) * (2.0 / size), torch.as_tensor(dys, **f64) * (2.0 / size)
    a, s, tx, ty = (t.reshape(-1) for t in torch.broadcast_tensors(a, s, tx, ty))
    if (s <= 0).any():
        raise ValueError("scale must be positive")
    cos, sin = torch.cos(a), torch.sin(a)
    # Forward (x right, y down), counter-clockwise on screen: s * [[cos, sin], [-sin, cos]]; its inverse:
    inv = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2) / s[:, None, None]
    t = torch.stack([tx, ty], -1)[..., None]
    return torch.cat([inv, -(inv @ t)], -1).float()


def affine(images: torch.Tensor, angles_deg=0.0, scales=1.0, dxs=0.0, dys=0.0) -> torch.Tensor:
    """Warp each image of a (B,1,28,28) batch by its own (broadcast) parameters; bilinear, zero fill, [0, 1]."""
    theta = affine_matrices(angles_deg, scales, dxs, dys, images.shape[-1]).to(images.device)
    if theta.shape[0] != images.shape[0]:
        theta = theta.expand(images.shape[0], 2, 3) if theta.shape[0] == 1 else theta
        images = images.expand(theta.shape[0], -1, -1, -1) if images.shape[0] == 1 else images
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    out = F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.clamp_(0.0, 1.0)


def dilate(images: torch.Tensor) -> torch.Tensor:
    """One grey-scale dilation step with a 3x3 cross: each pixel becomes the max of itself and its 4 neighbours."""
    p = F.pad(images, (1, 1, 1, 1))
    return torch.stack([images, p[..., 1:-1, :-2], p[..., 1:-1, 2:], p[..., :-2, 1:-1], p[..., 2:, 1:-1]]).amax(0)


def erode(images: torch.Tensor) -> torch.Tensor:
    """One grey-scale erosion step with a 3x3 cross (outside the image counts as background)."""
    p = F.pad(images, (1, 1, 1, 1))
    return torch.stack([images, p[..., 1:-1, :-2], p[..., 1:-1, 2:], p[..., :-2, 1:-1], p[..., 2:, 1:-1]]).amin(0)


def thickness(images: torch.Tensor, amounts) -> torch.Tensor:
    """Thicken (amount > 0) or thin (< 0) the strokes of each image by its own amount, in morphological steps;
    a fraction blends linearly between the two neighbouring whole steps, so ink mass changes monotonically."""
    amounts = torch.as_tensor(amounts, dtype=torch.float32, device=images.device).reshape(-1)
    if amounts.numel() == 1 and images.shape[0] != 1:
        amounts = amounts.expand(images.shape[0])
    if images.shape[0] == 1 and amounts.numel() != 1:
        images = images.expand(amounts.numel(), -1, -1, -1)
    steps = int(math.ceil(float(amounts.abs().max()))) if amounts.numel() else 0
    images = images.float()
    ladder = {0: images}  # ladder[k]: k dilations (k > 0) or -k erosions of every image
    for k in range(1, steps + 1):
        ladder[k], ladder[-k] = dilate(ladder[k - 1]), erode(ladder[-(k - 1)])
    lo = torch.floor(amounts)
    frac = (amounts - lo).view(-1, 1, 1, 1)
    out = torch.empty_like(images)
    for k in sorted({int(v) for v in lo.tolist()}):
        sel = lo == k
        below = ladder[k][sel]
        above = ladder[k + 1][sel] if k + 1 in ladder else below
        out[sel] = torch.lerp(below, above, frac[sel])
    return out.clamp_(0.0, 1.0)


def apply_transform(images: torch.Tensor, name: str, values: Sequence[float]) -> torch.Tensor:
    """Every image of a (B,1,28,28) batch under every value: (B, n, 1, 28, 28). The identity value returns the
    input exactly (so the sweep's identity point is the untransformed forward pass)."""
    check_name(name)
    B, n = images.shape[0], len(values)
    vals = torch.as_tensor(list(values), dtype=torch.float64)
    flat = images.float().repeat_interleave(n, 0)  # (B*n, 1, 28, 28), image-major
    v = vals.repeat(B)
    if name == "thickness":
        out = thickness(flat, v)
    else:
        kw = {"rotation": "angles_deg", "scale": "scales", "shift_x": "dxs", "shift_y": "dys"}[name]
        out = affine(flat, **{kw: v})
    same = v == IDENTITY[name]
    if same.any():
        out[same.to(out.device)] = flat[same.to(out.device)].clamp(0.0, 1.0)
    return out.view(B, n, *images.shape[1:])


# --------------------------------------------------------------------------- rank correlation


def ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks along the last dimension (1..n), ties getting their average rank."""
    x = x.double().contiguous()
    order = x.argsort(dim=-1, stable=True)
    sorted_x = x.gather(-1, order)
    n = x.shape[-1]
    pos = torch.arange(1, n + 1, dtype=torch.float64, device=x.device).expand_as(x)
    # average the positions within each run of equal values: group id = number of value changes so far
    new_run = torch.ones_like(sorted_x, dtype=torch.bool)
    new_run[..., 1:] = sorted_x[..., 1:] != sorted_x[..., :-1]
    group = new_run.long().cumsum(-1) - 1
    total = torch.zeros_like(pos).scatter_add_(-1, group, pos)
    count = torch.zeros_like(pos).scatter_add_(-1, group, torch.ones_like(pos))
    avg = (total / count.clamp(min=1)).gather(-1, group)
    return torch.empty_like(avg).scatter_(-1, order, avg)


def spearman(values, y: torch.Tensor) -> torch.Tensor:
    """Spearman's rho between `values` (n,) and every row of y (..., n): Pearson correlation of the ranks.
    A constant row (no ordering to follow) gives 0."""
    y = torch.as_tensor(y)
    rx = ranks(torch.as_tensor(values, dtype=torch.float64, device=y.device).expand(y.shape))
    ry = ranks(y)
    rx, ry = rx - rx.mean(-1, keepdim=True), ry - ry.mean(-1, keepdim=True)
    den = (rx.square().sum(-1) * ry.square().sum(-1)).sqrt()
    rho = (rx * ry).sum(-1) / den.clamp(min=1e-300)
    return torch.where(den > 0, rho, torch.zeros_like(rho)).clamp(-1.0, 1.0)


def tracking_order(rho, spread=None) -> list[int]:
    """Dimensions by decreasing |rho| (to 3 decimals), then decreasing spread, then index."""
    r = [abs(float(v)) if math.isfinite(float(v)) else 0.0 for v in rho]
    sp = [float(v) for v in spread] if spread is not None else [0.0] * len(r)
    return sorted(range(len(r)), key=lambda d: (-round(r[d], 3), -sp[d], d))


# --------------------------------------------------------------------------- one input, one sweep


@dataclass
class TransformResponse:
    """One input swept through one transform: what the digit capsules did at each value."""

    transform: str
    values: list[float]  # (n,)
    lengths: torch.Tensor  # (n, 10) digit-capsule lengths at each value
    poses: torch.Tensor  # (n, 16) pose of `digit_class`'s capsule at each value
    digit_class: int  # predicted on the untransformed input
    images: torch.Tensor  # (n, 1, 28, 28) the transformed inputs
    baseline: torch.Tensor | None = None  # (n, 10) the CNN baseline's softmax on the same inputs (with_baseline)

    @property
    def rho(self) -> torch.Tensor:
        """(16,) Spearman rho of each pose dimension with the transform value."""
        return spearman(self.values, self.poses.T)

    @property
    def spread(self) -> torch.Tensor:
        """(16,) how far each pose dimension moves over the sweep (max - min)."""
        return self.poses.amax(0) - self.poses.amin(0)

    def tracking(self, top: int = 3) -> list[int]:
        """The `top` dimensions with the largest |rho|, strongest first; among equal |rho| (to 3 decimals; smooth
        sweeps give many +-1) the one that moves furthest first."""
        return tracking_order(self.rho, self.spread)[:top]

    def to_json(self) -> dict:
        return {
            "transform": self.transform,
            "values": [float(v) for v in self.values],
            "lengths": [[round(float(x), 6) for x in row] for row in self.lengths.tolist()],
            "poses": [[round(float(x), 6) for x in row] for row in self.poses.tolist()],
            "digit_class": self.digit_class,
            **({} if self.baseline is None else
               {"cnn_probabilities": [[round(float(x), 6) for x in row] for row in self.baseline.tolist()]}),
        }


def with_baseline(r: TransformResponse, cnn: torch.nn.Module | None) -> TransformResponse:
    """The sweep with the CNN baseline's softmax probabilities on the same transformed inputs beside the capsule
    lengths (unchanged without a CNN): the Transforms tab asks whether capsules hold up better than a CNN."""
    if cnn is None:
        return r
    from .baseline import probabilities

    return replace(r, baseline=probabilities(cnn, r.images))


@torch.inference_mode()
def transform_response(model: CapsNet, image: torch.Tensor, name: str, values: Sequence[float] | None = None,
                       routing_iterations: int | None = None) -> TransformResponse:  # fmt: skip
    """Sweep one (1,28,28) / (28,28) / (1,1,28,28) input through `values` of transform `name` (default: the
    19-point sweep) in ONE batched forward pass. When the identity is not among the values, the untransformed
    input rides in the same batch to decide the class whose pose is reported."""
    values = sweep_values(name) if values is None else check_values(name, values)
    return transform_responses(model, image, {name: values}, routing_iterations)[name]


@torch.inference_mode()
def transform_responses(model: CapsNet, image: torch.Tensor, sweeps: dict[str, Sequence[float] | None],
                        routing_iterations: int | None = None) -> dict[str, TransformResponse]:  # fmt: skip
    """Several sweeps of one input ({transform name: values, None = the 19-point sweep}) in ONE batched forward
    pass. The class whose pose is reported (the same for every sweep) is the one predicted on the untransformed
    input: an identity value of any sweep, else the input appended to the batch."""
    device = next(model.parameters()).device
    x = torch.as_tensor(image, dtype=torch.float32).reshape(1, 1, IMAGE_SIZE, IMAGE_SIZE).to(device)
    grids = {n: sweep_values(n) if v is None else check_values(n, v) for n, v in sweeps.items()}
    batches = [apply_transform(x, n, v)[0] for n, v in grids.items()]  # each (n_values, 1, 28, 28)
    flat = [v == IDENTITY[n] for n, vs in grids.items() for v in vs]
    extra = not any(flat)  # no identity value in any sweep: the untransformed input rides along
    out = model(torch.cat([*batches, x.clamp(0.0, 1.0)] if extra else batches), routing_iterations=routing_iterations)
    k = int(out.lengths[-1 if extra else flat.index(True)].argmax())
    result, start = {}, 0
    for (name, values), batch in zip(grids.items(), batches):
        rows = slice(start, start + len(values))
        result[name] = TransformResponse(name, values, out.lengths[rows].float().cpu(), out.poses[rows, k].float().cpu(),
                                         k, batch.cpu())  # fmt: skip
        start += len(values)
    return result


# --------------------------------------------------------------------------- the whole test set, offline


@torch.inference_mode()
def equivariance_matrix(model: CapsNet, images: torch.Tensor, labels: torch.Tensor, per_class: int = 100,
                        points: int = OFFLINE_POINTS, batch_size: int = 360, progress=None) -> dict:  # fmt: skip
    """Per class: the median over its first `per_class` correctly classified digits of |rho| between each pose
    dimension (of that class's capsule) and each transform, as a 16 x 5 matrix; also the signed median rho.

    images: (N,1,28,28) float in [0,1] in test-set order; labels: (N,)."""
    device = next(model.parameters()).device
    grids = {name: sweep_values(name, points) for name in TRANSFORMS}
    k_cls = int(model.config.num_classes)
    abs_rho, signed, counts = [], [], []
    for c in range(k_cls):
        cand = torch.nonzero(labels == c).flatten()
        chosen = []
        step = min(batch_size, per_class + per_class // 10 + 1)  # ~1% are misclassified: rarely a second batch
        for start in range(0, len(cand), step):  # the first per_class correctly classified digits
            idx = cand[start : start + step]
            pred = model(images[idx].to(device)).lengths.argmax(1).cpu()
            chosen.extend(idx[pred == c].tolist())
            if len(chosen) >= per_class:
                break
        chosen = torch.tensor(chosen[:per_class], dtype=torch.long)
        counts.append(len(chosen))
        rho = torch.zeros(len(chosen), model.config.digit_dim, len(TRANSFORMS), dtype=torch.float64)
        per_batch = max(1, batch_size // points)
        for t, name in enumerate(TRANSFORMS):
            for start in range(0, len(chosen), per_batch):
                idx = chosen[start : start + per_batch]
                x = apply_transform(images[idx].to(device), name, grids[name])  # (b, n, 1, 28, 28)
                poses = model(x.flatten(0, 1)).poses[:, c].view(len(idx), points, -1).cpu()  # (b, n, 16)
                rho[start : start + len(idx), :, t] = spearman(grids[name], poses.transpose(1, 2))
            if progress:
                progress(c, name)
        abs_rho.append(rho.abs().median(0).values if len(chosen) else torch.full(rho.shape[1:], float("nan")))
        signed.append(rho.median(0).values if len(chosen) else torch.full(rho.shape[1:], float("nan")))
    return {
        "transforms": list(TRANSFORMS),
        "units": {name: UNITS[name] for name in TRANSFORMS},
        "values": grids,
        "median_abs_rho": [[[round(float(v), 4) for v in row] for row in m.tolist()] for m in abs_rho],
        "median_rho": [[[round(float(v), 4) for v in row] for row in m.tolist()] for m in signed],
        "digits_per_class": counts,
        "method": (
            f"Each digit is swept through each transform at {points} evenly spaced values (one batched forward "
            "pass per batch of digits); Spearman's rho between the transform value and each of the 16 pose "
            "dimensions of the digit's own class capsule; per class, the median over the first "
            f"{per_class} correctly classified test digits of that class (test-set order) of |rho| "
            "(median_abs_rho, [class][dimension][transform]) and of rho (median_rho)."
        ),
    }


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main(argv: list[str] | None = None) -> int:
    from .cli import checkpoint_flags, model_and_test_set, store_in_card

    ap = argparse.ArgumentParser(prog="python -m capsnet.equivariance", description=__doc__.split("\n\n")[0],
                                 parents=[checkpoint_flags()])
    ap.add_argument("--per-class", type=int, default=100, help="test digits per class (>= 100 for the model card)")
    ap.add_argument("--points", type=int, default=OFFLINE_POINTS, help="values per transform sweep")
    ap.add_argument("--batch-size", type=int, default=360, help="images per forward pass")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    ap.add_argument("--dry-run", action="store_true", help="print the matrix, do not write the model card")
    args = ap.parse_args(argv)
    if args.per_class < 1 or args.points < 3 or args.batch_size < 1:
        ap.error("--per-class >= 1, --points >= 3 and --batch-size >= 1 are required")
    if args.threads:
        torch.set_num_threads(max(1, args.threads))
    loaded = model_and_test_set(args.checkpoint, args.data_dir)
    if loaded is None:
        return 2
    weights, model, test = loaded
    t0 = time.perf_counter()
    images = test.images.unsqueeze(1).float().div_(255.0)
    result = equivariance_matrix(model, images, test.labels, args.per_class, args.points, args.batch_size,
                                 progress=lambda c, name: print(f"class {c} {name} done", flush=True))  # fmt: skip
    seconds = time.perf_counter() - t0
    result.update({
        "seconds": round(seconds, 1),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "weights_sha256": _sha256(weights),
        "command": " ".join(["python -m capsnet.equivariance", *(sys.argv[1:] if argv is None else argv)]),
    })  # fmt: skip
    names = [n[:9] for n in TRANSFORMS]
    for c, m in enumerate(result["median_abs_rho"]):
        best = {name: max(range(len(m)), key=lambda d: m[d][t]) for t, name in enumerate(TRANSFORMS)}
        print(f"class {c} ({result['digits_per_class'][c]} digits): " +
              ", ".join(f"{names[t]} dim {best[n]} |rho| {m[best[n]][t]:.2f}" for t, n in enumerate(TRANSFORMS)))  # fmt: skip
    print(f"{seconds:.1f} s on {torch.get_num_threads()} torch threads")
    if min(result["digits_per_class"]) < 100:
        print("note: fewer than 100 digits in some class; the model card asks for >= 100", file=sys.stderr)
    if args.dry_run:
        return 0
    return store_in_card(weights, equivariance=result)


if __name__ == "__main__":
    sys.exit(main())
