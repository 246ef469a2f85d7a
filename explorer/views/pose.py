"""What the Pose and Perturbations tabs show beyond the decoder's pixels: the payload the browser-side decoder
draws from, the names of the pose dimensions (measured offline by `python -m capsnet.atlas` and read from
the model card) and the Figure-4 grid with those names beside its rows. No Gradio here.
"""
from __future__ import annotations

import base64
import io
import math
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from capsnet.atlas import PERCENTILES
from capsnet.dimensions import UNITS

from ..text import tr
from .capsules import POSE_DIM, to_uint8
from .couplings import NUM_CLASSES

LABEL_FONT_SIZE = 12
LABEL_BACKGROUND = 255
LABEL_INK = 32


def dimension_labels(card: dict | None) -> list[list[dict]] | None:
    """card["dimension_labels"] when it is the expected 10 x 16 table, else None (older cards have none)."""
    table = (card or {}).get("dimension_labels")
    ok = (
        isinstance(table, list) and len(table) == NUM_CLASSES
        and all(isinstance(rows, list) and len(rows) == POSE_DIM for rows in table)
        and all(isinstance(r, dict) and {"label", "effect", "sign", "strength"} <= set(r) for rows in table for r in rows)
    )
    return table if ok else None


def describe(entry: dict) -> str:
    """capsnet.dimensions.describe in the current language: "more ink (+12% ink)"; a local label as it is."""
    if entry["effect"] not in UNITS:
        return tr(entry["label"])
    return tr("{label} ({amount})", label=tr(entry["label"]),
              amount=tr(UNITS[entry["effect"]], entry["sign"] * entry["strength"]))


def slider_label(dim: int, entry: dict | None) -> str:
    """capsnet.dimensions.slider_label in the current language: "dim 6 · more ink (+12% ink)", or "dim 6"."""
    return tr("dim {d} · {label}", d=dim, label=describe(entry)) if entry else tr("dim {d}", d=dim)


def slider_labels(card: dict | None, digit_class: int | None) -> list[str]:
    """The 16 slider labels for a digit capsule: "dim 6 · thicker strokes (+12% ink)", or "dim 6" without labels."""
    table = dimension_labels(card)
    rows = table[int(digit_class)] if table is not None and digit_class is not None else [None] * POSE_DIM
    return [slider_label(d, rows[d]) for d in range(POSE_DIM)]


def slider_infos(card: dict | None, digit_class: int | None) -> list[str]:
    """Under each slider, where the class's test digits have that dimension: "data 5–95%: -0.05 … 0.08, median
    0.01" (capsnet.atlas's `pose` statistics), or "" where the card has none."""
    table = dimension_labels(card)
    rows = table[int(digit_class)] if table is not None and digit_class is not None else [None] * POSE_DIM
    out = []
    for r in rows:
        p = (r or {}).get("pose") or {}
        ok = all(isinstance(p.get(k), (int, float)) for k in ("p5", "p50", "p95"))
        out.append(tr("data 5–95%: {p5:+.2f} … {p95:+.2f}, median {p50:+.2f}", p5=p["p5"], p95=p["p95"], p50=p["p50"])
                   if ok else "")  # fmt: skip
    return out


def data_deltas(card: dict | None, digit_class: int, sigmas: float = 2.0, n: int = 11) -> np.ndarray | None:
    """(16, n) steps from -sigmas σ to +sigmas σ of each dimension's spread over the class's test digits (the
    atlas's `pose` statistics), for the Figure-4 grid in the data's own units; None where the card has none."""
    table = dimension_labels(card)
    try:
        std = np.array([float(r["pose"]["std"]) for r in table[int(digit_class)]])  # type: ignore[index]
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    if not np.all(np.isfinite(std)):
        return None
    return np.outer(std, np.linspace(-sigmas, sigmas, n))


