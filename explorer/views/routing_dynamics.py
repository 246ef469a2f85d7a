"""What routing does over its iterations, and what it changes: couplings as deviation from uniform, their
polarization, the logits and agreements, the uniform-coupling counterfactual, and each primary capsule's change
from a blank image. Plain functions from a CapsNetOutput made with `trace_routing=True` (logits, projections,
uniform_lengths, blank_distance are the model's own numbers) to figures and text; nothing here runs the model.
"""
from __future__ import annotations

import math

import numpy as np

from capsnet.model import CapsNetOutput

from . import couplings as rv
from ..text import tr
from .couplings import COUPLING_LIMIT
from .fastfig import LightFigure, key, ref
from .contributions import require_traced

POLARIZATION_BINS = np.concatenate([[0.0], np.logspace(-7, 0, 29)])  # first bin: exactly uniform (0)
HIST_BINS = 40
# views.couplings' inferno stops as a plotly colour scale (the blank-change map)
INFERNO = [[i / (len(rv.INFERNO_STOPS) - 1), "rgb({},{},{})".format(*map(int, c))]
           for i, c in enumerate(rv.INFERNO_STOPS)]

EXPLANATION = (
    "**Near-uniform couplings are what this architecture does.** In the paper's own Table 1 (Sabour, Frosst & "
    "Hinton 2017), MNIST test error is 0.29% with 1 routing iteration against 0.25% with 3. Paik, Kwak & Kim "
    "(2019, [arXiv:1907.13327](https://arxiv.org/abs/1907.13327)) found that routing algorithms often do no "
    "better than uniform or random couplings and in most cases do not change the classification, only polarize "
    "the couplings; Gu & Tresp (CVPR 2020, [arXiv:1911.07968](https://arxiv.org/abs/1911.07968)) found that "
    "routing contributes neither to generalization nor to affine robustness. There is also arithmetic: about "
    "0.1 × 1152 votes add up to |s_j| of a few units, so each vote is a few hundredths long and each logit update "
    "b += û·v is small. The structure is in **what each vote contributes** (signed contributions, links and the "
    "per-type table below), in **which capsules the digit changes** (against a blank image), and in the "
    "**counterfactual** with every coupling fixed at 0.1."
)


def coupling_deviation(out: CapsNetOutput, digit_class: int, iteration: int = -1) -> np.ndarray:
    """(32, 6, 6) c_ij - 0.1 for `digit_class`: what routing moved away from uniform."""
    return rv.coupling_grid(out, digit_class, iteration) - 1.0 / rv.NUM_CLASSES


def coupling_scale_caption(out: CapsNetOutput, digit_class: int, iteration: int = -1) -> str:
    """The fixed colour limits of the coupling map, and how much of the map they actually span."""
    d = coupling_deviation(out, digit_class, iteration)
    lo, hi = 1.0 / rv.NUM_CLASSES - COUPLING_LIMIT, 1.0 / rv.NUM_CLASSES + COUPLING_LIMIT
    within = float((np.abs(d) <= 0.005).mean())
    return tr("Fixed scale for every input and iteration: blue {lo:.2f} – white 0.10 – red {hi:.2f} (beyond: full "
              "colour). This map: {low:.4f} to {high:.4f}; {within:.0f}% of couplings within 0.1 ± 0.005.", lo=lo,
              hi=hi, low=d.min() + 0.1, high=d.max() + 0.1, within=100 * within)


def polarization(out: CapsNetOutput) -> np.ndarray:
    """(r, 1152) 1 - H_i / ln 10 per iteration: 0 for uniform couplings, 1 when a capsule couples to one digit only."""
    c = rv.as_numpy(out.couplings[0]).astype(np.float64)
    h = -(c * np.log(np.clip(c, 1e-30, None))).sum(-1)
    return np.clip(1.0 - h / math.log(rv.NUM_CLASSES), 0.0, 1.0)


