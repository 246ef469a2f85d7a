"""The Perturbations tab: the paper's Figure 4 for the selected digit capsule, as one PNG grid to view or download,
in the paper's units (±0.25) or in the data's (±2σ of each dimension over the class's test digits), and one dimension's
sweep as an animated GIF, made when asked."""
from __future__ import annotations

import hashlib
from typing import Any

import gradio as gr

from ..inputs.share import Choice, Whole
from ..session import GENERATED_MAX_AGE_S, ExplorerUI, _prune
from ..text import ENGLISH, language, tr
from ..views import capsules
from ..views import pose as pose_views
from .values import int_or_none

PAPER, DATA = "the paper's ±0.25", "±2σ of each dimension's data"


def span_deltas(ui: ExplorerUI, k: int, span: Any) -> tuple:
    """(the steps for capsule k, True if in the data's units): with DATA each dimension's own ±2σ, else (or where
    the card has no statistics) the paper's ±0.25."""
    deltas = pose_views.data_deltas(ui.card, k) if span == DATA else None
    return (capsules.PERTURBATIONS, False) if deltas is None else (deltas, True)


def grid_image(ui: ExplorerUI, a: capsules.Analysis, k: int, span: Any = PAPER) -> tuple:
    """(uint8 grid image, columns' caption) for capsule k: rows labelled as the sliders where the card has labels;
    the columns step as `span_deltas` says."""
    deltas, in_data = span_deltas(ui, k, span)
    caption = (tr("columns: -2σ ... +2σ of each dimension over the class's test digits") if in_data
               else tr("columns: -0.25 ... +0.25, step 0.05"))  # fmt: skip
    img = capsules.perturbation_grid(ui.model, a, k, deltas)
    if pose_views.dimension_labels(ui.card) is not None:
        names = pose_views.slider_labels(ui.card, k)
        if language() == ENGLISH:
            img = pose_views.labelled_grid(img, names)
        else:  # the image's font has Latin letters only: the rows numbered, their names in the caption
            img = pose_views.labelled_grid(img, [str(d) for d in range(len(names))])
            caption += "\n\n" + "\n".join(f"- {name}" for name in names)
    return img, caption


def perturbation_tab(ui: ExplorerUI) -> None:
    with ui.view_tab("Perturbations", id="perturbations") as tab:
        with ui.analysis_column():
            gr.Markdown(
                "As in the paper's Figure 4: each **row** is one pose dimension of the selected digit capsule, each "
                "**column** adds a step to it (the paper's -0.25 ... +0.25, or -2σ ... +2σ of that dimension over "
                "the class's test digits); the middle column is the unedited pose. All 176 reconstructions come "
                "from one batched decoder call. Beside each row: what a step of one standard deviation of the data "
                "on that dimension does, as measured offline (the same names as the Pose tab's sliders)."
            )
            span = gr.Radio([PAPER, DATA], value=PAPER, label="steps", elem_id="perturbation-span")
            grid = gr.Image(
                label="Dimension perturbations (rows: dim 0-15)", interactive=False,
                format="png", elem_classes=["model-view"], elem_id="perturbation-grid", buttons=["download", "fullscreen"],
            )
            caption = gr.Markdown(elem_id="perturbation-caption")
            download = gr.DownloadButton("Download PNG", elem_id="download-grid", variant="secondary")
            dim = gr.Dropdown([(f"dimension {d}", d) for d in range(capsules.POSE_DIM)], value=0,
                              label="One dimension's sweep (a row of the grid)", elem_id="sweep-dim")
            animate = gr.Button("Animate it (GIF)", elem_id="sweep-animate", size="sm")
            sweep = gr.Image(label="The dimension's sweep, there and back (GIF)", interactive=False,
                             height=300, elem_classes=["model-view"], elem_id="sweep-gif", buttons=["download"])  # fmt: skip

    def draw(a: capsules.Analysis, k: int, s: Any):
        img, text = grid_image(ui, a, k, s)
        digest = hashlib.sha1(img.tobytes()).hexdigest()[:16]
        path = capsules.save_png(img, ui.tmp_dir / f"capsnet-perturbations-class{k}-{digest}.png")
        _prune(ui.tmp_dir, max_age_s=GENERATED_MAX_AGE_S)
        return [str(path), text, str(path), None]  # a new input or step: the old sweep goes

    def animate_sweep(a: capsules.Analysis, k: int, s: Any, d: Any):
        deltas, in_data = span_deltas(ui, k, s)
        d = min(max(int_or_none(d) or 0, 0), capsules.POSE_DIM - 1)
        digest = hashlib.sha1(a.image.numpy().tobytes()).hexdigest()[:12]
        path = ui.tmp_dir / f"capsnet-sweep-class{k}-dim{d}-{'data' if in_data else 'paper'}-{digest}.gif"
        _prune(ui.tmp_dir, max_age_s=GENERATED_MAX_AGE_S)
        return str(capsules.sweep_gif(ui.model, a, k, d, path, deltas))

    tab.share(span=(span, Choice("step size", {"paper": PAPER, "data": DATA})),
              dim=(dim, Whole("sweep dimension", 0, capsules.POSE_DIM - 1)))
    tab.on_analysis(draw, [grid, caption, download, sweep], [span])
    tab.on([span.input], draw, [grid, caption, download, sweep], [span])
    tab.on([animate.click], animate_sweep, [sweep], [span, dim])
