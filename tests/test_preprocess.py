"""MNIST-style preprocessing: property-based (never raises) plus explicit geometry cases."""
import io

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from explorer.inputs.preprocess import BLANK_MESSAGE, IMAGE_SIZE, Preprocessed, center_of_mass, preprocess

CENTRE = (IMAGE_SIZE - 1) / 2


def check(result: Preprocessed):
    assert isinstance(result, Preprocessed)
    if result.image is None:
        assert result.blank and isinstance(result.message, str) and result.message
        return
    t = result.image
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32 and tuple(t.shape) == (1, 28, 28)
    assert torch.isfinite(t).all() and t.min() >= 0.0 and t.max() <= 1.0
    assert t.max() > 0.5


MODES = ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "I", "I;16", "F", "YCbCr", "La"]


@st.composite
def images(draw):
    h = draw(st.integers(0, 300))
    w = draw(st.integers(0, 300))
    kind = draw(st.sampled_from(["blank", "full", "stroke", "dot", "edge", "noise"]))
    a = np.zeros((h, w), np.uint8)
    if h and w:
        if kind == "full":
            a[:] = 255
        elif kind in ("stroke", "dot", "edge"):
            r0 = draw(st.integers(0, h - 1))
            c0 = draw(st.integers(0, w - 1))
            if kind == "edge":
                r0 = draw(st.sampled_from([0, h - 1]))
            size = 1 if kind == "dot" else draw(st.integers(1, max(1, max(h, w) // 2)))
            a[r0 : r0 + max(1, size // 6), c0 : c0 + size] = 255
            a[r0 : r0 + size, c0 : c0 + max(1, size // 6)] = 255
        elif kind == "noise":
            seed = draw(st.integers(0, 2**16))
            a = np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)
    if draw(st.booleans()):
        a = 255 - a  # dark on light
    return a, draw(st.sampled_from(MODES + ["array"]))


def as_input(a: np.ndarray, mode: str):
    if mode == "array" or a.size == 0:
        return a
    im = Image.fromarray(a, "L")
    if mode == "I;16":
        return Image.fromarray(a.astype(np.uint16) * 257)  # uint16 -> mode I;16
    if mode == "F":
        return Image.fromarray(a.astype(np.float32) / 255.0, "F")
    if mode in ("PA", "La"):
        return im.convert("RGBA").convert(mode) if mode == "PA" else im.convert("LA").convert("La")
    return im.convert(mode)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(images())
def test_any_image_gives_tensor_or_blank(case):
    a, mode = case
    check(preprocess(as_input(a, mode)))


@settings(max_examples=50, deadline=None)
@given(
    shape=st.sampled_from([(0,), (0, 0), (1, 1), (3, 5), (1, 28, 28), (28, 28, 1), (28, 28, 2), (28, 28, 3), (17, 9, 4), (2, 2, 2, 2), (3, 40, 30)]),
    dtype=st.sampled_from([np.float32, np.float64, np.uint8, np.uint16, np.int32, np.int64, np.bool_]),
    specials=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_arrays_of_any_shape_dtype_and_nonfinite_values(shape, dtype, specials, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(0, 300, shape)
    if specials and a.size:
        flat = a.reshape(-1)
        flat[rng.integers(0, flat.size, max(1, flat.size // 5))] = rng.choice([np.nan, np.inf, -np.inf])
    if np.issubdtype(dtype, np.integer) or dtype is np.bool_:
        a = np.nan_to_num(a, nan=0, posinf=0, neginf=0)
        info = np.iinfo(dtype) if dtype is not np.bool_ else None
        a = np.clip(a, info.min, info.max).astype(dtype) if info else (a > 0)
    else:
        a = a.astype(dtype)
    check(preprocess(a))
    check(preprocess(torch.from_numpy(np.asarray(a, dtype=np.float32))))


def test_blank_inputs():
    for value in [None, np.zeros((0, 0)), np.zeros((1, 1)), np.zeros((50, 50)), np.full((50, 50), 255, np.uint8),
                  Image.new("RGBA", (64, 64), (0, 0, 0, 0)), Image.new("RGB", (64, 64), "white"),
                  np.full((20, 20), np.nan)]:
        r = preprocess(value)
        assert r.blank and r.message == BLANK_MESSAGE


def test_unreadable_file_is_blank_with_message(tmp_path):
    p = tmp_path / "junk.png"
    p.write_bytes(b"not an image at all")
    r = preprocess(str(p))
    assert r.blank and "could not be read" in r.message


def ring(h=200, w=120, thickness=12, light_background=False):
    """An ellipse outline (a zero) in an h x w canvas, off-centre at the top left."""
    canvas = np.zeros((400, 400), np.uint8)
    yy, xx = np.mgrid[:h, :w]
    cy, cx = (h - 1) / 2, (w - 1) / 2
    d = ((yy - cy) / (h / 2)) ** 2 + ((xx - cx) / (w / 2)) ** 2
    inner = ((yy - cy) / (h / 2 - thickness)) ** 2 + ((xx - cx) / (w / 2 - thickness)) ** 2
    canvas[10 : 10 + h, 20 : 20 + w] = np.where((d <= 1) & (inner >= 1), 255, 0)
    return 255 - canvas if light_background else canvas


def bbox(t):
    a = t[0].numpy() > 0.1
    rows, cols = np.flatnonzero(a.any(1)), np.flatnonzero(a.any(0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def test_centre_of_mass_is_centred_and_box_is_20():
    r = preprocess(ring())
    cy, cx = center_of_mass(r.image)
    assert abs(cy - CENTRE) <= 0.6 and abs(cx - CENTRE) <= 0.6
    h, w = bbox(r.image)
    assert h == 20


def test_aspect_ratio_kept():
    h, w = bbox(preprocess(ring(200, 120)).image)
    assert h == 20 and w == pytest.approx(12, abs=1)
    h, w = bbox(preprocess(ring(100, 300)).image)
    assert w == 20 and h == pytest.approx(7, abs=1)


def test_light_background_is_inverted():
    dark = preprocess(ring()).image
    light = preprocess(ring(light_background=True)).image
    assert torch.allclose(dark, light, atol=1e-5)
    assert light[0, 0, 0] == 0 and light.max() == pytest.approx(1.0, abs=1e-3)
    rgb = Image.fromarray(ring(light_background=True)).convert("RGB")
    assert torch.allclose(preprocess(rgb).image, dark, atol=1e-2)


def test_rgba_sketch_uses_alpha():
    # Black strokes on a transparent canvas: the RGB is all black, only alpha has the digit.
    rgba = np.zeros((400, 400, 4), np.uint8)
    rgba[..., 3] = ring()
    dark = preprocess(ring()).image
    assert torch.allclose(preprocess(rgba).image, dark, atol=1e-5)
    assert torch.allclose(preprocess(Image.fromarray(rgba, "RGBA")).image, dark, atol=1e-5)


def test_opaque_canvas_with_black_strokes_uses_luminance():
    comp = np.stack([255 - ring()] * 3 + [np.full((400, 400), 255, np.uint8)], -1)  # opaque white with black strokes
    assert torch.allclose(preprocess(comp).image, preprocess(ring()).image, atol=1e-5)


def test_tiny_stroke_at_edge_and_huge_image_are_bounded():
    a = np.zeros((50, 50), np.uint8)
    a[0, 49] = 255
    check(preprocess(a))
    huge = np.zeros((6000, 5000), np.uint8)
    huge[1000:5000, 2000:2400] = 255  # a "1"
    r = preprocess(huge)
    check(r)
    assert bbox(r.image)[0] == 20
    im = Image.fromarray(huge)
    check(preprocess(im))


def test_file_paths_and_jpeg(tmp_path):
    p = tmp_path / "zero.jpg"
    Image.fromarray(ring(light_background=True)).save(p, quality=85)
    r = preprocess(str(p))
    check(r)
    assert torch.allclose(r.image, preprocess(ring()).image, atol=0.15)
    buf = io.BytesIO()
    Image.fromarray(ring()).convert("P").save(buf, format="PNG")
    buf.seek(0)
    check(preprocess(Image.open(buf)))
