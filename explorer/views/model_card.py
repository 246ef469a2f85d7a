"""Model-card views: training curves, per-class accuracy, confusion matrix and a Markdown summary.

Every function takes the dict from `capsnet.checkpoint.load_model_card()` (or None when
there is no card) and never raises on a missing or partial card: it shows what is
there and says how to get the rest.
"""
from __future__ import annotations

import json
import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from capsnet.model import PAPER_TEST_ACCURACY

from ..text import tr

NO_CARD = (
    "No model card found (checkpoints/capsnet.json). Train the model with `python -m capsnet.train` "
    "(it writes checkpoints/capsnet.safetensors and the card beside it)."
)


def empty_figure(message: str, height: int = 300) -> go.Figure:
    """A blank figure that shows `message` in its middle."""
    fig = go.Figure()
    fig.update_layout(
        xaxis=dict(visible=False), yaxis=dict(visible=False), height=height, margin=dict(l=10, r=10, t=10, b=10),
        plot_bgcolor="white",
        annotations=[dict(text=message, xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False,
                          font=dict(size=13), align="center")],
    )  # fmt: skip
    return fig


def _wrap(text: str, width: int = 70) -> str:
    words, lines, cur = text.split(), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    lines.append(cur)
    return "<br>".join(lines)


def _no_card_figure(what: str) -> go.Figure:
    return empty_figure(_wrap(f"No {what}: " + NO_CARD))


def _num(v) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f


def training_curves_figure(card: dict | None) -> go.Figure:
    """Per-epoch training loss, train/test accuracy and test reconstruction SSE (three panels)."""
    history = (card or {}).get("history") or []
    if not card or not history:
        return _no_card_figure("training history") if not card else empty_figure(tr("The model card has no training history."))
    ep = [h.get("epoch", i + 1) for i, h in enumerate(history)]

    def col(key, scale=1.0):
        return [_num(h.get(key)) * scale for h in history]

    fig = make_subplots(rows=1, cols=3, subplot_titles=(tr("loss"), tr("accuracy (%)"), tr("reconstruction SSE per image")),
                        horizontal_spacing=0.08)  # fmt: skip
    fig.add_trace(go.Scatter(x=ep, y=col("loss"), mode="lines+markers", name=tr("train loss"), line=dict(color="#1f77b4")),
                  1, 1)  # fmt: skip
    fig.add_trace(go.Scatter(x=ep, y=col("train_accuracy", 100), mode="lines+markers", name=tr("train accuracy"),
                             line=dict(color="#ff7f0e")), 1, 2)  # fmt: skip
    fig.add_trace(go.Scatter(x=ep, y=col("test_accuracy", 100), mode="lines+markers", name=tr("test accuracy"),
                             line=dict(color="#2ca02c")), 1, 2)  # fmt: skip
    paper = _num(card.get("paper_test_accuracy", PAPER_TEST_ACCURACY)) * 100
    if math.isfinite(paper):
        fig.add_hline(y=paper, line=dict(color="grey", dash="dash", width=1), row=1, col=2,
                      annotation_text=tr("paper {acc:.2f}%", acc=paper), annotation_position="bottom right",
                      annotation_font=dict(size=10, color="grey"))  # fmt: skip
    fig.add_trace(go.Scatter(x=ep, y=col("test_reconstruction_sse"), mode="lines+markers", name=tr("test recon. SSE"),
                             line=dict(color="#d62728")), 1, 3)  # fmt: skip
    if any(math.isfinite(v) for v in col("train_reconstruction_sse")):
        fig.add_trace(go.Scatter(x=ep, y=col("train_reconstruction_sse"), mode="lines+markers", name=tr("train recon. SSE"),
                                 line=dict(color="#d62728", dash="dot")), 1, 3)  # fmt: skip
    for c in (1, 2, 3):
        fig.update_xaxes(title_text=tr("epoch"), row=1, col=c, dtick=1 if len(ep) <= 20 else None)
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.25),
                      hovermode="x unified")  # fmt: skip
    return fig


