"""Pose trajectories (in the Transforms tab) and the `transform_response` endpoint.

The untransformed input is swept through one transform (19 values, one batched forward pass in
`capsnet.equivariance.transform_responses`, on up to 2 threads); the plot shows the predicted capsule's 16 pose
dimensions and the lengths against the transform value, the dimensions with the largest |Spearman rho|
highlighted. Once the chosen sweep is on screen, the other four follow in one more batched pass into a per-session
cache, so choosing another transform redraws without a forward pass. A click on a dimension (plot trace or button)
opens the Pose tab at that dimension's slider (static/pose_link.js).
"""
from __future__ import annotations

import json
from typing import Any

import gradio as gr
import numpy as np

from capsnet.equivariance import TRANSFORMS, TransformResponse, transform_responses, with_baseline

from ..gradio_compat import plot_value
from ..inputs.preprocess import BLANK_MESSAGE, preprocess
from ..inputs.upload import GuardedImage
from ..session import _safe, batch_threads
from ..views import capsules
from ..views import equivariance as ev
from .values import finite_float

CHOICES = [(ev.TITLES[n], n) for n in TRANSFORMS]
DEFAULT = "rotation"


# ---------------------------------------------------------------- plain functions (tested without Gradio)


def current_value(name: str, angle: Any = None, scale: Any = None, dx: Any = None, dy: Any = None) -> float | None:
    """The Transforms tab's slider value for this transform (None: no slider for it, e.g. thickness)."""
    return finite_float({"rotation": angle, "scale": scale, "shift_x": dx, "shift_y": dy}.get(name))


def sweeps_for(model, original: Any, names, cache: dict | None = None, cnn=None) -> dict:
    """The per-session sweep cache {"original": array, "responses": {name: TransformResponse}} holding `names` for
    this original: only the missing sweeps are computed, together in one batched forward pass (with the CNN
    baseline's softmax beside them when there is one); a cache of another original is dropped."""
    orig = np.asarray(original, np.float32)
    if not (cache and np.array_equal(cache.get("original"), orig)):
        cache = {"original": orig, "responses": {}}
    missing = [n for n in names if n not in cache["responses"]]
    if missing:
        with batch_threads():
            computed = {n: with_baseline(r, cnn) for n, r in transform_responses(model, orig, dict.fromkeys(missing)).items()}
        cache = {"original": orig, "responses": {**cache["responses"], **computed}}
    return cache


def trajectory_outputs(model, original: Any, name: Any, card: dict | None = None, current: float | None = None,
                       cache: dict | None = None, cnn=None) -> list:  # fmt: skip
    """[response (state), figure, tracking sentence, dimension buttons, sweep cache] for the original input,
    from the cache when it already holds this sweep; None values without an original or a model."""
    if model is None or original is None:
        return [None, None, "", "", None]
    name = name if name in TRANSFORMS else DEFAULT
    cache = sweeps_for(model, original, [name], cache, cnn)
    r = cache["responses"][name]
    rho, spread = r.rho.tolist(), r.spread.tolist()
    return [r, plot_value(ev.trajectory_spec(r, card, current=current)),
            ev.tracking_markdown(name, rho, r.digit_class, card, spread=spread),
            ev.dimension_chips_html(rho, r.digit_class, card, spread=spread), cache]  # fmt: skip


def redraw(r: TransformResponse | None, card: dict | None, angle: Any, scale: Any, dx: Any, dy: Any):
    """The stored trajectories with a marker at the current slider value; gr.skip() without any."""
    if r is None:
        return gr.skip()
    return plot_value(ev.trajectory_spec(r, card, current=current_value(r.transform, angle, scale, dx, dy)))


def parse_values(values: Any) -> list[float] | None:
    """The endpoint's `values`: a list of numbers, or its JSON / comma-separated text; None or empty -> default."""
    if values is None or (isinstance(values, str) and not values.strip()):
        return None
    if isinstance(values, str):
        text = values.strip()
        try:
            values = json.loads(text if text.startswith("[") else f"[{text}]")
        except ValueError:
            raise ValueError(f"values must be a list of numbers, e.g. [-10, 0, 10]; got {text[:60]!r}") from None
    if isinstance(values, (int, float)):
        values = [values]
    if not isinstance(values, (list, tuple)):
        raise ValueError(f"values must be a list of numbers, got {type(values).__name__}")
    return list(values)


