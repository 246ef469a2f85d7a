"""Where routing's structure is: signed vote contributions a_ij = c_ij (u_hat_j|i . v_j/|v_j|).

Couplings of the trained model stay close to the uniform 0.1, so drawing c_ij shows a flat map. The
contributions do not: they add up exactly to the pre-squash length (sum_i a_ij = |s_j|), so they say which
primary capsules make a digit capsule long and which pull against it. Every number is read from a
CapsNetOutput made with `trace_routing=True` (`contributions`, `pre_squash_norms`); this module only selects,
sums for display and draws. Iterations are 1..r (negative: from the end), as in views.couplings.
"""
from __future__ import annotations

import numpy as np

from capsnet import receptive_field
from capsnet.model import CapsNetOutput

from . import couplings
from ..text import tr
from .capsule_map import diverging
from .fastfig import LightFigure, key, ref

SCALE = 4  # pixel overlays: 112 px per panel
PANEL_GAP = 6
TOP_K = 16  # primary capsules drawn in the link diagram
# Explicit colour scales: plotly.js's named "RdBu" runs blue -> grey -> red, plotly.py's red -> blue, so a name would
# depend on who resolves it. Blue (negative) - white (0) - red (positive), like capsule_map.diverging.
DIVERGING = [[0.0, "rgb(33,102,172)"], [0.25, "rgb(103,169,207)"], [0.5, "rgb(247,247,247)"],
             [0.75, "rgb(239,138,98)"], [1.0, "rgb(178,24,43)"]]  # fmt: skip


def require_traced(out: CapsNetOutput) -> None:
    """Raise ValueError unless `out` comes from a forward pass with trace_routing=True."""
    if out.projections is None:
        raise ValueError("routing-structure views need a forward pass with trace_routing=True")


def contributions(out: CapsNetOutput, iteration: int = -1) -> np.ndarray:
    """(1152, 10) signed contributions a_ij of every primary capsule to every digit capsule at `iteration`."""
    require_traced(out)
    return couplings.as_numpy(out.contributions[0, couplings.resolve_iteration(out, iteration)])


def pre_squash_norms(out: CapsNetOutput, iteration: int = -1) -> np.ndarray:
    """(10,) |s_j| at `iteration` (what the contributions add up to)."""
    require_traced(out)
    return couplings.as_numpy(out.pre_squash[0, couplings.resolve_iteration(out, iteration)].norm(dim=-1))


def contribution_grid(out: CapsNetOutput, digit_class: int, iteration: int = -1) -> np.ndarray:
    """(32, 6, 6) a_ij of every primary capsule to `digit_class`, laid out like couplings.coupling_grid."""
    k = couplings.check_class(digit_class)
    return contributions(out, iteration)[:, k].reshape(couplings.NUM_TYPES, couplings.GRID, couplings.GRID)


def ranked_classes(out: CapsNetOutput) -> tuple[int, int]:
    """(predicted class, runner-up): the longest and second-longest digit capsules."""
    order = np.argsort(-couplings.as_numpy(out.lengths[0]), kind="stable")
    return int(order[0]), int(order[1])


def type_summary(out: CapsNetOutput, iteration: int = -1) -> np.ndarray:
    """(32, 10) contributions summed over the 6x6 positions of each capsule type; each column sums to |s_j|."""
    per_position = contributions(out, iteration).reshape(couplings.NUM_TYPES, -1, couplings.NUM_CLASSES)
    return per_position.sum(1)


# (36, 784): 1 where grid position (row*6 + col) sees the pixel; the last input row and column are seen by none.
_FIELDS = np.zeros((couplings.GRID * couplings.GRID, couplings.IMAGE_SIZE * couplings.IMAGE_SIZE), np.float32)
for _p in range(couplings.GRID * couplings.GRID):
    _t, _l, _b, _r = receptive_field(*divmod(_p, couplings.GRID))
    _f = np.zeros((couplings.IMAGE_SIZE, couplings.IMAGE_SIZE), np.float32)
    _f[_t:_b, _l:_r] = 1.0
    _FIELDS[_p] = _f.ravel()


