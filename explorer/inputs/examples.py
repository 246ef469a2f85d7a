"""Example inputs: synthetic stroke-drawn digits (no MNIST pixels) and MNIST test-set helpers.

`synthetic_examples()` draws each digit from a few polylines and arcs with PIL
at a thick pen on a large canvas, then runs it through the app's own
preprocessing (`explorer.inputs.preprocess`: the normalisation MNIST used: crop, fit
into 20x20 keeping the aspect ratio, centre of mass at the centre of a 28x28
field), so they can ship with the app: no MNIST pixels are involved.

`MnistExamples(data_dir)` serves test-set images when a copy of MNIST is
present; it never downloads unless constructed with download=True, and
`unavailable_reason()` explains (without raising) why it cannot serve images.
"""
from __future__ import annotations

import math
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SIZE = 28
CANVAS = 112  # digits are drawn on this canvas, then reduced to the 20x20 MNIST box
GZ_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


# ---------------------------------------------------------------- MNIST-style normalisation


def mnist_style(image) -> np.ndarray:
    """Any grey image (ink bright on dark, values in [0,1] or uint8) -> float32 (28,28) in [0,1], normalised
    exactly as the app normalises drawings (explorer.inputs.preprocess: crop to the ink, fit into 20x20 keeping the
    aspect, centre of mass at the centre of 28x28). A blank image gives all zeros."""
    from .preprocess import preprocess

    p = preprocess(np.asarray(image))
    if p.image is None:
        return np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
    return np.clip(p.image.reshape(IMAGE_SIZE, IMAGE_SIZE).numpy().astype(np.float32), 0.0, 1.0)


# ---------------------------------------------------------------- synthetic digits

# Strokes in a unit box (x right, y down). ("line", [(x, y), ...]) is a polyline;
# ("arc", cx, cy, rx, ry, start_deg, end_deg) an elliptical arc, angles counter-clockwise
# as displayed (0 = right, 90 = up), drawn from start to end.
_STROKES: dict[int, list[tuple]] = {
    0: [("arc", 0.5, 0.5, 0.27, 0.45, 90, 450)],
    1: [("line", [(0.42, 0.16), (0.56, 0.04), (0.52, 0.96)])],
    2: [("arc", 0.5, 0.3, 0.28, 0.25, 160, -35), ("line", [(0.73, 0.44), (0.18, 0.95), (0.85, 0.94)])],
    3: [("arc", 0.5, 0.27, 0.25, 0.22, 150, -90), ("arc", 0.5, 0.72, 0.3, 0.24, 90, -155)],
    4: [("line", [(0.62, 0.04), (0.14, 0.66), (0.88, 0.66)]), ("line", [(0.64, 0.3), (0.64, 0.96)])],
    5: [("line", [(0.82, 0.05), (0.32, 0.05), (0.26, 0.45)]), ("arc", 0.5, 0.68, 0.3, 0.27, 140, -155)],
    6: [("line", [(0.72, 0.04), (0.42, 0.3), (0.24, 0.62)]), ("arc", 0.5, 0.72, 0.27, 0.24, 180, 540)],
    7: [("line", [(0.14, 0.07), (0.86, 0.07), (0.42, 0.96)])],
    8: [("arc", 0.5, 0.26, 0.21, 0.21, -90, 270), ("arc", 0.5, 0.72, 0.26, 0.24, 90, 450)],
    9: [("arc", 0.48, 0.3, 0.26, 0.25, 0, 360), ("line", [(0.74, 0.3), (0.7, 0.96)])],
}
# (name suffix, pen width in canvas px, slant: x shifts by slant * (0.5 - y))
_VARIANTS = (("upright", 15, 0.0), ("slanted", 12, 0.22))


def _stroke_points(stroke: tuple) -> list[tuple[float, float]]:
    if stroke[0] == "line":
        return list(stroke[1])
    _, cx, cy, rx, ry, a0, a1 = stroke
    n = max(8, int(abs(a1 - a0) / 6))
    return [
        (cx + rx * math.cos(math.radians(a)), cy - ry * math.sin(math.radians(a)))
        for a in np.linspace(a0, a1, n + 1)
    ]


def draw_strokes(strokes: list[tuple], width: int = 11, slant: float = 0.0, size: int = CANVAS) -> np.ndarray:
    """Render strokes (see _STROKES) with round joints and caps on a size x size canvas -> float32 in [0,1]."""
    img = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(img)
    pad = 0.12 * size
    span = size - 2 * pad
    for s in strokes:
        pts = [(pad + (x + slant * (0.5 - y)) * span, pad + y * span) for x, y in _stroke_points(s)]
        d.line(pts, fill=255, width=width, joint="curve")
        r = width / 2
        for x, y in (pts[0], pts[-1]):
            d.ellipse((x - r, y - r, x + r, y + r), fill=255)
    return np.asarray(img, np.float32) / 255.0


@lru_cache(maxsize=1)
def _synthetic() -> tuple[tuple[str, int, np.ndarray], ...]:
    items = []
    for suffix, width, slant in _VARIANTS:
        for digit, strokes in _STROKES.items():
            a = mnist_style(draw_strokes(strokes, width, slant))
            a.setflags(write=False)
            items.append((f"synthetic {digit} ({suffix})", digit, a))
    return tuple(items)


