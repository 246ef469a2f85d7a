"""The Routing tab: what each primary capsule's vote contributes, routing against uniform couplings, and (in collapsed
sections) the coupling coefficients of all 1152 primary capsules, iteration by iteration.

Wiring only: every number and figure comes from `views.couplings`, `views.routing` and `views.capsule_map` applied
to the session's CapsNetOutput (and to `model(x, routing_iterations=r)` for the comparison of iteration counts).
The plain functions here (`resolve_capsule`, `map_outputs`, `capsule_outputs`, `routing_summary`, ...) take
an Analysis and return the values for the components, so they are tested without Gradio.

Also adds the public `routing` endpoint: image (+ optional digit class) in, JSON out.
"""
from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any, Sequence

import gradio as gr
import numpy as np

from capsnet import primary_capsule_index

from ..gradio_compat import plot_value
from ..text import tr
from ..inputs.preprocess import BLANK_MESSAGE
from ..inputs.share import Whole, Wholes
from ..inputs.upload import GuardedImage
from ..session import _safe, new_analysis
from ..views import capsule_map as cm
from ..views import capsules
from ..views import couplings as rc
from ..views import routing as rv
from ..views import contributions as vc
from ..views import routing_dynamics as rd
from . import routing_structure as rs
from .values import clamp_iteration, int_or_none

log = logging.getLogger("explorer")

COMPARE_CHOICES = (1, 2, 3, 4, 5, 7, 10)
COMPARE_DEFAULT = (1, 2, 3, 5)
FIELD_SCALE = 4  # receptive-field overlay: 112 px (thin outline); the evidence overlay is sent at 28 px
QUESTION = (
    "### Which primary capsules vote for the predicted digit, and does routing change the answer?\n"
    "What each primary capsule's vote contributes to the digit capsules (red: makes it longer, blue: shorter), and "
    "their lengths with routing against every **coupling coefficient** fixed at 0.1. The sections below hold the rest."
)
MAP_INTRO = (
    "All **1152 primary capsules where they live**: 32 capsule types, each a 6x6 grid over the image; colour is the "
    "coupling to the digit chosen above as its deviation from the uniform 0.1, on a fixed scale (printed under the "
    "map); barely active (short) capsules are veiled in grey. **Click a capsule** (or set type / row / col) to "
    "inspect it."
)


# ---------------------------------------------------------------- plain functions (tested without Gradio)


def resolve_capsule(analysis: capsules.Analysis, type_: Any = None, row: Any = None, col: Any = None) -> int:
    """The primary-capsule index for (type, row, col), or the most active capsule when any is missing/invalid."""
    t, r, c = int_or_none(type_), int_or_none(row), int_or_none(col)
    if None not in (t, r, c) and 0 <= t < rc.NUM_TYPES and 0 <= r < rc.GRID and 0 <= c < rc.GRID:
        return primary_capsule_index(t, r, c)
    return int(analysis.output.primary_lengths[0].argmax())


def map_caption(analysis: capsules.Analysis, digit_class: int, iteration: int) -> str:
    out = analysis.output
    r = rc.num_iterations(out)
    c = rc.coupling_grid(out, digit_class, iteration).ravel()
    act = rc.activity_grid(out).ravel()
    active = act > rc.DEFAULT_ACTIVITY_FLOOR
    share = float(c[active].mean()) if active.any() else float(c.mean())
    return (
        tr("Coupling to digit **{k}** at routing iteration **{it} of {r}**.", k=digit_class, it=iteration, r=r) + " "
        + rd.coupling_scale_caption(out, digit_class, iteration) + " "
        + tr("Mean coupling of the {n} active capsules (length > {floor}): {share:.3f}. Tiles: types 0–7 in the top "
             "row, 8–15 below, ...", n=int(active.sum()), floor=rc.DEFAULT_ACTIVITY_FLOOR, share=share)
    )