def percentiles(card: dict | None) -> list[list[list[float]]] | None:
    """Per class and dimension, the pose's percentiles PERCENTILES over the class's test digits (10 x 16 x 7), for
    the page to say where a slider's value lies; None where the card has none."""
    table = dimension_labels(card)
    try:
        out = [[[float(r["pose"][f"p{q}"]) for q in PERCENTILES] for r in rows]
               for rows in table]  # type: ignore[union-attr]
    except (KeyError, TypeError, ValueError):
        return None
    return out if np.all(np.isfinite(out)) else None


def data_bounds(card: dict | None, digit_class: int, pose: Sequence[float], full: float = 1.0) -> list[tuple]:
    """Per dimension, the range "keep within the data" allows: the class's 1-99% range over its test digits, widened
    to include this input's own value (so the actual pose stays reachable); (-full, full) where the card has none."""
    table = percentiles(card)
    if table is None:
        return [(-full, full)] * len(pose)
    rows = table[int(digit_class)]
    return [(round(min(rows[d][0], v), 3), round(max(rows[d][-1], v), 3)) for d, v in enumerate(pose)]


def all_slider_labels(card: dict | None) -> list[list[str]]:
    """slider_labels for every class (10 x 16 strings): the browser labels the 2-D pad's axes from it."""
    return [slider_labels(card, k) for k in range(NUM_CLASSES)]


def png_data_url(image) -> str:
    """A 28x28 image in [0, 1] as a PNG data: URL (about 0.5 KB), grey = round(255 x value)."""
    return uint8_data_url(to_uint8(image))


def uint8_data_url(pixels: np.ndarray) -> str:
    """A uint8 grey (H, W) or RGB (H, W, 3) array as a PNG data: URL."""
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def clean_pose(pose: Sequence[float] | None) -> list[float] | None:
    """16 finite floats from whatever a browser sent, or None when it is not that."""
    try:
        values = [float(v) for v in pose]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    if len(values) != POSE_DIM or not all(math.isfinite(v) for v in values):
        return None
    return [min(1.0, max(-1.0, v)) for v in values]


def clean_class(value) -> int | None:
    try:
        k = int(value)
    except (TypeError, ValueError):
        return None
    return k if 0 <= k < NUM_CLASSES and float(value) == k else None


def reconstruction_payload(image, pose: Sequence[float], digit_class: int, note: str = "") -> dict:
    """The reconstruction view's value: the server's decode as a data URL (download, and what the page shows
    when the browser cannot decode), the 16 pose values and the class it was decoded from."""
    return {
        "src": png_data_url(image),
        "pose": [round(float(v), 6) for v in pose],
        "cls": int(digit_class),
        "note": note,
    }


def empty_payload() -> dict:
    return {"src": "", "pose": [0.0] * POSE_DIM, "cls": None, "note": ""}


def _font(size: int = LABEL_FONT_SIZE):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def labelled_grid(grid: np.ndarray, labels: Sequence[str], rows: int = POSE_DIM, gap: int = 2) -> np.ndarray:
    """The Figure-4 grid (uint8, `rows` equal rows `gap` px apart) with a text column on its left naming each row."""
    font = _font()
    draw_probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    width = max(int(draw_probe.textlength(text, font=font)) for text in labels) + 10
    h = grid.shape[0]
    row_h = (h - (rows - 1) * gap) / rows
    column = Image.new("L", (width, h), LABEL_BACKGROUND)
    draw = ImageDraw.Draw(column)
    for r, text in enumerate(labels[:rows]):
        y = r * (row_h + gap) + row_h / 2
        draw.text((4, y), text, fill=LABEL_INK, font=font, anchor="lm")
    return np.concatenate([np.asarray(column, dtype=np.uint8), grid], axis=1)


__all__ = [
    "all_slider_labels",
    "clean_class",
    "clean_pose",
    "data_deltas",
    "dimension_labels",
    "empty_payload",
    "labelled_grid",
    "png_data_url",
    "uint8_data_url",
    "reconstruction_payload",
    "slider_infos",
    "slider_labels",
]
