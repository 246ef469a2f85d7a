"""Ten hand-drawn-looking digits as polylines, for the sketchpad tests: drawn in the browser with the mouse or
touch, and rendered here with the same round brush to know what the model should see.

Coordinates are fractions of the (square) canvas; each digit is a list of strokes, each stroke a list of points.
They span about two thirds of the canvas height, as a visitor fills a drawing area."""
from __future__ import annotations

import base64
import io
import math

import numpy as np
from PIL import Image, ImageDraw


def _arc(cx, cy, rx, ry, start=0.0, end=360.0, n=12):
    """Points on an ellipse, clockwise from `start` degrees (0 = top)."""
    angles = [math.radians(start + (end - start) * i / n) for i in range(n + 1)]
    return [(cx + rx * math.sin(a), cy - ry * math.cos(a)) for a in angles]


DIGITS: dict[int, list[list[tuple[float, float]]]] = {
    0: [_arc(0.5, 0.5, 0.2, 0.32)],
    1: [[(0.52, 0.18), (0.48, 0.82)]],
    2: [[(0.3, 0.3), (0.36, 0.21), (0.5, 0.17), (0.64, 0.21), (0.68, 0.32), (0.62, 0.45), (0.3, 0.8), (0.72, 0.8)]],
    3: [[(0.32, 0.22), (0.5, 0.16), (0.66, 0.22), (0.67, 0.36), (0.48, 0.48), (0.68, 0.58), (0.69, 0.74),
         (0.5, 0.83), (0.3, 0.77)]],
    4: [[(0.6, 0.82), (0.6, 0.16), (0.28, 0.6), (0.76, 0.6)]],
    5: [[(0.68, 0.18), (0.36, 0.18), (0.33, 0.46), (0.5, 0.42), (0.66, 0.5), (0.68, 0.67), (0.56, 0.8), (0.32, 0.78)]],
    6: [[(0.62, 0.16), (0.46, 0.3), (0.36, 0.5), (0.36, 0.7), (0.48, 0.83), (0.62, 0.78), (0.66, 0.63), (0.53, 0.52),
         (0.37, 0.6)]],
    7: [[(0.28, 0.2), (0.72, 0.2), (0.45, 0.82)]],
    8: [[(0.5 + 0.17 * math.sin(2 * t), 0.5 - 0.32 * math.sin(t)) for t in np.linspace(0.0, 2 * math.pi, 17)]],
    9: [_arc(0.5, 0.34, 0.16, 0.16), [(0.66, 0.34), (0.62, 0.84)]],  # two strokes: loop, then stem
}


def scaled(strokes, factor: float):
    """The strokes scaled about the canvas centre (a smaller or larger drawing)."""
    return [[(0.5 + (x - 0.5) * factor, 0.5 + (y - 0.5) * factor) for x, y in s] for s in strokes]


def render(strokes, canvas: int, radius: float) -> np.ndarray:
    """The strokes as the sketchpad's brush paints them (discs of `radius` canvas px along each segment), as an
    RGBA float image whose alpha is the ink, like a sketch layer."""
    im = Image.new("L", (canvas, canvas), 0)
    draw = ImageDraw.Draw(im)
    for stroke in strokes:
        pts = [(x * canvas, y * canvas) for x, y in stroke]
        for (x0, y0), (x1, y1) in zip(pts, pts[1:] or pts):
            n = max(1, int(math.hypot(x1 - x0, y1 - y0)))
            for i in range(n + 1):
                x, y = x0 + (x1 - x0) * i / n, y0 + (y1 - y0) * i / n
                draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=255)
    alpha = np.asarray(im, np.float32) / 255.0
    return np.dstack([np.zeros_like(alpha)] * 3 + [alpha])


def canvas_value(strokes) -> str:
    """The strokes as the page's drawing canvas sends them (explorer/static/canvas.js): black ink on a transparent
    canvas of the app's size, drawn with its brush, as a PNG data URL."""
    from explorer.inputs.sketch import BRUSH_RADIUS, CANVAS, PREFIX

    rgba = np.zeros((CANVAS, CANVAS, 4), np.uint8)
    rgba[..., 3] = (render(strokes, CANVAS, BRUSH_RADIUS)[..., 3] * 255).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, "PNG")
    return PREFIX + base64.b64encode(buf.getvalue()).decode("ascii")
