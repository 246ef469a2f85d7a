"""Routing inspector figures: sharpening over iterations, iteration counts compared, capsule details.

Pure functions from one CapsNetOutput (batch index 0) to plotly figures and JSON-able dicts. The numbers they
draw come from `views.couplings` (the coupling map itself is `views.capsule_map`); nothing re-implements model math.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
import torch

from capsnet.model import CapsNetOutput

from .fastfig import LightFigure
from ..text import tr
from .couplings import (
    CLASS_COLORS, IMAGE_SIZE, NUM_CLASSES, as_numpy, capsule_details, check_class, coupling_entropy_by_iteration,
    num_iterations,
)

def coupling_quantiles(out: CapsNetOutput, digit_class: int, min_length: float = 0.0) -> np.ndarray:
    """(r, 5) quantiles (min, 25%, median, 75%, max) of the couplings to `digit_class` at each iteration, over the
    primary capsules at least `min_length` long (all of them if none is)."""
    c = as_numpy(out.couplings[0, :, :, check_class(digit_class)])  # (r, I)
    keep = as_numpy(out.primary_lengths[0]) >= min_length
    if keep.any():
        c = c[:, keep]
    return np.quantile(c, [0.0, 0.25, 0.5, 0.75, 1.0], axis=1).T


def coupling_sharpening_figure(out: CapsNetOutput, digit_class: int, min_length: float = 0.0) -> LightFigure:
    """How routing sharpens, per iteration: left, box plots of every capsule's coupling to `digit_class`
    (all exactly 0.1 at iteration 1, spreading out after); right, the length-weighted mean entropy of the
    couplings as its drop below the uniform ln 10 (nats)."""
    k = check_class(digit_class)
    r = num_iterations(out)
    its = list(range(1, r + 1))
    q = coupling_quantiles(out, k, min_length)
    h = coupling_entropy_by_iteration(out, True)
    traces = [
        dict(type="box", x=its, lowerfence=q[:, 0], q1=q[:, 1], median=q[:, 2], q3=q[:, 3], upperfence=q[:, 4],
             name=tr("coupling to {k}", k=k), marker=dict(color=CLASS_COLORS[k]), xaxis="x", yaxis="y",
             hovertemplate=tr("iteration %{x}<extra></extra>")),
        dict(type="scatter", x=its, y=math.log(10) - h, mode="lines+markers", name=tr("entropy drop"), xaxis="x2",
             yaxis="y2", line=dict(color="#444"), customdata=h,
             hovertemplate=tr("iteration %{x}: entropy %{customdata:.5f} nats (ln 10 − %{y:.2e})<extra></extra>")),
    ]  # fmt: skip
    return LightFigure(traces, dict(
        title=dict(text=tr("Routing sharpens the couplings (digit {k})", k=k), font=dict(size=13)),
        xaxis=dict(domain=[0, 0.55], tickvals=its, title=dict(text=tr("routing iteration"))),
        yaxis=dict(title=dict(text=tr("coupling to {k}", k=k))),
        xaxis2=dict(domain=[0.68, 1], tickvals=its, anchor="y2", title=dict(text=tr("routing iteration"))),
        yaxis2=dict(anchor="x2", rangemode="tozero", title=dict(text=tr("ln 10 − mean entropy (nats)")),
                    exponentformat="e"),
        shapes=[dict(type="line", xref="x domain", x0=0, x1=1, yref="y", y0=0.1, y1=0.1,
                     line=dict(color="grey", dash="dash", width=1))],
        showlegend=False, margin=dict(l=10, r=10, t=40, b=10), height=300,
    ))  # fmt: skip


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
            rows.append(as_numpy(model(xb.to(device), routing_iterations=int(r)).lengths[0]))
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
            hovertemplate=tr("digit {k}<br>{x}: length %{{y:.3f}}<extra></extra>", k=k, x=x_hover),
        ))  # fmt: skip
    fig = go.Figure(traces)
    fig.update_layout(
        title=dict(text=title, font=dict(size=13)),
        xaxis=dict(title=dict(text=x_title)),
        yaxis=dict(title=dict(text=tr("length (class probability)")), range=[0, 1.02]),
        shapes=[dict(type="line", xref="paper", x0=0, x1=1, y0=0.5, y1=0.5, line=dict(color="grey", dash="dot", width=1))],
        margin=dict(l=10, r=10, t=40, b=10), height=320, legend=dict(title=dict(text=tr("digit"))),
    )  # fmt: skip
    return fig


def compare_iterations_figure(lengths: np.ndarray, iterations: Sequence[int], highlight: int | None = None) -> go.Figure:
    """Line plot of each class's length against the number of routing iterations (from lengths_by_iterations)."""
    lengths = np.asarray(lengths)
    its = [int(r) for r in iterations]
    if highlight is None and len(lengths):
        highlight = int(lengths[-1].argmax())
    fig = class_lengths_figure(its, lengths, highlight, title=tr("Digit-capsule lengths vs routing iterations"),
                               x_title=tr("routing iterations"), x_hover=tr("%{x} iterations"))
    fig.update_xaxes(tickvals=its)
    return fig


