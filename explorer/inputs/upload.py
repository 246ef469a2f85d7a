"""Upload limits and an image input that turns hostile files into a message instead of a Gradio error.

Gradio's own `gr.Image.preprocess` opens (and for PNGs fully decodes, to read EXIF) every uploaded
file before the event handler runs; a non-image, an empty or truncated file, or a decompression bomb
raises there and the visitor only sees a generic "Error". `guarded(gr.Image(...))` / `GuardedImage(...)` checks the declared size
first (`preprocess.MAX_PIXELS`, read from the header without decoding) and hands the handler a
`Preprocessed(None, message)` for anything it cannot read, which `new_analysis` / `predict` show as
they show a blank input. It stays a plain `gr.Image` (same API, same frontend).

Limits (see docs/robustness.md):
- `MAX_FILE_SIZE` bytes per uploaded file, enforced by Gradio's upload route (`launch(max_file_size=...)`,
  HTTP 413 before anything is decoded);
- `preprocess.MAX_PIXELS` pixels per image, enforced here and in `preprocess`;
- PIL's own `Image.MAX_IMAGE_PIXELS` bomb check (left at its default) still applies underneath.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from .. import gradio_compat as compat
from .preprocess import check_pixels, unreadable_result

log = logging.getLogger("explorer")

MAX_FILE_SIZE = "10mb"  # passed to launch(max_file_size=...) through LAUNCH_OPTIONS


def guarded(component: gr.Image) -> gr.Image:
    """Make `component` (a gr.Image) hand unreadable / oversized uploads to its handlers as
    `Preprocessed(None, message)` instead of failing in Gradio's preprocessing. Returns it.

    An instance-level wrapper rather than a subclass: defining a Component subclass makes Gradio
    write a .pyi stub next to the source file at import time."""
    original = component.preprocess

    def preprocess(payload: Any) -> Any:
        if payload is None:
            return None
        try:
            path = getattr(payload, "path", None)
            url = getattr(payload, "url", None) or ""
            if path and not url.startswith("data:"):
                with warnings.catch_warnings():  # PIL warns above 89 MP; MAX_PIXELS is stricter
                    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                    with Image.open(Path(path)) as im:  # reads the header only
                        check_pixels(*im.size)
            return original(payload)
        except Exception as e:  # never a Gradio error: a message for the visitor / API caller
            result = unreadable_result(e)
            log.info("refused an upload: %s (%s: %s)", result.message, type(e).__name__, e)
            return result

    compat.replace_preprocess(component, preprocess)
    component.accepts_preprocessed = True  # explorer.inputs.guard hands it refusals as Preprocessed too
    return component


def GuardedImage(**kwargs) -> gr.Image:  # noqa: N802 (used like a component class)
    """`gr.Image(**kwargs)`, guarded (see `guarded`)."""
    return guarded(gr.Image(**kwargs))


__all__ = ["GuardedImage", "MAX_FILE_SIZE", "guarded"]
