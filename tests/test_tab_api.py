"""The tab API a new tab uses (docs/explorer.md, "Adding a tab"): `ui.view_tab` makes a view tab and its handle,
`ViewTab.on_analysis` a view drawn lazily while that tab is open, `ui.on_analysis` a view run with every input,
`ui.add_input` an input source; `events.wire` turns them into the page's events."""
import gradio as gr
import torch

from capsnet import CapsNet
from explorer.app import build_demo, explorer_ui
from explorer.session import ExplorerUI, Labelled
from explorer.tabs.capsules import capsules_tab


def custom_tabs():
    seen = {}

    def my_tab(ui: ExplorerUI) -> None:
        with ui.view_tab("Mine", id="mine") as tab:
            with ui.analysis_column():
                box = gr.Textbox(elem_id="mine-box")
                scale = gr.Number(2)
            everywhere = gr.Textbox(visible=False)  # inside the tab: gr.Tabs holds only tabs
        tab.on_analysis(lambda a, k, s: f"digit {k} x{s}", [box], [scale])
        ui.on_analysis(lambda a, k: f"always {k}", [everywhere])
        seen.update(tab=tab, box=box, everywhere=everywhere)

    def my_input(ui: ExplorerUI) -> None:
        with gr.Tab("Blob"):
            button = gr.Button("blob")
        image = torch.zeros(1, 28, 28)
        image[0, 6:22, 12:16] = 1.0
        ui.add_input([button.click], lambda: Labelled(image, "a bar"), [], api_name="blob", source="mine")

    return my_tab, my_input, seen


def handler(demo, api_name):
    return next(f.fn for f in demo.fns.values() if f.api_name == api_name)


def test_view_tabs_record_their_own_views():
    my_tab, my_input, seen = custom_tabs()
    demo = build_demo(model=CapsNet().eval(), tabs=(capsules_tab, my_tab), input_tabs=(my_input,),
                      load_example=False)  # fmt: skip
    ui = explorer_ui(demo)
    labels = [getattr(t.label, "key", t.label) for t in ui.view_tabs]  # a label the catalogue knows is a gr.I18n key
    assert labels == ["Digit capsules", "Mine"] and seen["tab"].group == 1
    assert [(ln.group, len(ln.outputs)) for ln in ui.listeners] == [(0, 1), (1, 1), (None, 1)]
    assert [s.source for s in ui.sources] == ["mine", "sketch", "upload", "share"] and len(ui.columns) == 3  # selector + 2

    # the input event: analysis, prediction, the open tab's token (the other tab's: no change) and the
    # every-input view; the tab's own view is not drawn until its token changes
    out = handler(demo, "blob")()
    analysis, k = out[0], out[2]
    assert analysis.note == "a bar" and out[-1] == f"always {k}"
    tokens = out[6:8]
    assert isinstance(tokens[0], int) and not isinstance(tokens[1], int)  # gr.skip() for the closed tab
    drawn, text = handler(demo, "views_mine")(analysis, k, {}, 3)
    assert text == f"digit {k} x3" and drawn == {1: (analysis, k)}


def test_sections_draw_only_while_open():
    """`ViewTab.section`: a collapsed section's views wait until it is opened, are drawn once per input and capsule
    while open, and follow their own triggers only while open (closed, those mark them stale)."""
    calls = []

    def my_tab(ui: ExplorerUI) -> None:
        with ui.view_tab("Mine", id="mine") as tab:
            with ui.analysis_column():
                level = gr.Slider(1, 3, value=3, step=1)
                with tab.section("Details", elem_id="mine-details") as section:
                    box = gr.Textbox()

        def view(a, k, lv):
            calls.append((k, lv))
            return f"digit {k} at {lv}"

        section.on_analysis(view, [box], [level])
        section.on([level.input], view, [box], [level])

    demo = build_demo(model=CapsNet().eval(), tabs=(my_tab,), load_example=False)
    ui = explorer_ui(demo)
    assert len(ui.sections) == 1 and ui.sections[0].view_tab.group == 0 and not ui.sections[0].is_open
    analysis = handler(demo, "analyse_upload")(_bar(), 0)[0]
    k = analysis.digit

    # the tab's redraw bumps the section's token only while it is open
    closed = handler(demo, "views_mine")(analysis, k, {}, False, 0)
    assert not isinstance(closed[-1], int) and calls == []
    assert handler(demo, "views_mine")(analysis, k, {}, True, 4)[-1] == 5

    # opening it draws once; opened again with the same input and capsule, nothing is redrawn
    is_open, drawn, text = handler(demo, "on_expand")(analysis, k, None, 2)
    assert is_open is True and drawn == (analysis, k) and text == f"digit {k} at 2" and calls == [(k, 2)]
    again = handler(demo, "on_expand")(analysis, k, drawn, 2)
    assert again[0] is True and len(calls) == 1 and not isinstance(again[2], str)
    assert handler(demo, "draw")(analysis, k, 1) == [(analysis, k), f"digit {k} at 1"]  # its token's change

    # the section's own trigger: drawn while open; closed, it only marks the views stale
    assert handler(demo, "redraw")(True, analysis, k, 3)[1] == f"digit {k} at 3"
    stale = handler(demo, "redraw")(False, analysis, k, 1)
    assert stale[0] is None and not isinstance(stale[1], str) and calls[-1] == (k, 3)


def _bar():
    image = torch.zeros(28, 28)
    image[6:22, 12:16] = 1.0
    return image


def test_the_view_tabs_hold_only_tabs():
    """Anything else placed in the view tabs' gr.Tabs (e.g. a gr.State made after a tab's block) makes the page draw
    a tab's button twice and lose the next ones: every child is a gr.Tab."""
    demo = build_demo(None, load_example=False)
    children = explorer_ui(demo).tabs.children
    assert children and all(isinstance(c, gr.Tab) for c in children), [type(c).__name__ for c in children]
