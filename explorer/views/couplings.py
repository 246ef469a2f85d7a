"""Routing numbers on the primary-capsule grid: pure functions from one CapsNetOutput (batch index 0).

Coupling coefficients, primary-capsule activity, per-capsule details, the routing evidence map, the image
overlays and the 4x8 tile layout of the coupling map (`views.capsule_map`) and the other tiled maps. Figures
built from them are in `views.routing`, `views.contributions` and `views.routing_dynamics`.

Nothing here re-implements model math: every number is read from the
CapsNetOutput the model returned (couplings, primary capsules, agreements,
lengths). The only geometry used is the model's own layout helpers
(`primary_capsule_position`, `receptive_field`).

Conventions
- A primary capsule's index is (type*6 + row)*6 + col (see capsnet.model), so
  `x.reshape(32, 6, 6)[t, r, c]` is capsule (t, r, c).
- Routing iterations are numbered 1..r as in the paper; negative numbers count
  from the end like Python indices (-1 = the last iteration, the default).
- Images are (28, 28) arrays / tensors in [0, 1] (white digit on black, like MNIST);
  overlays come back as uint8 RGB arrays (H, W, 3).
"""
from __future__ import annotations

import numpy as np
import torch

from capsnet import CapsNetConfig, primary_capsule_position, receptive_field
from capsnet.model import CapsNetOutput

CFG = CapsNetConfig()
NUM_TYPES = CFG.primary_types  # 32
GRID = CFG.primary_grid  # 6
NUM_PRIMARY = CFG.num_primary  # 1152
NUM_CLASSES = CFG.num_classes  # 10
IMAGE_SIZE = CFG.image_size  # 28

# The tiled map layout: 4 rows x 8 columns of 6x6 tiles, one empty cell between tiles.
TILE_ROWS, TILE_COLS, TILE_GAP = 4, 8, 1
MAP_H = TILE_ROWS * GRID + (TILE_ROWS - 1) * TILE_GAP  # 27
MAP_W = TILE_COLS * GRID + (TILE_COLS - 1) * TILE_GAP  # 55

DEFAULT_ACTIVITY_FLOOR = 0.5  # primary length at or below which a capsule is fully veiled
# Couplings are drawn as their deviation from the uniform 1/10 on this fixed scale (0.05 .. 0.15), the same for
# every input and iteration: a per-image min-max would make a 0.0998-0.151 map look as contrasted as a sharply
# routed one. Deviations beyond it are drawn at full colour.
COUPLING_LIMIT = 0.05
CLASS_COLORS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip

# Inferno colour map stops (value -> RGB), for the evidence overlay and routing_dynamics' blank-change map.
INFERNO_STOPS = np.array(
    [
        [0, 0, 4], [22, 11, 57], [66, 10, 104], [106, 23, 110], [147, 38, 103], [188, 55, 84],
        [221, 81, 58], [243, 120, 25], [252, 165, 10], [246, 215, 70], [252, 255, 164],
    ],
    dtype=np.float32,
)  # fmt: skip


# ---------------------------------------------------------------- numbers


def as_numpy(t: torch.Tensor) -> np.ndarray:
    """A tensor as a float32 numpy array (detached, on the CPU)."""
    return t.detach().cpu().float().numpy()


def num_iterations(out: CapsNetOutput) -> int:
    """How many routing iterations produced `out`."""
    return int(out.couplings.shape[1])


def resolve_iteration(out: CapsNetOutput, iteration: int = -1) -> int:
    """A 1-based iteration (1..r), or a negative one counted from the end, as a 0-based index into couplings."""
    r = num_iterations(out)
    it = int(iteration)
    if 1 <= it <= r:
        return it - 1
    if -r <= it <= -1:
        return r + it
    raise ValueError(f"routing iteration {iteration} outside 1..{r} (or -1..-{r} from the end)")


def check_class(digit_class: int) -> int:
    """`digit_class` as an int in 0..9 (ValueError outside)."""
    k = int(digit_class)
    if not 0 <= k < NUM_CLASSES:
        raise ValueError(f"digit class {digit_class} outside 0..{NUM_CLASSES - 1}")
    return k


