"""What each pose dimension encodes, per class: the data's range, the decoded effect of a step, and a label that
says how strong it is against the class's own variety.

`python -m capsnet.atlas [--checkpoint PATH] [--data-dir DIR] [--per-class N] [--held-out N]` stores the result
in the model card (`dimension_labels`, `dimension_labels_meta`), where the explorer reads it, and the difference
maps (10 x 16 x 28 x 28, float16) and the poses of the digits measured (10 x N x 16) beside the weights
(`<name>.atlas.safetensors`, `load_maps`, `load_poses`).

For one class the digits of that class go through the network and the true class's digit capsule is read:
- the pose statistics of every dimension (percentiles and standard deviation σ over the digits);
- a step of ±1σ (the data's own scale) and of ±0.25 (the paper's Figure 4) in one dimension at a time, decoded:
  the signed mean difference map and the mean change of each measure (capsnet.dimensions.measure), divided by how
  much that measure varies among the class's own reconstructions (a z-score: 1 = one standard deviation);
- a label: the measure with the largest |z| of the ±1σ step, or "local: more / less ink <region>" when no measure
  reaches LOCAL_Z, with the ninth of the image where the difference map changes the ink most;
- the encoder's view beside it: the transform the dimension tracks best on input images (the model card's
  `equivariance`, median |Spearman ρ|) and a flag where that transform is not what the decoder's label says.

`held_out_agreement` checks the labels on other digits: how often the labelled measure is still the largest |z|.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from . import dimensions as dm
from .model import CapsNet

DEFAULT_PER_CLASS = 100
PERCENTILES = (1, 5, 25, 50, 75, 95, 99)
PAPER_STEP = 0.25
LOCAL_Z = 0.25  # a ±1σ step moving no measure by a quarter of its spread: the label names the region instead
TRACKS = 0.5  # median |ρ| from which the encoder counts as tracking a transform
# which decoder measures each input transform of capsnet.equivariance moves
TRANSFORM_MEASURES = {"rotation": {"rotation", "slant"}, "scale": {"width", "height", "ink"}, "shift_x": {"shift_x"},
                      "shift_y": {"shift_y"}, "thickness": {"stroke", "ink"}}  # fmt: skip
ROWS, COLS = ("top", "middle", "bottom"), ("left", "centre", "right")


@torch.inference_mode()
def class_poses(model: CapsNet, images: torch.Tensor, batch_size: int = 250) -> torch.Tensor:
    """(n, 10, 16) digit-capsule poses of (n, 1, 28, 28) images in [0, 1]."""
    return torch.cat([model(images[i:i + batch_size]).poses for i in range(0, len(images), batch_size)])


def pose_statistics(poses: torch.Tensor, cls: int) -> list[dict]:
    """Per dimension of class `cls`'s capsule: percentiles PERCENTILES and the standard deviation, over the digits."""
    p = poses[:, cls].double()
    q = torch.quantile(p, torch.tensor([v / 100 for v in PERCENTILES], dtype=torch.float64), dim=0)  # (7, 16)
    std = p.std(0)
    return [{**{f"p{v}": round(float(q[i, d]), 4) for i, v in enumerate(PERCENTILES)}, "std": round(float(std[d]), 4)}
            for d in range(p.shape[1])]  # fmt: skip


@torch.inference_mode()
def step_effects(model: CapsNet, poses: torch.Tensor, cls: int, steps: torch.Tensor) -> dict:
    """Decode each dimension of class `cls` moved by ±steps[d]: {"z": (16, M) standardized mean changes of the
    measures (dm.EFFECTS order), "change": (16, M) in natural units, "maps": (16, 28, 28) mean (up - down) / 2}."""
    dims = poses.shape[-1]
    base = model.decode(poses, cls)[:, 0]
    spread = torch.stack([v for v in dm.measure(base).values()], 1).std(0).clamp(min=1e-6)  # (M,)
    edited = poses[None].repeat(2 * dims, 1, 1, 1)
    for d in range(dims):
        edited[2 * d, :, cls, d] += steps[d]
        edited[2 * d + 1, :, cls, d] -= steps[d]
    decoded = model.decode(edited.flatten(0, 1), cls)[:, 0].reshape(dims, 2, len(poses), *base.shape[1:])
    change, maps = [], []
    for d in range(dims):
        up, down = decoded[d, 0], decoded[d, 1]
        mu, md = dm.measure(up), dm.measure(down)
        change.append(torch.stack([((mu[e] - md[e]) / 2).mean() for e in dm.EFFECTS]))
        maps.append(((up - down) / 2).mean(0).double())
    change = torch.stack(change)
    return {"z": change / spread, "change": change, "maps": torch.stack(maps)}


