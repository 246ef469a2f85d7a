"""The Digit capsules tab: the ten digit-capsule lengths as bars, against the margin-loss targets."""
from __future__ import annotations

import gradio as gr

from ..gradio_compat import plot_value
from ..session import ExplorerUI
from ..views import capsules


def capsules_tab(ui: ExplorerUI) -> None:
    with ui.view_tab("Digit capsules", id="capsules") as tab:
        with ui.analysis_column():
            plot = gr.Plot(label="Digit-capsule lengths", show_label=False, elem_id="lengths-plot")
            gr.Markdown(
                "Each bar is the **length** of one digit capsule's 16-D output vector: the network's probability that "
                "this digit is present. Training pushes the right capsule above **m+ = 0.9** and the others below "
                "**m- = 0.1** (margin loss). Hover a bar for the exact value."
            )
    tab.on_analysis(lambda a, k: plot_value(capsules.lengths_figure(a, selected=k)), [plot])
