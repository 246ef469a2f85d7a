"""Routing inspector: pure functions from one CapsNetOutput (batch index 0) to numbers, figures and images.

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

import math
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
import torch

from capsnet import CapsNetConfig, primary_capsule_position, receptive_field
from capsnet.model import CapsNetOutput

CFG = CapsNetConfig()
NUM_TYPES = CFG.primary_types  # 32
GRID = CFG.primary_grid  # 6
NUM_PRIMARY = CFG.num_primary  # 1152
NUM_CLASSES = CFG.num_classes  # 10
IMAGE_SIZE = CFG.image_size  # 28

# coupling_map layout: 4 rows x 8 columns of 6x6 tiles, one empty cell between tiles.
TILE_ROWS, TILE_COLS, TILE_GAP = 4, 8, 1
MAP_H = TILE_ROWS * GRID + (TILE_ROWS - 1) * TILE_GAP  # 27
MAP_W = TILE_COLS * GRID + (TILE_COLS - 1) * TILE_GAP  # 55

DEFAULT_ACTIVITY_FLOOR = 0.5  # primary length at or below which a capsule is fully veiled
CLASS_COLORS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip

# Inferno colour map stops (value -> RGB), for the evidence heatmap.
_INFERNO = np.array(
    [
        [0, 0, 4], [22, 11, 57], [66, 10, 104], [106, 23, 110], [147, 38, 103], [188, 55, 84],
        [221, 81, 58], [243, 120, 25], [252, 165, 10], [246, 215, 70], [252, 255, 164],
    ],
    dtype=np.float32,
)  # fmt: skip


# ---------------------------------------------------------------- numbers


def _np(t: torch.Tensor) -> np.ndarray:
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


def _check_class(digit_class: int) -> int:
    k = int(digit_class)
    if not 0 <= k < NUM_CLASSES:
        raise ValueError(f"digit class {digit_class} outside 0..{NUM_CLASSES - 1}")
    return k


def coupling_grid(out: CapsNetOutput, digit_class: int, iteration: int = -1) -> np.ndarray:
    """(32, 6, 6) coupling coefficients c_ij of every primary capsule to `digit_class` at `iteration`."""
    it, k = resolve_iteration(out, iteration), _check_class(digit_class)
    return _np(out.couplings[0, it, :, k]).reshape(NUM_TYPES, GRID, GRID)


def activity_grid(out: CapsNetOutput) -> np.ndarray:
    """(32, 6, 6) primary-capsule lengths (activities), laid out like coupling_grid."""
    return _np(out.primary_lengths[0]).reshape(NUM_TYPES, GRID, GRID)


def coupling_entropy_by_iteration(out: CapsNetOutput, weighted: bool = True) -> np.ndarray:
    """(r,) mean entropy (nats) of each primary capsule's coupling distribution over the 10 classes, per iteration.

    Starts at ln(10) (uniform couplings) and falls as routing sharpens. With
    `weighted`, capsules count in proportion to their length, so inactive ones do not dominate.
    """
    c = _np(out.couplings[0]).astype(np.float64)  # (r, I, 10)
    h = -(c * np.log(np.clip(c, 1e-12, None))).sum(-1)  # (r, I)
    if not weighted:
        return h.mean(1)
    w = _np(out.primary_lengths[0]).astype(np.float64)
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
    couplings = _np(out.couplings[0, :, int(index), :])  # (r, 10)
    agreement = _np(out.agreement[0, int(index)])
    return {
        "index": int(index),
        "type": t,
        "row": r,
        "col": c,
        "length": float(out.primary_lengths[0, int(index)]),
        "pose": _np(out.primary[0, int(index)]),
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
    v = np.clip(np.asarray(values, np.float32), 0.0, 1.0) * (len(_INFERNO) - 1)
    lo = np.floor(v).astype(np.int64)
    hi = np.minimum(lo + 1, len(_INFERNO) - 1)
    f = (v - lo)[..., None]
    return _INFERNO[lo] * (1 - f) + _INFERNO[hi] * f


def _upscale(a: np.ndarray, scale: int) -> np.ndarray:
    return np.repeat(np.repeat(a, scale, axis=0), scale, axis=1)


def _grey_rgb(image28, scale: int) -> np.ndarray:
    g = _upscale(_as_image28(image28), scale) * 255.0
    return np.repeat(g[..., None], 3, axis=2)


def receptive_field_overlay(
    image28, index: int, scale: int = 8, color: tuple[int, int, int] = (0, 200, 255), dim_outside: float = 0.45
) -> np.ndarray:
    """uint8 RGB (28*scale, 28*scale, 3): the input upscaled, with capsule `index`'s 17x17 receptive field
    outlined (and the rest dimmed by `dim_outside`)."""
    scale = int(scale)
    _, r, c = primary_capsule_position(int(index))
    top, left, bottom, right = (v * scale for v in receptive_field(r, c))
    rgb = _grey_rgb(image28, scale)
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
    m = _upscale(routing_evidence_map(out, digit_class, iteration, relative=relative), int(scale))
    base = _grey_rgb(image28, int(scale))
    a = (alpha * m)[..., None]
    return np.clip(base * (1 - a) + colormap(m) * a, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- figures


def _tile_origin(t: int) -> tuple[int, int]:
    tr, tc = divmod(t, TILE_COLS)
    return tr * (GRID + TILE_GAP), tc * (GRID + TILE_GAP)


# For every cell of the (27, 55) tiled map, the primary capsule index there (-1 in the gaps).
_MAP_INDEX = np.full((MAP_H, MAP_W), -1, np.int64)
for _t in range(NUM_TYPES):
    _y, _x = _tile_origin(_t)
    _MAP_INDEX[_y : _y + GRID, _x : _x + GRID] = np.arange(_t * GRID * GRID, (_t + 1) * GRID * GRID).reshape(GRID, GRID)
_MAP_VALID = _MAP_INDEX >= 0
_MAP_TRC = np.stack(np.unravel_index(np.maximum(_MAP_INDEX, 0), (NUM_TYPES, GRID, GRID)), -1)  # (27, 55, 3)


def tile_layout(values: np.ndarray, fill: float = np.nan) -> np.ndarray:
    """(32, 6, 6) or (1152,) values -> the (27, 55) tiled map used by coupling_map (types in a 4x8 grid of
    6x6 tiles with one-cell gaps filled with `fill`)."""
    flat = np.asarray(values, np.float64).reshape(NUM_PRIMARY)
    m = np.full((MAP_H, MAP_W), fill, np.float64)
    m[_MAP_VALID] = flat[_MAP_INDEX[_MAP_VALID]]
    return m


def capsule_at(map_row: int, map_col: int) -> int | None:
    """Primary capsule index under a cell of coupling_map's tiled grid (None in a gap)."""
    if not (0 <= map_row < MAP_H and 0 <= map_col < MAP_W):
        return None
    i = int(_MAP_INDEX[map_row, map_col])
    return i if i >= 0 else None