def capsule_markdown(details: dict, digit_class: int) -> str:
    """A table of one primary capsule's couplings (first and last iteration) and agreements per digit capsule."""
    cbi = details["couplings_by_iteration"]
    top, left, bottom, right = details["receptive_field"]
    lines = [
        tr("**Capsule {index}** (type {type}, row {row}, col {col}): length **{length:.3f}**, couples most to digit "
           "**{k}**; it sees input rows {top}–{bottom}, columns {left}–{right}.", index=details["index"],
           type=details["type"], row=details["row"], col=details["col"], length=details["length"],
           k=details["strongest_class"], top=top, bottom=bottom - 1, left=left, right=right - 1),
        "",
        f"| {tr('digit')} | " + " | ".join(f"**{k}**" if k == digit_class else str(k) for k in range(rc.NUM_CLASSES)) + " |",
        "|---" * (rc.NUM_CLASSES + 1) + "|",
        f"| {tr('coupling, iteration {i}', i=1)} | " + " | ".join(f"{v:.3f}" for v in cbi[0]) + " |",
        f"| {tr('coupling, iteration {i}', i=len(cbi))} | " + " | ".join(f"{v:.3f}" for v in cbi[-1]) + " |",
        f"| {tr('agreement û·v')} | " + " | ".join(f"{v:.3f}" for v in details["agreement"]) + " |",
    ]
    return "\n".join(lines)


def capsule_outputs(analysis: capsules.Analysis, digit_class: int, iteration: Any, index: int) -> list:
    """[map image, details figure, field overlay, details markdown, type, row, col] for selecting a capsule."""
    out = analysis.output
    it = clamp_iteration(analysis, iteration)
    return [cm.coupling_map_image(out, digit_class, it, selected=index), *_panel(analysis, digit_class, index)]


def _panel(analysis: capsules.Analysis, digit_class: int, index: int) -> list:
    """[details figure, field overlay, details markdown, type, row, col] of one selected capsule."""
    d = rc.capsule_details(analysis.output, index)
    return [
        plot_value(rv.capsule_details_figure(analysis.output, index)),
        rc.receptive_field_overlay(analysis.image, index, scale=FIELD_SCALE),
        capsule_markdown(d, digit_class),
        d["type"], d["row"], d["col"],
    ]  # fmt: skip


def iteration_outputs(analysis: capsules.Analysis, digit_class: int, iteration: Any, index: int) -> list:
    """[map image, caption, evidence overlay] for another routing iteration (the capsule stays selected)."""
    out = analysis.output
    it = clamp_iteration(analysis, iteration)
    return [
        cm.coupling_map_image(out, digit_class, it, selected=index),
        map_caption(analysis, digit_class, it),
        rc.routing_evidence_overlay(out, analysis.image, digit_class, it, scale=1),
    ]


def map_outputs(analysis: capsules.Analysis, digit_class: int, iteration: Any, type_: Any, row: Any, col: Any) -> list:
    """The coupling-map section for a new input / digit class: [map, caption, evidence, details figure, field
    overlay, details markdown, type, row, col] (the capsule at type / row / col stays selected, else the most
    active one)."""
    index = resolve_capsule(analysis, type_, row, col)
    return [*iteration_outputs(analysis, digit_class, iteration, index), *_panel(analysis, digit_class, index)]


def compare_iterations_outputs(model, analysis: capsules.Analysis | None, iterations: Sequence[Any], digit_class: Any = None):
    """The comparison figure for the chosen iteration counts (sorted, deduplicated, 1..20), or None."""
    if analysis is None or model is None:
        return None
    its = sorted({i for i in (int_or_none(v) for v in iterations or ()) if i is not None and 1 <= i <= 20})
    if not its:
        its = list(COMPARE_DEFAULT)
    k = int_or_none(digit_class)
    return rv.compare_iterations(model, analysis.image, its, highlight=k)


def _r(a, nd=4):
    return np.round(np.asarray(a, np.float64), nd).tolist()