def region(diff_map: torch.Tensor) -> tuple[str, int]:
    """Where a difference map changes the ink most: the ninth of the image (3 x 3 blocks) with the largest |sum of
    the change|, named "top-left" ... "bottom-right" ("centre" in the middle), and the sign of that change."""
    h, w = diff_map.shape
    rows, cols = torch.linspace(0, h, 4).round().long(), torch.linspace(0, w, 4).round().long()
    sums = torch.stack([torch.stack([diff_map[rows[i]:rows[i + 1], cols[j]:cols[j + 1]].sum() for j in range(3)])
                        for i in range(3)])  # fmt: skip
    i, j = divmod(int(sums.abs().argmax()), 3)
    where = "centre" if (i, j) == (1, 1) else f"{ROWS[i]}-{COLS[j]}"
    return where, 1 if float(sums[i, j]) >= 0 else -1


def encoder_view(card: dict | None, cls: int, dim: int) -> dict | None:
    """{"transform", "abs_rho"}: the input transform this dimension tracks best (model card `equivariance`)."""
    eq = (card or {}).get("equivariance") or {}
    try:
        rhos = eq["median_abs_rho"][cls][dim]
        best = max(range(len(rhos)), key=lambda t: rhos[t])
        return {"transform": eq["transforms"][best], "abs_rho": round(float(rhos[best]), 3)}
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def disagrees(effect: str, encoder: dict | None) -> bool:
    """The encoder tracks a transform (|ρ| >= TRACKS) that does not move the decoder's labelled measure."""
    if encoder is None or encoder["abs_rho"] < TRACKS:
        return False
    return effect not in TRANSFORM_MEASURES.get(encoder["transform"], set())


def label_entry(z: torch.Tensor, change: torch.Tensor, z_paper: torch.Tensor, diff_map: torch.Tensor,
                stats: dict, encoder: dict | None) -> dict:
    """One dimension's entry: the largest standardized effect of a +1σ step (or "local"), its size and sign, the
    same for the paper's +0.25, the data's range and the encoder's view."""
    i = int(z.abs().argmax())
    effect, sign = dm.EFFECTS[i], 1 if float(z[i]) >= 0 else -1
    where, more = region(diff_map)
    local = float(z.abs().max()) < LOCAL_Z
    label = f"local: {'more' if more > 0 else 'less'} ink {where}" if local else dm.WORDS[(effect, sign)]
    effect = "local" if local else effect
    return {
        "label": label, "effect": effect, "sign": sign, "z": round(float(z[i]), 3),
        "strength": 0.0 if local else round(abs(float(change[i])), 4),
        "z_all": {e: round(float(v), 3) for e, v in zip(dm.EFFECTS, z)},
        "z_paper": {e: round(float(v), 3) for e, v in zip(dm.EFFECTS, z_paper)},
        "region": where, "pose": stats, "encoder": encoder, "disagrees": disagrees(effect, encoder),
    }  # fmt: skip


def analyse_class(model: CapsNet, images: torch.Tensor, cls: int, card: dict | None = None
                  ) -> tuple[list[dict], torch.Tensor, torch.Tensor]:
    """The 16 entries of class `cls` from its digits `images` (n, 1, 28, 28), their ±1σ difference maps
    (16, 28, 28): the mean of (decoded at +1σ - decoded at -1σ) / 2, and the digits' poses (n, 16)."""
    poses = class_poses(model, images)
    stats = pose_statistics(poses, cls)
    sigma = torch.tensor([s["std"] for s in stats], dtype=poses.dtype).clamp(min=1e-3)
    by_sigma = step_effects(model, poses, cls, sigma)
    by_paper = step_effects(model, poses, cls, torch.full_like(sigma, PAPER_STEP))
    change = by_sigma["change"].clone()  # natural units: ink relative to the class's mean, slant in degrees
    with torch.inference_mode():
        mean_ink = dm.ink_mass(model.decode(poses, cls)[:, 0]).mean()
    change[:, dm.EFFECTS.index("ink")] /= mean_ink
    change[:, dm.EFFECTS.index("slant")] = torch.rad2deg(torch.atan(change[:, dm.EFFECTS.index("slant")]))
    rows = [label_entry(by_sigma["z"][d], change[d], by_paper["z"][d], by_sigma["maps"][d], stats[d],
                        encoder_view(card, cls, d)) for d in range(len(stats))]  # fmt: skip
    return rows, by_sigma["maps"], poses[:, cls]


