"""The drawing canvas's value: the canvas as a PNG data URL, read into the model's input.

The page's canvas (static/canvas.js, a gr.HTML built by `sketch_canvas`) sends its picture after every stroke,
undo and clear: black strokes on a transparent 336x336 canvas, "" when it is empty. One small request per stroke,
where Gradio's Sketchpad needed three blob posts and three uploads (docs/robustness.md, "A class at once"). API
callers (`/analyse_sketch`) send the same text. Anything else is refused in one sentence before a pixel is decoded:
not text, too long, not a PNG data URL, not base64, not a PNG, larger than `MAX_SIDE` on a side.
"""
from __future__ import annotations

import base64
import binascii
import io
from pathlib import Path
from typing import Any

from PIL import Image

from .preprocess import BLANK_MESSAGE, Preprocessed, preprocess

PREFIX = "data:image/png;base64,"
CANVAS = 336  # the canvas's own pixels; the browser scales it to fit, the brush with it
# A digit drawn two thirds of the canvas tall with this brush is preprocessed to strokes 2.6 px wide, where
# MNIST's test digits have a median of 2.7 px (measured in docs/explorer.md, checked by tests/test_sketchpad.py).
BRUSH_RADIUS = 15
MAX_SIDE = 1024  # pixels on a side: the page sends 336
MAX_CHARS = 200_000  # a drawn digit is 3-10 KB; the server refuses JSON bodies over 256 KB (limits.MAX_JSON_BODY)
NOT_A_SKETCH = "A sketch must be the canvas as a PNG data URL (text starting {prefix!r}); {why}."


def _refused(why: str) -> Preprocessed:
    return Preprocessed(None, NOT_A_SKETCH.format(prefix=PREFIX, why=why))


def sketch_input(value: Any) -> Preprocessed:
    """The canvas's data URL as the model input; blank for "" or None; one sentence for anything else."""
    if value is None or value == "":
        return Preprocessed(None, BLANK_MESSAGE)
    if not isinstance(value, str):
        return _refused(f"got {type(value).__name__}")
    if len(value) > MAX_CHARS:
        return _refused(f"this one has {len(value):,} characters, at most {MAX_CHARS:,}")
    if not value.startswith(PREFIX):
        return _refused(f"this one starts {value[:20]!r}")
    try:
        data = base64.b64decode(value[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        return _refused("its data is not base64")
    try:
        image = Image.open(io.BytesIO(data))  # reads the header only
    except Image.DecompressionBombError:  # PIL's own refusal of a header over 179 MP
        return _refused(f"it is larger than {MAX_SIDE} pixels on a side")
    except Exception:
        return _refused("its data is not an image")
    if image.format != "PNG":
        return _refused(f"its data is {image.format}, not PNG")
    if max(image.size) > MAX_SIDE:
        return _refused(f"it is {image.size[0]}x{image.size[1]} pixels, at most {MAX_SIDE} on a side")
    return preprocess(image)


def canvas_template() -> str:
    """gr.HTML's template (static/canvas.html): the label, the canvas (its own size and the brush as data) and the
    two controls; their texts carry data-text for the page's language (static/language.js)."""
    template = (Path(__file__).resolve().parent.parent / "static" / "canvas.html").read_text(encoding="utf-8")
    return template.replace("{canvas}", str(CANVAS)).replace("{brush}", str(BRUSH_RADIUS))


__all__ = ["BRUSH_RADIUS", "CANVAS", "MAX_CHARS", "MAX_SIDE", "PREFIX", "canvas_template", "sketch_input"]
