"""Turn any drawing or uploaded image into the 28x28 input CapsNet was trained on.

MNIST digits were made by fitting each digit's bounding box into 20x20 pixels
(keeping the aspect ratio) and translating it so that its centre of mass sits at
the centre of a 28x28 field. `preprocess` does the same for:

- a PIL image of any mode (1, L, LA, P, PA, RGB, RGBA, CMYK, I, I;16, F, ...),
- a numpy array (H,W), (H,W,C) with C in 1..4, any dtype, NaN/inf allowed,
- a torch tensor, or a path to an image file.

The stroke ("ink") is the alpha channel when the image has real transparency
(the drawing canvas, transparent PNGs); otherwise it is the luminance, inverted when
the background (the median border pixel) is light. Empty input gives the blank
signal: `Preprocessed(image=None, message=BLANK_MESSAGE)`, never an exception.
"""
from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from capsnet import CapsNetConfig

from ..text import tr

IMAGE_SIZE = CapsNetConfig().image_size  # 28
BOX = 20  # the digit's bounding box is fitted into BOX x BOX pixels
MAX_SIDE = 1024  # larger inputs are reduced first, so time and memory stay bounded
# Images declaring more pixels than this are refused before decoding (after JPEG draft mode):
# 25 MP (e.g. 5000x5000, more than a 24 MP camera photo) decodes to at most 100 MB (RGBA).
MAX_PIXELS = 25_000_000
INK_THRESHOLD = 0.1  # ink below this (after background removal) is not part of the stroke
ALPHA_RANGE = 0.1  # alpha varying more than this means the stroke lives in the alpha channel

BLANK_MESSAGE = "Nothing to read yet: draw a digit (or upload an image of one) and every view will update."
UNREADABLE_MESSAGE = "That file could not be read as an image; try a PNG or JPEG of a single digit."
TOO_LARGE_MESSAGE = (
    "That image is too large ({size}); the limit is {limit} megapixels. "
    "Scale it down or crop it to the digit and try again."
)


class ImageTooLarge(ValueError):
    """An image with more than MAX_PIXELS pixels (or one PIL refuses as a decompression bomb)."""

    def __init__(self, width: int | None = None, height: int | None = None):
        self.width, self.height = width, height
        super().__init__(too_large_message(width, height))


