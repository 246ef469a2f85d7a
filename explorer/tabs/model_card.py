"""The Model card tab: the checkpoint's test accuracy beside the paper's first, then collapsed sections for the
training curves, the confusion matrix, the routing study, the whole-test-set equivariance matrix, the robustness
and attack studies against the CNN baseline and the settings.
Static: made once from the card read at start-up (`capsnet.checkpoint.load_model_card`, the JSON beside the
weights), independent of the input, in each language (texts as gr.I18n keys, figures serialised per language);
each section's figure is sent when the section is opened, in the visitor's language."""
from __future__ import annotations

from typing import Callable

import gradio as gr

from ..gradio_compat import plot_value
from ..language import ui_built
from ..text import ENGLISH, LANGUAGES, language, speaking, tr
from ..views.robustness import adversarial_markdown, robustness_figure, robustness_markdown
from ..views.routing_dynamics import routing_study_markdown
from ..views.equivariance import equivariance_heatmap, equivariance_markdown
from ..views.model_card import confusion_matrix_figure, model_card_sections, per_class_accuracy_figure, training_curves_figure

QUESTION = "How accurate is this checkpoint, and how was it trained?"


def in_each_language(figure: Callable, card) -> Callable[[], object]:
    """The figure serialised once per language; the returned function gives the one for the event's language."""
    values = {}
    for code in LANGUAGES:
        with speaking(code):
            values[code] = plot_value(figure(card))
    return lambda: values.get(language(), values[ENGLISH])


def static_section(title: str, figure, card, elem_id: str, label: str | None = None, text=None) -> None:
    """A collapsed section holding one figure (and text above it), the figure sent when the section opens."""
    value = in_each_language(figure, card)
    with gr.Accordion(title, open=False, elem_id=f"{elem_id}-section") as section:
        if text:
            gr.Markdown(text, elem_id=f"{elem_id}-text")
        plot = gr.Plot(label=label, show_label=label is not None, elem_id=elem_id)
    section.expand(value, None, plot, api_visibility="private", show_progress="hidden")


def model_card_tab(ui) -> None:
    card = ui.card
    with ui.view_tab("Model card", id="model-card", elem_id="model-card-tab") as tab:
        gr.Markdown(ui_built(lambda: "<small>" + tr(QUESTION) + "</small>\n\n" + model_card_sections(card)[0]),
                    elem_id="model-card-summary")  # fmt: skip
        accuracy = gr.Plot(label="Per-class test accuracy", elem_id="per-class-accuracy")
        static_section("Training curves", training_curves_figure, card, "training-curves", "Training curves")
        static_section("Confusion matrix", confusion_matrix_figure, card, "confusion-matrix", "Confusion matrix")
        with gr.Accordion("Does routing matter? Routing iterations over the whole test set", open=False,
                          elem_id="routing-study-section"):  # fmt: skip
            gr.Markdown(ui_built(routing_study_markdown, card), elem_id="routing-study")
        static_section("Equivariance: which pose dimensions follow each input transform", equivariance_heatmap, card,
                       "equivariance-heatmap", "Median |Spearman ρ| per pose dimension and transform",
                       ui_built(equivariance_markdown, card))  # fmt: skip
        static_section("CapsNet against a CNN baseline: rotated, scaled, shifted and thickened digits",
                       robustness_figure, card, "robustness", "Test accuracy under each transform",
                       ui_built(robustness_markdown, card))  # fmt: skip
        with gr.Accordion("Adversarial examples: targeted attacks on both models, and do the capsules notice?",
                          open=False, elem_id="adversarial-section"):  # fmt: skip
            gr.Markdown(ui_built(adversarial_markdown, card), elem_id="adversarial-study")
        settings = model_card_sections(card)[1]
        if settings:
            with gr.Accordion("Model configuration and training settings", open=False):
                gr.Markdown(ui_built(lambda: model_card_sections(card)[1]), elem_id="model-card-config")
    accuracy_value = in_each_language(per_class_accuracy_figure, card)
    tab.on_analysis(lambda a, k: accuracy_value(), [accuracy])  # drawn when the tab opens, in the visitor's language


__all__ = ["model_card_tab"]
