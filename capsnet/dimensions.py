"""Measures of digit images that say what a pose dimension does: ink mass, ink width and height, slant,
principal-axis rotation, stroke width apart from contrast, centroid x and y (`measure`), and the words and units
of the labels made from them (`WORDS`, `describe`, `slider_label`).

Plain functions of images, so other tools reuse them: `python -m capsnet.atlas` labels the 16 pose dimensions
of every digit capsule with them (stored in the model card, read by the explorer), and the equivariance checks
share the geometry. Every measure is tested on synthetic images with known answers.
"""
from __future__ import annotations

import torch

EFFECTS = ("ink", "width", "height", "slant", "rotation", "stroke", "shift_x", "shift_y")
EXTENT_TAIL = 0.02  # the ink extent ignores this share of the ink on each side (stray pixels)
WORDS = {  # (effect, sign of the change for a + step) -> label
    ("ink", 1): "more ink", ("ink", -1): "less ink",
    ("width", 1): "wider", ("width", -1): "narrower",
    ("height", 1): "taller", ("height", -1): "shorter",
    ("slant", 1): "slants right", ("slant", -1): "slants left",
    ("rotation", 1): "turns anticlockwise", ("rotation", -1): "turns clockwise",
    ("stroke", 1): "wider strokes", ("stroke", -1): "narrower strokes",
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


def rotation(images) -> torch.Tensor:
    """(B,) angle of the ink's principal axis from the vertical in degrees, > 0 anticlockwise (y down): a
    vertical bar turned by a degrees anticlockwise gives a."""
    x = _as_batch(images)
    B, h, w = x.shape
    xs, ys = _coords(h, w)
    c = centroid(x)
    m = x.sum(dim=(1, 2)).clamp(min=1e-12)
    dx = xs[None, None, :] - c[:, 0, None, None]
    dy = ys[None, :, None] - c[:, 1, None, None]
    mu20, mu02, mu11 = ((x * dx * dx).sum(dim=(1, 2)) / m, (x * dy * dy).sum(dim=(1, 2)) / m,
                        (x * dx * dy).sum(dim=(1, 2)) / m)  # fmt: skip
    return torch.rad2deg(0.5 * torch.atan2(2 * mu11, mu02 - mu20))


def stroke_width(images) -> torch.Tensor:
    """(B,) stroke width in pixels apart from contrast: the ink above half the image's own maximum, as
    2 x area / perimeter (a long bar of width w gives about w); 0 for a blank image."""
    x = _as_batch(images)
    mask = (x > 0.5 * x.amax(dim=(1, 2), keepdim=True)) & (x > 1e-6)
    m = torch.nn.functional.pad(mask.to(torch.float64), (1, 1, 1, 1))
    perimeter = (m[:, 1:, :] - m[:, :-1, :]).abs().sum(dim=(1, 2)) + (m[:, :, 1:] - m[:, :, :-1]).abs().sum(dim=(1, 2))
    return 2 * mask.sum(dim=(1, 2)).to(torch.float64) / perimeter.clamp(min=1)


def measure(images) -> dict[str, torch.Tensor]:
    """All eight measures of (B,...) images, each (B,) float64, keyed by EFFECTS."""
    x = _as_batch(images)
    c, e = centroid(x), extent(x)
    return {"ink": ink_mass(x), "width": e[:, 0], "height": e[:, 1], "slant": slant(x), "rotation": rotation(x),
            "stroke": stroke_width(x), "shift_x": c[:, 0], "shift_y": c[:, 1]}


UNITS = {"ink": "{:+.0%} ink", "width": "{:+.1f} px", "height": "{:+.1f} px", "slant": "{:+.0f}°", "rotation": "{:+.0f}°",
         "stroke": "{:+.2f} px", "shift_x": "{:+.1f} px", "shift_y": "{:+.1f} px"}


def describe(entry: dict) -> str:
    """"more ink (+12% ink)": the label and its strength in its own units (per +1σ of the data; +0.25 in cards
    made before capsnet.atlas); a local label as it is."""
    if entry["effect"] not in UNITS:
        return entry["label"]
    return f"{entry['label']} ({UNITS[entry['effect']].format(entry['sign'] * entry['strength'])})"


def slider_label(dim: int, entry: dict | None) -> str:
    """"dim 6 · thicker strokes (+12% ink)", or "dim 6" without a label."""
    return f"dim {dim} · {describe(entry)}" if entry else f"dim {dim}"