def synthetic_examples() -> list[tuple[str, int, np.ndarray]]:
    """Deterministic stroke-drawn digits 0-9 in two styles: [(name, label, float32 (28,28) in [0,1])]."""
    return [(n, lab, a.copy()) for n, lab, a in _synthetic()]


# ---------------------------------------------------------------- MNIST test split


def gz_folder(data_dir: Path) -> Path | None:
    """The folder holding the four MNIST .gz files: data_dir itself or data_dir/MNIST/raw (torchvision layout)."""
    for d in (data_dir, data_dir / "MNIST" / "raw"):
        if all((d / n).is_file() for n in GZ_FILES):
            return d
    return None


def _extracted(data_dir: Path) -> bool:
    raw = data_dir / "MNIST" / "raw"
    return all((raw / n[: -len(".gz")]).is_file() for n in GZ_FILES)


def mnist_unavailable_reason(data_dir: str | os.PathLike | None, download: bool = False) -> str | None:
    """None when MNIST can be loaded from data_dir (or downloaded into it when `download`), else a sentence saying
    what is missing and how to fix it. Cheap (looks at file names only) and never raises."""
    try:
        if data_dir is None or str(data_dir) == "":
            return "No MNIST folder configured: pass a folder holding the four MNIST .gz files."
        d = Path(data_dir)
        if gz_folder(d) is not None or _extracted(d):
            return None
        if download:
            return None
        return (
            f"MNIST not found in {d}: expected the four MNIST .gz files ({', '.join(GZ_FILES)}) there or a "
            "torchvision MNIST root; point the explorer at such a folder or allow downloading it."
        )
    except Exception as e:  # e.g. permission errors on an odd path
        return f"MNIST folder {data_dir!s} is unreadable ({type(e).__name__}: {e})."


class MnistExamples:
    """The MNIST test split, loaded on first use. Images are float32 (28,28) in [0,1]."""

    def __init__(self, data_dir: str | os.PathLike | None, download: bool = False):
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.download = bool(download)
        self._split = None
        self._error: str | None = None

    def unavailable_reason(self) -> str | None:
        """None when images can be served, else why not. Never raises (does not load the data)."""
        if self._split is not None:
            return None
        if self._error is not None:
            return self._error
        return mnist_unavailable_reason(self.data_dir, self.download)

    @property
    def available(self) -> bool:
        return self.unavailable_reason() is None

    def try_load(self) -> str | None:
        """Load the test split now; None on success, else the reason (never raises)."""
        if self._split is not None:
            return None
        reason = self.unavailable_reason()
        if reason is not None:
            return reason
        try:
            self._split = self._load()
        except Exception as e:
            self._error = f"Could not load MNIST from {self.data_dir}: {e}"
            return self._error
        return None

    def _load(self):
        from torchvision.datasets import MNIST
        from torchvision.datasets.utils import check_integrity

        from capsnet.data import load_mnist

        gz = gz_folder(self.data_dir)
        if gz is not None and not self.download:
            # torchvision's "download" of a folder whose .gz files are all intact only extracts them; check the
            # MD5s first so that a damaged copy is reported instead of fetched from the internet.
            bad = [n for n, md5 in MNIST.resources if not check_integrity(str(gz / n), md5)]
            if bad:
                raise RuntimeError(f"{', '.join(bad)} in {gz} failed the MD5 check (damaged copy)")
            return load_mnist(gz, train=False, download=True)
        return load_mnist(self.data_dir, train=False, download=self.download)

    @property
    def split(self):
        """The capsnet.data.MNISTSplit of the test set (loads it; raises RuntimeError with the reason if it cannot)."""
        reason = self.try_load()
        if reason is not None:
            raise RuntimeError(reason)
        return self._split

    def __len__(self) -> int:
        return len(self.split)

    def get(self, index: int) -> tuple[np.ndarray, int]:
        """(image float32 (28,28) in [0,1], label) of test image `index`."""
        s = self.split
        i = int(index)
        if not 0 <= i < len(s):
            raise IndexError(f"MNIST test index {index} outside 0..{len(s) - 1}")
        return s.images[i].numpy().astype(np.float32) / 255.0, int(s.labels[i])

    def random(self, rng: np.random.Generator | int | None = None) -> tuple[int, np.ndarray, int]:
        """A random test image: (index, image (28,28), label). `rng` is a numpy Generator or a seed."""
        g = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        i = int(g.integers(len(self.split)))
        image, label = self.get(i)
        return i, image, label

    def misclassified(self, card: dict | None) -> list[tuple[int, int | None, int | None]]:
        """[(test index, true label, predicted label)] of the test images the model card lists as misclassified.
        True labels come from the data (None when it is unavailable); [] without a card."""
        if not card:
            return []
        idx = [int(i) for i in card.get("misclassified") or []]
        preds = list(card.get("misclassified_predictions") or [])
        preds = [int(p) for p in preds] + [None] * (len(idx) - len(preds))
        labels = self.split.labels if self.try_load() is None else None
        rows = []
        for i, p in zip(idx, preds):
            true = int(labels[i]) if labels is not None and 0 <= i < len(labels) else None
            rows.append((i, true, p))
        return rows
