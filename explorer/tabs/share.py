"""Share links (inputs/share.py): *Share a link* writes one for the shown input, the selected digit capsule, the
pose set in the Pose tab, the open view and that view's settings (ViewTab.share); opening it restores them.
static/links.js puts the link's fields into the hidden share input; its change event first sets the link's view's
settings (so the view draws once, with them), then hands the fields on to an input source like a drawing (the Pose
tab starts at the link's pose)."""
from __future__ import annotations

import urllib.parse

import gradio as gr

from ..inputs.share import (BAD_LINK, LINK_FIELDS, MAX_LINK, MAX_SETTINGS, ShareError, decode_input, decode_pose,
                            decode_settings, encode_settings, share_query)  # fmt: skip
from ..session import IGNORE, ExplorerUI, Labelled, _safe
from ..text import tr
from ..views import capsules
from .export import NOTHING_YET
from .values import int_or_none

RESTORED = "From a shared link."
ABSOLUTE_JS = "(q) => (typeof q === 'string' && q.startsWith('?')) ? location.origin + location.pathname + q : q"
MAX_FIELDS = len(LINK_FIELDS) + MAX_SETTINGS  # more, and the link is refused unread


def share_controls() -> tuple[gr.Button, gr.Textbox, gr.Textbox]:
    """The button, the link it writes (with a copy button) and the hidden input a link's image arrives in."""
    button = gr.Button("Share a link to this view", size="sm", elem_id="share-link")
    url = gr.Textbox(label="Link to this input, digit capsule, pose and view", visible=False, interactive=False,
                     buttons=["copy"], elem_id="share-url")  # fmt: skip
    arrived = gr.Textbox(show_label=False, container=False, max_length=4000, elem_id="share-in",
                         elem_classes=["capsnet-offscreen"])  # fmt: skip
    return button, url, arrived


def restore(text):
    """The share input ("in=...[&k=...][&p=...]...", or the bare `in` value) as a Labelled model input with the
    link's pose, or IGNORE after saying in one sentence why not."""
    try:
        fields = parse_link(text)
        image = decode_input(first(fields, "in"))
        pose = decode_pose(first(fields, "p")) if "p" in fields else None
        return Labelled(image, tr(RESTORED), None if pose is None else (int_or_none(first(fields, "k")), pose))
    except ShareError as e:
        gr.Warning(str(e))
        return IGNORE


def parse_link(text) -> dict[str, list[str]]:
    """The share input's fields, {name: [values]} from "in=...&k=...&tab=...&it=2", or {"in": [text]}."""
    if not isinstance(text, str) or "=" not in text:
        return {"in": [text]}
    try:
        return urllib.parse.parse_qs(text.strip().lstrip("?"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:  # more fields than a link has
        raise ShareError(tr(BAD_LINK, why=tr("it has too many fields"))) from None


def first(fields: dict, name: str):
    """The first value of a link's field (the input, capsule and pose: as links always did), or None."""
    return (fields.get(name) or [None])[0]


def link_settings(text, views: list, settings: list) -> list:
    """[the share input, then per shared setting its value from the link or gr.skip()]: the link's view's settings
    (ui.settings); refused ones keep their defaults after one sentence (a damaged link: restore says why)."""
    try:
        fields = parse_link(text)
    except ShareError:
        fields = {}
    tab = first(fields, "tab")
    group = views.index(tab) if tab is not None and tab in views else None  # (a tab without an id has no link)
    ours = {s.name: s.codec for s in settings if s.group == group}
    values, refusal = decode_settings(fields, ours)
    if refusal:
        gr.Warning(refusal)
    return [text, *[values.get(s.name, gr.skip()) if s.group == group else gr.skip() for s in settings]]


def wire_share(ui: ExplorerUI, button: gr.Button, url: gr.Textbox, arrived: gr.Textbox) -> None:
    views = [tab.id for tab in ui.view_tabs]
    controls = [s.component for s in ui.settings]
    link_fields = gr.State(None)  # the share input once its view's settings are set: then its input is analysed
    arrived.change(_safe(lambda text: link_settings(text, views, ui.settings), 1 + len(controls)), [arrived],
                   [link_fields, *controls], api_visibility="private", show_progress="hidden")  # fmt: skip
    ui.add_input([link_fields.change], restore, [link_fields], source="share")

    def link(analysis, digit_class, active, edit, *values):
        if analysis is None:
            gr.Warning(tr(NOTHING_YET))
            return gr.Textbox(visible=False)
        i = int_or_none(active)
        view = views[i] if i is not None and 0 <= i < len(views) else None
        k = int_or_none(digit_class)
        pose = edit[2] if edit and edit[0] is analysis and edit[1] == (analysis.digit if k is None else k) else None
        shared = encode_settings([(s.name, s.codec, v, s.component.value)
                                  for s, v in zip(ui.settings, values) if view and s.group == i])  # fmt: skip
        query = share_query(capsules.to_uint8(analysis.image), k, view, pose, shared)
        return gr.Textbox(value=query[:MAX_LINK], visible=True)

    edit = ui.pose_edit or gr.State(None)  # the Pose tab's edit, when the page has that tab
    button.click(_safe(link, 1), [ui.state, ui.selected_class, ui.active_tab, edit, *controls], url,
                 api_visibility="private", show_progress="minimal").then(None, url, url, js=ABSOLUTE_JS)  # fmt: skip