def routing_summary(analysis: capsules.Analysis, digit_class: int | None = None, top: int = 5, grids: bool = True) -> dict:
    """JSON-able routing summary (the `routing` endpoint): per iteration the quantiles of the couplings to
    `digit_class`, the length-weighted mean coupling entropy and the `top` capsules (coupling x length); the final
    couplings of all 1152 primary capsules and their lengths as [32][6][6] (only with `grids`); the lengths; the
    signed vote contributions to `digit_class` as [32][6][6] (they add up to pre_squash_norms[digit_class]), the
    pre-squash lengths |s_j| and the lengths with every coupling fixed at 0.1. (Iteration 1's couplings are all 0.1
    by construction, so only the final grid is sent in full.)"""
    out = analysis.output
    k = analysis.digit if digit_class is None else int(digit_class)
    if not 0 <= k < rc.NUM_CLASSES:
        raise ValueError(f"digit class {digit_class} outside 0..9")
    r = rc.num_iterations(out)
    act = rc.activity_grid(out)
    q = rv.coupling_quantiles(out, k)
    h = rc.coupling_entropy_by_iteration(out, True)
    its = []
    for i in range(1, r + 1):
        g = rc.coupling_grid(out, k, i)
        order = np.argsort(-(g * act).ravel(), kind="stable")[:top]
        its.append({
            "iteration": i,
            "quantiles": dict(zip(("min", "q1", "median", "q3", "max"), _r(q[i - 1], 5))),
            "mean_entropy": round(float(h[i - 1]), 6),
            "top_capsules": [
                {"index": int(j), **dict(zip(("type", "row", "col"), map(int, np.unravel_index(j, g.shape)))),
                 "coupling": round(float(g.ravel()[j]), 5), "length": round(float(act.ravel()[j]), 5)}
                for j in order
            ],
        })  # fmt: skip
    res = {
        "digit": analysis.digit,
        "lengths": _r(analysis.lengths, 6),
        "digit_class": k,
        "routing_iterations": r,
        "iterations": its,
        # signed vote contributions a_ij to digit_class (final iteration); they add up to pre_squash_norms[k]
        "contributions": _r(vc.contribution_grid(out, k), 6),
        "pre_squash_norms": _r(vc.pre_squash_norms(out), 6),
        "uniform_routing_lengths": _r(rd.counterfactual(out)["uniform"], 6),
        "error": None,
    }
    if grids:
        res["layout"] = "couplings[type][row][col]; capsule index = (type*6 + row)*6 + col"
        res["couplings"] = _r(rc.coupling_grid(out, k, r))
        res["primary_lengths"] = _r(act, 3)
    return res


def routing_api(model, image: Any, digit_class: Any = None, model_error: str | None = None, grids: Any = False) -> dict:
    """The `routing` endpoint: errors come back as {"error": ...}, never raised."""
    if model is None:
        return capsules.no_model_answer(model_error, "digit")
    k = int_or_none(digit_class)
    if k is not None and not 0 <= k < rc.NUM_CLASSES:
        return {"digit": None, "error": f"digit_class must be 0..9 or empty, got {digit_class!r}"}
    analysis, message = new_analysis(model, image, "api")
    if analysis is None:
        return {"digit": None, "error": message or BLANK_MESSAGE}
    return routing_summary(analysis, k, grids=bool(grids))


# ---------------------------------------------------------------- the tab


