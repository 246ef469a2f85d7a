"""The events that keep every tab in step with the session's one Analysis (`wire(ui)`, called by build_demo).

Kept small because Gradio rebuilds a component for every gr.update()/gr.skip() output:

- per input source: ONE fast event returning the analysis (state), the prediction, the model input and
  per-tab "draw" tokens (gr.State, free to return); the open tab's token changes, and its .change event
  draws that tab's views (a second event with only that tab's outputs);
- the prompt's text comes with the input event; the page shows the analysis columns while it is empty
  (static/prompt.js, no event of its own);
- selecting a tab (or another digit capsule) changes that tab's token when its views are stale.
"""
from __future__ import annotations

import dataclasses
import itertools
import traceback
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import gradio as gr

from .inputs.preprocess import BLANK_MESSAGE
from .language import remember
from .session import IGNORE, NO_CHECKPOINT_HINT, PROMPT, ExplorerUI, InputSource, Listener, Section, log, new_analysis
from .text import tr
from .views import capsules


def _run(listeners: Sequence[Listener], analysis: capsules.Analysis, k: int, values: Sequence) -> list:
    """Call each listener with its slice of `values` (missing values are None); a failing view leaves its outputs."""
    results, i = [], 0
    for ln in listeners:
        n = len(ln.inputs)
        vals = list(values[i : i + n])
        vals += [None] * (n - len(vals))
        i += n
        try:
            out = ln.fn(analysis, k, *vals)
            out = list(out) if isinstance(out, (list, tuple)) else [out]
            if len(out) != len(ln.outputs):
                raise ValueError(f"{ln.fn} returned {len(out)} values for {len(ln.outputs)} outputs")
        except Exception:
            log.error("view %s failed:\n%s", getattr(ln.fn, "__name__", ln.fn), traceback.format_exc())
            out = [gr.skip()] * len(ln.outputs)
        results.extend(out)
    return results


def _capsule(analysis: capsules.Analysis, k) -> int:
    """The digit capsule the views show: the selected one, else the prediction."""
    return analysis.digit if k is None else int(k)


def _shows(drawn, analysis, k) -> bool:
    """Whether views recorded as drawn = (analysis, digit capsule) show this analysis and capsule."""
    return drawn is not None and drawn[0] is analysis and drawn[1] == _capsule(analysis, k)


@dataclass
class _Pages:
    """The per-session states that tie the events together, and the tokens' counter."""

    always: list  # listeners of tab functions without a tab of their own: they run with every input
    rendered: gr.State  # per session: {group: (analysis, digit class)} drawn (or asked for) by that tab's views
    tokens: list  # per view tab: a new value draws its views
    has_views: list  # per view tab: whether it has views to draw
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    always_inputs: list = field(init=False)  # the always-listeners' inputs and outputs, in order
    always_outputs: list = field(init=False)

    def __post_init__(self):
        self.always_inputs = [c for ln in self.always for c in ln.inputs]
        self.always_outputs = [c for ln in self.always for c in ln.outputs]

    def stale(self, analysis, k, drawn, g: int) -> bool:
        """Whether tab g's views are neither drawn nor asked for with this analysis and digit class."""
        return analysis is not None and self.has_views[g] and not _shows((drawn or {}).get(g), analysis, k)

    def catch_up(self, analysis, k, drawn, active) -> list:
        """After an input event or a tab's selection: a new token for the open tab when its views are stale. Both
        check, because either may finish while the other runs (a tab opened while the opening example is analysed:
        the input event asked for the tab open when it started, the selection found no analysis yet)."""
        g = 0 if active is None else int(active)
        fresh = self.stale(analysis, k, drawn, g)
        return [next(self.counter) if (fresh and i == g) else gr.skip() for i in range(len(self.tokens))]

    def draw_tokens(self, active, fresh: bool) -> list:
        """A new token for the open tab (when `fresh`), gr.skip() (no change, no event) for the others."""
        active = 0 if active is None else int(active)
        return [next(self.counter) if (fresh and g == active) else gr.skip() for g in range(len(self.tokens))]


