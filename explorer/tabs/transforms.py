"""The Input transforms tab: rotate, scale and shift the current input and watch the capsules respond.

The untransformed input ("original") is kept per session, so the sliders are absolute; the transformed
image becomes the analysed input of every view (an input source with source="transform"). Below, the pose
trajectories (tabs/equivariance.py) sweep the original through one transform in one batched forward pass,
in a follow-up event when the original or the chosen transform changes, so the input event stays fast.
"""
from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np
from capsnet.baseline import probabilities

from ..gradio_compat import plot_value
from ..inputs.share import Choice
from ..inputs.transforms import transform_image
from ..session import Labelled
from ..text import tr
from ..views import capsules
from . import equivariance as eq_tab
from .values import finite_float

ANGLE_RANGE = (-45, 45)
SCALE_RANGE = (0.5, 1.5)
SHIFT_RANGE = (-8, 8)
IDENTITY = (0.0, 1.0, 0.0, 0.0)
QUESTION = (
    "**Do the capsules follow a transformed digit?** Capsules promise an *equivariant* pose (some dimensions move "
    "in step with a rotation, a change of scale or a shift) and an *invariant* length (the digit is still "
    "recognised). Below: the current input swept through one transform, and which pose dimensions track it."
)
TRY_IT = (
    "#### Transform the input yourself\nRotate, scale or shift the current input (drawn, uploaded or an example): "
    "the transformed image becomes what every view analyses (see *What the model sees*). The sliders are "
    "absolute, relative to the original; *Reset* returns to it. CapsNet was trained on digits shifted by up to 2 px "
    "only."
)


# ---------------------------------------------------------------- plain functions (tested without Gradio)


def transform_params(angle: Any, scale: Any, dx: Any, dy: Any) -> tuple[float, float, float, float]:
    """Slider values -> (angle, scale, dx, dy) clipped to the sliders' ranges (missing / NaN: identity)."""
    return (
        float(np.clip(finite_float(angle, 0.0), *ANGLE_RANGE)),
        float(np.clip(finite_float(scale, 1.0), *SCALE_RANGE)),
        float(np.clip(finite_float(dx, 0.0), *SHIFT_RANGE)),
        float(np.clip(finite_float(dy, 0.0), *SHIFT_RANGE)),
    )


def describe(angle: Any, scale: Any, dx: Any, dy: Any) -> str:
    a, s, x, y = transform_params(angle, scale, dx, dy)
    if (a, s, x, y) == IDENTITY:
        return tr("Transforms: none (the original input).")
    parts = []
    if a:
        parts.append(tr("rotated {a:+g}°", a=a))
    if s != 1:
        parts.append(tr("scaled ×{s:g}", s=s))
    if x or y:
        parts.append(tr("shifted ({x:+g}, {y:+g}) px", x=x, y=y))
    return tr("Transformed input: {parts}.", parts=tr(", ").join(parts))


def transformed_input(original: Any, angle: Any, scale: Any, dx: Any, dy: Any):
    """The original (28,28) transformed by the slider values, labelled for the prediction line; None without one."""

    if original is None:
        return None
    a, s, x, y = transform_params(angle, scale, dx, dy)
    return Labelled(transform_image(np.asarray(original, np.float32), a, s, x, y), describe(a, s, x, y))


def both_models(a: capsules.Analysis, cnn=None) -> str:
    """Both models' predictions for the analysed (transformed) input, one line; the CapsNet's alone without a CNN."""
    caps = tr("CapsNet: **{k}** (length {length:.2f})", k=a.digit, length=float(a.lengths[a.digit]))
    if cnn is None:
        return caps + "."
    p = probabilities(cnn, a.image[None])[0]
    return caps + tr(" · CNN baseline: **{k}** (softmax {p:.2f}).", k=int(p.argmax()), p=float(p.max()))


