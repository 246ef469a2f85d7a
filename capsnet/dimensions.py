"""Name the 16 pose dimensions of every digit capsule by what they do to the decoded digit.

`python -m capsnet.dimensions [--checkpoint PATH] [--data-dir DIR] [--per-class N]`

For each class, the first N MNIST test digits of that class go through the network; the pose of the
true class's digit capsule is perturbed by -0.25 and +0.25 (the paper's Figure-4 range) in one dimension
at a time and decoded. Six measures of the decoded digits (ink mass, ink width and height, slant, centroid
x and y) say what changed; the dimension is labelled with the measure that moved most, in units of that
measure's spread over the class's own reconstructions. `explained` is the share of the pixel change that
the first-order image changes of these effects (contrast, dilation, x/y scaling, shear, x/y shift) account
for, so a label with a low share is only part of the story.

The measures are plain functions of images so that other tools (e.g. equivariance checks) reuse them.
The results go into the model card (`dimension_labels`, `dimension_labels_meta`); the explorer reads them
at startup. The output is a pure function of the checkpoint and the data, so re-running it is harmless.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from .model import CapsNet

EFFECTS = ("ink", "width", "height", "slant", "shift_x", "shift_y")
PERTURBATION = 0.25
DEFAULT_PER_CLASS = 100
EXTENT_TAIL = 0.02  # the ink extent ignores this share of the ink on each side (stray pixels)
WORDS = {  # (effect, sign of the change for +PERTURBATION) -> label
    ("ink", 1): "thicker strokes", ("ink", -1): "thinner strokes",
    ("width", 1): "wider", ("width", -1): "narrower",
    ("height", 1): "taller", ("height", -1): "shorter",
    ("slant", 1): "slants right", ("slant", -1): "slants left",
    ("shift_x", 1): "moves right", ("shift_x", -1): "moves left",
    ("shift_y", 1): "moves down", ("shift_y", -1): "moves up",
}


def _as_batch(images) -> torch.Tensor:
    """(H,W), (B,H,W) or (B,1,H,W) images -> float64 (B,H,W), negatives clipped (they are not ink)."""
    x = torch.as_tensor(images).detach().to(torch.float64).cpu()
    if x.dim() == 2:
        x = x[None]
    elif x.dim() == 4:
        if x.shape[1] != 1:
            raise ValueError(f"expected one channel, got shape {tuple(x.shape)}")
        x = x[:, 0]
    if x.dim() != 3:
        raise ValueError(f"expected (H,W), (B,H,W) or (B,1,H,W) images, got shape {tuple(x.shape)}")
    return x.clamp(min=0)


def _as_batch_signed(images) -> torch.Tensor:
    """Like _as_batch but keeps negative values (pixel changes)."""
    x = torch.as_tensor(images).detach().to(torch.float64).cpu()
    return x.reshape(-1, *x.shape[-2:])


def _coords(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates (x to the right, y down), in pixels."""
    return torch.arange(w, dtype=torch.float64), torch.arange(h, dtype=torch.float64)


def ink_mass(images) -> torch.Tensor:
    """(B,) total intensity: grows with stroke thickness (and length)."""
    return _as_batch(images).sum(dim=(1, 2))


def centroid(images) -> torch.Tensor:
    """(B, 2) centre of mass (x, y) in pixels; the image centre for a blank image."""
    x = _as_batch(images)
    B, h, w = x.shape
    xs, ys = _coords(h, w)
    m = x.sum(dim=(1, 2))
    safe = m.clamp(min=1e-12)
    cx = (x.sum(1) * xs).sum(1) / safe
    cy = (x.sum(2) * ys).sum(1) / safe
    blank = m <= 1e-12
    cx[blank], cy[blank] = (w - 1) / 2, (h - 1) / 2
    return torch.stack([cx, cy], dim=1)