def coupling_grid(out: CapsNetOutput, digit_class: int, iteration: int = -1) -> np.ndarray:
    """(32, 6, 6) coupling coefficients c_ij of every primary capsule to `digit_class` at `iteration`."""
    it, k = resolve_iteration(out, iteration), check_class(digit_class)
    return as_numpy(out.couplings[0, it, :, k]).reshape(NUM_TYPES, GRID, GRID)


def activity_grid(out: CapsNetOutput) -> np.ndarray:
    """(32, 6, 6) primary-capsule lengths (activities), laid out like coupling_grid."""
    return as_numpy(out.primary_lengths[0]).reshape(NUM_TYPES, GRID, GRID)


def coupling_entropy_by_iteration(out: CapsNetOutput, weighted: bool = True) -> np.ndarray:
    """(r,) mean entropy (nats) of each primary capsule's coupling distribution over the 10 classes, per iteration.

    Starts at ln(10) (uniform couplings) and falls as routing sharpens. With
    `weighted`, capsules count in proportion to their length, so inactive ones do not dominate.
    """
    c = as_numpy(out.couplings[0]).astype(np.float64)  # (r, I, 10)
    h = -(c * np.log(np.clip(c, 1e-12, None))).sum(-1)  # (r, I)
    if not weighted:
        return h.mean(1)
    w = as_numpy(out.primary_lengths[0]).astype(np.float64)
    if w.sum() <= 0:
        return h.mean(1)
    return (h * w).sum(1) / w.sum()


def _as_image28(image28) -> np.ndarray:
    """Any (28,28), (1,28,28) or (1,1,28,28) tensor / array -> float32 (28,28) clipped to [0,1]."""
    a = image28.detach().cpu().float().numpy() if isinstance(image28, torch.Tensor) else np.asarray(image28, np.float32)
    a = a.reshape(a.shape[-2:]) if a.ndim > 2 and a.size == a.shape[-1] * a.shape[-2] else a
    if a.shape != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"expected a 28x28 image, got shape {a.shape}")
    if a.dtype == np.uint8 or a.max(initial=0) > 1.0 + 1e-6:
        a = a / 255.0
    return np.clip(a.astype(np.float32), 0.0, 1.0)


def capsule_details(out: CapsNetOutput, index: int) -> dict:
    """Everything about one primary capsule: position, length, pose, couplings (final and per iteration),
    agreement with each digit capsule and receptive field (top, left, bottom, right; exclusive)."""
    t, r, c = primary_capsule_position(int(index))
    couplings = as_numpy(out.couplings[0, :, int(index), :])  # (r, 10)
    agreement = as_numpy(out.agreement[0, int(index)])
    return {
        "index": int(index),
        "type": t,
        "row": r,
        "col": c,
        "length": float(out.primary_lengths[0, int(index)]),
        "pose": as_numpy(out.primary[0, int(index)]),
        "couplings": couplings[-1],
        "couplings_by_iteration": couplings,
        "agreement": agreement,
        "strongest_class": int(couplings[-1].argmax()),
        "receptive_field": receptive_field(r, c),
    }


def routing_evidence_map(
    out: CapsNetOutput, digit_class: int, iteration: int = -1, normalize: bool = True, relative: bool = True
) -> np.ndarray:
    """(28, 28) map of how much each input pixel routes to `digit_class`.

    Each primary capsule weighs (coupling to the class) x (its length); the weights are summed over the 32
    types at each grid position (row, col), and every pixel gets the sum over the positions whose 17x17
    receptive field covers it (the last input row and column are seen by no capsule and stay 0).

    With `relative` (default) the coupling counts only above the uniform share 1/10 that every capsule gives
    every class before routing, and the map is clipped at 0: it shows where routing moved votes *towards* the
    class. Without it the plain coupling is used, which for near-uniform couplings mostly traces how many
    fields overlap each pixel (the centre). With `normalize` the map is scaled to max 1 (all zeros stays zeros).
    """
    c = coupling_grid(out, digit_class, iteration)
    if relative:
        c = c - 1.0 / NUM_CLASSES
    w = (c * activity_grid(out)).sum(0)  # (6, 6)
    m = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
    for r in range(GRID):
        for col in range(GRID):
            top, left, bottom, right = receptive_field(r, col)
            m[top:bottom, left:right] += w[r, col]
    if relative:
        np.clip(m, 0.0, None, out=m)
    if normalize:
        mx = float(m.max())
        if mx > 0:
            m /= mx
    return m


# ---------------------------------------------------------------- images


