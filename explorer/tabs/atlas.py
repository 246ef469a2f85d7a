"""The Atlas tab: what each pose dimension of the selected digit capsule does, as measured offline over the class's
test digits (`python -m capsnet.atlas`): difference maps with their labels, sorted and filtered by effect; a card
opens its slider in the Pose tab. Below, all 10 x 16 maps at a glance."""
from __future__ import annotations

import gradio as gr

from ..inputs.share import Choice, words
from ..session import ExplorerUI
from ..views import atlas as atlas_views

INTRO = (
    "What a step of **one standard deviation of the data** on each pose dimension does to the decoded digit, averaged "
    "over 100 test digits of the class: red where it adds ink, blue where it removes ink. The label names the "
    "measure that moves most against the class's own variety (|z|: in its standard deviations), or the region when "
    "no measure moves by a quarter of one. *Encoder* is the input transform the dimension tracks best; **≠ decoder** "
    "marks where that transform is not what the decoder's label says. Click a card to try the dimension in the Pose tab."
)


def atlas_tab(ui: ExplorerUI) -> None:
    with ui.view_tab("Atlas", id="atlas") as tab:
        with ui.analysis_column():
            gr.Markdown(INTRO)
            with gr.Row():
                sort = gr.Radio(list(atlas_views.SORTS), value=atlas_views.SORTS[0], label="sort by",
                                elem_id="atlas-sort")  # fmt: skip
                effect = gr.Dropdown(atlas_views.effect_choices(ui.card), value=atlas_views.ALL, label="show",
                                     elem_id="atlas-filter")  # fmt: skip
            cards = gr.HTML(elem_id="atlas-cards")
        overview = atlas_views.overview_image(ui.atlas_maps)
        if overview is not None:
            with gr.Accordion("All digit capsules at a glance (rows: 0-9, columns: dims 0-15)", open=False,
                              elem_id="atlas-overview-section"):  # fmt: skip
                gr.Image(overview, format="png", interactive=False, show_label=False, elem_id="atlas-overview",
                         elem_classes=["model-view"], buttons=["download", "fullscreen"])  # fmt: skip

    def draw(a, k: int, s, e) -> str:
        return atlas_views.cards_html(ui.card, ui.atlas_maps, k, s, e)

    tab.share(sort=(sort, Choice("sort order", words(atlas_views.SORTS))),
              show=(effect, Choice("effect shown", words(atlas_views.effect_choices(ui.card)))))
    tab.on_analysis(draw, [cards], [sort, effect])
    tab.on([sort.input, effect.input], draw, [cards], [sort, effect])
