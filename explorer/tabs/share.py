"""Share links (inputs/share.py): *Share a link* writes one for the shown input, the selected digit capsule and the
open view; opening it restores them (static/links.js puts the link's input into the hidden share input, whose
event is an input source like a drawing)."""
from __future__ import annotations

import gradio as gr

from ..inputs.share import MAX_LINK, ShareError, decode_input, share_query
from ..session import IGNORE, ExplorerUI, Labelled, _safe
from ..views import capsules
from .export import NOTHING_YET
from .values import int_or_none

RESTORED = "From a shared link."
ABSOLUTE_JS = "(q) => (typeof q === 'string' && q.startsWith('?')) ? location.origin + location.pathname + q : q"


def share_controls() -> tuple[gr.Button, gr.Textbox, gr.Textbox]:
    """The button, the link it writes (with a copy button) and the hidden input a link's image arrives in."""
    button = gr.Button("Share a link to this view", size="sm", elem_id="share-link")
    url = gr.Textbox(label="Link to this input, digit capsule and view", visible=False, interactive=False,
                     buttons=["copy"], elem_id="share-url")  # fmt: skip
    arrived = gr.Textbox(show_label=False, container=False, max_length=4000, elem_id="share-in",
                         elem_classes=["capsnet-offscreen"])  # fmt: skip
    return button, url, arrived


def restore(text):
    """The share input's image (a Labelled model input), or IGNORE after saying in one sentence why not."""
    try:
        return Labelled(decode_input(text), RESTORED)
    except ShareError as e:
        gr.Warning(str(e))
        return IGNORE


def wire_share(ui: ExplorerUI, button: gr.Button, url: gr.Textbox, arrived: gr.Textbox) -> None:
    ui.add_input([arrived.change], restore, [arrived], source="share")
    views = [tab.id for tab in ui.view_tabs]

    def link(analysis, digit_class, active):
        if analysis is None:
            gr.Warning(NOTHING_YET)
            return gr.Textbox(visible=False)
        i = int_or_none(active)
        view = views[i] if i is not None and 0 <= i < len(views) else None
        query = share_query(capsules.to_uint8(analysis.image), int_or_none(digit_class), view)
        return gr.Textbox(value=query[:MAX_LINK], visible=True)

    button.click(_safe(link, 1), [ui.state, ui.selected_class, ui.active_tab], url, api_visibility="private",
                 show_progress="minimal").then(None, url, url, js=ABSOLUTE_JS)  # fmt: skip