def compare_iterations(model, x, iterations: Sequence[int] = (1, 2, 3, 5), highlight: int | None = None) -> go.Figure:
    """Run x with each number of routing iterations and plot every class's length against it."""
    return compare_iterations_figure(lengths_by_iterations(model, x, iterations), iterations, highlight)


def capsule_details_figure(out: CapsNetOutput, index: int) -> LightFigure:
    """Two bar panels for one primary capsule: its couplings to the 10 digit capsules at every routing
    iteration (grouped) and its agreement u_hat_j|i · v_j with each final digit capsule."""
    d = capsule_details(out, index)
    cbi = d["couplings_by_iteration"]
    classes = list(range(NUM_CLASSES))
    r = len(cbi)
    traces = [
        dict(type="bar", x=classes, y=cbi[i], name=tr("coupling, iteration {i}", i=i + 1), xaxis="x", yaxis="y",
             marker=dict(color="#1f77b4", opacity=0.3 + 0.7 * (i + 1) / r),
             hovertemplate=tr("iteration {i}<br>digit %{{x}}: c = %{{y:.3f}}<extra></extra>", i=i + 1))
        for i in range(r)
    ]  # fmt: skip
    agr = d["agreement"]
    traces.append(dict(
        type="bar", x=classes, y=agr, name=tr("agreement û·v"), xaxis="x2", yaxis="y2", showlegend=False,
        marker=dict(color=["#2ca02c" if a >= 0 else "#d62728" for a in agr]),
        hovertemplate=tr("digit %{x}: agreement %{y:.3f}<extra></extra>"),
    ))  # fmt: skip
    top, left, bottom, right = d["receptive_field"]
    return LightFigure(traces, dict(
        title=dict(text=tr("Capsule {index}: type {type}, row {row}, col {col} — length {length:.3f}, field rows "
                           "{top}–{bottom}, cols {left}–{right}", index=d["index"], type=d["type"], row=d["row"],
                           col=d["col"], length=d["length"], top=top, bottom=bottom - 1, left=left, right=right - 1),
                   font=dict(size=13)),
        barmode="group",
        xaxis=dict(domain=[0, 0.55], tickvals=classes, title=dict(text=tr("digit capsule"))),
        yaxis=dict(title=dict(text=tr("coupling c_ij")), rangemode="tozero"),
        xaxis2=dict(domain=[0.65, 1], tickvals=classes, anchor="y2", title=dict(text=tr("digit capsule"))),
        yaxis2=dict(anchor="x2", title=dict(text=tr("agreement û_j|i · v_j"))),
        margin=dict(l=10, r=10, t=40, b=10), height=300, legend=dict(orientation="h", y=-0.3),
    ))  # fmt: skip


__all__ = [
    "capsule_details_figure",
    "class_lengths_figure",
    "compare_iterations",
    "compare_iterations_figure",
    "coupling_quantiles",
    "coupling_sharpening_figure",
    "lengths_by_iterations",
]