def _step(edges: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A histogram as a step line (x, y) through the bin edges."""
    return np.repeat(edges, 2)[1:-1], np.repeat(counts, 2)


def polarization_figure(out: CapsNetOutput) -> LightFigure:
    """Per iteration, the histogram of polarization 1 - H_i/ln 10 over the 1152 primary capsules (log x axis).
    Iteration 1 is left out of the plot (its couplings are uniform, so every capsule is at 0; the subtitle says so)."""
    p = polarization(out)
    r = len(p)
    edges = POLARIZATION_BINS
    traces = []
    for i in range(1, r):
        counts, _ = np.histogram(p[i], edges)
        x, y = _step(np.maximum(edges, 1e-8), counts)
        traces.append(dict(type="scatter", x=x, y=y, mode="lines", name=tr("iteration {i}", i=i + 1), line=dict(width=2),
                           opacity=0.4 + 0.6 * (i + 1) / r,
                           hovertemplate=tr("%{{y}} capsules<extra>iteration {i}</extra>", i=i + 1)))  # fmt: skip
    med = np.median(p[-1])
    return LightFigure(traces, dict(
        title=dict(text=tr("Polarization 1 − H_i / ln 10 of each primary capsule's couplings, per iteration<br><sup>0 "
                           "= uniform over the 10 digit capsules, 1 = all to one; iteration 1: all {n} capsules at "
                           "{first:.0f} (uniform); final median {med:.1e}, max {top:.3f}</sup>", n=p.shape[1],
                           first=p[0].max(), med=med, top=p[-1].max()),
                   font=dict(size=13)),
        xaxis=dict(type="log", range=[-8.1, 0.05], title=dict(text=tr("polarization (log scale; 1e-8 = exactly 0)"))),
        yaxis=dict(title=dict(text=tr("primary capsules")), rangemode="tozero"),
        margin=dict(l=10, r=10, t=60, b=10), height=300, legend=dict(orientation="h", y=-0.3),
    ))  # fmt: skip


def centred_logits(out: CapsNetOutput) -> np.ndarray:
    """(r, 1152, 10) b_ij - mean_j b_ij: the logits each iteration's couplings are the softmax of, centred per
    primary capsule (the softmax ignores the mean)."""
    require_traced(out)
    b = rv.as_numpy(out.logits[0])
    return b - b.mean(-1, keepdims=True)


def agreement_by_iteration(out: CapsNetOutput) -> np.ndarray:
    """(r, 1152, 10) u_hat_j|i . v_j/|v_j| at each iteration."""
    require_traced(out)
    return rv.as_numpy(out.projections[0])


def _hist_pair(values: np.ndarray, k: int, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fractions of (class k's values, the other classes' values) per bin."""
    own = np.histogram(values[:, k], edges)[0] / max(values.shape[0], 1)
    rest = np.delete(values, k, axis=1).ravel()
    return own, np.histogram(rest, edges)[0] / max(rest.size, 1)


def logits_figure(out: CapsNetOutput, digit_class: int | None = None) -> LightFigure:
    """Two rows of histograms, one column per iteration: centred logits b_ij - mean_j b_ij (top) and û·v̂ (bottom),
    for `digit_class` (default: the prediction) against the other nine digit capsules (as fractions)."""
    k = int(out.predictions[0]) if digit_class is None else rv.check_class(digit_class)
    rows = ((tr("centred logit b − mean b"), centred_logits(out)), ("û·v̂", agreement_by_iteration(out)))
    r = rows[0][1].shape[0]
    traces, layout = [], {}
    w = 1.0 / r
    for row, (name, vals) in enumerate(rows):
        span = max(float(np.abs(vals).max()), 1e-6)
        edges = np.linspace(-span, span, HIST_BINS + 1)
        for it in range(r):
            n = row * r + it + 1
            own, rest = _hist_pair(vals[it], k, edges)
            for frac, label, color in ((own, tr("digit {j}", j=k), rv.CLASS_COLORS[k]), (rest, tr("other digits"), "#888")):
                x, y = _step(edges, frac)
                traces.append(dict(type="scatter", x=np.round(x, 6), y=np.round(y, 5), mode="lines", name=label,
                                   line=dict(color=color, width=1.5), fill="tozeroy", opacity=0.6,
                                   legendgroup=label, showlegend=n == 1, xaxis=ref("x", n), yaxis=ref("y", n),
                                   hovertemplate=tr("{label}, iteration {i}<br>%{{x:.4f}}: %{{y:.3f}}<extra></extra>", label=label, i=it + 1)))  # fmt: skip
            layout[key("x", n)] = dict(domain=[it * w + 0.02, (it + 1) * w - 0.02], anchor=ref("y", n),
                                       title=dict(text=tr("{name}, iteration {i}", name=name, i=it + 1), font=dict(size=10)))  # fmt: skip
            layout[key("y", n)] = dict(domain=[0.58, 1.0] if row == 0 else [0.0, 0.4], anchor=ref("x", n), rangemode="tozero",
                                       showticklabels=it == 0)  # fmt: skip
    layout.update(
        title=dict(text=tr("Logits and agreement per iteration: digit {k} against the others (fraction of votes)", k=k),
                   font=dict(size=13)),
        margin=dict(l=10, r=10, t=50, b=40), height=440, legend=dict(orientation="h", y=1.08, x=0.6),
    )
    return LightFigure(traces, layout)


def counterfactual(out: CapsNetOutput) -> dict:
    """Routed lengths against the lengths with every coupling fixed at 0.1, and whether routing flips the prediction."""
    require_traced(out)
    routed, uniform = rv.as_numpy(out.lengths[0]), rv.as_numpy(out.uniform_lengths[0])
    return {"routed": routed, "uniform": uniform, "routed_digit": int(routed.argmax()),
            "uniform_digit": int(uniform.argmax()), "flipped": int(routed.argmax()) != int(uniform.argmax())}  # fmt: skip


def counterfactual_text(out: CapsNetOutput) -> str:
    c = counterfactual(out)
    k, u = c["routed_digit"], c["uniform_digit"]
    if c["flipped"]:
        verdict = tr("**Routing flips the prediction**: uniform couplings say **{u}**, routing says **{k}**.", u=u, k=k)
    else:
        verdict = tr("Routing does **not** change the prediction: **{k}** either way.", k=k)
    return verdict + " " + tr("Length of digit capsule {k}: {uniform:.3f} with every coupling at 0.1, {routed:.3f} "
                              "after routing.", k=k, uniform=c["uniform"][k], routed=c["routed"][k])


def counterfactual_figure(out: CapsNetOutput) -> LightFigure:
    """Grouped bars: each digit capsule's length with uniform couplings (0.1) and after routing."""
    c = counterfactual(out)
    x = [str(j) for j in range(rv.NUM_CLASSES)]
    traces = [
        dict(type="bar", x=x, y=np.round(c["uniform"], 4), name=tr("every coupling 0.1"), marker=dict(color="#bbbbbb"),
             hovertemplate=tr("digit %{x}: %{y:.3f} (uniform)<extra></extra>")),
        dict(type="bar", x=x, y=np.round(c["routed"], 4), name=tr("routed"), marker=dict(color=list(rv.CLASS_COLORS)),
             hovertemplate=tr("digit %{x}: %{y:.3f} (routed)<extra></extra>")),
    ]  # fmt: skip
    flip = tr("routing flips the prediction") if c["flipped"] else tr("same prediction")
    return LightFigure(traces, dict(
        title=dict(text=tr("Uniform couplings vs routing: {u} → {k} ({flip})", u=c["uniform_digit"], k=c["routed_digit"],
                           flip=flip),
                   font=dict(size=13)),
        barmode="group", xaxis=dict(title=dict(text=tr("digit capsule")), dtick=1, automargin=True),
        yaxis=dict(title=dict(text=tr("length")), range=[0, 1.02], automargin=True),
        margin=dict(l=10, r=10, t=40, b=10), height=260, legend=dict(orientation="h", y=-0.3, yanchor="top"),
    ))  # fmt: skip


def blank_change_figure(out: CapsNetOutput) -> LightFigure:
    """Two tiled 32 x 6 x 6 maps side by side: each primary capsule's length |u_i| and its change from a blank
    image |u_i - u_i,blank| (the lengths are high almost everywhere; the change shows what the digit did)."""
    require_traced(out)
    maps = ((rv.activity_grid(out), tr("length |u_i|"), "Viridis"),
            (rv.as_numpy(out.blank_distance[0]).reshape(rv.NUM_TYPES, rv.GRID, rv.GRID), "|u_i − u_i,blank|", INFERNO))  # fmt: skip
    traces, layout = [], {}
    for n, (g, name, scale) in enumerate(maps):
        traces.append(dict(
            type="heatmap", z=np.round(rv.tile_layout(g), 4), customdata=rv.MAP_INDEX, colorscale=scale, zmin=0,
            zmax=1.0 if n == 0 else max(float(g.max()), 1e-6), xgap=1, ygap=1, xaxis=ref("x", n + 1), yaxis=ref("y", n + 1),
            colorbar=dict(x=0.47 if n == 0 else 1.0, thickness=10, len=0.8), name=name,
            hovertemplate=tr("capsule %{{customdata}}: {name} = %{{z:.3f}}<extra></extra>", name=name),
        ))  # fmt: skip
        layout[key("x", n + 1)] = dict(domain=[n * 0.52, n * 0.52 + 0.44], showticklabels=False, showgrid=False,
                                       zeroline=False, constrain="domain")  # fmt: skip
        layout[key("y", n + 1)] = dict(autorange="reversed", showticklabels=False, showgrid=False, zeroline=False,
                                       scaleanchor=ref("x", n + 1), anchor=ref("x", n + 1), constrain="domain")  # fmt: skip
    act, dist = maps[0][0], maps[1][0]
    layout.update(
        title=dict(text=tr("What the digit changes: length (left, median {a:.2f}) and distance from a blank image's "
                           "capsule (right, median {d:.2f})", a=np.median(act), d=np.median(dist)), font=dict(size=13)),
        annotations=[dict(text=t, x=x, y=1.0, xref="paper", yref="paper", showarrow=False, yanchor="bottom")
                     for t, x in (("|u_i|", 0.22), ("|u_i − u_i,blank|", 0.74))],
        margin=dict(l=10, r=10, t=60, b=10), height=260, plot_bgcolor="white",
    )  # fmt: skip
    return LightFigure(traces, layout)


def routing_study_markdown(card: dict | None) -> str:
    """The model card's offline routing study (python -m capsnet.evaluate --routing-study) as a short table."""
    s = (card or {}).get("routing_study")
    if not isinstance(s, dict) or "accuracy" not in s:
        return tr("#### Does routing matter?\n\nNo routing study in this model card yet: run "
                  "`python -m capsnet.evaluate --routing-study`.")
    try:
        n, r = int(s["n"]), int(s["routing_iterations"])
        rows = [f"| {k} | {100 * float(s['accuracy'][k]):.2f}% | {int(s['changed_vs_uniform'][k])} |"
                for k in sorted(s["accuracy"], key=int)]  # fmt: skip
        lines = [
            tr("#### Does routing matter?"),
            "",
            tr("Over the {n:,} test images, routing with r = {r} changes **{changed}** predictions against uniform "
               "couplings (every c_ij = 0.1, i.e. one iteration): {fixed} fixed, {broken} broken.", n=n, r=r,
               changed=int(s["changed_by_routing"]), fixed=int(s["fixed_by_routing"]), broken=int(s["broken_by_routing"])),
            "",
            tr("| routing iterations r | test accuracy | predictions that differ from uniform couplings |"),
            "|---|---|---|",
            *rows,
            "",
            *([tr("Test images (index in the MNIST test set) whose prediction routing changes: {indices}.",
                  indices=", ".join(str(int(i)) for i in s["changed_indices"][:30])), ""]
              if s.get("changed_indices") else []),
            f"<small>`{s.get('command', 'python -m capsnet.evaluate --routing-study')}`, {s.get('date', '')}, "
            + tr("{s} s wall.", s=s.get("runtime_s", "?")) + "</small>",
        ]
    except (KeyError, TypeError, ValueError):
        return tr("#### Does routing matter?\n\nThe model card's routing study is unreadable: run it again.")
    return "\n".join(lines)


__all__ = [
    "COUPLING_LIMIT",
    "EXPLANATION",
    "agreement_by_iteration",
    "blank_change_figure",
    "centred_logits",
    "counterfactual",
    "counterfactual_figure",
    "counterfactual_text",
    "coupling_deviation",
    "coupling_scale_caption",
    "logits_figure",
    "polarization",
    "polarization_figure",
    "routing_study_markdown",
]