def capsule_from_click(point: dict | None) -> int | None:
    """The capsule index from a plotly click/selection point of coupling_map ({'customdata': ...} or {'x', 'y'})."""
    if not point:
        return None
    cd = point.get("customdata")
    if isinstance(cd, (list, tuple)):
        cd = cd[0] if cd else None
    if cd is not None:
        try:
            i = int(cd)
        except (TypeError, ValueError):
            i = -1
        return i if 0 <= i < NUM_PRIMARY else None
    if "x" in point and "y" in point:
        return capsule_at(int(point["y"]), int(point["x"]))
    return None


def coupling_color_range(out: CapsNetOutput, digit_class: int) -> float:
    """Largest |c - 0.1| to `digit_class` over all iterations and capsules: coupling_map's default colour range,
    shared by every iteration so that stepping through them shows the sharpening on one scale."""
    c = _np(out.couplings[0, :, :, _check_class(digit_class)])
    return max(float(np.abs(c - 1.0 / NUM_CLASSES).max()), 1e-3)


def coupling_map(
    out: CapsNetOutput,
    digit_class: int,
    iteration: int = -1,
    activity_floor: float = DEFAULT_ACTIVITY_FLOOR,
    color_range: float | None = None,
    selected: int | None = None,
) -> go.Figure:
    """Heatmap of the 1152 primary capsules where they live (32 types as 6x6 tiles in a 4x8 grid), coloured by
    their coupling to `digit_class` at `iteration`: red above the uniform 1/10, blue below, white at 1/10
    (`color_range` = the deviation from 1/10 drawn at full colour; default coupling_color_range).

    Barely active capsules are veiled in grey: opaque at primary length <= `activity_floor`, fading out linearly
    to fully visible at length 1. Every cell's customdata is its primary-capsule index (see capsule_from_click);
    hover shows type/row/col, coupling and length. `selected` outlines one capsule.
    """
    k, it = _check_class(digit_class), resolve_iteration(out, iteration)
    r_total = num_iterations(out)
    coup = tile_layout(coupling_grid(out, k, iteration))
    act = tile_layout(activity_grid(out))
    uniform = 1.0 / NUM_CLASSES
    span = float(color_range) if color_range else coupling_color_range(out, k)
    floor = float(np.clip(activity_floor, 0.0, 0.999))

    custom = _MAP_INDEX
    text = np.full((MAP_H, MAP_W), "", dtype=object)
    valid_idx = np.nonzero(_MAP_VALID)
    text[valid_idx] = [
        f"capsule {i} (type {t}, row {r}, col {c})<br>coupling to {k}: {cv:.4f}<br>length: {lv:.3f}"
        for i, (t, r, c), cv, lv in zip(
            custom[valid_idx].tolist(), _MAP_TRC[valid_idx].tolist(), coup[valid_idx].tolist(), act[valid_idx].tolist()
        )
    ]
    hover = "%{text}<extra></extra>"
    traces = [
        go.Heatmap(
            z=coup, customdata=custom, text=text, hovertemplate=hover, colorscale="RdBu", reversescale=True,
            zmin=uniform - span, zmax=uniform + span, xgap=1, ygap=1, name="coupling",
            colorbar=dict(title=dict(text=f"c(i→{k})", side="right"), thickness=12, len=0.9),
        ),
        # The veil: grey whose opacity falls from 0.92 at length <= floor to 0 at length 1.
        go.Heatmap(
            z=act, customdata=custom, text=text, hovertemplate=hover, zmin=floor, zmax=1.0, showscale=False,
            colorscale=[[0, "rgba(120,120,120,0.92)"], [1, "rgba(120,120,120,0)"]], xgap=1, ygap=1, name="activity",
        ),
    ]  # fmt: skip
    shapes = []
    if selected is not None and 0 <= int(selected) < NUM_PRIMARY:
        t, r, c = primary_capsule_position(int(selected))
        y0, x0 = _tile_origin(t)
        shapes.append(
            dict(type="rect", x0=x0 + c - 0.5, x1=x0 + c + 0.5, y0=y0 + r - 0.5, y1=y0 + r + 0.5,
                 line=dict(color="#111111", width=3))
        )  # fmt: skip
    xt = [_tile_origin(t)[1] + (GRID - 1) / 2 for t in range(TILE_COLS)]
    yt = [_tile_origin(t * TILE_COLS)[0] + (GRID - 1) / 2 for t in range(TILE_ROWS)]
    fig = go.Figure(traces)
    fig.update_layout(
        title=dict(
            text=f"Coupling to digit {k}, iteration {it + 1}/{r_total}<br>"
            f"<sup>red: above the uniform 0.1, blue: below; grey veil: short (inactive) capsules</sup>",
            font=dict(size=13),
        ),
        xaxis=dict(tickvals=xt, ticktext=[f"+{t}" for t in range(TILE_COLS)], showgrid=False, zeroline=False,
                   constrain="domain", title=dict(text="capsule type = 8·tile row + tile column", font=dict(size=11))),
        yaxis=dict(tickvals=yt, ticktext=[f"types {8 * t}–{8 * t + 7}" for t in range(TILE_ROWS)], autorange="reversed",
                   showgrid=False, zeroline=False, scaleanchor="x", constrain="domain"),
        shapes=shapes, margin=dict(l=10, r=10, t=50, b=10), plot_bgcolor="white", clickmode="event",
        height=360,
    )  # fmt: skip
    return fig


