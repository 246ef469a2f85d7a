"""The Perturbations tab: the paper's Figure 4 for the selected digit capsule, as one PNG grid to view or download,
in the paper's units (±0.25) or in the data's (±2σ of each dimension over the class's test digits)."""
from __future__ import annotations

import hashlib
from typing import Any

import gradio as gr

from ..session import ExplorerUI, _prune
from ..views import capsules
from ..views import pose as pose_views

PAPER, DATA = "the paper's ±0.25", "±2σ of each dimension's data"


def grid_image(ui: ExplorerUI, a: capsules.Analysis, k: int, span: Any = PAPER) -> tuple:
    """(uint8 grid image, columns' caption) for capsule k: rows labelled as the sliders where the card has labels;
    with DATA each row steps through its own dimension's ±2σ (the paper's ±0.25 where the card has no statistics)."""
    deltas = pose_views.data_deltas(ui.card, k) if span == DATA else None
    caption = ("columns: -2σ ... +2σ of each dimension over the class's test digits" if deltas is not None
               else "columns: -0.25 ... +0.25, step 0.05")  # fmt: skip
    img = capsules.perturbation_grid(ui.model, a, k, capsules.PERTURBATIONS if deltas is None else deltas)
    if pose_views.dimension_labels(ui.card) is not None:
        img = pose_views.labelled_grid(img, pose_views.slider_labels(ui.card, k))
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

    def draw(a: capsules.Analysis, k: int, s: Any):
        img, text = grid_image(ui, a, k, s)
        digest = hashlib.sha1(img.tobytes()).hexdigest()[:16]
        path = capsules.save_png(img, ui.tmp_dir / f"capsnet-perturbations-class{k}-{digest}.png")
        _prune(ui.tmp_dir, max_age_s=120.0)  # Gradio copies the file to its cache; ours need not pile up
        return [str(path), text, str(path)]

    tab.on_analysis(draw, [grid, caption, download], [span])
    tab.on([span.input], draw, [grid, caption, download], [span])