def too_large_message(width: int | None = None, height: int | None = None) -> str:
    size = (tr("{width}x{height} pixels", width=width, height=height) if width and height
            else tr("it declares more pixels than allowed"))  # fmt: skip
    return tr(TOO_LARGE_MESSAGE, size=size, limit=MAX_PIXELS // 1_000_000)


def check_pixels(width: int, height: int) -> None:
    """Raise ImageTooLarge when width*height exceeds MAX_PIXELS."""
    if int(width) * int(height) > MAX_PIXELS:
        raise ImageTooLarge(int(width), int(height))


def unreadable_result(error: BaseException) -> "Preprocessed":
    """The blank signal with the message for an image that could not be opened or decoded."""
    if isinstance(error, ImageTooLarge):
        return Preprocessed(None, str(error))
    if isinstance(error, Image.DecompressionBombError):
        return Preprocessed(None, too_large_message())
    return Preprocessed(None, UNREADABLE_MESSAGE)


class Preprocessed(NamedTuple):
    """`image` is a (1, 28, 28) float32 tensor in [0, 1], or None with `message` saying why."""

    image: torch.Tensor | None
    message: str = ""

    @property
    def blank(self) -> bool:
        return self.image is None


def blank(message: str = BLANK_MESSAGE) -> Preprocessed:
    return Preprocessed(None, message)


# --------------------------------------------------------------------------- input -> float array


def _reduce_pil(im: Image.Image) -> Image.Image:
    side = max(im.size)
    if side <= MAX_SIDE:
        return im
    factor = math.ceil(side / MAX_SIDE)
    try:
        im.draft(im.mode, (im.size[0] // factor, im.size[1] // factor))  # JPEG: decode at lower resolution
    except Exception:
        pass
    check_pixels(*im.size)  # before anything decodes the full image
    side = max(im.size)
    if side <= MAX_SIDE:
        return im
    factor = math.ceil(side / MAX_SIDE)
    try:
        return im.reduce(factor)  # box average in C
    except Exception:
        return im.resize((max(1, im.size[0] // factor), max(1, im.size[1] // factor)), Image.NEAREST)


def _pil_to_array(im: Image.Image) -> np.ndarray:
    """Float array (H,W) or (H,W,C) in [0,1], C = 1 (grey), 2 (grey+alpha), 3 (RGB) or 4 (RGBA)."""
    im = _reduce_pil(im)
    mode = im.mode
    if mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F") or mode.startswith("I;"):
        a = np.asarray(im).astype(np.float64)
        scale = 65535.0 if mode.startswith("I;16") else None
        return _scale_numeric(a, scale)
    if mode == "1":
        return np.asarray(im.convert("L"), dtype=np.float64) / 255.0
    has_alpha = "A" in im.getbands() or "transparency" in im.info
    if mode == "L" and not has_alpha:
        return np.asarray(im, dtype=np.float64) / 255.0
    if has_alpha:
        im = im.convert("RGBA")  # LA, PA, RGBA, palette/grey with a transparent colour
    elif mode != "RGB":
        im = im.convert("RGB")  # P, CMYK, YCbCr, LAB, HSV, ...
    return np.asarray(im, dtype=np.float64) / 255.0


def _scale_numeric(a: np.ndarray, scale: float | None = None) -> np.ndarray:
    a = np.where(np.isfinite(a), a, 0.0)
    if scale is None:
        hi = float(a.max()) if a.size else 0.0
        lo = float(a.min()) if a.size else 0.0
        if lo < 0.0 or hi > 1.0:
            if lo >= 0.0 and hi <= 255.0:
                scale = 255.0
            elif lo >= 0.0 and hi <= 65535.0:
                scale = 65535.0
            else:  # arbitrary range: stretch it
                a = a - lo
                scale = (hi - lo) or 1.0
        else:
            scale = 1.0
    return np.clip(a / scale, 0.0, 1.0)


def _array_to_float(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype == object:
        a = a.astype(np.float64)
    while a.ndim > 3 and a.shape[0] == 1:
        a = a[0]  # (1,1,H,W) -> (1,H,W)
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] not in (1, 2, 3, 4):
        a = np.moveaxis(a, 0, -1)  # channels-first -> channels-last
    if a.ndim == 3 and a.shape[-1] > 4:
        a = a[..., :4]
    if a.ndim not in (2, 3) or a.size == 0:
        return np.zeros((0, 0))
    # Bound the work: reduce huge arrays by striding before any float copy.
    side = max(a.shape[0], a.shape[1])
    if side > MAX_SIDE:
        f = math.ceil(side / MAX_SIDE)
        a = a[::f, ::f]
    if a.dtype == np.bool_:
        return a.astype(np.float64)
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float64) / 65535.0
    with np.errstate(all="ignore"):
        return _scale_numeric(a.astype(np.float64))


def to_float_image(image: Any) -> np.ndarray | None:
    """Any supported input -> float (H,W[,C]) array in [0,1]; None when there is no image at all."""
    if image is None:
        return None
    if isinstance(image, (str, os.PathLike)):
        with warnings.catch_warnings():  # PIL warns above 89 MP; MAX_PIXELS is stricter and applies next
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(Path(image))
        with im:  # not loaded yet: _pil_to_array checks the size first
            return _pil_to_array(im)
    if isinstance(image, Image.Image):
        return _pil_to_array(image)
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().float().numpy()
    return _array_to_float(np.asarray(image))


def _luminance(a: np.ndarray) -> np.ndarray:
    if a.ndim == 2:
        return a
    c = a.shape[-1]
    if c <= 2:
        return a[..., 0]
    return a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114


def _border_median(a: np.ndarray) -> float:
    if min(a.shape) <= 2:
        return float(np.median(a))
    border = np.concatenate([a[0], a[-1], a[1:-1, 0], a[1:-1, -1]])
    return float(np.median(border))


def ink_map(a: np.ndarray) -> np.ndarray:
    """(H,W[,C]) float image in [0,1] -> (H,W) ink in [0,1], background 0, strokes towards 1."""
    alpha = None
    if a.ndim == 3 and a.shape[-1] in (2, 4):
        alpha = a[..., -1]
        if float(alpha.max()) < INK_THRESHOLD:
            return np.zeros(a.shape[:2])  # fully transparent
        if float(alpha.max() - alpha.min()) > ALPHA_RANGE:
            ink = alpha
            bg = _border_median(ink)
            return np.clip((ink - bg) / max(1.0 - bg, 1e-6), 0.0, 1.0)
    lum = _luminance(a)
    bg = _border_median(lum)
    if bg > 0.5:  # light background, dark strokes: invert
        ink, bg = 1.0 - lum, 1.0 - bg
    else:
        ink = lum
    return np.clip((ink - bg) / max(1.0 - bg, 1e-6), 0.0, 1.0)


# --------------------------------------------------------------------------- ink -> 28x28


def _resize(patch: np.ndarray, h: int, w: int) -> np.ndarray:
    t = torch.from_numpy(np.ascontiguousarray(patch, dtype=np.float32))[None, None]
    antialias = h < patch.shape[0] or w < patch.shape[1]
    out = F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False, antialias=antialias)
    return out[0, 0].numpy()


def center_ink(ink: np.ndarray) -> Preprocessed:
    """Crop the stroke, fit it into 20x20 keeping the aspect, and centre its mass in 28x28."""
    if ink.size == 0 or not np.isfinite(ink).all():
        ink = np.nan_to_num(ink, nan=0.0, posinf=0.0, neginf=0.0) if ink.size else ink
    if ink.size == 0 or float(ink.max(initial=0.0)) < INK_THRESHOLD:
        return blank()
    mask = ink >= INK_THRESHOLD
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    patch = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    patch = patch / float(patch.max())  # strokes at full strength, like MNIST
    h, w = patch.shape
    scale = BOX / max(h, w)
    nh, nw = max(1, min(BOX, round(h * scale))), max(1, min(BOX, round(w * scale)))
    small = np.clip(_resize(patch, nh, nw), 0.0, 1.0)
    peak = float(small.max())
    if peak <= 1e-6:
        return blank()
    small = small / peak  # thin strokes lose contrast when shrunk; MNIST strokes peak at 1
    total = float(small.sum())
    ys, xs = np.arange(nh), np.arange(nw)
    cy = float((small.sum(axis=1) * ys).sum() / total)
    cx = float((small.sum(axis=0) * xs).sum() / total)
    centre = (IMAGE_SIZE - 1) / 2.0
    top = min(max(int(round(centre - cy)), 0), IMAGE_SIZE - nh)
    left = min(max(int(round(centre - cx)), 0), IMAGE_SIZE - nw)
    out = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
    out[top : top + nh, left : left + nw] = small
    return Preprocessed(torch.from_numpy(out)[None], "")


def preprocess(image: Any) -> Preprocessed:
    """Any drawing / upload -> Preprocessed((1,28,28) tensor, "") or the blank signal (None, message)."""
    try:
        a = to_float_image(image)
    except (UnidentifiedImageError, OSError, ValueError, TypeError, Image.DecompressionBombError, EOFError) as e:
        return unreadable_result(e)
    if a is None or a.size == 0 or a.shape[0] == 0 or a.shape[1] == 0:
        return blank()
    return center_ink(ink_map(a))


def center_of_mass(image28) -> tuple[float, float]:
    """(row, col) centre of mass of a (28,28) / (1,28,28) image; useful for checks."""
    a = np.asarray(image28, dtype=np.float64).reshape(IMAGE_SIZE, IMAGE_SIZE)
    total = a.sum()
    idx = np.arange(IMAGE_SIZE)
    return float((a.sum(1) * idx).sum() / total), float((a.sum(0) * idx).sum() / total)


def _run_ink(ink: np.ndarray, on: np.ndarray) -> np.ndarray:
    """Per pixel: the ink summed over the run of stroke pixels through it along the last axis (0 off the stroke)."""
    c = np.cumsum(ink, axis=-1)
    before = np.maximum.accumulate(np.where(on, 0.0, c), axis=-1)  # ink up to the last gap before the pixel
    total = c[..., -1:]
    after = np.flip(np.minimum.accumulate(np.flip(np.where(on, total, c), -1), axis=-1), -1)  # ... to the next
    return np.where(on, after - before, 0.0)


def _skew(a: np.ndarray, sign: int) -> np.ndarray:
    """(n, H, W) -> (n, H, W+H-1) with row y moved right by y (sign 1) or H-1-y (sign -1): diagonals become columns."""
    n, h, w = a.shape
    out = np.zeros((n, h, w + h - 1), a.dtype)
    for y in range(h):
        shift = y if sign > 0 else h - 1 - y
        out[:, y, shift : shift + w] = a[:, y]
    return out


def stroke_width(images) -> np.ndarray:
    """Median stroke width in pixels of each (28,28) image of a digit, for comparing drawings with MNIST.

    Per stroke pixel, the ink summed across the stroke along the rows, the columns and both diagonals
    (x sqrt 2), whichever is least; the median over the pixels with ink >= 0.5 (0 for an image without any).
    Anti-aliased edges count by their intensity. Exact for strokes along the rows or columns; across a diagonal
    stroke the pixel grid steps by sqrt 2, so compare images measured the same way, not with a ruler."""
    a = np.clip(np.nan_to_num(np.asarray(images, dtype=np.float32)), 0.0, 1.0).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
    on = a > INK_THRESHOLD
    ink = np.where(on, a, 0.0).astype(np.float32)
    t = (0, 2, 1)
    widths = [_run_ink(ink, on), _run_ink(ink.transpose(t), on.transpose(t)).transpose(t)]
    for sign in (1, -1):
        runs = _run_ink(_skew(ink, sign).transpose(t), _skew(on, sign).transpose(t)).transpose(t)
        rows = [runs[:, y, (y if sign > 0 else IMAGE_SIZE - 1 - y) :][:, :IMAGE_SIZE] for y in range(IMAGE_SIZE)]
        widths.append(math.sqrt(2.0) * np.stack(rows, axis=1))
    w = np.minimum.reduce(widths)
    core = a >= 0.5
    return np.array([float(np.median(w[i][core[i]])) if core[i].any() else 0.0 for i in range(len(a))])


__all__ = [
    "BLANK_MESSAGE",
    "MAX_PIXELS",
    "TOO_LARGE_MESSAGE",
    "UNREADABLE_MESSAGE",
    "ImageTooLarge",
    "check_pixels",
    "unreadable_result",
    "Preprocessed",
    "blank",
    "center_ink",
    "center_of_mass",
    "ink_map",
    "preprocess",
    "stroke_width",
    "to_float_image",
]