def contribution_pixel_map(grid: np.ndarray) -> np.ndarray:
    """(28, 28) signed map: each grid position's contribution (summed over the 32 types) added to every pixel of
    its 17x17 receptive field."""
    w = np.asarray(grid, np.float32).reshape(couplings.NUM_TYPES, couplings.GRID * couplings.GRID).sum(0)
    return (w @ _FIELDS).reshape(couplings.IMAGE_SIZE, couplings.IMAGE_SIZE)


def contribution_panels(out: CapsNetOutput, iteration: int = -1) -> dict:
    """The three grids of the main view: predicted class, runner-up and their difference (predicted - runner-up)."""
    k1, k2 = ranked_classes(out)
    g1, g2 = contribution_grid(out, k1, iteration), contribution_grid(out, k2, iteration)
    return {"predicted": k1, "runner_up": k2, "grids": (g1, g2, g1 - g2)}


def contribution_overlay(out: CapsNetOutput, image28, iteration: int = -1, scale: int = SCALE) -> tuple[np.ndarray, float]:
    """uint8 RGB: three panels side by side (predicted, runner-up, difference), each the signed pixel map in
    red (towards the digit capsule) / blue (against) blended over the grey input, on one symmetric scale.
    Returns (image, the |value| drawn at full colour)."""
    panels = contribution_panels(out, iteration)
    maps = [contribution_pixel_map(g) for g in panels["grids"]]
    span = max(float(max(np.abs(m).max() for m in maps)), 1e-9)
    base = couplings.grey_rgb(image28, scale)
    h = couplings.IMAGE_SIZE * scale
    canvas = np.full((h, 3 * h + 2 * PANEL_GAP, 3), 255.0, np.float32)
    for n, m in enumerate(maps):
        t = couplings.upscale_map(m / span, scale)
        alpha = (0.85 * np.abs(t))[..., None]
        x0 = n * (h + PANEL_GAP)
        canvas[:, x0 : x0 + h] = base * (1 - alpha) + diverging(t) * alpha
    return np.clip(canvas + 0.5, 0, 255).astype(np.uint8), span


def _sym(values) -> float:
    return max(float(np.abs(np.nan_to_num(np.asarray(values, np.float64))).max()), 1e-9)


def contribution_grids_figure(out: CapsNetOutput, iteration: int = -1) -> LightFigure:
    """Three tiled 32 x 6 x 6 maps of a_ij: predicted class, runner-up, difference; one symmetric colour scale
    centred on 0, its limit printed in the title."""
    p = contribution_panels(out, iteration)
    k1, k2 = p["predicted"], p["runner_up"]
    norms = pre_squash_norms(out, iteration)
    it = couplings.resolve_iteration(out, iteration) + 1
    span = _sym(np.concatenate([g.ravel() for g in p["grids"]]))
    names = (tr("{k} (predicted)", k=k1), tr("{k} (runner-up)", k=k2), f"{k1} − {k2}")
    traces = []
    for n, (g, name) in enumerate(zip(p["grids"], names)):
        z = couplings.tile_layout(g)
        traces.append(dict(
            type="heatmap", z=np.round(z, 5), customdata=couplings.MAP_INDEX, colorscale=DIVERGING,
            zmin=-span, zmax=span,
            xgap=1, ygap=1, xaxis=ref("x", n + 1), yaxis=ref("y", n + 1), showscale=n == 2, name=name,
            colorbar=dict(title=dict(text="a_ij", side="right"), thickness=10, len=0.9),
            hovertemplate=tr("{name}<br>capsule %{{customdata}}: a = %{{z:.4f}}<extra></extra>", name=name),
        ))  # fmt: skip
    layout = dict(
        title=dict(text=tr("Contributions a_ij at iteration {it}<br><sup>they add up to |s_{k1}| = {n1:.3f} and "
                           "|s_{k2}| = {n2:.3f}; colour limits ±{span:.4f}</sup>", it=it, k1=k1, k2=k2, n1=norms[k1],
                           n2=norms[k2], span=span), font=dict(size=13)),
        margin=dict(l=10, r=10, t=60, b=10), height=230, plot_bgcolor="white",
        annotations=[dict(text=name, x=(n + 0.5) / 3, y=1.0, xref="paper", yref="paper", showarrow=False,
                          yanchor="bottom", font=dict(size=11)) for n, name in enumerate(names)],
    )  # fmt: skip
    for n in range(3):
        d = [n / 3 + 0.01, (n + 1) / 3 - 0.02]
        layout[key("x", n + 1)] = dict(domain=d, showticklabels=False, showgrid=False, zeroline=False, constrain="domain")
        layout[key("y", n + 1)] = dict(autorange="reversed", showticklabels=False, showgrid=False, zeroline=False,
                                       scaleanchor=ref("x", n + 1), anchor=ref("x", n + 1), constrain="domain")  # fmt: skip
    return LightFigure(traces, layout)