def wire(ui: ExplorerUI) -> None:
    """Register the input, prompt, redraw and selection events for everything the tabs added to `ui`."""
    for section in ui.sections:  # (first: each adds a listener to its tab)
        wire_section(ui, section)
    for triggers, ln in ui.redraws:
        _wire_tab_redraw(ui, triggers, ln)
    has_views = [any(ln.outputs for ln in ui.listeners if ln.group == g) for g in range(len(ui.view_tabs))]
    pages = _Pages(always=[ln for ln in ui.listeners if ln.group is None], rendered=gr.State({}),
                   tokens=[gr.State(0) for _ in ui.view_tabs], has_views=has_views)  # fmt: skip
    wire_inputs(ui, pages)
    wire_views(ui, pages)
    wire_capsule_choice(ui, pages)


def wire_inputs(ui: ExplorerUI, pages: _Pages) -> None:
    """Per input source, ONE event: the analysis (state), the prompt's text ("" while there is an analysis), the
    prediction, the model input, the open tab's token and the views that run with every input; plus, for named
    sources, the same handler as an API endpoint."""
    head_outputs = [ui.state, ui.prompt, ui.selected_class, ui.prediction, ui.model_input, pages.rendered,
                    *pages.tokens]  # fmt: skip
    outputs = head_outputs + pages.always_outputs

    def outputs_for(analysis, message, always_values, active) -> list:
        if analysis is None:
            text = (tr(PROMPT) if message in ("", BLANK_MESSAGE)
                    else tr("### Nothing to show\n{message}", message=tr(message)))  # fmt: skip
            if ui.model is None:
                text = tr(NO_CHECKPOINT_HINT, error=ui.model_error or "")
            return [None, text, gr.skip(), "", None, gr.skip(), *pages.draw_tokens(active, False),
                    *[gr.skip()] * len(pages.always_outputs)]  # fmt: skip
        k = analysis.digit
        pred = tr("## Prediction: **{digit}**\ndigit-capsule length {length:.3f}", digit=k,
                  length=float(analysis.lengths[k]))
        if analysis.note:
            pred += f"\n\n{analysis.note}"
        pred += f'\n\n<span class="input-source source-{analysis.source}"></span>'  # static/links.js waits for it
        check = (ui.card or {}).get("reconstruction_check")
        typical = capsules.typicality_text(capsules.typicality(analysis, check), check, k)
        if typical:
            pred += f"\n\n{typical}"
        requested = {} if active is None or not pages.has_views[int(active)] else {int(active): (analysis, k)}
        return [analysis, "", k, pred, capsules.model_input_image(analysis, scale=1), requested,
                *pages.draw_tokens(active, True), *_run(pages.always, analysis, k, always_values)]  # fmt: skip

    def handle(source: InputSource, call, args, api=False):
        try:
            raw = call()
        except Exception:
            log.error("input source failed:\n%s", traceback.format_exc())
            raw = None
        if raw is IGNORE:  # e.g. a damaged share link, already answered with a warning: change nothing
            return [gr.skip()] * len(outputs)
        n = len(source.inputs)
        rest = list(args[n:])
        rest += [None] * (1 + len(pages.always_inputs) - len(rest))  # API callers leave out the view inputs
        analysis, message = new_analysis(ui.model, raw, source.source)
        if api and analysis is None:  # API callers get the reason as {"error": "..."}, not empty outputs
            raise gr.Error(message or BLANK_MESSAGE, print_exception=False)
        return outputs_for(analysis, message, rest[1:], rest[0])

    for src in ui.sources:
        event = _wire_source(src, handle, [*src.inputs, ui.active_tab], pages.always_inputs, outputs)
        event.then(pages.catch_up, [ui.state, ui.selected_class, pages.rendered, ui.active_tab], pages.tokens,
                   queue=False, api_visibility="private", show_progress="hidden")  # fmt: skip
    if ui.language is not None:
        wire_language(ui, pages, outputs_for, outputs)