def per_class_accuracy_figure(card: dict | None) -> go.Figure:
    """Bar chart of test accuracy per digit, with the overall test accuracy and the paper's for reference."""
    acc = (card or {}).get("per_class_accuracy")
    if not card or not acc:
        return _no_card_figure("per-class accuracy") if not card else empty_figure(tr("The model card has no per-class accuracy."))
    pct = [100 * _num(a) for a in acc]
    digits = list(range(len(pct)))
    fig = go.Figure(go.Bar(x=digits, y=pct, text=[f"{p:.2f}" for p in pct], textposition="outside",
                           marker=dict(color="#1f77b4"), hovertemplate=tr("digit %{x}: %{y:.2f}%<extra></extra>"),
                           name="per-class"))  # fmt: skip
    lines = []
    overall = _num(card.get("test_accuracy")) * 100
    paper = _num(card.get("paper_test_accuracy", PAPER_TEST_ACCURACY)) * 100
    for y, label, color in ((overall, "overall", "#2ca02c"), (paper, "paper", "grey")):
        if math.isfinite(y):
            lines.append(dict(type="line", xref="paper", x0=0, x1=1, y0=y, y1=y, line=dict(color=color, dash="dash", width=1)))
    finite = [p for p in pct + [overall, paper] if math.isfinite(p)]
    lo = max(0.0, math.floor(min(finite) - 1.0)) if finite else 0.0
    fig.update_layout(
        title=dict(text=tr("Test accuracy per digit (dashed: overall {overall:.2f}% green, paper {paper:.2f}% grey)",
                           overall=overall, paper=paper),
                   font=dict(size=13)),
        xaxis=dict(tickvals=digits, title=dict(text=tr("digit"))),
        yaxis=dict(title=dict(text=tr("accuracy (%)")), range=[lo, 100.4]),
        shapes=lines, height=320, margin=dict(l=10, r=10, t=40, b=10),
    )  # fmt: skip
    return fig


def confusion_matrix_figure(card: dict | None) -> go.Figure:
    """Test-set confusion matrix (rows = true digit, columns = predicted), coloured on a log scale so the few
    errors stand out; every cell shows its count."""
    cm = (card or {}).get("confusion_matrix")
    if not card or not cm:
        return _no_card_figure("confusion matrix") if not card else empty_figure("The model card has no confusion matrix.")
    m = np.asarray(cm, dtype=np.int64)
    k = m.shape[0]
    labels = list(range(k))
    row_tot = m.sum(1, keepdims=True)
    share = np.where(row_tot > 0, m / np.maximum(row_tot, 1), 0.0)
    custom = np.dstack([m, 100 * share])
    fig = go.Figure(go.Heatmap(
        z=np.log10(1 + m), x=labels, y=labels, text=m.astype(str), texttemplate="%{text}", customdata=custom,
        colorscale="Blues", showscale=False,
        hovertemplate="true %{y}, predicted %{x}: %{customdata[0]} (%{customdata[1]:.2f}% of the %{y}s)<extra></extra>",
    ))  # fmt: skip
    errors = int(m.sum() - np.trace(m))
    fig.update_layout(
        title=dict(text=tr("Confusion matrix on {n} test images ({errors} errors)", n=int(m.sum()), errors=errors),
                   font=dict(size=13)),
        xaxis=dict(title=dict(text=tr("predicted")), tickvals=labels, side="bottom", constrain="domain"),
        yaxis=dict(title=dict(text=tr("true")), tickvals=labels, autorange="reversed", scaleanchor="x", constrain="domain"),
        height=420, margin=dict(l=10, r=10, t=40, b=10),
    )  # fmt: skip
    return fig


