"""The Pose tab: the selected digit capsule's 16-D pose as sliders; moving one re-runs only the decoder.

Also adds the `pose` endpoint (the sliders' event).
"""
from __future__ import annotations

import gradio as gr

from ..session import ExplorerUI, _safe
from ..views import capsules

SLIDER_RANGE = 1.0  # digit-capsule poses have length <= 1, so every dimension lies in [-1, 1]
SLIDER_STEP = 0.01


def pose_tab(ui: ExplorerUI) -> None:
    with gr.Tab("Pose", id="pose"):
        with ui.analysis_column():
            gr.Markdown(
                "The 16 sliders are the **pose** of the selected digit capsule, starting at its actual values. "
                "Moving one re-runs only the decoder on the edited pose. Pick another capsule above to "
                "reconstruct the input *as that digit*."
            )
            with gr.Row():
                model_view = gr.Image(
                    label="Model input (28x28)", interactive=False, format="png", height=300,
                    elem_classes=["model-view"], buttons=[],
                )
                recon = gr.Image(
                    label="Reconstruction from the pose", interactive=False, format="png", height=300,
                    elem_classes=["model-view"], elem_id="reconstruction", buttons=["download"],
                )
            sliders = []
            with gr.Row():
                for col in range(4):
                    with gr.Column(min_width=160):
                        for dim in range(col * 4, col * 4 + 4):
                            sliders.append(
                                gr.Slider(
                                    -SLIDER_RANGE, SLIDER_RANGE, value=0.0, step=SLIDER_STEP,
                                    label=f"dim {dim}", elem_id=f"pose-dim-{dim}", elem_classes=["pose-slider"],
                                )
                            )
            reset = gr.Button("Reset to the actual pose", variant="secondary", elem_id="reset-pose")

    def on_analysis(a: capsules.Analysis, k: int):
        pose = a.pose(k)
        img = capsules.upscale(capsules.decode_pose(ui.model, a, k), scale=1)  # 28x28; the browser scales it up
        return [capsules.model_input_image(a, scale=1), img, *[round(float(v), 3) for v in pose]]

    ui.on_analysis(on_analysis, [model_view, recon, *sliders])

    def move(a: capsules.Analysis | None, k, *pose):
        if a is None or k is None:
            return gr.skip()
        return capsules.upscale(capsules.decode_pose(ui.model, a, int(k), pose), scale=1)

    def do_reset(a: capsules.Analysis | None, k):
        if a is None or k is None:
            return [gr.skip()] * (1 + len(sliders))
        k = int(k)
        return [capsules.upscale(capsules.decode_pose(ui.model, a, k), scale=1), *[round(float(v), 3) for v in a.pose(k)]]

    gr.on(
        [s.input for s in sliders], _safe(move, 1), [ui.state, ui.selected_class, *sliders], recon,
        api_name="pose", api_visibility="undocumented", trigger_mode="always_last",
        show_progress="hidden", queue=True,
    )
    reset.click(
        _safe(do_reset, 1 + len(sliders)), [ui.state, ui.selected_class], [recon, *sliders],
        api_visibility="private", show_progress="hidden",
    )
