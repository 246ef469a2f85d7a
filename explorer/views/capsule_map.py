"""The coupling map as a clickable image (pure: numpy in, uint8 RGB out; no Gradio).

Gradio's gr.Plot has no click event, so the app draws the map as an image (gr.Image has `.select`, which reports
the clicked pixel) and maps the pixel back to the primary capsule with `capsule_at_pixel`. The 32 capsule types
are 6x6 tiles in a 4x8 grid (one empty cell between tiles, `views.couplings`' tiled layout); red above the uniform
coupling 0.1, blue below, white at 0.1, and barely active capsules veiled in grey.

Every number comes from the CapsNetOutput through views.couplings (couplings, primary lengths); this module only
draws.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from capsnet import primary_capsule_position
from capsnet.model import CapsNetOutput

from ..text import ENGLISH, language
from . import couplings as rv

CELL = 12  # pixels per map cell (11 px of colour + 1 px gap), so the map is 660 x 324
GAP = 1
VEIL_RGB = np.array([120, 120, 120], np.float32)
VEIL_MAX = 0.92  # veil opacity at primary length <= the activity floor
BACKGROUND = 255
SELECT_RGB = np.array([17, 17, 17], np.float32)
# ColorBrewer's 7-class RdBu, reversed (red = high). plotly.colors has only the 11-class RdBu, whose colours differ.
_RDBU = np.array(
    [[33, 102, 172], [103, 169, 207], [209, 229, 240], [247, 247, 247], [253, 219, 199], [239, 138, 98], [178, 24, 43]],
    np.float32,
)


def diverging(t: np.ndarray) -> np.ndarray:
    """Values in [-1, 1] (clipped) -> float RGB in [0, 255]: blue at -1, white at 0, red at +1."""
    v = (np.clip(np.nan_to_num(np.asarray(t, np.float32)), -1.0, 1.0) + 1.0) / 2.0 * (len(_RDBU) - 1)
    lo = np.floor(v).astype(np.int64)
    hi = np.minimum(lo + 1, len(_RDBU) - 1)
    f = (v - lo)[..., None]
    return _RDBU[lo] * (1 - f) + _RDBU[hi] * f


def veil_opacity(lengths: np.ndarray, activity_floor: float = rv.DEFAULT_ACTIVITY_FLOOR) -> np.ndarray:
    """Grey-veil opacity per capsule: VEIL_MAX at length <= activity_floor, falling linearly to 0 at length 1."""
    floor = float(np.clip(activity_floor, 0.0, 0.999))
    visible = np.clip((np.asarray(lengths, np.float32) - floor) / (1.0 - floor), 0.0, 1.0)
    return VEIL_MAX * (1.0 - visible)


LEGEND_H = 30  # the colour-scale strip under the map: the fixed limits, printed on the image


def map_size(cell: int = CELL) -> tuple[int, int]:
    """(height, width) in pixels of coupling_map_image (the map and its colour-scale strip)."""
    return rv.MAP_H * cell + LEGEND_H, rv.MAP_W * cell


@lru_cache(maxsize=8)
def scale_strip(width: int, limit: float, words: bool = True) -> np.ndarray:
    """uint8 RGB (LEGEND_H, width, 3): the diverging scale from 0.1 - limit to 0.1 + limit, with its limits printed,
    and without `words` only the numbers (the image's font has Latin letters only; the map's caption says the rest)."""
    from PIL import Image, ImageDraw

    strip = np.full((LEGEND_H, width, 3), BACKGROUND, np.float32)
    x0, x1 = width // 4, 3 * width // 4
    strip[4:14, x0:x1] = diverging(np.linspace(-1, 1, x1 - x0))[None]
    img = Image.fromarray(np.clip(strip, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    u = 1.0 / rv.NUM_CLASSES
    draw.text((x0, 16), f"{u - limit:.2f}", fill=(0, 0, 0))
    draw.text(((x0 + x1) // 2 - 28, 16), f"{u:.2f} (uniform)" if words else f"{u:.2f}", fill=(0, 0, 0))
    draw.text((x1 - 24, 16), f"{u + limit:.2f}", fill=(0, 0, 0))
    if words:
        draw.text((8, 4), "coupling,", fill=(0, 0, 0))
        draw.text((8, 16), "fixed scale", fill=(0, 0, 0))
        draw.text((x1 + 10, 4), "beyond: full colour", fill=(0, 0, 0))
    return np.asarray(img)


def coupling_map_image(
    out: CapsNetOutput,
    digit_class: int,
    iteration: int = -1,
    activity_floor: float = rv.DEFAULT_ACTIVITY_FLOOR,
    color_range: float | None = None,
    selected: int | None = None,
    cell: int = CELL,
) -> np.ndarray:
    """uint8 RGB (27*cell, 55*cell, 3): every primary capsule's coupling to `digit_class` at `iteration`, where it
    lives (see module doc), above a strip with the colour scale. `color_range` is the deviation from 0.1 drawn at
    full colour (default: the fixed COUPLING_LIMIT, the same for every input and iteration).
    `selected` gets a dark outline."""
    coup = rv.tile_layout(rv.coupling_grid(out, digit_class, iteration))  # (27, 55), NaN in the gaps
    act = rv.tile_layout(rv.activity_grid(out))
    span = float(color_range) if color_range else rv.COUPLING_LIMIT
    rgb = diverging((coup - 1.0 / rv.NUM_CLASSES) / span)
    a = veil_opacity(np.nan_to_num(act, nan=1.0), activity_floor)[..., None]
    rgb = rgb * (1 - a) + VEIL_RGB * a
    valid = ~np.isnan(coup)
    rgb[~valid] = BACKGROUND
    big = np.repeat(np.repeat(rgb, cell, axis=0), cell, axis=1)
    if GAP:  # a white line between neighbouring cells
        big[cell - GAP :: cell, :] = BACKGROUND
        big[:, cell - GAP :: cell] = BACKGROUND
    if selected is not None and 0 <= int(selected) < rv.NUM_PRIMARY:
        y, x = cell_of(int(selected))
        y0, x0 = y * cell, x * cell
        th = max(2, cell // 4)
        y0, y1, x0, x1 = max(0, y0 - th), min(big.shape[0], y0 + cell - GAP + th), max(0, x0 - th), min(big.shape[1], x0 + cell - GAP + th)
        big[y0 : y0 + th, x0:x1] = SELECT_RGB
        big[y1 - th : y1, x0:x1] = SELECT_RGB
        big[y0:y1, x0 : x0 + th] = SELECT_RGB
        big[y0:y1, x1 - th : x1] = SELECT_RGB
    big = np.clip(big + 0.5, 0, 255).astype(np.uint8)
    return np.concatenate([big, scale_strip(big.shape[1], span, language() == ENGLISH)], axis=0)


def cell_of(index: int) -> tuple[int, int]:
    """(map row, map col) of primary capsule `index` in the tiled layout."""
    t, r, c = primary_capsule_position(int(index))
    y0, x0 = rv.tile_origin(t)
    return y0 + r, x0 + c


def capsule_at_pixel(x: float, y: float, cell: int = CELL) -> int | None:
    """The primary capsule under pixel (x, y) of coupling_map_image (None in a gap or outside)."""
    try:
        xi, yi = int(x), int(y)
    except (TypeError, ValueError):
        return None
    if xi < 0 or yi < 0:
        return None
    return rv.capsule_at(yi // cell, xi // cell)


def capsule_from_select(index) -> int | None:
    """A gr.Image .select event's `index` ([x, y] pixel of the clicked point, or None) -> capsule index or None."""
    if not isinstance(index, (list, tuple)) or len(index) != 2:
        return None
    return capsule_at_pixel(index[0], index[1])


__all__ = ["CELL", "capsule_at_pixel", "capsule_from_select", "cell_of", "coupling_map_image", "diverging", "map_size", "scale_strip",
           "veil_opacity"]
