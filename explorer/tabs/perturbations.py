"""The Perturbations tab: the paper's Figure 4 for the selected digit capsule, as one PNG grid to view or download."""
from __future__ import annotations

import hashlib

import gradio as gr

from ..session import ExplorerUI, _prune
from ..views import capsules
from ..views import pose as pose_views


def perturbation_tab(ui: ExplorerUI) -> None:
    with ui.view_tab("Perturbations", id="perturbations") as tab:
        with ui.analysis_column():
            gr.Markdown(
                "As in the paper's Figure 4: each **row** is one pose dimension of the selected digit capsule, each "
                "**column** adds -0.25 ... +0.25 (step 0.05) to it; the middle column is the unedited pose. "
                "All 176 reconstructions come from one batched decoder call. Beside each row: what a step of one "
                "standard deviation of the data on that dimension does, as measured offline (the same names as the "
                "Pose tab's sliders)."
            )
            grid = gr.Image(
                label="Dimension perturbations (rows: dim 0-15; columns: -0.25 ... +0.25)", interactive=False,
                format="png", elem_classes=["model-view"], elem_id="perturbation-grid", buttons=["download", "fullscreen"],
            )
            download = gr.DownloadButton("Download PNG", elem_id="download-grid", variant="secondary")

    def on_analysis(a: capsules.Analysis, k: int):
        img = capsules.perturbation_grid(ui.model, a, k)
        if pose_views.dimension_labels(ui.card) is not None:
            img = pose_views.labelled_grid(img, pose_views.slider_labels(ui.card, k))
        digest = hashlib.sha1(img.tobytes()).hexdigest()[:16]
        path = capsules.save_png(img, ui.tmp_dir / f"capsnet-perturbations-class{k}-{digest}.png")
        _prune(ui.tmp_dir, max_age_s=120.0)  # Gradio copies the file to its cache; ours need not pile up
        return [str(path), str(path)]

    tab.on_analysis(on_analysis, [grid, download])
