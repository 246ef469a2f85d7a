"""Share links (inputs/share.py): *Share a link* writes one for the shown input, the selected digit capsule, the
pose set in the Pose tab and the open view; opening it restores them (static/links.js puts the link's input,
capsule and pose into the hidden share input, whose event is an input source like a drawing; the Pose tab starts
at the link's pose)."""
from __future__ import annotations

import urllib.parse

import gradio as gr

from ..inputs.share import BAD_LINK, MAX_LINK, ShareError, decode_input, decode_pose, share_query
from ..text import tr
from ..session import IGNORE, ExplorerUI, Labelled, _safe
from ..views import capsules
from .export import NOTHING_YET
from .values import int_or_none

RESTORED = "From a shared link."
ABSOLUTE_JS = "(q) => (typeof q === 'string' && q.startsWith('?')) ? location.origin + location.pathname + q : q"


def share_controls() -> tuple[gr.Button, gr.Textbox, gr.Textbox]:
    """The button, the link it writes (with a copy button) and the hidden input a link's image arrives in."""
    button = gr.Button("Share a link to this view", size="sm", elem_id="share-link")
    url = gr.Textbox(label="Link to this input, digit capsule, pose and view", visible=False, interactive=False,
                     buttons=["copy"], elem_id="share-url")  # fmt: skip
    arrived = gr.Textbox(show_label=False, container=False, max_length=4000, elem_id="share-in",
                         elem_classes=["capsnet-offscreen"])  # fmt: skip
    return button, url, arrived


def restore(text):
    """The share input ("in=...[&k=...][&p=...]", or the bare `in` value) as a Labelled model input with the link's
    pose, or IGNORE after saying in one sentence why not."""
    try:
        fields = parse_link(text)
        image = decode_input(fields.get("in"))
        pose = decode_pose(fields["p"]) if "p" in fields else None
        return Labelled(image, tr(RESTORED), None if pose is None else (int_or_none(fields.get("k")), pose))
    except ShareError as e:
        gr.Warning(str(e))
        return IGNORE


def parse_link(text) -> dict:
    """The share input's fields: {"in", "k", "p"} from "in=...&k=...&p=..." (the first of each), or {"in": text}."""
    if not isinstance(text, str) or "=" not in text:
        return {"in": text}
    try:
        fields = urllib.parse.parse_qs(text.strip().lstrip("?"), keep_blank_values=True, max_num_fields=8)
    except ValueError:  # more fields than a link has
        raise ShareError(BAD_LINK.format(why="it has too many fields")) from None
    return {name: values[0] for name, values in fields.items() if name in ("in", "k", "p")}


def wire_share(ui: ExplorerUI, button: gr.Button, url: gr.Textbox, arrived: gr.Textbox) -> None:
    ui.add_input([arrived.change], restore, [arrived], source="share")
    views = [tab.id for tab in ui.view_tabs]

    def link(analysis, digit_class, active, edit=None):
        if analysis is None:
            gr.Warning(NOTHING_YET)
            return gr.Textbox(visible=False)
        i = int_or_none(active)
        view = views[i] if i is not None and 0 <= i < len(views) else None
        k = int_or_none(digit_class)
        pose = edit[2] if edit and edit[0] is analysis and edit[1] == (analysis.digit if k is None else k) else None
        query = share_query(capsules.to_uint8(analysis.image), k, view, pose)
        return gr.Textbox(value=query[:MAX_LINK], visible=True)

    edit = [ui.pose_edit] if ui.pose_edit is not None else []  # the Pose tab's edit, when the page has that tab
    button.click(_safe(link, 1), [ui.state, ui.selected_class, ui.active_tab, *edit], url, api_visibility="private",
                 show_progress="minimal").then(None, url, url, js=ABSOLUTE_JS)  # fmt: skip