def coupling_quantiles(out: CapsNetOutput, digit_class: int, min_length: float = 0.0) -> np.ndarray:
    """(r, 5) quantiles (min, 25%, median, 75%, max) of the couplings to `digit_class` at each iteration, over the
    primary capsules at least `min_length` long (all of them if none is)."""
    c = _np(out.couplings[0, :, :, _check_class(digit_class)])  # (r, I)
    keep = _np(out.primary_lengths[0]) >= min_length
    if keep.any():
        c = c[:, keep]
    return np.quantile(c, [0.0, 0.25, 0.5, 0.75, 1.0], axis=1).T


def coupling_sharpening_figure(out: CapsNetOutput, digit_class: int, min_length: float = 0.0) -> go.Figure:
    """How routing sharpens, per iteration: left, box plots of every capsule's coupling to `digit_class`
    (all exactly 0.1 at iteration 1, spreading out after); right, the length-weighted mean entropy of the
    couplings as its drop below the uniform ln 10 (nats)."""
    k = _check_class(digit_class)
    r = num_iterations(out)
    its = list(range(1, r + 1))
    q = coupling_quantiles(out, k, min_length)
    h = coupling_entropy_by_iteration(out, True)
    traces = [
        go.Box(x=its, lowerfence=q[:, 0], q1=q[:, 1], median=q[:, 2], q3=q[:, 3], upperfence=q[:, 4],
               name=f"coupling to {k}", marker=dict(color=CLASS_COLORS[k]), xaxis="x", yaxis="y",
               hovertemplate="iteration %{x}<extra></extra>"),
        go.Scatter(x=its, y=math.log(10) - h, mode="lines+markers", name="entropy drop", xaxis="x2", yaxis="y2",
                   line=dict(color="#444"), customdata=h,
                   hovertemplate="iteration %{x}: entropy %{customdata:.5f} nats (ln 10 − %{y:.2e})<extra></extra>"),
    ]  # fmt: skip
    fig = go.Figure(traces)
    fig.update_layout(
        title=dict(text=f"Routing sharpens the couplings (digit {k})", font=dict(size=13)),
        xaxis=dict(domain=[0, 0.55], tickvals=its, title=dict(text="routing iteration")),
        yaxis=dict(title=dict(text=f"coupling to {k}")),
        xaxis2=dict(domain=[0.68, 1], tickvals=its, anchor="y2", title=dict(text="routing iteration")),
        yaxis2=dict(anchor="x2", rangemode="tozero", title=dict(text="ln 10 − mean entropy (nats)"), exponentformat="e"),
        shapes=[dict(type="line", xref="x domain", x0=0, x1=1, yref="y", y0=0.1, y1=0.1,
                     line=dict(color="grey", dash="dash", width=1))],
        showlegend=False, margin=dict(l=10, r=10, t=40, b=10), height=300,
    )  # fmt: skip
    return fig


