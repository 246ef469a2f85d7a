"""Attack views: one targeted PGD attack on the CapsNet and the same on the CNN baseline (tabs/attack.py runs them),
as a perturbation image, a before/after bar chart and a few sentences. Plain functions of the attack's answer."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..text import tr
from .capsules import IMAGE_SIZE

BEFORE, AFTER = "#9aa5b1", "#c0392b"
SCALE = 6  # the attack's images, 28 x 6 = 168 px: both adversarials and both changes at one size


def perturbation_image(original, adversarial, eps: float, scale: int = SCALE) -> np.ndarray:
    """The signed change adversarial - original, (28 scale, 28 scale, 3) uint8: red where ink was added, blue where
    it was removed, white where nothing changed; full colour at +-eps, so the budget's use shows."""
    d = (np.asarray(adversarial, np.float32) - np.asarray(original, np.float32)).reshape(IMAGE_SIZE, IMAGE_SIZE) / max(eps, 1e-6)
    d = np.clip(d, -1.0, 1.0)
    up, down = np.clip(d, 0, 1), np.clip(-d, 0, 1)
    rgb = np.stack([1 - down, 1 - up - down, 1 - up], -1).clip(0, 1)  # + -> red, - -> blue
    img = (rgb * 255).round().astype(np.uint8)
    return np.repeat(np.repeat(img, scale, axis=0), scale, axis=1)


def attack_figure(answer: dict) -> go.Figure:
    """Digit-capsule lengths (left) and the CNN baseline's softmax (right), before and after each model's own attack;
    the target class marked."""
    cnn = answer.get("cnn")
    fig = make_subplots(rows=1, cols=2 if cnn else 1, horizontal_spacing=0.12,
                        subplot_titles=[tr("CapsNet lengths")] + ([tr("CNN softmax")] if cnn else []))  # fmt: skip
    digits = [str(d) for d in range(10)]
    panels = [(answer["lengths_before"], answer["lengths_after"], 1)]
    if cnn:
        panels.append((cnn["probabilities_before"], cnn["probabilities_after"], 2))
    for before, after, col in panels:
        fig.add_bar(x=digits, y=before, name=tr("before"), marker_color=BEFORE, legendgroup="b", showlegend=col == 1,
                    row=1, col=col, hovertemplate=tr("digit %{x}: %{y:.3f} before<extra></extra>"))
        fig.add_bar(x=digits, y=after, name=tr("after the attack"), marker_color=AFTER, legendgroup="a",
                    showlegend=col == 1, row=1, col=col, hovertemplate=tr("digit %{x}: %{y:.3f} after<extra></extra>"))
        fig.add_vrect(x0=answer["target"] - 0.5, x1=answer["target"] + 0.5, fillcolor="#f1c40f", opacity=0.25,
                      line_width=0, row=1, col=col)
    fig.update_yaxes(range=[0, 1.02])
    fig.update_xaxes(title_text=tr("digit (target {t} shaded)", t=answer["target"]))
    fig.update_layout(barmode="group", height=320, margin=dict(l=50, r=10, t=40, b=40),
                      legend=dict(orientation="h", y=1.18, x=0))
    return fig


def _meter(m: dict) -> str:
    if m.get("flagged") is None:
        return tr("no reconstruction check in the model card")
    verdict = tr("**flagged**: not a typical digit") if m["flagged"] else tr("not flagged: looks like a typical digit")
    return tr("reconstruction distance {d:.2f} (percentile {p:.0f} of correctly classified test digits), {verdict}",
              d=m["reconstruction_distance"], p=m["reconstruction_percentile"], verdict=verdict)


def _reached(reached: bool) -> str:
    return tr("target reached") if reached else tr("target not reached")


def attack_markdown(answer: dict) -> str:
    """What each attack did, in sentences: prediction before and after, the perturbation's size, the capsules'
    reconstruction check (DARCCC) on each adversarial."""
    t = answer["target"]
    lines = [tr("**CapsNet** ({steps} steps, ε = {eps:g}): {before} → **{after}** ({reached}), L∞ = {linf:.3f}; "
                "{meter}.", steps=answer["steps"], eps=answer["eps"], before=answer["prediction_before"],
                after=answer["prediction_after"], reached=_reached(answer["prediction_after"] == t),
                linf=answer["linf"], meter=_meter(answer))]  # fmt: skip
    cnn = answer.get("cnn")
    if cnn:
        lines.append(tr("**CNN baseline**, the same attack on its own gradients: {before} → **{after}** ({reached}), "
                        "L∞ = {linf:.3f}; the capsules' check on the CNN's adversarial: {meter}.",
                        before=cnn["prediction_before"], after=cnn["prediction_after"],
                        reached=_reached(cnn["prediction_after"] == t), linf=cnn["linf"], meter=_meter(cnn)))
    else:
        lines.append(tr("No CNN baseline is installed (checkpoints/cnn.safetensors), so there is nothing to compare "
                        "with."))
    return "\n\n".join(lines)


__all__ = ["attack_figure", "attack_markdown", "perturbation_image"]
