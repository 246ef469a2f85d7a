"""The Model card tab: the checkpoint's test accuracy beside the paper's first, then collapsed sections for the
training curves, the confusion matrix, the routing study, the whole-test-set equivariance matrix, the robustness
and attack studies against the CNN baseline and the settings.
Static: made once from the card read at start-up (`capsnet.checkpoint.load_model_card`, the JSON beside the
weights), independent of the input; each section's figure is sent when the section is opened."""
from __future__ import annotations

import gradio as gr

from ..gradio_compat import plot_value
from ..views.robustness import adversarial_markdown, robustness_figure, robustness_markdown
from ..views.routing_dynamics import routing_study_markdown
from ..views.equivariance import equivariance_heatmap, equivariance_markdown
from ..views.model_card import confusion_matrix_figure, model_card_sections, per_class_accuracy_figure, training_curves_figure

QUESTION = "How accurate is this checkpoint, and how was it trained?"


def static_section(title: str, figure, elem_id: str, label: str | None = None, text: str | None = None) -> None:
    """A collapsed section holding one figure (and text above it), the figure sent when the section opens."""
    value = plot_value(figure)  # serialised once
    with gr.Accordion(title, open=False, elem_id=f"{elem_id}-section") as section:
        if text:
            gr.Markdown(text, elem_id=f"{elem_id}-text")
        plot = gr.Plot(label=label, show_label=label is not None, elem_id=elem_id)
    section.expand(lambda: value, None, plot, api_visibility="private", show_progress="hidden")


def model_card_tab(ui) -> None:
    card = ui.card
    with ui.view_tab("Model card", id="model-card", elem_id="model-card-tab"):
        summary, settings = model_card_sections(card)
        gr.Markdown(f"<small>{QUESTION}</small>\n\n" + summary, elem_id="model-card-summary")
        gr.Plot(per_class_accuracy_figure(card), label="Per-class test accuracy", elem_id="per-class-accuracy")
        static_section("Training curves", training_curves_figure(card), "training-curves", "Training curves")
        static_section("Confusion matrix", confusion_matrix_figure(card), "confusion-matrix", "Confusion matrix")
        with gr.Accordion("Does routing matter? Routing iterations over the whole test set", open=False,
                          elem_id="routing-study-section"):  # fmt: skip
            gr.Markdown(routing_study_markdown(card), elem_id="routing-study")
        static_section("Equivariance: which pose dimensions follow each input transform", equivariance_heatmap(card),
                       "equivariance-heatmap", "Median |Spearman ρ| per pose dimension and transform",
                       equivariance_markdown(card))  # fmt: skip
        static_section("CapsNet against a CNN baseline: rotated, scaled, shifted and thickened digits",
                       robustness_figure(card), "robustness", "Test accuracy under each transform",
                       robustness_markdown(card))  # fmt: skip
        with gr.Accordion("Adversarial examples: targeted attacks on both models, and do the capsules notice?",
                          open=False, elem_id="adversarial-section"):  # fmt: skip
            gr.Markdown(adversarial_markdown(card), elem_id="adversarial-study")
        if settings:
            with gr.Accordion("Model configuration and training settings", open=False):
                gr.Markdown(settings, elem_id="model-card-config")


__all__ = ["model_card_tab"]
