"""Plotly figures as plain dicts, serialised straight to JSON.

Building a plotly `go.Figure` validates and deep-copies every property, and `to_json` copies it again: about
1-3 ms per trace, which for the routing tab's dozens of traces would break its latency budget on its own. A
`LightFigure` holds the same {"data": [...], "layout": {...}} that plotly.js draws; `to_json()` is what Gradio's
gr.Plot sends (the tab wraps it, see `tabs_routing`), and `to_plotly()` gives a validated `go.Figure` (tests use
it to check that every view follows plotly's schema).
"""
from __future__ import annotations

import orjson
import plotly.io as pio


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
        """The spec as plotly.js receives it (lists, Python numbers, None for NaN / inf): `to_json()` read back."""
        return orjson.loads(self.to_json())

    def to_json(self) -> str:
        """Compact JSON; numpy arrays and scalars as numbers, NaN / inf as null (a gap for plotly.js). plotly's
        orjson engine (orjson comes with Gradio): on the routing tab's figures 2.3 ms where json.dumps over a
        converted copy took 11 ms and plotly's json engine 22 ms."""
        return pio.to_json({"data": self.data, "layout": self.layout}, validate=False, engine="orjson")

    def to_plotly(self):
        """The validated plotly.graph_objects.Figure (raises on any property plotly does not know)."""
        import plotly.graph_objects as go

        return go.Figure(self.to_dict())


__all__ = ["LightFigure", "key", "ref"]