def _extent_1d(marginal: torch.Tensor, tail: float) -> torch.Tensor:
    """(B, n) ink per column -> (B,) width of the interval holding all but `tail` of the ink on each side.

    Each pixel's ink is spread evenly over its cell, so the interval moves continuously with the image
    (a plain thresholded bounding box jumps by whole pixels) and a solid bar of width w gives exactly w.
    """
    total = marginal.sum(1, keepdim=True).clamp(min=1e-12)
    cdf = torch.cumsum(marginal / total, dim=1)  # cdf[:, i] = share of ink left of cell i's right edge
    lo_edge = torch.cat([torch.zeros_like(cdf[:, :1]), cdf[:, :-1]], dim=1)

    def quantile(q: float) -> torch.Tensor:
        i = torch.searchsorted(cdf.contiguous(), torch.full((cdf.shape[0], 1), q, dtype=cdf.dtype)).clamp(max=cdf.shape[1] - 1)
        left = lo_edge.gather(1, i)
        mass = (cdf.gather(1, i) - left).clamp(min=1e-12)
        return (i.to(cdf.dtype) + ((q - left) / mass).clamp(0, 1))[:, 0]

    width = (quantile(1 - tail) - quantile(tail)) / (1 - 2 * tail)
    return torch.where(marginal.sum(1) > 1e-12, width, torch.zeros_like(width))


def extent(images, tail: float = EXTENT_TAIL) -> torch.Tensor:
    """(B, 2) bounding-box (width, height) of the ink in pixels, ignoring `tail` of the ink on each side."""
    x = _as_batch(images)
    return torch.stack([_extent_1d(x.sum(1), tail), _extent_1d(x.sum(2), tail)], dim=1)


def slant(images) -> torch.Tensor:
    """(B,) slant from second moments: -mu11 / mu02, x-shift per pixel of height, > 0 when the top leans right.

    A shear x' = x + s (cy - y) adds exactly s to it.
    """
    x = _as_batch(images)
    B, h, w = x.shape
    xs, ys = _coords(h, w)
    c = centroid(x)
    m = x.sum(dim=(1, 2)).clamp(min=1e-12)
    dx = xs[None, None, :] - c[:, 0, None, None]
    dy = ys[None, :, None] - c[:, 1, None, None]
    mu11 = (x * dx * dy).sum(dim=(1, 2)) / m
    mu02 = (x * dy * dy).sum(dim=(1, 2)) / m
    return -mu11 / mu02.clamp(min=1e-12)


def measure(images) -> dict[str, torch.Tensor]:
    """All six measures of (B,...) images, each (B,) float64, keyed by EFFECTS."""
    x = _as_batch(images)
    c, e = centroid(x), extent(x)
    return {"ink": ink_mass(x), "width": e[:, 0], "height": e[:, 1], "slant": slant(x),
            "shift_x": c[:, 0], "shift_y": c[:, 1]}


DIRECTION_EFFECTS = ("ink", "ink", "width", "height", "slant", "shift_x", "shift_y")  # effect of each direction


def effect_directions(images) -> torch.Tensor:
    """(B, 7, H*W): first-order pixel changes of brighter ink, thicker strokes (dilation), wider, taller,
    more slant, shift right and shift down, applied to each image (DIRECTION_EFFECTS names their effects)."""
    x = _as_batch(images)
    B, h, w = x.shape
    gy, gx = torch.gradient(x, dim=(1, 2))
    xs, ys = _coords(h, w)
    c = centroid(x)
    dx = xs[None, None, :] - c[:, 0, None, None]
    dy = ys[None, :, None] - c[:, 1, None, None]
    dirs = [x, (gx**2 + gy**2).sqrt(), -dx * gx, -dy * gy, dy * gx, -gx, -gy]
    return torch.stack(dirs, dim=1).reshape(B, len(dirs), h * w)


def _residual_energy(gram: torch.Tensor, gd: torch.Tensor, dd: torch.Tensor, keep: list[int]) -> float:
    """Sum over the batch of |d - G c|^2, c fitted per image by least squares on the directions `keep`,
    from the Gram matrix G G^T, G d and d.d (at the optimum the residual is d.d - c.(G d))."""
    g, b = gram[:, keep][:, :, keep], gd[:, keep]
    ridge = 1e-9 * g.diagonal(dim1=1, dim2=2).mean(-1).clamp(min=1e-12)[:, None, None]
    coef = torch.linalg.solve(g + ridge * torch.eye(len(keep), dtype=g.dtype), b[..., None])[..., 0]
    return float((dd - (coef * b).sum(-1)).clamp(min=0).sum())


