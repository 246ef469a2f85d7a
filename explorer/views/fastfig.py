"""Plotly figures as plain dicts, serialised straight to JSON.

Building a plotly `go.Figure` validates and deep-copies every property, and `to_json` copies it again: about
1-3 ms per trace, which for the routing tab's dozens of traces would break its latency budget on its own. A
`LightFigure` holds the same {"data": [...], "layout": {...}} that plotly.js draws; `to_json()` is what Gradio's
gr.Plot sends (the tab wraps it, see `tabs_routing`), and `to_plotly()` gives a validated `go.Figure` (tests use
it to check that every view follows plotly's schema).
"""
from __future__ import annotations

import json
import math

import numpy as np


def _plain(obj):
    """numpy arrays and scalars -> lists and Python numbers; NaN / inf -> None (JSON null: a gap for plotly.js)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind == "f" and not np.isfinite(obj).all():
            return np.where(np.isfinite(obj), obj, None).tolist()
        if obj.dtype.kind == "O":
            return _plain(obj.tolist())
        return obj.tolist()
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def ref(axis: str, n: int) -> str:
    """Plotly's name for subplot axis n (1-based) in a trace: "x", "x2", ... (plotly.js knows no "x1")."""
    return axis if n == 1 else f"{axis}{n}"


def key(axis: str, n: int) -> str:
    """The layout key of subplot axis n: "xaxis", "xaxis2", ..."""
    return f"{axis}axis" if n == 1 else f"{axis}axis{n}"


class LightFigure:
    """A plotly figure spec without plotly's per-property validation (the dicts follow plotly's schema)."""

    def __init__(self, data: list[dict], layout: dict):
        self.data = data
        self.layout = layout

    def to_dict(self) -> dict:
        return {"data": _plain(self.data), "layout": _plain(self.layout)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)

    def to_plotly(self):
        """The validated plotly.graph_objects.Figure (raises on any property plotly does not know)."""
        import plotly.graph_objects as go

        return go.Figure(self.to_dict())


__all__ = ["LightFigure", "key", "ref"]