def _fmt_seconds(s) -> str:
    s = _num(s)
    if not math.isfinite(s):
        return "unknown"
    h, rem = divmod(int(round(s)), 3600)
    m, sec = divmod(rem, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {sec:02d} s"


def _kv_table(d: dict) -> str:
    rows = ["| | |", "|---|---|"]
    for k, v in d.items():
        val = json.dumps(v) if isinstance(v, (list, dict)) else str(v)
        rows.append(f"| {k} | `{val.replace('|', '/')}` |")
    return "\n".join(rows)


def model_card_sections(card: dict | None) -> tuple[str, str]:
    """The model card as Markdown, in two parts: (summary, settings). The summary: test accuracy next to the
    paper's 99.75%, epochs, wall time, hardware, the training command and the provenance of the weights (trained
    from scratch by this repo); the settings: the model config and training settings tables ("" without them).
    Joined, they are the whole card."""
    if not card:
        return f"### No model card\n\n{NO_CARD}\n", ""
    acc = _num(card.get("test_accuracy"))
    paper = _num(card.get("paper_test_accuracy", PAPER_TEST_ACCURACY))
    n = card.get("test_images")
    errors = len(card.get("misclassified") or [])
    hist = card.get("history") or []
    epochs = card.get("epochs_completed", len(hist))
    planned = (card.get("training") or {}).get("epochs")
    lines = [f"### {card.get('name', 'CapsNet on MNIST')}", ""]
    lines.append(tr("| | this checkpoint | paper (Sabour et al. 2017) |"))
    lines.append("|---|---|---|")
    acc_s = f"**{100 * acc:.2f}%**" if math.isfinite(acc) else tr("unknown")
    if n:
        acc_s += tr(" ({errors} errors in {n})", errors=errors, n=n)
    lines.append(tr("| MNIST test accuracy | {acc} | {paper:.2f}% |", acc=acc_s, paper=100 * paper))
    sse = _num(card.get("test_reconstruction_sse"))
    if math.isfinite(sse):
        lines.append(tr("| test reconstruction SSE per image | {sse:.2f} | |", sse=sse))
    lines.append("")
    ep_s = f"{epochs}" + (tr(" of {planned}", planned=planned) if planned and planned != epochs else "")
    lines.append(tr("- **Epochs:** {epochs}", epochs=ep_s))
    lines.append(tr("- **Wall time:** {time}", time=_fmt_seconds(card.get("wall_time_seconds"))))
    if hist and hist[-1].get("train_images_per_second"):
        lines.append(tr("- **Training speed:** {speed:.0f} images/s (last epoch)",
                        speed=_num(hist[-1]["train_images_per_second"])))
    if card.get("parameters"):
        lines.append(tr("- **Parameters:** {n:,}", n=int(card["parameters"])))
    hw = card.get("hardware") or {}
    if hw:
        parts = [hw.get("device"), hw.get("gpu") or hw.get("processor")]
        if hw.get("cpu_count"):
            parts.append(f"{hw['cpu_count']} CPUs")
        if hw.get("torch_threads"):
            parts.append(f"{hw['torch_threads']} torch threads")
        lines.append(tr("- **Hardware:** {hardware}", hardware=", ".join(str(p) for p in parts if p))
                     + (f" ({hw['platform']})" if hw.get("platform") else ""))
    ver = card.get("versions") or {}
    if ver:
        lines.append(tr("- **Versions:** {versions}", versions=", ".join(f"{k} {v}" for k, v in ver.items())))
    if card.get("command"):
        lines.append(tr("- **Command:** `{command}`", command=card["command"]))
    lines.append(
        tr("- **Weights:** {weights}", weights=tr(str(card.get("weights") or "trained from scratch by this repository's "
                                                      "`capsnet.train`; no external weights")))
    )
    return "\n".join(lines) + "\n", _settings_markdown(card)


def _settings_markdown(card: dict) -> str:
    """The model config and training settings as tables, each under its heading ("" when the card has neither)."""
    lines = []
    for key, heading in (("config", "Model config"), ("training", "Training settings")):
        if card.get(key):
            lines += ["", f"#### {tr(heading)}", "", _kv_table(card[key])]
    return "\n".join(lines) + "\n" if lines else ""