def _as_batch(x) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    t = t.float()
    if t.dim() == 2:
        t = t[None, None]
    elif t.dim() == 3:
        t = t[None]
    if t.shape[-2:] != (IMAGE_SIZE, IMAGE_SIZE) or t.dim() != 4:
        raise ValueError(f"expected a 28x28 image, got shape {tuple(x.shape)}")
    return t


def lengths_by_iterations(model, x, iterations: Sequence[int] = (1, 2, 3, 5)) -> np.ndarray:
    """(len(iterations), 10) digit-capsule lengths of input x ((28,28), (1,28,28) or (1,1,28,28)) for each
    number of routing iterations (one forward pass each)."""
    xb = _as_batch(x)[:1]
    device = next(model.parameters()).device
    rows = []
    with torch.inference_mode():
        for r in iterations:
            rows.append(_np(model(xb.to(device), routing_iterations=int(r)).lengths[0]))
    return np.stack(rows)


def class_lengths_figure(x: Sequence[float], lengths: np.ndarray, highlight: int | None, *, title: str,
                         x_title: str, x_hover: str, markers_for_all: bool = True) -> go.Figure:
    """One line per digit class: its capsule length (y) against some setting (x); `highlight` is bold, the rest faded."""
    traces = []
    for k in range(NUM_CLASSES):
        hi = k == highlight
        traces.append(go.Scatter(
            x=x, y=lengths[:, k], mode="lines+markers" if (hi or markers_for_all) else "lines", name=str(k),
            opacity=1.0 if hi else 0.45, line=dict(color=CLASS_COLORS[k], width=4 if hi else 1.5),
            hovertemplate=f"digit {k}<br>{x_hover}: length %{{y:.3f}}<extra></extra>",
        ))  # fmt: skip
    fig = go.Figure(traces)
    fig.update_layout(
        title=dict(text=title, font=dict(size=13)),
        xaxis=dict(title=dict(text=x_title)),
        yaxis=dict(title=dict(text="length (class probability)"), range=[0, 1.02]),
        shapes=[dict(type="line", xref="paper", x0=0, x1=1, y0=0.5, y1=0.5, line=dict(color="grey", dash="dot", width=1))],
        margin=dict(l=10, r=10, t=40, b=10), height=320, legend=dict(title=dict(text="digit")),
    )  # fmt: skip
    return fig