def type_summary_figure(out: CapsNetOutput, iteration: int = -1) -> LightFigure:
    """Heatmap of the 32 capsule types x 10 digit capsules: each type's summed contribution (columns sum to |s_j|)."""
    s = type_summary(out, iteration)
    span = _sym(s)
    it = couplings.resolve_iteration(out, iteration) + 1
    data = [dict(
        type="heatmap", z=np.round(s, 4), x=[str(k) for k in range(couplings.NUM_CLASSES)],
        y=[str(t) for t in range(couplings.NUM_TYPES)],
        colorscale=DIVERGING, zmin=-span, zmax=span, xgap=1, ygap=1,
        colorbar=dict(title=dict(text="Σ a_ij", side="right"), thickness=10),
        hovertemplate=tr("type %{y} → digit %{x}: %{z:.4f}<extra></extra>"),
    )]  # fmt: skip
    return LightFigure(data, dict(
        title=dict(text=tr("Per capsule type, iteration {it} (limits ±{span:.3f})", it=it, span=span), font=dict(size=13)),
        xaxis=dict(title=dict(text=tr("digit capsule")), side="top"),
        yaxis=dict(title=dict(text=tr("primary capsule type")), autorange="reversed", dtick=4),
        margin=dict(l=10, r=10, t=60, b=10), height=520,
    ))  # fmt: skip


def top_capsules(out: CapsNetOutput, iteration: int = -1, k: int = TOP_K) -> np.ndarray:
    """Indices of the `k` primary capsules with the largest total |a_ij| over the 10 digit capsules."""
    a = np.abs(contributions(out, iteration)).sum(1)
    return np.argsort(-a, kind="stable")[: int(k)]


