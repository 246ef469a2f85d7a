"""Sketch events after a clear: the drawing a clear removed is never analysed again.

Why: after its clear, Gradio 6.31's ImageEditor answers a change event gathered with no new strokes (it has no user
edits then) with the last value it submitted, i.e. the drawing that was just cleared. On a busy server that late
event reaches the app after the blank one, and the views show the old digit over the empty canvas. The sketchpad's
`clear` event (both clear controls run it) marks the last drawing analysed as cleared, and a later sketch with the
same model input is ignored: nobody draws the same pixels again by hand, and undo never reaches past a clear.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from .preprocess import Preprocessed, preprocess

IGNORE = object()  # returned for a stale sketch: the event changes nothing


@dataclass
class SketchMemory:
    """Per browser session (a gr.State, changed in place)."""

    last: str | None = None  # digest of the model input of the last drawing analysed
    cleared: str | None = None  # ... of the drawing the last clear removed


def digest(pre: Preprocessed) -> str | None:
    return None if pre.blank else hashlib.sha1(pre.image.numpy().tobytes()).hexdigest()


def sketch_input(value: Any, memory: SketchMemory | None = None) -> Preprocessed | object:
    """The sketch as the model input, or IGNORE when it is the drawing the last clear removed."""
    pre = value if isinstance(value, Preprocessed) else preprocess(value)
    if memory is None or pre.blank:
        return pre
    d = digest(pre)
    if d == memory.cleared:
        return IGNORE
    memory.last = d
    return pre


def sketch_cleared(memory: SketchMemory | None) -> None:
    """The sketchpad's clear: whatever was drawn last must not come back."""
    if memory is not None:
        memory.cleared = memory.last


__all__ = ["IGNORE", "SketchMemory", "digest", "sketch_cleared", "sketch_input"]