def wire_language(ui: ExplorerUI, pages: _Pages, outputs_for: Callable, outputs: list) -> None:
    """The language switch: the session's choice remembered (explorer/language.py), and everything the server wrote
    redrawn in it as for a new input, with a copy of the analysis (every tab and section then holds views older
    than it) that keeps the Pose tab's edit."""
    edit = [ui.pose_edit] if ui.pose_edit is not None else []
    n = len(pages.always_inputs)

    def relabel(code, analysis, active, *rest):
        if remember(code) is None:
            return [gr.skip()] * len(outputs)
        if analysis is not None:
            e = rest[n] if len(rest) > n else None
            kept = (e[1], tuple(e[2])) if e and e[0] is analysis else analysis.pose_edit
            analysis = dataclasses.replace(analysis, pose_edit=kept)
        return outputs_for(analysis, "", rest[:n], active)

    ui.language.change(relabel, [ui.language, ui.state, ui.active_tab, *pages.always_inputs, *edit], outputs,
                       api_visibility="private", trigger_mode="always_last", show_progress="hidden").then(
        pages.catch_up, [ui.state, ui.selected_class, pages.rendered, ui.active_tab], pages.tokens, queue=False,
        api_visibility="private", show_progress="hidden")  # fmt: skip


def _wire_source(src: InputSource, handle: Callable, api_inputs: list, view_inputs: list, outputs: list):
    """The page's event for one input source, with the views' inputs (returned), and when it has a name, its API
    endpoint (only the source's inputs and the active tab)."""
    n = len(src.inputs)
    if src.select:
        def handler(evt: gr.SelectData, *args):
            return handle(src, lambda: src.fn(evt, *args[:n]), args)
    else:
        def handler(*args):
            return handle(src, lambda: src.fn(*args[:n]), args)

    def api_handler(*args):
        return handle(src, lambda: src.fn(*args[:n]), args, api=True)

    event = gr.on(src.triggers, handler, [*api_inputs, *view_inputs], outputs, api_visibility="private",
                  trigger_mode="always_last", show_progress="minimal")  # fmt: skip
    if src.api_name:  # the same handler for API clients
        gr.Button(visible=False).click(api_handler, api_inputs, outputs, api_name=src.api_name,
                                       api_visibility="undocumented")  # fmt: skip
    return event


def wire_views(ui: ExplorerUI, pages: _Pages) -> None:
    """Each view tab draws its views when its token changes (a new input while it is open, or selected while
    stale); selecting a tab makes it the active one."""
    for g, tab in enumerate(ui.view_tabs):
        listeners = [ln for ln in ui.listeners if ln.group == g]
        if pages.has_views[g]:
            _wire_redraw(ui, pages, g, listeners, getattr(tab, "id", None) or g)
        _wire_select(ui, pages, g, tab)


def _wire_redraw(ui: ExplorerUI, pages: _Pages, g: int, listeners: list, tab_id) -> None:
    g_inputs = [c for ln in listeners for c in ln.inputs]
    g_outputs = [c for ln in listeners for c in ln.outputs]

    def draw(analysis, k, drawn, *values):
        if analysis is None:
            return [gr.skip()] * (1 + len(g_outputs))
        k = _capsule(analysis, k)
        return [{**(drawn or {}), g: (analysis, k)}, *_run(listeners, analysis, k, values)]

    pages.tokens[g].change(
        draw, [ui.state, ui.selected_class, pages.rendered, *g_inputs], [pages.rendered, *g_outputs],
        api_name=f"views_{tab_id}", api_visibility="undocumented", trigger_mode="always_last",
        show_progress="minimal",
    )


def _wire_select(ui: ExplorerUI, pages: _Pages, g: int, tab: gr.Tab) -> None:
    def on_select(analysis, k, drawn):
        if not pages.stale(analysis, k, drawn, g):
            return [g, gr.skip(), gr.skip()]
        return [g, next(pages.counter), {**(drawn or {}), g: (analysis, _capsule(analysis, k))}]  # (asked for: catch_up skips it)

    tab.select(on_select, [ui.state, ui.selected_class, pages.rendered], [ui.active_tab, pages.tokens[g], pages.rendered],
               api_visibility="private", show_progress="hidden").then(
        pages.catch_up, [ui.state, ui.selected_class, pages.rendered, ui.active_tab], pages.tokens, queue=False,
        api_visibility="private", show_progress="hidden")  # fmt: skip


