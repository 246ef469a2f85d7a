"""The Routing tab's structure views: signed vote contributions, links, per-type table, the uniform-coupling
counterfactual, the change from a blank image, polarization, logits and agreement.

Wiring only: `structure_outputs` / `iteration_structure_outputs` turn an Analysis (whose CapsNetOutput was made
with `trace_routing=True`) into component values with `views.contributions` and `views.routing_dynamics`, and are
tested without a browser. They draw in their own event, after the tab's first outputs (a token state), so the
`views_routing` event stays as light as before.
"""
from __future__ import annotations

from typing import Any

import gradio as gr

from ..gradio_compat import plot_value
from ..session import _safe
from ..views import capsules
from ..views import contributions as vc
from ..views import routing_dynamics as rd
from .values import clamp_iteration


def overlay_caption(analysis: capsules.Analysis, iteration: int, span: float) -> str:
    k1, k2 = vc.ranked_classes(analysis.output)
    return (f"Pixel view of the contributions at iteration {iteration}: **{k1}** (predicted), **{k2}** (runner-up), "
            f"**{k1} − {k2}**. Each grid position's contributions (all 32 types) spread over its 17x17 receptive "
            f"field; red: votes that make the digit capsule longer, blue: shorter; full colour at ±{span:.3f}.")


def iteration_structure_outputs(analysis: capsules.Analysis, iteration: Any) -> list:
    """[contribution grids, pixel overlay, its caption, per-type table, links] at `iteration`."""
    out = analysis.output
    it = clamp_iteration(analysis, iteration)
    overlay, span = vc.contribution_overlay(out, analysis.image, it)
    return [plot_value(vc.contribution_grids_figure(out, it)), overlay, overlay_caption(analysis, it, span),
            plot_value(vc.type_summary_figure(out, it)), plot_value(vc.links_figure(out, it))]  # fmt: skip


def structure_outputs(analysis: capsules.Analysis, iteration: Any) -> list:
    """Every structure view for a new input: iteration_structure_outputs + [counterfactual figure, counterfactual
    text, blank-image change, polarization, logits and agreement]."""
    out = analysis.output
    return [
        *iteration_structure_outputs(analysis, iteration),
        plot_value(rd.counterfactual_figure(out)), rd.counterfactual_text(out), plot_value(rd.blank_change_figure(out)),
        plot_value(rd.polarization_figure(out)), plot_value(rd.logits_figure(out)),
    ]  # fmt: skip


N_ITERATION_OUTPUTS = 5
N_OUTPUTS = 10


def structure_section(ui, tab, iteration: gr.Slider) -> gr.State:
    """Build the structure views where called (inside the Routing tab's column, `tab` its ViewTab); returns the
    token state whose change draws them (the tab's first event increments it)."""
    token = gr.State(0)
    gr.Markdown("#### Signed vote contributions a_ij = c_ij (û_j|i · v_j/|v_j|)\n"
                "They add up exactly to the pre-squash length: Σ_i a_ij = |s_j|, and squash(|s_j|) is the digit "
                "capsule's length. Blue capsules vote against the digit capsule.")  # fmt: skip
    grids = gr.Plot(show_label=False, elem_id="contribution-grids")
    overlay = gr.Image(label="Contributions on the input: predicted | runner-up | difference", interactive=False,
                       format="png", elem_id="contribution-overlay", buttons=[], height=150)  # fmt: skip
    overlay_md = gr.Markdown(elem_id="contribution-caption")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=360):
            links = gr.Plot(show_label=False, elem_id="routing-links")
            links.change(None, None, None, js="() => window.capsnetBindRoutingLinks?.()")  # static/routing_links.js
        with gr.Column(scale=2, min_width=260):
            types = gr.Plot(show_label=False, elem_id="type-summary")
    gr.Markdown("#### Routing against uniform couplings")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=360):
            counter = gr.Plot(show_label=False, elem_id="routing-counterfactual")
        with gr.Column(scale=2, min_width=220):
            counter_md = gr.Markdown(elem_id="counterfactual-summary")
            gr.Markdown("<small>With every coupling fixed at 0.1 (what one iteration does); over the whole test "
                        "set, see *Does routing matter?* in the Model card tab.</small>")  # fmt: skip
    gr.Markdown("#### What the digit changes")
    blank = gr.Plot(show_label=False, elem_id="blank-change")
    with gr.Accordion("Polarization, logits and agreement per iteration", open=True):
        polar = gr.Plot(show_label=False, elem_id="routing-polarization")
        logits = gr.Plot(show_label=False, elem_id="routing-logits")
    outputs = [grids, overlay, overlay_md, types, links, counter, counter_md, blank, polar, logits]
    assert len(outputs) == N_OUTPUTS

    tab.on_analysis(lambda a, k, tok: (int(tok or 0) + 1), [token], [token])
    token.change(
        _safe(lambda a, it: structure_outputs(a, it) if a is not None else [gr.skip()] * N_OUTPUTS, N_OUTPUTS),
        [ui.state, iteration], outputs, api_name="views_routing_structure", api_visibility="undocumented",
        show_progress="minimal", trigger_mode="always_last",
    )  # fmt: skip
    iteration.input(
        _safe(lambda a, it: iteration_structure_outputs(a, it) if a is not None else [gr.skip()] * N_ITERATION_OUTPUTS,
              N_ITERATION_OUTPUTS),
        [ui.state, iteration], outputs[:N_ITERATION_OUTPUTS], api_visibility="private", show_progress="hidden",
        trigger_mode="always_last",
    )  # fmt: skip
    return token


__all__ = ["iteration_structure_outputs", "overlay_caption", "structure_outputs", "structure_section"]
