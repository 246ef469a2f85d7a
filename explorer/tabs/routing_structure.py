"""The Routing tab's overview and its structure sections: signed vote contributions, the uniform-coupling
counterfactual, the pixel view and links, the per-type table, what routing does per iteration, and the change
from a blank image.

Wiring only: the plain functions (`overview_outputs`, `contribution_outputs`, ...) turn an Analysis (whose
CapsNetOutput was made with `trace_routing=True`) into component values with `views.contributions`,
`views.routing_dynamics` and `views.routing`, and are tested without a browser. The overview draws with the tab;
each section is a collapsed `ViewTab.section`, drawn only while it is open.
"""
from __future__ import annotations

from typing import Any

import gradio as gr

from ..gradio_compat import plot_value
from ..session import _safe
from ..views import capsules
from ..views import contributions as vc
from ..views import routing as rv
from ..views import routing_dynamics as rd
from ..text import tr
from .values import clamp_iteration


def overlay_caption(analysis: capsules.Analysis, iteration: int, span: float) -> str:
    k1, k2 = vc.ranked_classes(analysis.output)
    return tr("Pixel view of the contributions at iteration {it}: **{k1}** (predicted), **{k2}** (runner-up), "
              "**{k1} − {k2}**. Each grid position's contributions (all 32 types) spread over its 17x17 receptive "
              "field; red: votes that make the digit capsule longer, blue: shorter; full colour at ±{span:.3f}.",
              it=iteration, k1=k1, k2=k2, span=span)


# ---------------------------------------------------------------- plain functions (tested without Gradio)


def grids_output(analysis: capsules.Analysis, iteration: Any):
    """The contribution grids (predicted, runner-up, difference) at `iteration` (out of range: the last)."""
    return plot_value(vc.contribution_grids_figure(analysis.output, clamp_iteration(analysis, iteration)))


def overview_outputs(analysis: capsules.Analysis, iteration: Any) -> list:
    """[contribution grids, counterfactual figure, counterfactual text]: the tab's first screen."""
    out = analysis.output
    return [grids_output(analysis, iteration), plot_value(rd.counterfactual_figure(out)), rd.counterfactual_text(out)]


def contribution_outputs(analysis: capsules.Analysis, iteration: Any) -> list:
    """[pixel overlay, its caption, links figure] at `iteration`."""
    out = analysis.output
    it = clamp_iteration(analysis, iteration)
    overlay, span = vc.contribution_overlay(out, analysis.image, it)
    return [overlay, overlay_caption(analysis, it, span), plot_value(vc.links_figure(out, it))]


def types_output(analysis: capsules.Analysis, iteration: Any):
    """The contributions summed per capsule type at `iteration`."""
    return plot_value(vc.type_summary_figure(analysis.output, clamp_iteration(analysis, iteration)))


def iterations_outputs(analysis: capsules.Analysis, digit_class: int) -> list:
    """[sharpening of the couplings to `digit_class`, polarization, logits and agreement]."""
    out = analysis.output
    return [plot_value(rv.coupling_sharpening_figure(out, digit_class)), plot_value(rd.polarization_figure(out)),
            plot_value(rd.logits_figure(out))]  # fmt: skip


def blank_output(analysis: capsules.Analysis):
    return plot_value(rd.blank_change_figure(analysis.output))


# ---------------------------------------------------------------- the overview and the sections


def overview(tab, iteration: gr.Slider) -> list:
    """The first screen: the signed contributions and lengths with routing against uniform couplings. Returns its
    components: [grids, counterfactual figure, counterfactual text]."""
    grids = gr.Plot(show_label=False, elem_id="contribution-grids")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=300):
            counter = gr.Plot(show_label=False, elem_id="routing-counterfactual")
        with gr.Column(scale=2, min_width=200):
            counter_md = gr.Markdown(elem_id="counterfactual-summary")
            gr.Markdown("<small>Grey: every coupling fixed at 0.1 (what one iteration does); over the whole test "
                        "set, see *Does routing matter?* in the Model card tab. The contributions a_ij = c_ij "
                        "(û_j|i · v_j/|v_j|) add up exactly to the pre-squash length, Σ_i a_ij = |s_j|, and "
                        "squash(|s_j|) is the digit capsule's length.</small>")  # fmt: skip
    outputs = [grids, counter, counter_md]
    tab.on_analysis(lambda a, k, it: overview_outputs(a, it), outputs, [iteration])
    iteration.input(_safe(lambda a, it: grids_output(a, it) if a is not None else gr.skip(), 1),
                    [tab.ui.state, iteration], grids, api_visibility="private", show_progress="hidden",
                    trigger_mode="always_last")  # fmt: skip
    return outputs


def structure_sections(tab, iteration: gr.Slider) -> None:
    """The collapsed sections after the coupling map: the pixel view and links, per capsule type, per iteration and
    against a blank image."""
    with tab.section("Contributions on the input, and the strongest links", elem_id="contributions-section") as s:
        overlay = gr.Image(label="Contributions on the input: predicted | runner-up | difference", interactive=False,
                           format="png", elem_id="contribution-overlay", buttons=[], height=150)  # fmt: skip
        overlay_md = gr.Markdown(elem_id="contribution-caption")
        links = gr.Plot(show_label=False, elem_id="routing-links")
        links.change(None, None, None, js="() => window.capsnetBindRoutingLinks?.()")  # static/routing_links.js
    s.on_analysis(lambda a, k, it: contribution_outputs(a, it), [overlay, overlay_md, links], [iteration])
    s.on([iteration.input], lambda a, k, it: contribution_outputs(a, it), [overlay, overlay_md, links], [iteration])

    with tab.section("Contributions per capsule type", elem_id="types-section") as s:
        types = gr.Plot(show_label=False, elem_id="type-summary")
    s.on_analysis(lambda a, k, it: types_output(a, it), [types], [iteration])
    s.on([iteration.input], lambda a, k, it: types_output(a, it), [types], [iteration])

    with tab.section("Per routing iteration: sharpening, polarization, logits and agreement",
                     elem_id="iterations-section") as s:  # fmt: skip
        sharpen = gr.Plot(show_label=False, elem_id="routing-sharpening")
        polar = gr.Plot(show_label=False, elem_id="routing-polarization")
        logits = gr.Plot(show_label=False, elem_id="routing-logits")
    s.on_analysis(iterations_outputs, [sharpen, polar, logits])

    with tab.section("What the digit changes: each primary capsule against a blank image", elem_id="blank-section") as s:
        blank = gr.Plot(show_label=False, elem_id="blank-change")
    s.on_analysis(lambda a, k: blank_output(a), [blank])


__all__ = [
    "blank_output",
    "contribution_outputs",
    "grids_output",
    "iterations_outputs",
    "overlay_caption",
    "overview",
    "overview_outputs",
    "structure_sections",
    "types_output",
]