def colormap(values: np.ndarray) -> np.ndarray:
    """Values in [0,1] -> float RGB in [0,255] with the inferno colour map."""
    v = np.clip(np.asarray(values, np.float32), 0.0, 1.0) * (len(INFERNO_STOPS) - 1)
    lo = np.floor(v).astype(np.int64)
    hi = np.minimum(lo + 1, len(INFERNO_STOPS) - 1)
    f = (v - lo)[..., None]
    return INFERNO_STOPS[lo] * (1 - f) + INFERNO_STOPS[hi] * f


def upscale_map(a: np.ndarray, scale: int) -> np.ndarray:
    return np.repeat(np.repeat(a, scale, axis=0), scale, axis=1)


def grey_rgb(image28, scale: int) -> np.ndarray:
    g = upscale_map(_as_image28(image28), scale) * 255.0
    return np.repeat(g[..., None], 3, axis=2)


def receptive_field_overlay(
    image28, index: int, scale: int = 8, color: tuple[int, int, int] = (0, 200, 255), dim_outside: float = 0.45
) -> np.ndarray:
    """uint8 RGB (28*scale, 28*scale, 3): the input upscaled, with capsule `index`'s 17x17 receptive field
    outlined (and the rest dimmed by `dim_outside`)."""
    scale = int(scale)
    _, r, c = primary_capsule_position(int(index))
    top, left, bottom, right = (v * scale for v in receptive_field(r, c))
    rgb = grey_rgb(image28, scale)
    inside = np.zeros(rgb.shape[:2], bool)
    inside[top:bottom, left:right] = True
    rgb[~inside] *= dim_outside
    th = max(1, scale // 4)
    col = np.asarray(color, np.float32)
    rgb[top : top + th, left:right] = col
    rgb[bottom - th : bottom, left:right] = col
    rgb[top:bottom, left : left + th] = col
    rgb[top:bottom, right - th : right] = col
    return np.clip(rgb, 0, 255).astype(np.uint8)


def routing_evidence_overlay(
    out: CapsNetOutput, image28, digit_class: int, iteration: int = -1, scale: int = 8, alpha: float = 0.65,
    relative: bool = True,
) -> np.ndarray:
    """uint8 RGB (28*scale, 28*scale, 3): routing_evidence_map for `digit_class` as an inferno heatmap blended
    over the (grey) input; where the evidence is zero the input shows through unchanged."""
    m = upscale_map(routing_evidence_map(out, digit_class, iteration, relative=relative), int(scale))
    base = grey_rgb(image28, int(scale))
    a = (alpha * m)[..., None]
    return np.clip(base * (1 - a) + colormap(m) * a, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- the tile layout


def tile_origin(t: int) -> tuple[int, int]:
    """(map row, map col) of the top-left cell of capsule type `t`'s 6x6 tile in the tiled map."""
    tr, tc = divmod(t, TILE_COLS)
    return tr * (GRID + TILE_GAP), tc * (GRID + TILE_GAP)


# For every cell of the (27, 55) tiled map, the primary capsule index there (-1 in the gaps).
MAP_INDEX = np.full((MAP_H, MAP_W), -1, np.int64)
for _t in range(NUM_TYPES):
    _y, _x = tile_origin(_t)
    MAP_INDEX[_y : _y + GRID, _x : _x + GRID] = np.arange(_t * GRID * GRID, (_t + 1) * GRID * GRID).reshape(GRID, GRID)
_MAP_VALID = MAP_INDEX >= 0


def tile_layout(values: np.ndarray, fill: float = np.nan) -> np.ndarray:
    """(32, 6, 6) or (1152,) values -> the (27, 55) tiled map (types in a 4x8 grid of 6x6 tiles with one-cell
    gaps filled with `fill`), as the coupling map draws it."""
    flat = np.asarray(values, np.float64).reshape(NUM_PRIMARY)
    m = np.full((MAP_H, MAP_W), fill, np.float64)
    m[_MAP_VALID] = flat[MAP_INDEX[_MAP_VALID]]
    return m


def capsule_at(map_row: int, map_col: int) -> int | None:
    """Primary capsule index under a cell of the tiled map (None in a gap)."""
    if not (0 <= map_row < MAP_H and 0 <= map_col < MAP_W):
        return None
    i = int(MAP_INDEX[map_row, map_col])
    return i if i >= 0 else None