def compare_iterations_figure(lengths: np.ndarray, iterations: Sequence[int], highlight: int | None = None) -> go.Figure:
    """Line plot of each class's length against the number of routing iterations (from lengths_by_iterations)."""
    lengths = np.asarray(lengths)
    its = [int(r) for r in iterations]
    if highlight is None and len(lengths):
        highlight = int(lengths[-1].argmax())
    fig = class_lengths_figure(its, lengths, highlight, title="Digit-capsule lengths vs routing iterations",
                               x_title="routing iterations", x_hover="%{x} iterations")
    fig.update_xaxes(tickvals=its)
    return fig


def compare_iterations(model, x, iterations: Sequence[int] = (1, 2, 3, 5), highlight: int | None = None) -> go.Figure:
    """Run x with each number of routing iterations and plot every class's length against it."""
    return compare_iterations_figure(lengths_by_iterations(model, x, iterations), iterations, highlight)


def capsule_details_figure(out: CapsNetOutput, index: int) -> go.Figure:
    """Two bar panels for one primary capsule: its couplings to the 10 digit capsules at every routing
    iteration (grouped) and its agreement u_hat_j|i · v_j with each final digit capsule."""
    d = capsule_details(out, index)
    cbi = d["couplings_by_iteration"]
    classes = list(range(NUM_CLASSES))
    r = len(cbi)
    traces = []
    for i in range(r):
        traces.append(go.Bar(
            x=classes, y=cbi[i], name=f"coupling, iteration {i + 1}", xaxis="x", yaxis="y",
            marker=dict(color="#1f77b4", opacity=0.3 + 0.7 * (i + 1) / r),
            hovertemplate=f"iteration {i + 1}<br>digit %{{x}}: c = %{{y:.3f}}<extra></extra>",
        ))  # fmt: skip
    agr = d["agreement"]
    traces.append(go.Bar(
        x=classes, y=agr, name="agreement û·v", xaxis="x2", yaxis="y2", showlegend=False,
        marker=dict(color=["#2ca02c" if a >= 0 else "#d62728" for a in agr]),
        hovertemplate="digit %{x}: agreement %{y:.3f}<extra></extra>",
    ))  # fmt: skip
    fig = go.Figure(traces)
    top, left, bottom, right = d["receptive_field"]
    fig.update_layout(
        title=dict(text=f"Capsule {d['index']}: type {d['type']}, row {d['row']}, col {d['col']} — length "
                        f"{d['length']:.3f}, field rows {top}–{bottom - 1}, cols {left}–{right - 1}", font=dict(size=13)),
        barmode="group",
        xaxis=dict(domain=[0, 0.55], tickvals=classes, title=dict(text="digit capsule")),
        yaxis=dict(title=dict(text="coupling c_ij"), rangemode="tozero"),
        xaxis2=dict(domain=[0.65, 1], tickvals=classes, anchor="y2", title=dict(text="digit capsule")),
        yaxis2=dict(anchor="x2", title=dict(text="agreement û_j|i · v_j")),
        margin=dict(l=10, r=10, t=40, b=10), height=300, legend=dict(orientation="h", y=-0.3),
    )  # fmt: skip
    return fig


def routing_views(out: CapsNetOutput, image28, digit_class: int | None = None, iteration: int = -1,
                  selected: int | None = None) -> dict:
    """Every per-input routing view at once (what the app shows for a new input): coupling map, sharpening
    figure, evidence overlay and, when `selected` is given, that capsule's details figure and field overlay.
    `digit_class` defaults to the prediction; `selected` to the most active capsule."""
    k = int(out.predictions[0]) if digit_class is None else _check_class(digit_class)
    if selected is None:
        selected = int(out.primary_lengths[0].argmax())
    return {
        "digit_class": k,
        "selected": selected,
        "coupling_map": coupling_map(out, k, iteration, selected=selected),
        "sharpening": coupling_sharpening_figure(out, k),
        "evidence": routing_evidence_overlay(out, image28, k, iteration),
        "capsule_figure": capsule_details_figure(out, selected),
        "capsule_field": receptive_field_overlay(image28, selected),
        "capsule": capsule_details(out, selected),
    }
