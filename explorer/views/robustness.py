"""The capsule claims against the CNN baseline, from the model card: accuracy under each input transform
(`python -m capsnet.robustness`, the card's `robustness`) and under targeted attacks (`python -m capsnet.adversarial`,
the card's `adversarial`). Plain functions of the card dict; nothing here runs a model."""
from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..text import tr
from .equivariance import CNN_COLOR, TITLES, axis_title
from .model_card import empty_figure

MODEL_STYLE = {"capsnet": ("CapsNet", dict(color="#e4572e", width=3)),
               "cnn": ("CNN baseline", dict(color=CNN_COLOR, width=2.5, dash="dash"))}  # fmt: skip
NO_ROBUSTNESS = ("The model card has no robustness study yet: run `python -m capsnet.robustness --data-dir "
                 "PATH/TO/MNIST` (both models on the test set under each transform; it adds the results to the card).")  # fmt: skip
NO_ADVERSARIAL = ("The model card has no attack study yet: run `python -m capsnet.adversarial --data-dir "
                  "PATH/TO/MNIST`.")  # fmt: skip


def _robustness(card: dict | None) -> dict | None:
    r = (card or {}).get("robustness")
    return r if isinstance(r, dict) and isinstance(r.get("families"), dict) and r["families"] else None


def robustness_figure(card: dict | None) -> go.Figure:
    """Test accuracy against each transform's magnitude, one panel per transform, the CapsNet solid and the CNN
    baseline dashed."""
    r = _robustness(card)
    if r is None:
        return empty_figure(NO_ROBUSTNESS)
    families = list(r["families"].items())
    fig = make_subplots(rows=1, cols=len(families), shared_yaxes=True, horizontal_spacing=0.03,
                        subplot_titles=[tr(TITLES.get(n, n)) for n, _ in families])  # fmt: skip
    for col, (name, fam) in enumerate(families, start=1):
        for model, acc in fam.get("accuracy", {}).items():
            label, line = MODEL_STYLE.get(model, (model, {}))
            label = tr(label)
            fig.add_scatter(x=fam["magnitudes"], y=[100 * a for a in acc], mode="lines+markers", name=label,
                            line=line, legendgroup=model, showlegend=col == 1, row=1, col=col,
                            hovertemplate=f"{label}<br>{axis_title(name)} %{{x:g}}: %{{y:.1f}}%<extra></extra>")  # fmt: skip
    fig.update_yaxes(title_text=tr("test accuracy (%)"), range=[0, 101], row=1, col=1)
    fig.update_annotations(font_size=11)
    fig.update_layout(height=340, margin=dict(l=55, r=10, t=60, b=40), legend=dict(orientation="h", y=-0.18, x=0))
    return fig


def _pct(v) -> str:
    return f"{100 * v:.1f}%" if isinstance(v, (int, float)) else "–"


def robustness_markdown(card: dict | None) -> str:
    """Both models' clean and random-affine accuracy, with the recipe and the command."""
    r = _robustness(card)
    if r is None:
        return NO_ROBUSTNESS
    clean, affine = r.get("clean_accuracy", {}), r.get("random_affine", {})
    acc = affine.get("accuracy", {})
    rows = [f"| {tr(MODEL_STYLE.get(m, (m,))[0])} | {_pct(clean.get(m))} | {_pct(acc.get(m))} |" for m in r.get("models", clean)]
    return "\n".join([
        tr("On {n} MNIST test digits: each model's accuracy under one transform at a time (the Transforms tab's "
           "families), and on one random affine per digit in the spirit of affNIST (whose 40x40 files are not used "
           "here).", n=r.get("n", "?")), "",
        tr("| model | MNIST test | random affine |"), "|---|---|---|", *rows, "",
        tr("Random affine recipe: {recipe}", recipe=affine.get("recipe", "?")), "",
        f"`{r.get('command', 'python -m capsnet.robustness')}` ({r.get('runtime_s', '?')} s, {r.get('date', '')}).",
    ])  # fmt: skip


def adversarial_markdown(card: dict | None) -> str:
    """Per epsilon and model: how often the targeted attack succeeds, and how often the capsules' reconstruction
    check flags the successful adversarials (for the CNN's: the CapsNet's check on images made against the CNN)."""
    a = (card or {}).get("adversarial")
    rows = a.get("rows") if isinstance(a, dict) else None
    if not isinstance(rows, list) or not rows:
        return NO_ADVERSARIAL
    by = {(r.get("model"), r.get("eps")): r for r in rows if isinstance(r, dict)}
    lines = [tr("| ε | CapsNet: attack succeeds | flagged by its check | CNN: attack succeeds | flagged by the capsules' "
                "check |"),
             "|---|---|---|---|---|"]  # fmt: skip
    for eps in sorted({e for _, e in by if isinstance(e, (int, float))}):
        c, n = by.get(("capsnet", eps), {}), by.get(("cnn", eps), {})
        lines.append(f"| {eps:g} | {_pct(c.get('targeted_success'))} | {_pct(c.get('detection_rate'))} | "
                     f"{_pct(n.get('targeted_success'))} | {_pct(n.get('detection_rate'))} |")  # fmt: skip
    fpr = a.get("clean_false_positive_rate")
    return "\n".join([
        tr("A targeted PGD attack ({steps} steps, a random wrong target per digit) on {n} MNIST test digits both models "
           "classify correctly; *flagged*: the reconstruction from the winning capsule is further from the image than "
           "the threshold ({threshold}), which flags {fpr} of the clean digits (DARCCC; Frosst, Sabour & Hinton 2018).",
           steps=a.get("steps", "?"), n=a.get("digits", "?"), threshold=a.get("threshold", "?"), fpr=_pct(fpr)),
        "", *lines, "",
        f"`{a.get('command', 'python -m capsnet.adversarial')}` ({a.get('runtime_seconds', '?')} s, {a.get('date', '')}).",
    ])  # fmt: skip


__all__ = ["NO_ADVERSARIAL", "NO_ROBUSTNESS", "adversarial_markdown", "robustness_figure", "robustness_markdown"]