def effect_shares(base, change) -> dict[str, float]:
    """How much of a pixel change each effect accounts for, fitted per image on effect_directions(base).

    "explained": 1 - residual / total energy with all seven directions; per effect: the share lost when
    that effect's directions are left out of the fit (so change that two effects both explain counts for
    neither). Values in 0..1, summed over the batch.
    """
    g = effect_directions(base)
    d = _as_batch_signed(change).reshape(g.shape[0], -1)
    dd = (d**2).sum(-1)
    total = float(dd.sum())
    if total <= 0:
        return {"explained": 0.0, **{e: 0.0 for e in EFFECTS}}
    gram, gd = g @ g.transpose(1, 2), (g @ d[..., None])[..., 0]
    every = list(range(g.shape[1]))
    full = _residual_energy(gram, gd, dd, every)
    shares = {"explained": max(0.0, 1.0 - full / total)}
    for e in EFFECTS:
        rest = [i for i in every if DIRECTION_EFFECTS[i] != e]
        shares[e] = max(0.0, (_residual_energy(gram, gd, dd, rest) - full) / total)
    return shares


def explained_share(base, change) -> float:
    """Share (0..1) of the summed squared pixel change that the effect directions of `base` explain."""
    return effect_shares(base, change)["explained"]


def measure_change(up, down) -> dict[str, float]:
    """Mean change of each measure for +delta, from decodes at +delta (`up`) and -delta (`down`), in
    natural units: ink as a relative change, width/height/shift in pixels, slant in degrees."""
    mu, md = measure(up), measure(down)
    half = {e: (mu[e] - md[e]) / 2 for e in EFFECTS}
    half["slant"] = torch.rad2deg(torch.atan(mu["slant"]) - torch.atan(md["slant"])) / 2
    out = {e: float(v.mean()) for e, v in half.items()}
    # ink: the geometric mean of sqrt(ink(+delta) / ink(-delta)) - 1, so a fading digit stays above -100%
    ratio = mu["ink"].clamp(min=1e-6) / md["ink"].clamp(min=1e-6)
    out["ink"] = float(torch.exp(ratio.log().mean() / 2)) - 1
    return out


def label_dimensions(model: CapsNet, images: torch.Tensor, labels: torch.Tensor, per_class: int = DEFAULT_PER_CLASS,
                     delta: float = PERTURBATION, batch_size: int = 250) -> list[list[dict]]:
    """For each class, for each pose dimension: the dominant effect of a +/-delta edit and its strength.

    images (N,1,28,28) in [0,1] and labels (N,); the first `per_class` digits of each class are used and the
    decoder reads the true class's digit capsule. The dominant effect is the one whose image changes account
    for most of the pixel change (effect_shares); its sign and strength are the mean change of its measure
    (measure_change units). Returns 10 lists of 16 dicts.
    """
    k, dims = model.config.num_classes, model.config.digit_dim
    result = []
    for cls in range(k):
        idx = torch.nonzero(labels == cls).flatten()[:per_class]
        if len(idx) == 0:
            raise ValueError(f"no digits of class {cls} to measure")
        with torch.inference_mode():
            poses = torch.cat([model(images[idx[i:i + batch_size]]).poses for i in range(0, len(idx), batch_size)])
            base = model.decode(poses, cls)[:, 0]
            edited = poses[None].repeat(2 * dims, 1, 1, 1)  # (+d0, -d0, +d1, ...) x digits
            for d in range(dims):
                edited[2 * d, :, cls, d] += delta
                edited[2 * d + 1, :, cls, d] -= delta
            decoded = model.decode(edited.flatten(0, 1), cls)[:, 0].reshape(2 * dims, len(idx), *base.shape[1:])
        rows = []
        for d in range(dims):
            up, down = decoded[2 * d], decoded[2 * d + 1]
            shares = effect_shares(base, (up - down) / 2)
            change = measure_change(up, down)
            effect = max(EFFECTS, key=lambda e: shares[e])
            sign = 1 if change[effect] >= 0 else -1
            rows.append({
                "label": WORDS[(effect, sign)],
                "effect": effect,
                "sign": sign,
                "strength": round(abs(change[effect]), 4),
                "explained": round(shares["explained"], 4),
            })
        result.append(rows)
    return result


