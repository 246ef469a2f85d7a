"""The Model card tab: the checkpoint's test accuracy beside the paper's, training curves, per-class
accuracy, confusion matrix, the whole-test-set equivariance matrix, configuration and provenance. Static: drawn once from the card read at start-up
(`capsnet.checkpoint.load_model_card`, the JSON beside the weights), independent of the input."""
from __future__ import annotations

import gradio as gr

from ..views.routing_dynamics import routing_study_markdown
from ..views.equivariance import equivariance_heatmap, equivariance_markdown
from ..views.model_card import confusion_matrix_figure, model_card_sections, per_class_accuracy_figure, training_curves_figure


def model_card_tab(ui) -> None:
    card = ui.card
    with ui.view_tab("Model card", id="model-card", elem_id="model-card-tab"):
        summary, settings = model_card_sections(card)
        gr.Markdown(summary, elem_id="model-card-summary")
        gr.Plot(training_curves_figure(card), label="Training curves", elem_id="training-curves")
        with gr.Row(equal_height=False):
            with gr.Column(min_width=320):
                gr.Plot(per_class_accuracy_figure(card), label="Per-class test accuracy", elem_id="per-class-accuracy")
            with gr.Column(min_width=320):
                gr.Plot(confusion_matrix_figure(card), label="Confusion matrix", elem_id="confusion-matrix")
        gr.Markdown(routing_study_markdown(card), elem_id="routing-study")
        gr.Markdown("#### Equivariance: which pose dimensions follow each input transform\n\n"
                    + equivariance_markdown(card), elem_id="equivariance-summary")
        gr.Plot(equivariance_heatmap(card), label="Median |Spearman ρ| per pose dimension and transform",
                elem_id="equivariance-heatmap")
        if settings:
            with gr.Accordion("Model configuration and training settings", open=False):
                gr.Markdown(settings, elem_id="model-card-config")


__all__ = ["model_card_tab"]