def routing_tab(ui) -> None:
    r_max = ui.model.config.routing_iterations if ui.model is not None else 3
    with ui.view_tab("Routing", id="routing", elem_id="routing-tab") as tab:
        with ui.analysis_column():
            gr.Markdown(QUESTION, elem_id="routing-question")
            iteration = gr.Slider(1, r_max, value=r_max, step=1, label=f"Routing iteration (1 = before any agreement, {r_max} = final)",
                                  elem_id="routing-iteration")  # fmt: skip
            rs.overview(tab, iteration)
            with tab.section("Coupling map: every primary capsule, and the one you click",
                             elem_id="coupling-section") as section:  # fmt: skip
                c = SimpleNamespace(iteration=iteration, **map_section(), **capsule_section())
            rs.structure_sections(tab, iteration)
            with gr.Accordion("Why the couplings stay near 0.1", open=False, elem_id="routing-why"):
                gr.Markdown(rd.EXPLANATION, elem_id="routing-explanation")
            c.__dict__.update(compare_section())
        # The public API's components: hidden, inside the tab (gr.Tabs only holds gr.Tab children).
        api = [GuardedImage(type="pil", image_mode=None, visible=False), gr.Number(None, precision=0, visible=False),
               gr.Checkbox(False, visible=False), gr.JSON(visible=False)]  # fmt: skip
    position = [c.cap_type, c.cap_row, c.cap_col]
    tab.share(it=(iteration, Whole("routing iteration", 1, r_max)),
              type=(c.cap_type, Whole("capsule type", 0, rc.NUM_TYPES - 1)),
              row=(c.cap_row, Whole("capsule row", 0, rc.GRID - 1)),
              col=(c.cap_col, Whole("capsule column", 0, rc.GRID - 1)),
              compare=(c.compare_its, Wholes("set of iteration counts to compare", COMPARE_CHOICES)))  # fmt: skip
    section.on_analysis(map_outputs, [c.cmap, c.caption, c.evidence, c.details, c.field, c.details_md, *position],
                        [c.iteration, *position])  # fmt: skip
    section.on([iteration.input], lambda a, k, it, t, r, c_: iteration_outputs(a, k, it, resolve_capsule(a, t, r, c_)),
               [c.cmap, c.caption, c.evidence], [iteration, *position])  # fmt: skip
    tab.on_analysis(lambda a, k: None, [c.compare_plot])  # a new input or capsule: the comparison is stale
    wire_capsule_panel(ui, c)
    wire_compare(ui, c)
    routing_endpoint(ui, *api)


def map_section() -> dict:
    """The coupling map, its caption and the evidence overlay."""
    gr.Markdown(MAP_INTRO)
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=360):
            cmap = gr.Image(
                label="Coupling to the chosen digit, per primary capsule (click one)", interactive=False,
                format="png", elem_id="coupling-map", buttons=["download"],
            )
            caption = gr.Markdown(elem_id="coupling-caption")
        with gr.Column(scale=2, min_width=180):
            evidence = gr.Image(
                label="Which parts of the input route to the chosen digit", interactive=False, format="png",
                height=220, elem_classes=["model-view"], elem_id="routing-evidence", buttons=[],
            )
            gr.Markdown("<small>Each primary capsule's (coupling − 0.1) × length, spread over its 17x17 "
                        "receptive field; brighter: more of that region's votes go to the digit.</small>")
    return dict(cmap=cmap, caption=caption, evidence=evidence)


def capsule_section() -> dict:
    """The selected primary capsule: type / row / col, its receptive field, its couplings and summary."""
    gr.Markdown("#### Selected primary capsule")
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=180):
            with gr.Row():
                cap_type = gr.Number(None, label="type", info="0–31", precision=0, minimum=0, maximum=rc.NUM_TYPES - 1,
                                     elem_id="capsule-type", min_width=60)  # fmt: skip
                cap_row = gr.Number(None, label="row", info="0–5", precision=0, minimum=0, maximum=rc.GRID - 1,
                                    elem_id="capsule-row", min_width=60)  # fmt: skip
                cap_col = gr.Number(None, label="col", info="0–5", precision=0, minimum=0, maximum=rc.GRID - 1,
                                    elem_id="capsule-col", min_width=60)  # fmt: skip
            field = gr.Image(
                label="Its receptive field on the input", interactive=False, format="png", height=220,
                elem_classes=["model-view"], elem_id="capsule-field", buttons=[],
            )
        with gr.Column(scale=5, min_width=360):
            details = gr.Plot(show_label=False, elem_id="capsule-details")
    details_md = gr.Markdown(elem_id="capsule-summary")
    return dict(cap_type=cap_type, cap_row=cap_row, cap_col=cap_col, field=field, details=details,
                details_md=details_md)  # fmt: skip


