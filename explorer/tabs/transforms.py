"""The Input transforms tab: rotate, scale and shift the current input and watch the capsules respond.

The untransformed input ("original") is kept per session, so the sliders are absolute; the transformed
image becomes the analysed input of every view (an input source with source="transform"), and a plot shows
each class's length as the original rotates from -45 to +45 degrees (one batched forward pass, computed in
a follow-up event when the original changes, so the input event itself stays fast).
"""
from __future__ import annotations

import math
from typing import Any

import gradio as gr
import numpy as np

from ..inputs.transforms import rotation_sweep, rotation_sweep_figure, transform_image
from ..session import Labelled, _safe
from ..views import capsules

ANGLE_RANGE = (-45, 45)
SCALE_RANGE = (0.5, 1.5)
SHIFT_RANGE = (-8, 8)
IDENTITY = (0.0, 1.0, 0.0, 0.0)
SWEEP_ANGLES = tuple(range(-45, 46, 5))


# ---------------------------------------------------------------- plain functions (tested without Gradio)


def _f(v: Any, default: float) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return default
    return f if math.isfinite(f) else default


def transform_params(angle: Any, scale: Any, dx: Any, dy: Any) -> tuple[float, float, float, float]:
    """Slider values -> (angle, scale, dx, dy) clipped to the sliders' ranges (missing / NaN: identity)."""
    return (
        float(np.clip(_f(angle, 0.0), *ANGLE_RANGE)),
        float(np.clip(_f(scale, 1.0), *SCALE_RANGE)),
        float(np.clip(_f(dx, 0.0), *SHIFT_RANGE)),
        float(np.clip(_f(dy, 0.0), *SHIFT_RANGE)),
    )


def describe(angle: Any, scale: Any, dx: Any, dy: Any) -> str:
    a, s, x, y = transform_params(angle, scale, dx, dy)
    if (a, s, x, y) == IDENTITY:
        return "Transforms: none (the original input)."
    parts = []
    if a:
        parts.append(f"rotated {a:+g}°")
    if s != 1:
        parts.append(f"scaled ×{s:g}")
    if x or y:
        parts.append(f"shifted ({x:+g}, {y:+g}) px")
    return "Transformed input: " + ", ".join(parts) + "."


def transformed_input(original: Any, angle: Any, scale: Any, dx: Any, dy: Any):
    """The original (28,28) transformed by the slider values, labelled for the prediction line; None without one."""

    if original is None:
        return None
    a, s, x, y = transform_params(angle, scale, dx, dy)
    return Labelled(transform_image(np.asarray(original, np.float32), a, s, x, y), describe(a, s, x, y))


def sweep_figure(sweep: tuple | None, angle: Any = None, highlight: int | None = None):
    """rotation_sweep_figure of a stored (angles, lengths) sweep with a marker at the current angle; None if no sweep."""
    if sweep is None:
        return None
    angles, lengths = sweep
    fig = rotation_sweep_figure(angles, lengths, highlight)
    a = _f(angle, 0.0)
    fig.update_layout(
        title=dict(text="Digit-capsule lengths as the original input rotates (dotted: current angle)"),
        shapes=list(fig.layout.shapes) + [dict(type="line", xref="x", x0=a, x1=a, yref="paper", y0=0, y1=1,
                                               line=dict(color="#333", dash="dot", width=1.5))],
    )  # fmt: skip
    return fig


def compute_sweep(model, original: Any, angle: Any = None, highlight: int | None = None) -> tuple:
    """(sweep state, figure) for the original; (None, None) without an original or a model."""
    if model is None or original is None:
        return None, None
    sweep = rotation_sweep(model, np.asarray(original, np.float32), SWEEP_ANGLES)
    return sweep, sweep_figure(sweep, angle, highlight)


def transform_view_outputs(a: capsules.Analysis, k: int, original: Any, angle: Any, scale: Any, dx: Any, dy: Any,
                           sweep: tuple | None) -> list:  # fmt: skip
    """The tab's outputs for a new analysis: [original (state), original image, angle, scale, dx, dy, lengths
    figure, sweep plot, status]. A new input from elsewhere becomes the original (sliders back to identity, the
    sweep follows in its own event); a transformed one keeps the original and only redraws the marker."""
    lengths = capsules.lengths_figure(a, selected=k)
    if a.source != "transform" or original is None:
        orig = a.image.reshape(28, 28).numpy().copy()
        return [orig, capsules.upscale(orig, scale=1), *IDENTITY, lengths, gr.skip(), describe(*IDENTITY)]
    return [gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), lengths,
            sweep_figure(sweep, angle) if sweep is not None else gr.skip(), describe(angle, scale, dx, dy)]  # fmt: skip


# ---------------------------------------------------------------- the tab


def transforms_tab(ui) -> None:
    with gr.Tab("Transforms", id="transforms", elem_id="transforms-tab"):
        with ui.analysis_column():
            gr.Markdown(
                "Rotate, scale or shift the current input (drawn, uploaded or an example): the transformed image "
                "becomes what every view analyses (see *What the model sees*). The sliders are absolute, relative "
                "to the original; *Reset* returns to it. CapsNet was trained on digits shifted by up to 2 px only."
            )
            original = gr.State(None)
            sweep = gr.State(None)
            with gr.Row():
                angle = gr.Slider(*ANGLE_RANGE, value=0, step=1, label="rotate (degrees, counter-clockwise)", elem_id="tf-angle")
                scale = gr.Slider(*SCALE_RANGE, value=1.0, step=0.05, label="scale", elem_id="tf-scale")
            with gr.Row():
                dx = gr.Slider(*SHIFT_RANGE, value=0, step=1, label="shift right (px)", elem_id="tf-dx")
                dy = gr.Slider(*SHIFT_RANGE, value=0, step=1, label="shift down (px)", elem_id="tf-dy")
            with gr.Row():
                status = gr.Markdown(elem_id="tf-status")
                reset = gr.Button("Reset to the original", variant="secondary", size="sm", elem_id="tf-reset")
            with gr.Row(equal_height=False):
                with gr.Column(scale=1, min_width=160):
                    original_view = gr.Image(label="Original (28x28)", interactive=False, format="png", height=200,
                                             elem_classes=["model-view"], elem_id="tf-original", buttons=[])  # fmt: skip
                with gr.Column(scale=3, min_width=320):
                    lengths = gr.Plot(show_label=False, elem_id="tf-lengths")
            sweep_plot = gr.Plot(show_label=False, elem_id="tf-sweep")

    sliders = [angle, scale, dx, dy]
    ui.on_analysis(
        lambda a, k, orig, *rest: transform_view_outputs(a, k, orig, *rest),
        [original, original_view, *sliders, lengths, sweep_plot, status],
        [original, *sliders, sweep],
    )
    ui.add_input([s.input for s in sliders], transformed_input, [original, *sliders], source="transform")
    ui.add_input([reset.click], lambda orig: transformed_input(orig, *IDENTITY), [original], source="transform")
    reset.click(lambda: list(IDENTITY), None, sliders, api_visibility="private", show_progress="hidden")
    # The sweep (19 rotated copies, one batched forward pass) follows in its own event when the original changes.
    original.change(
        _safe(lambda orig, ang, k: compute_sweep(ui.model, orig, ang, None if k is None else int(k)), 2),
        [original, angle, ui.selected_class], [sweep, sweep_plot],
        api_visibility="private", show_progress="minimal", trigger_mode="always_last",
    )


__all__ = ["compute_sweep", "describe", "sweep_figure", "transform_params", "transform_view_outputs",
           "transformed_input", "transforms_tab"]