def held_out_agreement(model: CapsNet, images: torch.Tensor, labels: torch.Tensor, table: list[list[dict]],
                       per_class: int) -> dict:
    """On other digits (the first `per_class` of each class in images/labels), with the labels' own ±1σ steps:
    the share of global labels whose measure is still the largest |z|, and the share whose sign also holds."""
    hits = signs = total = 0
    for cls, rows in enumerate(table):
        idx = torch.nonzero(labels == cls).flatten()[:per_class]
        poses = class_poses(model, images[idx])
        sigma = torch.tensor([r["pose"]["std"] for r in rows], dtype=poses.dtype).clamp(min=1e-3)
        z = step_effects(model, poses, cls, sigma)["z"]
        for d, r in enumerate(rows):
            if r["effect"] not in dm.EFFECTS:
                continue
            total += 1
            top = int(z[d].abs().argmax())
            hits += dm.EFFECTS[top] == r["effect"]
            signs += (float(z[d, dm.EFFECTS.index(r["effect"])]) >= 0) == (r["sign"] > 0)
    return {"global_labels": total, "largest_effect": round(hits / max(total, 1), 4),
            "sign": round(signs / max(total, 1), 4)}  # fmt: skip


def summary(table: list[list[dict]]) -> dict:
    """Counts for the note and the model card: labels by effect, local share, encoder disagreements."""
    entries = [r for rows in table for r in rows]
    by_effect: dict[str, int] = {}
    for r in entries:
        by_effect[r["effect"]] = by_effect.get(r["effect"], 0) + 1
    tracked = [r for r in entries if r["encoder"] and r["encoder"]["abs_rho"] >= TRACKS]
    return {"labels_by_effect": dict(sorted(by_effect.items(), key=lambda kv: -kv[1])),
            "local_share": round(by_effect.get("local", 0) / len(entries), 4),
            "encoder_tracked": len(tracked),
            "encoder_agrees": round(sum(not r["disagrees"] for r in tracked) / max(len(tracked), 1), 4)}  # fmt: skip


def label_dimensions(model: CapsNet, images: torch.Tensor, labels: torch.Tensor, per_class: int = DEFAULT_PER_CLASS,
                     card: dict | None = None) -> tuple[list[list[dict]], torch.Tensor, torch.Tensor]:
    """capsnet.atlas.analyse_class for every class, on the first `per_class` digits of each class in images
    (N, 1, 28, 28) in [0, 1] / labels (N,); `card` gives the encoder's view (its `equivariance`). 10 lists of 16,
    the difference maps (10, 16, 28, 28) and the digits' poses (10, per_class, 16; NaN rows where a class has
    fewer digits)."""
    table, maps, poses = [], [], []
    for cls in range(model.config.num_classes):
        idx = torch.nonzero(labels == cls).flatten()[:per_class]
        if len(idx) < 2:
            raise ValueError(f"need at least 2 digits of class {cls} to measure, got {len(idx)}")
        rows, class_maps, digit_poses = analyse_class(model, images[idx], cls, card)
        table.append(rows)
        maps.append(class_maps)
        poses.append(digit_poses)
    n = max(len(p) for p in poses)
    padded = torch.full((len(poses), n, poses[0].shape[1]), float("nan"), dtype=torch.float32)
    for cls, p in enumerate(poses):
        padded[cls, : len(p)] = p.float()
    return table, torch.stack(maps), padded


def save_maps(weights, maps: torch.Tensor, poses: torch.Tensor | None = None) -> None:
    """The difference maps (float16) and the digits' poses (float32) beside `weights` (checkpoint.atlas_path),
    atomically."""
    from .checkpoint import atlas_path, save_tensors

    tensors = {"maps": maps.to(torch.float16), **({} if poses is None else {"poses": poses.float()})}
    save_tensors(atlas_path(weights), tensors, {"step": "±1 standard deviation"})