def transform_view_outputs(a: capsules.Analysis, k: int, original: Any, angle: Any, scale: Any, dx: Any, dy: Any,
                           trajectories=None, card: dict | None = None, cnn=None) -> list:  # fmt: skip
    """The tab's outputs for a new analysis: [original (state), original image, angle, scale, dx, dy, lengths
    figure, trajectories plot, status]. A new input from elsewhere becomes the original (sliders back to identity,
    the trajectories follow in their own event); a transformed one keeps the original and only moves the marker."""
    lengths = plot_value(capsules.lengths_figure(a, selected=k))
    if a.source != "transform" or original is None:
        orig = a.image.reshape(capsules.IMAGE_SIZE, capsules.IMAGE_SIZE).numpy().copy()
        return [orig, capsules.upscale(orig, scale=1), *IDENTITY, lengths, gr.skip(),
                f"{describe(*IDENTITY)} {both_models(a, cnn)}"]  # fmt: skip
    return [gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), lengths,
            eq_tab.redraw(trajectories, card, angle, scale, dx, dy),
            f"{describe(angle, scale, dx, dy)} {both_models(a, cnn)}"]  # fmt: skip


# ---------------------------------------------------------------- the tab


def transforms_tab(ui) -> None:
    with ui.view_tab("Transforms", id="transforms", elem_id="transforms-tab") as tab:
        with ui.analysis_column():
            gr.Markdown(QUESTION, elem_id="tf-question")
            original = gr.State(None)
            # made here for the trajectories' events, placed below them (the answer first, then try it yourself)
            angle = gr.Slider(*ANGLE_RANGE, value=0, step=1, label="rotate (degrees, counter-clockwise)",
                              elem_id="tf-angle", render=False)  # fmt: skip
            scale = gr.Slider(*SCALE_RANGE, value=1.0, step=0.05, label="scale", elem_id="tf-scale", render=False)
            dx = gr.Slider(*SHIFT_RANGE, value=0, step=1, label="shift right (px)", elem_id="tf-dx", render=False)
            dy = gr.Slider(*SHIFT_RANGE, value=0, step=1, label="shift down (px)", elem_id="tf-dy", render=False)
            sliders = [angle, scale, dx, dy]
            trajectories, trajectory_plot, transform = eq_tab.pose_trajectories(ui, original, sliders)
            gr.Markdown(TRY_IT, elem_id="tf-try")
            with gr.Row():
                angle.render()
                scale.render()
            with gr.Row():
                dx.render()
                dy.render()
            with gr.Row():
                status = gr.Markdown(elem_id="tf-status")
                reset = gr.Button("Reset to the original", variant="secondary", size="sm", elem_id="tf-reset")
            with gr.Row(equal_height=False):
                with gr.Column(scale=1, min_width=160):
                    original_view = gr.Image(label="Original (28x28)", interactive=False, format="png", height=200,
                                             elem_classes=["model-view"], elem_id="tf-original", buttons=[])  # fmt: skip
                with gr.Column(scale=3, min_width=320):
                    lengths = gr.Plot(show_label=False, elem_id="tf-lengths")

    tab.share(transform=(transform, Choice("transform", {name: name for name in eq_tab.TRANSFORMS})))
    tab.on_analysis(
        lambda a, k, orig, *rest: transform_view_outputs(a, k, orig, *rest, card=ui.card, cnn=ui.cnn),
        [original, original_view, *sliders, lengths, trajectory_plot, status],
        [original, *sliders, trajectories],
    )
    ui.add_input([s.input for s in sliders], transformed_input, [original, *sliders], source="transform")
    ui.add_input([reset.click], lambda orig: transformed_input(orig, *IDENTITY), [original], source="transform")
    reset.click(lambda: list(IDENTITY), None, sliders, api_visibility="private", show_progress="hidden")


__all__ = ["both_models", "describe", "transform_params", "transform_view_outputs", "transformed_input", "transforms_tab"]