def wire_section(ui: ExplorerUI, section: Section) -> None:
    """A collapsible section's views: drawn by its tab's redraw while open (through a token), on opening when stale,
    and on its own triggers while open (closed, those mark it stale). `drawn` holds (analysis, digit class) of the
    views on screen; `is_open` follows the accordion."""
    is_open, drawn, token = gr.State(section.is_open), gr.State(None), gr.State(0)
    inputs = [c for ln in section.listeners for c in ln.inputs]
    outputs = [c for ln in section.listeners for c in ln.outputs]
    skip_all = [gr.skip()] * (1 + len(outputs))

    def draw(analysis, k, *values):
        if analysis is None:
            return skip_all
        k = _capsule(analysis, k)
        return [(analysis, k), *_run(section.listeners, analysis, k, values)]

    def on_expand(analysis, k, shown, *values):
        fresh = analysis is not None and _shows(shown, analysis, k)
        return [True, *(skip_all if fresh else draw(analysis, k, *values))]

    common = dict(api_visibility="private", trigger_mode="always_last")
    ui.listeners.append(Listener(lambda a, k, op, tok: int(tok or 0) + 1 if op else gr.skip(), [token],
                                 [is_open, token], section.view_tab.group))  # fmt: skip
    token.change(draw, [ui.state, ui.selected_class, *inputs], [drawn, *outputs], show_progress="minimal", **common)
    section.accordion.expand(on_expand, [ui.state, ui.selected_class, drawn, *inputs], [is_open, drawn, *outputs],
                             show_progress="minimal", **common)  # fmt: skip
    section.accordion.collapse(lambda: False, None, is_open, show_progress="hidden", **common)
    for triggers, ln in section.redraws:
        _wire_section_redraw(ui, triggers, ln, is_open, drawn)


def _wire_tab_redraw(ui: ExplorerUI, triggers: list, ln: Listener) -> None:
    """A view tab's own control (ViewTab.on): its listener runs again for the session's analysis and capsule."""
    def redraw_tab(analysis, k, *values):
        if analysis is None:
            out = [gr.skip()] * len(ln.outputs)
        else:
            out = _run([ln], analysis, _capsule(analysis, k), values)
        return out[0] if len(out) == 1 else out  # (Gradio takes one output's value as it is)

    gr.on(triggers, redraw_tab, [ui.state, ui.selected_class, *ln.inputs], ln.outputs, api_visibility="private",
          trigger_mode="always_last", show_progress="minimal")  # fmt: skip


def _wire_section_redraw(ui: ExplorerUI, triggers: list, ln: Listener, is_open: gr.State, drawn: gr.State) -> None:
    def redraw(op, analysis, k, *values):
        if not op:  # closed: its views are stale, opening it draws them
            return [None, *[gr.skip()] * len(ln.outputs)]
        if analysis is None:
            return [gr.skip()] * (1 + len(ln.outputs))
        return [gr.skip(), *_run([ln], analysis, _capsule(analysis, k), values)]

    gr.on(triggers, redraw, [is_open, ui.state, ui.selected_class, *ln.inputs], [drawn, *ln.outputs],
          api_visibility="private", trigger_mode="always_last", show_progress="hidden")  # fmt: skip


def wire_capsule_choice(ui: ExplorerUI, pages: _Pages) -> None:
    """Choosing another digit capsule redraws the open tab and the views that run with every input."""

    def reselect(analysis: capsules.Analysis | None, k, active, *values):
        if analysis is None or k is None:
            return [*pages.draw_tokens(active, False), *[gr.skip()] * len(pages.always_outputs)]
        return [*pages.draw_tokens(active, True), *_run(pages.always, analysis, int(k), values)]

    ui.selected_class.input(
        reselect, [ui.state, ui.selected_class, ui.active_tab, *pages.always_inputs],
        [*pages.tokens, *pages.always_outputs], api_visibility="private", trigger_mode="always_last",
        show_progress="hidden",
    )
