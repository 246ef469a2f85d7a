"""Input transforms, synthetic examples and MNIST helpers."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.inputs.examples import MnistExamples, mnist_style, mnist_unavailable_reason, synthetic_examples
from explorer.inputs.transforms import transform_batch, transform_image

from .conftest import SHIPPED


@pytest.fixture(scope="module")
def digit():
    return torch.from_numpy(synthetic_examples()[7][2])


# ---------------------------------------------------------------- transforms


def test_identity_transform(digit):
    for img in (digit, digit[None], digit.numpy()):
        out = transform_image(img, 0, 1, 0, 0)
        assert out.shape == (1, 28, 28) and out.dtype == torch.float32
        assert torch.equal(out[0], digit)
    # the batched warp at the identity is the identity up to float rounding
    assert torch.allclose(transform_batch(digit, [0.0])[0, 0], digit, atol=1e-5)


def test_rotation_direction_and_full_turn():
    img = torch.zeros(28, 28)
    img[13:15, 20:22] = 1.0  # a dot right of centre
    rot = transform_image(img, 90)[0]
    ys, xs = np.nonzero(rot.numpy() > 0.5)
    assert ys.mean() < 10 and abs(xs.mean() - 13.5) < 1.5  # counter-clockwise: right -> top
    assert torch.allclose(transform_image(img, 360)[0], img, atol=1e-4)


@settings(max_examples=25, deadline=None)
@given(dx=st.integers(-6, 6), dy=st.integers(-6, 6))
def test_integer_shift_matches_zero_filled_roll(dx, dy):
    g = torch.Generator().manual_seed(dx * 31 + dy)
    img = torch.rand(28, 28, generator=g)
    expected = torch.zeros(28, 28)
    src = img[max(0, -dy) : 28 - max(0, dy), max(0, -dx) : 28 - max(0, dx)]
    expected[max(0, dy) : max(0, dy) + src.shape[0], max(0, dx) : max(0, dx) + src.shape[1]] = src
    assert torch.allclose(transform_image(img, 0, 1, dx, dy)[0], expected, atol=1e-5)


@settings(max_examples=25, deadline=None)
@given(angle=st.floats(-180, 180), scale=st.floats(0.5, 2.0), dx=st.floats(-8, 8), dy=st.floats(-8, 8))
def test_transform_stays_in_range(digit, angle, scale, dx, dy):
    out = transform_image(digit, angle, scale, dx, dy)
    assert out.shape == (1, 28, 28)
    assert out.min() >= 0 and out.max() <= 1


def test_scale_enlarges():
    img = torch.zeros(28, 28)
    img[10:18, 10:18] = 1.0
    assert (transform_image(img, 0, 1.5)[0] > 0.5).sum() > (img > 0.5).sum()
    assert (transform_image(img, 0, 0.5)[0] > 0.5).sum() < (img > 0.5).sum()
    with pytest.raises(ValueError):
        transform_image(img, 0, 0)


# ---------------------------------------------------------------- examples


def test_synthetic_examples_deterministic_and_valid():
    a, b = synthetic_examples(), synthetic_examples()
    assert len(a) >= 10
    assert {lab for _, lab, _ in a} == set(range(10))
    for (na, la, ia), (nb, lb, ib) in zip(a, b):
        assert (na, la) == (nb, lb)
        assert np.array_equal(ia, ib)
        assert ia.shape == (28, 28) and ia.dtype == np.float32
        assert ia.min() >= 0 and ia.max() <= 1 and ia.max() > 0.9
    a[0][2][:] = 0  # callers get copies
    assert synthetic_examples()[0][2].max() > 0


def test_synthetic_examples_are_mnist_like():
    for _, _, img in synthetic_examples():
        ys, xs = np.nonzero(img > 0.05)
        assert ys.max() - ys.min() + 1 <= 21 and xs.max() - xs.min() + 1 <= 21  # fits the 20x20 box
        assert max(ys.max() - ys.min(), xs.max() - xs.min()) + 1 >= 19
        yy, xx = np.mgrid[0:28, 0:28]
        cy, cx = (img * yy).sum() / img.sum(), (img * xx).sum() / img.sum()
        assert abs(cy - 13.5) <= 1.0 and abs(cx - 13.5) <= 1.0  # centre of mass at the centre


def test_mnist_style():
    canvas = np.zeros((200, 120), np.float32)
    canvas[20:180, 50:70] = 1.0  # a tall bar, off-centre
    out = mnist_style(canvas)
    assert out.shape == (28, 28) and out.dtype == np.float32
    ys, xs = np.nonzero(out > 0.5)
    assert ys.max() - ys.min() + 1 in (19, 20, 21)
    assert np.array_equal(mnist_style(np.zeros((50, 50))), np.zeros((28, 28), np.float32))
    assert mnist_style((canvas * 255).astype(np.uint8)).max() == pytest.approx(1.0)


def test_checkpoint_reads_most_synthetic_examples(model):
    if not SHIPPED.exists():
        pytest.skip("no trained checkpoint: a seeded, untrained model cannot read digits")
    ex = synthetic_examples()
    x = torch.from_numpy(np.stack([img for _, _, img in ex]))[:, None]
    with torch.inference_mode():
        pred = model(x).predictions.numpy()
    labels = np.array([lab for _, lab, _ in ex])
    assert (pred == labels).mean() >= 0.7, list(zip(labels.tolist(), pred.tolist()))


# ---------------------------------------------------------------- MNIST helpers


def test_mnist_examples_on_real_copy(mnist_dir):
    ex = MnistExamples(mnist_dir)
    assert ex.unavailable_reason() is None and ex.available
    img, label = ex.get(0)
    assert img.shape == (28, 28) and img.dtype == np.float32 and 0 <= img.min() and img.max() <= 1
    assert label == 7  # the first MNIST test image is a 7
    i1, im1, l1 = ex.random(np.random.default_rng(3))
    i2, im2, l2 = ex.random(3)
    assert (i1, l1) == (i2, l2) and np.array_equal(im1, im2)
    assert 0 <= i1 < 10_000 and len(ex) == 10_000
    with pytest.raises(IndexError):
        ex.get(10_000)
    card = {"misclassified": [0, 1], "misclassified_predictions": [1, 3]}
    assert ex.misclassified(card) == [(0, 7, 1), (1, 2, 3)]
    assert ex.misclassified(None) == []


def test_mnist_examples_missing_data(tmp_path):
    ex = MnistExamples(tmp_path / "nowhere")
    reason = ex.unavailable_reason()
    assert reason and "MNIST not found" in reason
    assert not ex.available
    assert ex.try_load() == reason
    with pytest.raises(RuntimeError, match="MNIST not found"):
        ex.get(0)
    assert mnist_unavailable_reason(None)
    assert mnist_unavailable_reason(tmp_path, download=True) is None  # would download when asked to
    # without data, misclassified() still lists the card's entries (true label unknown)
    assert ex.misclassified({"misclassified": [5], "misclassified_predictions": [2]}) == [(5, None, 2)]


def test_mnist_examples_damaged_copy_is_reported_not_downloaded(tmp_path, mnist_dir):
    import os

    for name in os.listdir(mnist_dir):
        if name.endswith(".gz"):
            (tmp_path / name).write_bytes(b"not really gzip")
    ex = MnistExamples(tmp_path)
    assert ex.unavailable_reason() is None  # the cheap check only looks at file names
    reason = ex.try_load()
    assert reason and "MD5" in reason
    assert ex.unavailable_reason() == reason