def transform_response_api(model, image: Any, name: Any, values: Any = None, model_error: str | None = None,
                           cnn=None) -> dict:  # fmt: skip
    """The `transform_response` endpoint: {values, lengths [n][10], poses [n][16] (of the class predicted on the
    untransformed input), digit_class, transform, cnn_probabilities [n][10] (with a CNN baseline), error}; errors
    come back as {"error": ...}, never raised."""
    fail = {"values": None, "lengths": None, "poses": None, "digit_class": None}
    if model is None:
        return capsules.no_model_answer(model_error, *fail)
    if name not in TRANSFORMS:
        return {**fail, "error": f"Unknown transform {str(name)[:40]!r}: use one of {', '.join(TRANSFORMS)}."}
    try:
        vals = parse_values(values)
        pre = preprocess(image)  # exactly what `predict` feeds the model
        if pre.blank:
            return {**fail, "error": pre.message or BLANK_MESSAGE}
        with batch_threads():
            return ev.response_summary(with_baseline(transform_responses(model, pre.image, {name: vals})[name], cnn))
    except ValueError as e:  # one sentence, never a long echo of the input
        msg = str(e)[:200].rstrip(".")
        return {**fail, "error": msg[:1].upper() + msg[1:] + "."}


# ---------------------------------------------------------------- the Gradio part


def pose_trajectories(ui, original: gr.State, sliders: list) -> tuple[gr.State, gr.Plot, gr.Radio]:
    """Build the section inside the Transforms tab; returns (response state, plot) for the tab's marker redraws and
    the transform's choice for its share links."""
    gr.Markdown(
        "#### Pose trajectories\nThe untransformed input swept through one transform (19 values, one batched forward "
        "pass): the **pose** of the digit capsule predicted for it, dimension by dimension, and every capsule's "
        "**length**. The dimensions whose rank order follows the transform best (largest |Spearman ρ|) are drawn "
        "in colour. Click one (in the plot or below) to open its pose slider."
    )
    with gr.Row():
        transform = gr.Radio(CHOICES, value=DEFAULT, label="transform", elem_id="eq-transform", scale=3)
    state = gr.State(None)
    sweeps = gr.State(None)  # every sweep computed for the current original (see sweeps_for)
    plot = gr.Plot(show_label=False, elem_id="eq-trajectories")
    # Each new figure: clicks on a trajectory open its pose slider (static/pose_link.js), and on a phone the
    # two panels are stacked (static/trajectories_narrow.js).
    plot.change(None, None, None, js="() => { window.capsnetBindPoseLinks?.(); window.capsnetFitTrajectories?.(); }")
    tracking = gr.Markdown(elem_id="eq-tracking")
    chips = gr.HTML(elem_id="eq-dim-buttons")
    api_image = GuardedImage(type="pil", image_mode=None, visible=False)
    api_transform = gr.Textbox(visible=False)
    api_values = gr.JSON(visible=False)
    api_json = gr.JSON(visible=False)

    def compute(orig, name, cache, *slider_values):
        return trajectory_outputs(ui.model, orig, name, ui.card, current_value(name, *slider_values), cache, ui.cnn)

    def prefetch(orig, cache):
        """The other transforms' sweeps, after the chosen one is on screen: choosing one then needs no forward pass."""
        if ui.model is None or orig is None:
            return gr.skip()
        return sweeps_for(ui.model, orig, TRANSFORMS, cache, ui.cnn)

    inputs, outputs = [original, transform, sweeps, *sliders], [state, plot, tracking, chips, sweeps]
    common = dict(api_visibility="private", show_progress="minimal", trigger_mode="always_last")
    original.change(_safe(compute, 5), inputs, outputs, **common).then(
        _safe(prefetch, 1), [original, sweeps], sweeps, api_visibility="private", show_progress="hidden",
        trigger_mode="always_last",
    )
    # the same handler for a chosen transform; callable (undocumented) so the benchmark can time the round trip
    transform.change(_safe(compute, 5), inputs, outputs, api_name="transform_trajectories",
                     api_visibility="undocumented", show_progress="minimal", trigger_mode="always_last")  # fmt: skip

    def transform_response_endpoint(image, name, values=None):
        """Sweep one digit image through one transform in one batched forward pass."""
        return transform_response_api(ui.model, image, name, values, ui.model_error, ui.cnn)

    api_image.upload(
        transform_response_endpoint, [api_image, api_transform, api_values], api_json, api_name="transform_response",
        api_description="Sweep a digit image through one transform (rotation, scale, shift_x, shift_y, thickness) at "
        "the given values (default: 19 over the explorer's range) in one batched forward pass: returns {values, "
        "lengths [n][10], poses [n][16] of the class predicted on the untransformed input, digit_class, "
        "cnn_probabilities [n][10] (the CNN baseline's softmax, when it is installed), error}.",
    )  # fmt: skip
    return state, plot, transform


__all__ = ["current_value", "parse_values", "pose_trajectories", "redraw", "sweeps_for",
           "trajectory_outputs", "transform_response_api"]  # fmt: skip
