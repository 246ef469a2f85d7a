"""The sketchpad's brush against MNIST: stroke width after preprocessing, and ten drawn digits read right offline.

The browser run of these drawings (ten digits with clears between them, per clear control and by touch) lives on
the `draw` branch until a late sketch event after a clear is fixed."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from explorer.app import BRUSH_RADIUS, CANVAS  # noqa: E402
from explorer.inputs.preprocess import preprocess, stroke_width  # noqa: E402

from .conftest import SHIPPED  # noqa: E402
from .sketch_digits import DIGITS, render, scaled  # noqa: E402
from .test_browser import _require  # noqa: E402


def model_input(strokes) -> np.ndarray:
    """What the model should see for these strokes alone: (28, 28) in [0, 1]."""
    return preprocess(render(strokes, CANVAS, BRUSH_RADIUS)).image.numpy()[0]


# --------------------------------------------------------------------------- brush vs MNIST (no browser)


def test_stroke_width_measures_known_strokes():
    bar = np.zeros((28, 28))
    bar[4:24, 10:13] = 1.0
    assert stroke_width(bar)[0] == pytest.approx(3.0)
    assert stroke_width(bar.T)[0] == pytest.approx(3.0)
    soft = bar.copy()
    soft[4:24, 9] = soft[4:24, 13] = 0.5  # anti-aliased edges count by their intensity
    assert stroke_width(soft)[0] == pytest.approx(4.0)
    diagonal = np.zeros((28, 28))
    for i in range(20):
        diagonal[4 + i, 4 + i : 6 + i] = 1.0  # 2 px across horizontally: 2 / sqrt(2) perpendicular
    assert stroke_width(diagonal)[0] == pytest.approx(np.sqrt(2))
    assert stroke_width(diagonal[:, ::-1])[0] == pytest.approx(np.sqrt(2))
    assert stroke_width(np.zeros((2, 28, 28))).tolist() == [0.0, 0.0]


def test_brush_strokes_are_as_wide_as_mnist(mnist_test):
    """The brush suits digits: drawn two thirds of the canvas tall (as the browser tests draw them), strokes come out
    of preprocessing within MNIST's interquartile stroke width, near its median; drawn half or five sixths of the
    canvas tall, within its 10th-90th percentiles. The brush scales with the canvas when the browser resizes it,
    so this holds at any displayed size."""
    images = mnist_test.images.reshape(-1, 28, 28).float().numpy()[::5] / 255.0  # both halves of the test set
    mnist = stroke_width(images)
    p10, p25, p50, p75, p90 = np.percentile(mnist, [10, 25, 50, 75, 90])
    ours = {f: float(np.median(stroke_width([model_input(scaled(DIGITS[k], f)) for k in range(10)])))
            for f in (0.75, 1.0, 1.25)}  # fmt: skip
    report = f"MNIST p10/25/50/75/90 {p10:.2f}/{p25:.2f}/{p50:.2f}/{p75:.2f}/{p90:.2f}; drawn: {ours}"
    assert p25 <= ours[1.0] <= p75 and abs(ours[1.0] - p50) < 0.25, report
    assert p10 <= ours[1.25] < ours[0.75] <= p90, report


def test_test_digits_are_read_right():
    """The drawings the browser tests make are recognisable (so a failure there is the page's, not the shapes')."""
    _require(SHIPPED.exists(), f"no trained checkpoint at {SHIPPED}: run `python -m capsnet.train` first")
    from capsnet import load_pretrained

    images = torch.stack([torch.from_numpy(model_input(DIGITS[k]))[None] for k in range(10)])
    with torch.no_grad():
        assert load_pretrained(SHIPPED)(images).predictions.tolist() == list(range(10))
