"""Equivariance views: pose trajectories of one input under a transform, and the model card's whole-test-set
matrix as a heat map. Plain functions from `capsnet.equivariance` results (and the model card dict) to
plotly figures, Markdown and HTML; nothing here knows about Gradio or recomputes the model."""
from __future__ import annotations

import html
import math
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from capsnet.atlas import TRANSFORM_MEASURES
from capsnet.equivariance import IDENTITY, UNITS, TransformResponse, tracking_order

from .fastfig import LightFigure
from ..text import tr
from .model_card import empty_figure

TITLES = {"rotation": "rotation", "scale": "scale", "shift_x": "shift in x", "shift_y": "shift in y",
          "thickness": "stroke thickness"}  # fmt: skip
SHORT = {"shift_x": "shift x", "shift_y": "shift y", "thickness": "thickness"}  # the heat maps' column names
TOP = 3  # dimensions highlighted as tracking a transform
# distinct colours for the highlighted dimensions; the others are grey
HIGHLIGHT_COLORS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e")
OTHER_DIM_COLOR = "#9a9a9a"
CNN_COLOR = "#222222"  # the CNN baseline's line, dashed beside the capsule lengths
NO_MATRIX = ("The model card has no equivariance matrix yet: run `python -m capsnet.equivariance "
             "--data-dir PATH/TO/MNIST` (it measures it on the test set and adds it to the card).")  # fmt: skip


def axis_title(name: str) -> str:
    """A transform's name and unit, for an axis: "rotation (degrees, counter-clockwise)"."""
    return f"{tr(TITLES.get(name, name))} ({tr(UNITS[name])})" if name in UNITS else tr(TITLES.get(name, name))


def dimension_label(card: dict | None, digit_class: int, dim: int) -> str | None:
    """The decoder-side label of a pose dimension (the model card's `dimension_labels`), or None without one."""
    try:
        label = card["dimension_labels"][int(digit_class)][int(dim)]["label"]  # type: ignore[index]
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return tr(str(label).strip()) or None if label is not None else None


def disagreeing_dims(name: str, dims: Sequence[int], digit_class: int, card: dict | None) -> list[int]:
    """Of `dims`, those whose decoder label names a measure that transform `name` does not move
    (capsnet.atlas.TRANSFORM_MEASURES; a local label counts as disagreeing): encoder and decoder tell different
    stories. Dimensions without a label are left out."""
    out = []
    for d in dims:
        try:
            effect = card["dimension_labels"][int(digit_class)][int(d)]["effect"]  # type: ignore[index]
        except (KeyError, IndexError, TypeError, ValueError):
            continue
        if effect and effect not in TRANSFORM_MEASURES.get(name, ()):
            out.append(int(d))
    return out