def links_figure(out: CapsNetOutput, iteration: int = -1, k: int = TOP_K) -> LightFigure:
    """Bipartite diagram: the top-`k` primary capsules (left) linked to the 10 digit capsules (right), each link a
    band whose width is proportional to |a_ij| (solid: positive, hatched pale: negative). One trace per digit
    capsule and sign (`meta` = the digit), so hovering or clicking a digit capsule isolates its links
    (static/routing_links.js) and the legend toggles them."""
    a = contributions(out, iteration)
    top = top_capsules(out, iteration, k)
    it = couplings.resolve_iteration(out, iteration) + 1
    lengths = couplings.as_numpy(out.lengths[0])
    pred = int(lengths.argmax())
    n = len(top)
    y_left = np.linspace(0, 1, n) if n > 1 else np.array([0.5])
    y_right = np.linspace(0, 1, couplings.NUM_CLASSES)
    sub = a[top]  # (k, 10)
    wmax = max(float(np.abs(sub).max()), 1e-12)
    band = 0.9 / max(n, couplings.NUM_CLASSES)  # widest link: 90% of the node spacing
    traces = []
    for j in range(couplings.NUM_CLASSES):
        for sign, label in ((1, "+"), (-1, "−")):
            rows = np.nonzero(sub[:, j] * sign > 0)[0]
            w = (band * np.abs(sub[rows, j]) / wmax / 2)[:, None]
            y0, y1 = y_left[rows][:, None], y_right[j]
            nan = np.full_like(w, np.nan)
            # each link: a closed quadrilateral from (0, y0) to (1, y1), then a gap (NaN) before the next
            xs = np.tile([0.0, 1.0, 1.0, 0.0, 0.0, np.nan], len(rows))
            ys = np.hstack([y0 - w, y1 - w, y1 + w, y0 + w, y0 - w, nan]).ravel()
            traces.append(dict(
                type="scatter", x=np.round(xs, 4), y=np.round(ys, 4), mode="lines", fill="toself", line=dict(width=0), meta=j, legendgroup=str(j),
                name=tr("digit {j}", j=j), showlegend=sign == 1, hoverinfo="skip",
                fillcolor=couplings.CLASS_COLORS[j] if sign == 1 else "rgba(120,120,120,0.35)",
                opacity=0.75 if sign == 1 else 0.6,
            ))  # fmt: skip
    t_r_c = [couplings.primary_capsule_position(int(i)) for i in top]
    traces.append(dict(
        type="scatter", x=np.zeros(n), y=y_left, mode="markers+text", marker=dict(size=9, color="#444"), meta=-1,
        text=[f"{t}/{r}/{c}" for t, r, c in t_r_c], textposition="middle left", showlegend=False,
        customdata=np.round(np.stack([top, np.abs(sub).sum(1), sub[:, pred]], 1), 5),
        hovertemplate=tr("primary capsule %{{customdata[0]}} (type/row/col %{{text}})<br>Σ_j |a_ij| = "
                         "%{{customdata[1]:.4f}}<br>a to digit {pred}: %{{customdata[2]:.4f}}<extra></extra>", pred=pred),
    ))  # fmt: skip
    traces.append(dict(
        type="scatter", x=np.ones(couplings.NUM_CLASSES), y=y_right, mode="markers+text", meta=-2, showlegend=False,
        marker=dict(size=10 + 22 * lengths, color=list(couplings.CLASS_COLORS), line=dict(color="#222", width=1)),
        text=[tr("digit {j}", j=j) for j in range(couplings.NUM_CLASSES)], textposition="middle right",
        customdata=np.round(np.stack([np.arange(couplings.NUM_CLASSES), lengths, sub.sum(0)], 1), 5),
        hovertemplate=tr("digit capsule %{customdata[0]}: length %{customdata[1]:.3f}<br>these links add up to "
                         "%{customdata[2]:.4f}<extra></extra>"),
    ))  # fmt: skip
    return LightFigure(traces, dict(
        title=dict(text=tr("Top {n} primary capsules → digit capsules, iteration {it}<br><sup>width ∝ |a_ij| (widest "
                           "{w:.4f}), grey: negative; hover or click a digit capsule to isolate its links</sup>", n=n,
                           it=it, w=wmax),
                   font=dict(size=13)),
        xaxis=dict(visible=False, range=[-0.35, 1.3]), yaxis=dict(visible=False, range=[-0.06, 1.06]),
        margin=dict(l=10, r=10, t=60, b=10), height=440, plot_bgcolor="white", hovermode="closest",
        legend=dict(itemclick="toggleothers", itemdoubleclick="toggle", title=dict(text=tr("links to"))),
    ))  # fmt: skip


__all__ = [
    "contribution_grid",
    "contribution_grids_figure",
    "contribution_overlay",
    "contribution_panels",
    "contribution_pixel_map",
    "contributions",
    "links_figure",
    "pre_squash_norms",
    "ranked_classes",
    "top_capsules",
    "type_summary",
    "type_summary_figure",
]
