"""Export the current input's whole analysis as one JSON file: the `predict` and `routing` endpoints' answers for
it (the same fields, under their endpoint's name) and the 28x28 model input, so a class can keep or compare what
the page showed. Written only when asked (a click), never with every drawing."""
from __future__ import annotations

import hashlib
import json

import gradio as gr

from ..session import GENERATED_MAX_AGE_S, ExplorerUI, _prune, _safe
from ..text import tr
from ..views import capsules
from .routing import routing_summary
from .values import int_or_none

NOTHING_YET = "Nothing to export yet: draw a digit, upload an image or pick an example first."


def analysis_json(analysis: capsules.Analysis, digit_class: int | None, check: dict | None = None) -> dict:
    """{"source", "predict": the predict endpoint's answer, "routing": the routing endpoint's (with grids) for
    `digit_class` (None: the prediction), "model_input": the 28x28 pixels as 0..255 rows}."""
    return {
        "source": analysis.source,
        "predict": capsules.summary(analysis, check),
        "routing": routing_summary(analysis, digit_class, grids=True),
        "model_input": capsules.to_uint8(analysis.image).tolist(),
    }


def export_controls() -> tuple[gr.Button, gr.File]:
    """A button that writes the analysis to a JSON file, and the file shown for download below it (wire_export)."""
    button = gr.Button("Export the analysis (JSON)", size="sm", elem_id="export-json")
    file = gr.File(label="The analysis as JSON", visible=False, interactive=False, elem_id="export-json-file")
    return button, file


def wire_export(ui: ExplorerUI, button: gr.Button, file: gr.File) -> None:
    def export(analysis, digit_class):
        if analysis is None:
            gr.Warning(tr(NOTHING_YET))
            return gr.File(visible=False)
        data = json.dumps(analysis_json(analysis, int_or_none(digit_class), (ui.card or {}).get("reconstruction_check")))
        digest = hashlib.sha256(data.encode()).hexdigest()[:16]
        path = ui.tmp_dir / f"capsnet-analysis-{analysis.digit}-{digest}.json"
        path.write_text(data, encoding="utf-8")
        _prune(ui.tmp_dir, max_age_s=GENERATED_MAX_AGE_S)
        return gr.File(value=str(path), visible=True)

    button.click(_safe(export, 1), [ui.state, ui.selected_class], file, api_visibility="private",
                 show_progress="minimal")  # fmt: skip