UNITS = {"ink": "{:+.0%} ink", "width": "{:+.1f} px", "height": "{:+.1f} px", "slant": "{:+.0f}°",
         "shift_x": "{:+.1f} px", "shift_y": "{:+.1f} px"}


def describe(entry: dict) -> str:
    """"thicker strokes (+12% ink)": the label and its strength in its own units, for +0.25."""
    return f"{entry['label']} ({UNITS[entry['effect']].format(entry['sign'] * entry['strength'])})"


def slider_label(dim: int, entry: dict | None) -> str:
    """"dim 6 · thicker strokes (+12% ink)", or "dim 6" without a label."""
    return f"dim {dim} · {describe(entry)}" if entry else f"dim {dim}"


def main(argv: list[str] | None = None) -> int:
    from .checkpoint import CheckpointError, default_checkpoint, load_model_card, load_pretrained, update_model_card
    from .cli import checkpoint_flags
    from .data import MNISTUnavailable, load_mnist

    ap = argparse.ArgumentParser(prog="python -m capsnet.dimensions", description=__doc__.split("\n\n")[0],
                                 parents=[checkpoint_flags()])
    ap.add_argument("--per-class", type=int, default=DEFAULT_PER_CLASS, help="test digits per class (default 100)")
    args = ap.parse_args(argv)
    if args.per_class < 1:
        print("error: --per-class must be at least 1", file=sys.stderr)
        return 2
    weights = args.checkpoint if args.checkpoint is not None else default_checkpoint()
    try:
        model = load_pretrained(weights)
        if load_model_card(weights) is None:
            raise CheckpointError(f"No readable model card beside {weights}: it is where the labels are stored.")
        test = load_mnist(args.data_dir, train=False)
    except (CheckpointError, MNISTUnavailable) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    labels = label_dimensions(model, test.images.unsqueeze(1).float().div(255.0), test.labels, args.per_class)
    counts = [min(args.per_class, int((test.labels == c).sum())) for c in range(len(labels))]
    command = " ".join(["python -m capsnet.dimensions", *(sys.argv[1:] if argv is None else argv)])
    meta = {
        "perturbation": PERTURBATION,
        "digits_per_class": counts,
        "digits": "the first N MNIST test digits of each class; the decoder reads the true class's digit capsule",
        "measures": {
            "ink": "sum of pixel values", "width": "x extent of the ink (all but 2% each side), pixels",
            "height": "y extent of the ink, pixels", "slant": "-mu11/mu02 of the ink (> 0: top leans right)",
            "shift_x": "centroid x, pixels", "shift_y": "centroid y, pixels (down)",
        },
        "effect": "the effect whose first-order image change (ink: contrast + dilation; x/y scaling; shear; x/y shift) "
                  "accounts for most of the pixel change (share lost when it is left out of a per-digit least-squares fit)",
        "strength": "mean change of the effect's measure for +0.25: ink as a relative change (geometric mean over digits "
                    "of sqrt(ink(+0.25) / ink(-0.25)) - 1), width, height and shifts in pixels, slant in degrees",
        "explained": "share of the pixel change (sum of squares) fitted by all six effects together",
        "command": command,
    }
    update_model_card(weights, dimension_labels=labels, dimension_labels_meta=meta)
    took = time.perf_counter() - start
    for cls, rows in enumerate(labels):
        print(f"{cls}: " + "; ".join(f"{d} {describe(r)}" for d, r in enumerate(rows)))
    print(f"stored dimension_labels in the model card beside {weights} ({took:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