def _quote_join(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else tr("{items} and {last}", items=tr(", ").join(items[:-1]), last=items[-1])


def tracking_dims(rho: Sequence[float], top: int = TOP, spread: Sequence[float] | None = None) -> list[int]:
    """The `top` dimensions with the largest |rho|, strongest first; ties go to the one that moves furthest."""
    return tracking_order(rho, spread)[:top]


def tracking_markdown(name: str, rho: Sequence[float], digit_class: int, card: dict | None = None,
                      top: int = TOP, spread: Sequence[float] | None = None) -> str:  # fmt: skip
    """One sentence: which dimensions track the transform, with their rho and, where the model card has them,
    the decoder's labels for those dimensions."""
    dims = tracking_dims(rho, top, spread)
    parts = [f"{d} (ρ = {float(rho[d]):+.2f})" for d in dims]
    text = tr("**{what}** is tracked most by dims {dims} of digit capsule {k}", what=tr(TITLES[name]).capitalize(),
              dims=_quote_join(parts), k=digit_class)
    labels = [(d, dimension_label(card, digit_class, d)) for d in dims]
    named = [(d, lab) for d, lab in labels if lab]
    if named:
        text += tr(", which the decoder labels {labels}", labels=_quote_join(
            [tr("“{label}” (dim {d})", label=html.escape(lab), d=d) for d, lab in named]))
    apart = disagreeing_dims(name, [d for d, _ in named], digit_class, card)
    if apart:
        disagree = (". Encoder and decoder disagree on dims {dims}: decoded, a step along it changes something a {what} "
                    "does not") if len(apart) > 1 else (". Encoder and decoder disagree on dim {dims}: decoded, a step "
                                                        "along it changes something a {what} does not")  # fmt: skip
        text += tr(disagree, dims=_quote_join([str(d) for d in apart]), what=tr(TITLES[name]))
    return text + tr(". Click a dimension to open its pose slider.")


def trajectory_spec(r: TransformResponse, card: dict | None = None, top: int = TOP,
                    current: float | None = None) -> LightFigure:  # fmt: skip
    """The pose trajectories as a LightFigure (plain dicts, no per-property validation): the Transforms tab redraws
    it on every slider move, and a validated go.Figure of 26 traces costs more than the model. Left: the 16 pose
    dimensions of the predicted digit capsule against the transform value, the `top`
    tracking dimensions (largest |Spearman rho|) in colour and bold, the rest grey. Right: every digit
    capsule's length (the predicted one bold). Each pose trace carries its dimension in customdata, so a
    click can open that dimension's slider."""
    x = [float(v) for v in r.values]
    poses = np.asarray(r.poses, np.float64).round(5).T.tolist()  # [16][n]
    lengths = np.asarray(r.lengths, np.float64).round(5).T.tolist()  # [10][n]
    rho = np.asarray(r.rho, np.float64).tolist()
    k = r.digit_class
    dims = r.tracking(top)
    unit = "°" if r.transform == "rotation" else ""
    what = tr(TITLES[r.transform])
    traces = []
    order = [d for d in range(len(poses)) if d not in dims] + dims[::-1]  # highlighted ones drawn on top
    for d in order:
        rank = dims.index(d) if d in dims else None
        label = dimension_label(card, k, d)
        traces.append(dict(
            type="scatter", x=x, y=poses[d], xaxis="x", yaxis="y", mode="lines" if rank is None else "lines+markers",
            name=tr("dim {d} (ρ {rho:+.2f})", d=d, rho=rho[d]) + (f" “{label}”" if label and rank is not None else ""),
            legendrank=100 + d if rank is None else rank, showlegend=rank is not None,
            line=dict(color=OTHER_DIM_COLOR if rank is None else HIGHLIGHT_COLORS[rank % len(HIGHLIGHT_COLORS)],
                      width=1.2 if rank is None else 3.5),
            opacity=0.55 if rank is None else 1.0, customdata=[d] * len(x),
            hovertemplate=tr("dim {d} (ρ {rho:+.2f})", d=d, rho=rho[d]) + (f" “{html.escape(label)}”" if label else "")
            + tr("<br>{what} %{{x:g}}{unit}: %{{y:.3f}}<br><i>click: open its pose slider</i><extra></extra>",
                 what=what, unit=unit),
        ))  # fmt: skip
    for c in range(len(lengths)):
        hi = c == k
        traces.append(dict(
            type="scatter", x=x, y=lengths[c], xaxis="x2", yaxis="y2", mode="lines", name=tr("length {c}", c=c),
            showlegend=False, line=dict(color="#e4572e" if hi else "#4c72b0", width=3 if hi else 1),
            opacity=1.0 if hi else 0.35,
            hovertemplate=tr("digit {c}<br>{what} %{{x:g}}{unit}: length %{{y:.3f}}<extra></extra>", c=c, what=what,
                             unit=unit),
        ))  # fmt: skip
    if r.baseline is not None:  # the CNN baseline's softmax for the same class, on the same inputs
        traces.append(dict(
            type="scatter", x=x, y=np.asarray(r.baseline[:, k], np.float64).round(5).tolist(), xaxis="x2", yaxis="y2",
            mode="lines", name=f"CNN P({k})", showlegend=False, line=dict(color=CNN_COLOR, width=2.5, dash="dash"),
            hovertemplate=tr("CNN baseline: P(digit {k})<br>{what} %{{x:g}}{unit}: %{{y:.3f}}<extra></extra>", k=k,
                             what=what, unit=unit),
        ))  # fmt: skip
    marks = [IDENTITY[r.transform]] + ([float(current)] if current is not None and math.isfinite(current) else [])
    shapes = [dict(type="line", xref=xref, x0=m, x1=m, yref=f"{yref} domain", y0=0, y1=1,  # its panel's height
                   line=dict(color="#333" if i else "#bbb", dash="dot", width=1.2))
              for i, m in enumerate(marks) for xref, yref in (("x", "y"), ("x2", "y2"))]  # fmt: skip
    titles = [dict(text=t, x=xc, xref="paper", xanchor="center", y=1.0, yref="paper", yanchor="bottom", showarrow=False,
                   font=dict(size=13))
              for t, xc in ((tr("pose of digit capsule {k} (16 dims)", k=k), 0.31),
                            (tr("capsule lengths") + (tr(" · CNN P (dashed)") if r.baseline is not None else ""), 0.86))]  # fmt: skip
    grid = dict(gridcolor="white", zerolinecolor="white", linecolor="white")  # plotly's default look, untemplated
    return LightFigure(traces, dict(
        xaxis=dict(domain=[0, 0.62], title=dict(text=axis_title(r.transform)), **grid),
        yaxis=dict(title=dict(text=tr("pose value")), **grid),
        xaxis2=dict(domain=[0.72, 1], anchor="y2", title=dict(text=what), **grid),
        yaxis2=dict(anchor="x2", range=[0, 1.02], title=dict(text=tr("length") if r.baseline is None else tr("length · P")), **grid), plot_bgcolor="#E5ECF6",
        shapes=shapes, annotations=titles, height=380, margin=dict(l=60, r=10, t=40, b=10), hovermode="closest",
        clickmode="event", meta=dict(digit_class=k, transform=r.transform),  # read by static/pose_link.js
        legend=dict(orientation="h", y=-0.22, x=0, title=dict(text=tr("tracking most:"))),
    ))  # fmt: skip


def dimension_chips_html(rho: Sequence[float], digit_class: int, card: dict | None = None, top: int = TOP,
                         spread: Sequence[float] | None = None) -> str:  # fmt: skip
    """All 16 dimensions as buttons ordered by |rho| (the `top` ones marked); a click opens that dimension's
    pose slider (explorer/static handles data-pose-dim)."""
    dims = tracking_dims(rho, len(rho), spread)
    chips = []
    for rank, d in enumerate(dims):
        label = dimension_label(card, digit_class, d)
        cls = "eq-dim" + (" eq-dim-top" if rank < top else "")
        style = f' style="border-color:{HIGHLIGHT_COLORS[rank % len(HIGHLIGHT_COLORS)]}"' if rank < top else ""
        text = tr("dim {d} <small>ρ {rho:+.2f}</small>", d=d, rho=float(rho[d])) + (f" <em>{html.escape(label)}</em>" if label else "")
        chips.append(f'<button type="button" class="{cls}"{style} data-pose-dim="{d}" data-digit-class="{int(digit_class)}" '
                     f'title="{tr("open the pose slider of dim {d}", d=d)}">{text}</button>')  # fmt: skip
    return f'<div class="eq-dims" id="eq-dims">{"".join(chips)}</div>'


def response_summary(r: TransformResponse) -> dict:
    """The `transform_response` endpoint's JSON (values, lengths [n][10], poses [n][16], digit_class)."""
    return {**r.to_json(), "error": None}


# --------------------------------------------------------------------------- the whole-test-set matrix


def _matrix(card: dict | None) -> tuple[np.ndarray, dict] | None:
    e = (card or {}).get("equivariance")
    try:
        m = np.asarray(e["median_abs_rho"], np.float64)  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        return None
    if m.ndim != 3 or m.shape[2] != len(e.get("transforms") or ()):
        return None
    return m, e


def equivariance_heatmap(card: dict | None) -> go.Figure:
    """The model card's median |rho| per (class, pose dimension, transform): one 16 x 5 heat map per class,
    one colour scale (0 = no monotone tracking, 1 = perfect) for all; hover shows the signed median and any
    decoder label of the dimension."""
    got = _matrix(card)
    if got is None:
        return empty_figure(tr(NO_MATRIX), height=200)
    m, e = got
    names = list(e["transforms"])
    signed = np.asarray(e.get("median_rho") or np.full(m.shape, np.nan), np.float64)
    n_cls, n_dim = m.shape[0], m.shape[1]
    cols = 5
    rows = math.ceil(n_cls / cols)
    fig = make_subplots(rows=rows, cols=cols, horizontal_spacing=0.025, vertical_spacing=0.09,
                        subplot_titles=[tr("digit {j}", j=c) for c in range(n_cls)])
    xs = [tr(SHORT.get(n, n)) for n in names]
    for c in range(n_cls):
        labels = [[dimension_label(card, c, d) or "" for _ in names] for d in range(n_dim)]
        custom = np.dstack([np.nan_to_num(signed[c], nan=0.0), np.array(labels, dtype=object)])
        fig.add_trace(go.Heatmap(
            z=m[c], x=xs, y=[tr("dim {d}", d=d) for d in range(n_dim)], zmin=0, zmax=1, colorscale="Viridis",
            showscale=c == 0, colorbar=dict(title=dict(text=tr("median |ρ|")), len=0.8), customdata=custom,
            hovertemplate=tr("digit {c}, %{{y}} vs %{{x}}<br>median |ρ| %{{z:.2f}}, median ρ %{{customdata[0]:+.2f}}"
                             "<br>%{{customdata[1]}}<extra></extra>", c=c),
        ), c // cols + 1, c % cols + 1)  # fmt: skip
    fig.update_yaxes(autorange="reversed", showticklabels=False)
    for r in range(rows):
        fig.update_yaxes(showticklabels=True, tickfont=dict(size=9), row=r + 1, col=1)
    fig.update_xaxes(tickfont=dict(size=9), tickangle=-45)
    fig.update_layout(height=330 * rows + 30, margin=dict(l=10, r=10, t=70, b=10))
    return fig


def equivariance_markdown(card: dict | None) -> str:
    """How the matrix was measured, and per transform the dimension that tracks it best in most classes."""
    got = _matrix(card)
    if got is None:
        return NO_MATRIX
    m, e = got
    names = list(e["transforms"])
    counts = [c for c in (e.get("digits_per_class") or []) if c]
    n = "?" if not counts else str(min(counts)) if min(counts) == max(counts) else f"{min(counts)}–{max(counts)}"
    lines = [tr("Median |Spearman ρ| between each pose dimension of a digit's own capsule and each input transform, "
                "over {n} correctly classified test digits per class (1 = the dimension rises or falls monotonically "
                "with the transform on a typical digit; values near 0.3 are what noise gives over a short sweep).", n=n)]
    best = []
    for t, name in enumerate(names):
        per_class = m[:, :, t].max(1)
        best.append(f"{tr(TITLES.get(name, name))} {np.median(per_class):.2f}")
    lines.append(tr("Median over classes of the best-tracking dimension's |ρ|: {best}.", best=tr(", ").join(best)))
    how = []
    if e.get("command"):
        how.append(f"`{e['command']}`")
    if e.get("seconds") is not None:
        how.append(tr("{s:.0f} s on {n} torch threads", s=float(e["seconds"]), n=e.get("torch_threads", "?")))
    if how:
        lines.append(tr("Measured with {how}.", how=", ".join(how)))
    if e.get("method"):
        lines.append(f"<details><summary>{tr('Method')}</summary>{html.escape(str(e['method']))}</details>")
    return "\n\n".join(lines)


__all__ = ["dimension_chips_html", "dimension_label", "equivariance_heatmap", "equivariance_markdown",
           "response_summary", "tracking_dims", "tracking_markdown", "trajectory_spec"]  # fmt: skip
