"""The events that keep every tab in step with the session's one Analysis (`wire(ui)`, called by build_demo).

Kept small because Gradio rebuilds a component for every gr.update()/gr.skip() output:

- per input source: ONE fast event returning the analysis (state), the prediction, the model input and
  per-tab "draw" tokens (gr.State, free to return); the open tab's token changes, and its .change event
  draws that tab's views (a second event with only that tab's outputs);
- prompt and column visibility follow a `view_status` state's .change, i.e. only when they flip;
- selecting a tab (or another digit capsule) changes that tab's token when its views are stale.
"""
from __future__ import annotations

import itertools
import traceback
from typing import Sequence

import gradio as gr

from .inputs.preprocess import BLANK_MESSAGE
from .inputs.sketch import IGNORE
from .session import NO_CHECKPOINT_HINT, PROMPT, ExplorerUI, _Listener, log, new_analysis
from .views import capsules


def _run(listeners: Sequence[_Listener], analysis: capsules.Analysis, k: int, values: Sequence) -> list:
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


def wire(ui: ExplorerUI) -> None:
    """Register the input, draw, tab-select and capsule-select events for everything the tabs added to `ui`."""
    listeners = ui._listeners
    always = [ln for ln in listeners if ln.group is None]  # tab functions without a tab of their own
    always_inputs = [c for ln in always for c in ln.inputs]
    always_outputs = [c for ln in always for c in ln.outputs]
    n_groups = len(ui._groups)
    counter = itertools.count(1)
    rendered = gr.State({})  # per session: {group: (analysis, digit class)} last drawn by that tab's views
    view_status = gr.State((False, ""))  # (has input, prompt text): its change shows / hides prompt and views
    tokens = [gr.State(0) for _ in range(n_groups)]  # per tab: a new value draws its views
    ui._draw_tokens = tokens

    def draw_tokens(active, fresh: bool) -> list:
        """A new token for the open tab (when `fresh`), gr.skip() (no change, no event) for the others."""
        active = 0 if active is None else int(active)
        return [next(counter) if (fresh and g == active) else gr.skip() for g in range(n_groups)]

    head_outputs = [ui.state, view_status, ui.selected_class, ui.prediction, ui.model_input, *tokens]

    def outputs_for(analysis, message, always_values, active) -> list:
        if analysis is None:
            text = PROMPT if message in ("", BLANK_MESSAGE) else f"### Nothing to show\n{message}"
            if ui.model is None:
                text = NO_CHECKPOINT_HINT.format(error=ui.model_error or "")
            return [None, (False, text), gr.skip(), "", None, *draw_tokens(active, False),
                    *[gr.skip()] * len(always_outputs)]  # fmt: skip
        k = analysis.digit
        pred = f"## Prediction: **{k}**\ndigit-capsule length {float(analysis.lengths[k]):.3f}"
        if analysis.note:
            pred += f"\n\n{analysis.note}"
        return [analysis, (True, ""), k, pred, capsules.model_input_image(analysis, scale=1),
                *draw_tokens(active, True), *_run(always, analysis, k, always_values)]  # fmt: skip

    for triggers, fn, inputs, api_name, source, select in ui._sources:
        n_in = len(inputs)

        def handle(call, args, _n, _src, api=False):
            try:
                raw = call()
            except Exception:
                log.error("input source failed:\n%s", traceback.format_exc())
                raw = None
            if raw is IGNORE:  # e.g. a sketch the last clear removed, sent again late: change nothing
                log.info("%s event ignored: a late copy of an input that was cleared", _src)
                return [gr.skip()] * (len(head_outputs) + len(always_outputs))
            rest = list(args[_n:])
            rest += [None] * (1 + len(always_inputs) - len(rest))  # API callers leave out the view inputs
            analysis, message = new_analysis(ui.model, raw, _src)
            if api and analysis is None:  # API callers get the reason as {"error": "..."}, not empty outputs
                raise gr.Error(message or BLANK_MESSAGE, print_exception=False)
            return outputs_for(analysis, message, rest[1:], rest[0])

        if select:
            def handler(evt: gr.SelectData, *args, _fn=fn, _n=n_in, _src=source):
                return handle(lambda: _fn(evt, *args[:_n]), args, _n, _src)
        else:
            def handler(*args, _fn=fn, _n=n_in, _src=source):
                return handle(lambda: _fn(*args[:_n]), args, _n, _src)

        def api_handler(*args, _fn=fn, _n=n_in, _src=source):
            return handle(lambda: _fn(*args[:_n]), args, _n, _src, api=True)

        gr.on(
            triggers, handler, [*inputs, ui.active_tab, *always_inputs], head_outputs + always_outputs,
            api_visibility="private", trigger_mode="always_last", show_progress="minimal",
        )
        if api_name:  # the same handler for API clients: only the source's inputs
            gr.Button(visible=False).click(
                api_handler, [*inputs, ui.active_tab], head_outputs + always_outputs,
                api_name=api_name, api_visibility="undocumented",
            )

    n_cols = len(ui._columns)

    def show(status):
        has_input, text = status if status else (False, "")
        prompt = gr.update(visible=False) if has_input else gr.update(value=text or PROMPT, visible=True)
        return [prompt, *[gr.update(visible=bool(has_input))] * n_cols]

    view_status.change(show, view_status, [ui.prompt, *ui._columns], api_visibility="private", show_progress="hidden")

    # Each tab draws its views when its token changes (a new input while it is open, or selected while stale).
    for g, group_tabs in enumerate(ui._groups):
        g_listeners = [ln for ln in listeners if ln.group == g]
        g_inputs = [c for ln in g_listeners for c in ln.inputs]
        g_outputs = [c for ln in g_listeners for c in ln.outputs]
        tab_id = getattr(group_tabs[0], "id", None) or g

        if g_outputs:
            def draw(analysis, k, drawn, *values, _g=g, _lns=g_listeners, _n=len(g_outputs)):
                if analysis is None:
                    return [gr.skip()] * (1 + _n)
                k = analysis.digit if k is None else int(k)
                return [{**(drawn or {}), _g: (analysis, k)}, *_run(_lns, analysis, k, values)]

            tokens[g].change(
                draw, [ui.state, ui.selected_class, rendered, *g_inputs], [rendered, *g_outputs],
                api_name=f"views_{tab_id}", api_visibility="undocumented", trigger_mode="always_last",
                show_progress="minimal",
            )

        def on_select(analysis, k, drawn, _g=g, _has=bool(g_outputs)):
            drawn = drawn or {}
            stale = _has and analysis is not None and k is not None and not (
                _g in drawn and drawn[_g][0] is analysis and drawn[_g][1] == int(k))
            return [_g, next(counter) if stale else gr.skip()]

        for tab in group_tabs:
            tab.select(on_select, [ui.state, ui.selected_class, rendered], [ui.active_tab, tokens[g]],
                       api_visibility="private", show_progress="hidden")  # fmt: skip

    def reselect(analysis: capsules.Analysis | None, k, active, *values):
        if analysis is None or k is None:
            return [*draw_tokens(active, False), *[gr.skip()] * len(always_outputs)]
        return [*draw_tokens(active, True), *_run(always, analysis, int(k), values)]

    ui.selected_class.input(
        reselect, [ui.state, ui.selected_class, ui.active_tab, *always_inputs], [*tokens, *always_outputs],
        api_visibility="private", trigger_mode="always_last", show_progress="hidden",
    )