def load_atlas(weights=None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(maps, poses) stored beside `weights` (default: the default checkpoint), read once (safetensors: no pickle):
    the difference maps (10, 16, 28, 28) and the poses of the digits measured (10, N, 16, NaN rows for missing
    digits), both float32; each None when the file lacks it, has it in another shape, or cannot be read."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .checkpoint import atlas_path, default_checkpoint

    path = atlas_path(weights if weights is not None else default_checkpoint())
    try:
        tensors = load_file(str(path)) if path.is_file() else {}
    except (SafetensorError, OSError):
        tensors = {}
    maps, poses = tensors.get("maps"), tensors.get("poses")
    maps = maps.float() if maps is not None and maps.dim() == 4 and maps.shape[-2:] == (28, 28) else None
    return maps, poses.float() if poses is not None and poses.dim() == 3 else None


def load_maps(weights=None) -> torch.Tensor | None:
    """The difference maps of load_atlas."""
    return load_atlas(weights)[0]


def load_poses(weights=None) -> torch.Tensor | None:
    """The digits' poses of load_atlas."""
    return load_atlas(weights)[1]


def main(argv: list[str] | None = None) -> int:
    from .checkpoint import (CheckpointError, atlas_path, default_checkpoint, load_model_card, load_pretrained,
                             update_model_card)
    from .cli import checkpoint_flags
    from .data import MNISTUnavailable, load_mnist

    ap = argparse.ArgumentParser(prog="python -m capsnet.atlas", description=__doc__.split("\n\n")[0],
                                 parents=[checkpoint_flags()])
    ap.add_argument("--per-class", type=int, default=DEFAULT_PER_CLASS, help="test digits per class (default 100)")
    ap.add_argument("--held-out", type=int, default=DEFAULT_PER_CLASS,
                    help="training digits per class to check the labels on (default 100; 0: no check)")
    args = ap.parse_args(argv)
    if args.per_class < 2 or args.held_out < 0:
        print("error: --per-class must be at least 2 and --held-out at least 0", file=sys.stderr)
        return 2
    weights = args.checkpoint if args.checkpoint is not None else default_checkpoint()
    try:
        model = load_pretrained(weights)
        card = load_model_card(weights)
        if card is None:
            raise CheckpointError(f"No readable model card beside {weights}: it is where the labels are stored.")
        test = load_mnist(args.data_dir, train=False)
        train = load_mnist(args.data_dir, train=True) if args.held_out else None
    except (CheckpointError, MNISTUnavailable) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    table, maps, poses = label_dimensions(model, _pixels(test), test.labels, args.per_class, card)
    held = held_out_agreement(model, _pixels(train), train.labels, table, args.held_out) if train else None
    command = " ".join(["python -m capsnet.atlas", *(sys.argv[1:] if argv is None else argv)])
    meta = {
        "digits_per_class": [min(args.per_class, int((test.labels == c).sum())) for c in range(len(table))],
        "digits": "the first N MNIST test digits of each class; the decoder reads the true class's digit capsule",
        "step": "±1 standard deviation of the dimension over those digits (z_paper: ±0.25, the paper's Figure 4)",
        "measures": MEASURES,
        "z": "mean change of a measure for +step, divided by its standard deviation over the class's reconstructions",
        "label": f"the measure with the largest |z|; 'local: <region>' when no |z| reaches {LOCAL_Z}",
        "strength": "the labelled measure's mean change for +1σ in its units (ink relative to the class's mean)",
        "encoder": "the input transform the dimension tracks best (equivariance, median |ρ|); disagrees: it tracks "
                   f"one (|ρ| >= {TRACKS}) that does not move the labelled measure",
        "held_out": held and {**held, "digits_per_class": args.held_out, "digits": "the first N MNIST training digits"},
        "summary": summary(table),
        "command": command,
    }  # fmt: skip
    update_model_card(weights, dimension_labels=table, dimension_labels_meta=meta)
    save_maps(weights, maps, poses)
    for cls, rows in enumerate(table):
        print(f"{cls}: " + "; ".join(f"{d} {dm.describe(r)}" for d, r in enumerate(rows)))
    print(f"summary: {json.dumps(meta['summary'])}; held out: {json.dumps(held)}")
    print(f"stored dimension_labels in the model card beside {weights} and the difference maps in "
          f"{atlas_path(weights).name} ({time.perf_counter() - start:.0f} s)")
    return 0


def _pixels(split) -> torch.Tensor:
    return split.images.unsqueeze(1).float().div(255.0)


MEASURES = {
    "ink": "sum of pixel values", "width": "x extent of the ink (all but 2% each side), pixels",
    "height": "y extent of the ink, pixels", "slant": "-mu11/mu02 of the ink (> 0: top leans right), degrees",
    "rotation": "principal-axis angle from the vertical, degrees anticlockwise",
    "stroke": "2 x area / perimeter of the ink above half the image's maximum, pixels (contrast apart)",
    "shift_x": "centroid x, pixels", "shift_y": "centroid y, pixels (down)",
}


__all__ = ["LOCAL_Z", "PERCENTILES", "analyse_class", "held_out_agreement", "label_dimensions", "label_entry",
           "load_atlas", "load_maps", "load_poses", "main", "pose_statistics", "region", "save_maps", "step_effects", "summary"]  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