def compare_section() -> dict:
    """Other iteration counts, on request (a forward pass per count)."""
    with gr.Accordion("Run routing with a different number of iterations", open=False, elem_id="compare-section"):
        gr.Markdown("One forward pass per choice (runs when you press the button).")
        with gr.Row():
            compare_its = gr.CheckboxGroup(list(COMPARE_CHOICES), value=list(COMPARE_DEFAULT),
                                           label="routing iterations", elem_id="compare-iterations")  # fmt: skip
            compare_btn = gr.Button("Compare lengths", variant="secondary", elem_id="compare-button")
        compare_plot = gr.Plot(show_label=False, elem_id="compare-plot")
    return dict(compare_its=compare_its, compare_btn=compare_btn, compare_plot=compare_plot)


def wire_capsule_panel(ui, c: SimpleNamespace) -> None:
    """A click on the map or the type / row / col boxes choose the capsule."""

    def on_click(evt: gr.SelectData, a, k, it):  # not wrapped by _safe: Gradio reads the SelectData annotation
        try:
            index = cm.capsule_from_select(evt.index)
            if a is None or k is None or index is None:
                return [gr.skip()] * 7
            return capsule_outputs(a, int(k), it, index)
        except Exception:
            log.exception("coupling-map click failed")
            return [gr.skip()] * 7

    def on_controls(a, k, it, t, r, c_):
        if a is None or k is None or None in (int_or_none(t), int_or_none(r), int_or_none(c_)):
            return [gr.skip()] * 7
        return capsule_outputs(a, int(k), it, resolve_capsule(a, t, r, c_))

    common = dict(api_visibility="private", trigger_mode="always_last", show_progress="hidden")
    position = [c.cap_type, c.cap_row, c.cap_col]
    selection_outputs = [c.cmap, c.details, c.field, c.details_md, *position]
    c.cmap.select(on_click, [ui.state, ui.selected_class, c.iteration], selection_outputs, **common)
    gr.on([x.input for x in position], _safe(on_controls, 7),
          [ui.state, ui.selected_class, c.iteration, *position], selection_outputs, **common)  # fmt: skip


def wire_compare(ui, c: SimpleNamespace) -> None:
    """The comparison of iteration counts runs on its button."""
    c.compare_btn.click(
        _safe(lambda a, its, k: compare_iterations_outputs(ui.model, a, its, k), 1),
        [ui.state, c.compare_its, ui.selected_class], c.compare_plot,
        api_visibility="private", show_progress="minimal", concurrency_limit=2,
    )


def routing_endpoint(ui, api_image, api_class, api_grids, api_json) -> None:
    """The public `routing` API: image (+ optional digit class) in, JSON out; independent of the UI's state."""

    def routing(image, digit_class=None, grids=False):
        """Routing of one image: per iteration, the quantiles, mean entropy and top capsules of the couplings to
        `digit_class` (default: the prediction); with `grids`, also every primary capsule's final coupling and
        length as [32][6][6]. Always: the signed vote contributions to `digit_class` ([32][6][6]), the pre-squash
        lengths |s_j| and the digit-capsule lengths with uniform couplings (0.1)."""
        return routing_api(ui.model, image, digit_class, ui.model_error, grids)

    api_image.upload(
        routing, [api_image, api_class, api_grids], api_json, api_name="routing",
        api_description="Routing by agreement for one digit image: couplings of the 1152 primary capsules to a digit "
        "class (default: the prediction) at every routing iteration, with summaries and the capsule lengths.",
    )  # fmt: skip


__all__ = [
    "capsule_markdown",
    "capsule_outputs",
    "compare_iterations_outputs",
    "iteration_outputs",
    "map_caption",
    "map_outputs",
    "resolve_capsule",
    "routing_api",
    "routing_summary",
    "routing_tab",
]
