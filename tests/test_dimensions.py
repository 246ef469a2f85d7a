"""The pose-dimension measures on synthetic images with known answers, and the labelling CLI on real MNIST."""
import json
import math
import shutil

import pytest
import torch

from capsnet import dimensions

from .conftest import SHIPPED

H = W = 28


def stroke(slope: float = 0.0, x0: float = 13.5, sigma: float = 1.0, top: int = 4, bottom: int = 24) -> torch.Tensor:
    """A smooth, near-vertical stroke x = x0 + slope * (cy - y) between rows top..bottom-1 (cy their middle)."""
    ys = torch.arange(H, dtype=torch.float64)[:, None]
    xs = torch.arange(W, dtype=torch.float64)[None, :]
    cy = (top + bottom - 1) / 2
    img = torch.exp(-((xs - x0 - slope * (cy - ys)) ** 2) / (2 * sigma**2))
    img[(ys < top).expand(H, W) | (ys >= bottom).expand(H, W)] = 0
    return img


def ring(sigma: float = 1.0, half_w: float = 5.0, half_h: float = 8.0, cx: float = 13.5, cy: float = 13.5) -> torch.Tensor:
    """A smooth rectangular loop (like a 0) whose stroke has Gaussian profile of width sigma."""
    ys = torch.arange(H, dtype=torch.float64)[:, None] - cy
    xs = torch.arange(W, dtype=torch.float64)[None, :] - cx
    outside = torch.stack([(xs.abs() - half_w).clamp(min=0).expand(H, W), (ys.abs() - half_h).clamp(min=0).expand(H, W)])
    inside = torch.minimum(half_w - xs.abs(), half_h - ys.abs()).clamp(min=0)
    dist = torch.where(inside > 0, inside, outside.norm(dim=0))
    return torch.exp(-dist**2 / (2 * sigma**2))


def bar(left: int, width: int, top: int, height: int) -> torch.Tensor:
    img = torch.zeros(H, W, dtype=torch.float64)
    img[top:top + height, left:left + width] = 1.0
    return img


def test_thicker_stroke_has_more_ink():
    thin, thick = stroke(sigma=0.8), stroke(sigma=1.6)
    assert dimensions.ink_mass(thick)[0] > 1.5 * dimensions.ink_mass(thin)[0]
    assert dimensions.ink_mass(bar(5, 3, 4, 20))[0] == pytest.approx(60.0)


def test_extent_is_the_bounding_box_of_a_solid_bar():
    e = dimensions.extent(bar(left=6, width=9, top=3, height=17))[0]
    assert e[0].item() == pytest.approx(9.0, abs=1e-9)
    assert e[1].item() == pytest.approx(17.0, abs=1e-9)
    # a wider bar is wider; a stray faint pixel far away barely moves the extent
    assert dimensions.extent(bar(6, 12, 3, 17))[0, 0] > e[0]
    stray = bar(6, 9, 3, 17)
    stray[27, 27] = 0.2
    assert dimensions.extent(stray)[0, 0].item() == pytest.approx(9.0, abs=0.5)


def test_extent_moves_continuously_with_subpixel_width():
    widths = [dimensions.extent(stroke(sigma=s))[0, 0].item() for s in (0.8, 0.9, 1.0, 1.1, 1.2)]
    assert all(b > a for a, b in zip(widths, widths[1:]))
    assert widths[-1] - widths[0] < 2.0  # no whole-pixel jumps


@pytest.mark.parametrize("shear", [-0.5, -0.2, 0.0, 0.3, 0.6])
def test_shear_adds_its_amount_to_the_slant(shear):
    assert dimensions.slant(stroke(slope=shear))[0].item() == pytest.approx(shear, abs=0.03)


def test_slant_of_a_sheared_digit_grows_with_the_shear():
    values = dimensions.slant(torch.stack([stroke(slope=s, x0=12.0) + stroke(slope=s, x0=16.0) for s in (0.0, 0.2, 0.4)]))
    assert values[0] < values[1] < values[2]


def test_centroid_follows_a_shift():
    img = bar(8, 5, 6, 10)
    c0 = dimensions.centroid(img)[0]
    assert c0.tolist() == pytest.approx([10.0, 10.5])
    moved = torch.roll(img, shifts=(3, -2), dims=(0, 1))
    assert (dimensions.centroid(moved)[0] - c0).tolist() == pytest.approx([-2.0, 3.0])
    assert dimensions.centroid(torch.zeros(H, W))[0].tolist() == [13.5, 13.5]  # blank: the centre, no NaN


def test_measure_accepts_every_batch_layout():
    img = stroke(slope=0.2)
    for x in (img, img[None], img[None, None], img[None].repeat(3, 1, 1)):
        m = dimensions.measure(x)
        assert set(m) == set(dimensions.EFFECTS)
        assert all(torch.isfinite(v).all() for v in m.values())
    with pytest.raises(ValueError):
        dimensions.measure(torch.zeros(2, 3, H, W))


def test_effect_shares_find_the_effect_that_made_the_change():
    base = torch.stack([stroke(slope=0.1 * k, x0=12 + k) for k in range(4)])
    shifted_right = torch.stack([stroke(slope=0.1 * k, x0=12 + k + 0.2) for k in range(4)])
    sheared = torch.stack([stroke(slope=0.1 * k + 0.05, x0=12 + k) for k in range(4)])
    for changed, effect in ((shifted_right, "shift_x"), (sheared, "slant")):
        shares = dimensions.effect_shares(base, changed - base)
        assert shares["explained"] > 0.9, (effect, shares)
        assert max(dimensions.EFFECTS, key=lambda e: shares[e]) == effect, shares
    # on a loop (unlike a single stroke, where thicker and wider are the same thing) each effect is its own
    loop = ring()[None]
    cases = ((ring(sigma=1.15), "ink"), (ring(half_w=5.4), "width"), (ring(half_h=8.5), "height"), (ring(cy=13.8), "shift_y"))
    for changed, effect in cases:
        shares = dimensions.effect_shares(loop, changed[None] - loop)
        assert shares["explained"] > 0.8, (effect, shares)
        assert max(dimensions.EFFECTS, key=lambda e: shares[e]) == effect, (effect, shares)
    noise = torch.randn(4, H, W, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert dimensions.explained_share(base, noise) < 0.05  # seven directions cannot explain 784-D noise


def test_measure_change_units():
    up, down = stroke(x0=14.5)[None], stroke(x0=12.5)[None]
    change = dimensions.measure_change(up, down)
    assert change["shift_x"] == pytest.approx(1.0, abs=1e-6)
    assert change["shift_y"] == pytest.approx(0.0, abs=1e-6)
    assert change["ink"] == pytest.approx(0.0, abs=1e-6)
    tilt = dimensions.measure_change(stroke(slope=0.1)[None], stroke(slope=-0.1)[None])
    assert tilt["slant"] == pytest.approx(math.degrees(math.atan(0.1)), abs=0.5)
    bolder = dimensions.measure_change(4 * stroke()[None], stroke()[None])  # ink x4 between -delta and +delta
    assert bolder["ink"] == pytest.approx(1.0, abs=1e-6)  # sqrt(4) - 1: twice the ink per +delta
    assert dimensions.measure_change(torch.zeros(1, H, W), stroke()[None])["ink"] > -1.0


def test_labels_read_well():
    entry = {"label": "thicker strokes", "effect": "ink", "sign": 1, "strength": 0.12, "explained": 0.8}
    assert dimensions.slider_label(6, entry) == "dim 6 · thicker strokes (+12% ink)"
    assert dimensions.slider_label(3, None) == "dim 3"
    left = {"label": "moves left", "effect": "shift_x", "sign": -1, "strength": 0.8, "explained": 0.7}
    assert dimensions.describe(left) == "moves left (-0.8 px)"


def test_cli_stores_labels_in_the_card_and_is_idempotent(tmp_path, mnist_dir, capsys):
    if not SHIPPED.exists():
        pytest.skip("no shipped checkpoint")
    weights = tmp_path / "capsnet.safetensors"
    shutil.copy(SHIPPED, weights)
    shutil.copy(SHIPPED.with_suffix(".json"), weights.with_suffix(".json"))
    before = json.loads(weights.with_suffix(".json").read_text())
    args = ["--checkpoint", str(weights), "--data-dir", str(mnist_dir), "--per-class", "3"]
    assert dimensions.main(args) == 0
    first = weights.with_suffix(".json").read_text()
    card = json.loads(first)
    for key, value in before.items():
        if key not in ("dimension_labels", "dimension_labels_meta"):
            assert card[key] == value  # the rest of the card is kept
    labels = card["dimension_labels"]
    assert len(labels) == 10 and all(len(rows) == 16 for rows in labels)
    for rows in labels:
        for r in rows:
            assert set(r) == {"label", "effect", "sign", "strength", "explained"}
            assert r["effect"] in dimensions.EFFECTS and r["sign"] in (1, -1)
            assert r["label"] == dimensions.WORDS[(r["effect"], r["sign"])]
            assert r["strength"] >= 0 and 0 <= r["explained"] <= 1
    meta = card["dimension_labels_meta"]
    assert meta["perturbation"] == 0.25 and meta["digits_per_class"] == [3] * 10
    assert "--per-class 3" in meta["command"]
    assert dimensions.main(args) == 0
    assert weights.with_suffix(".json").read_text() == first  # same inputs, same file
    assert "stored dimension_labels" in capsys.readouterr().out


def test_cli_reports_bad_input(tmp_path, capsys):
    assert dimensions.main(["--checkpoint", str(tmp_path / "missing.safetensors")]) == 2
    assert "No checkpoint" in capsys.readouterr().err
    assert dimensions.main(["--per-class", "0"]) == 2


def test_shipped_card_has_labels_for_every_dimension():
    from capsnet.checkpoint import load_model_card

    card = load_model_card(SHIPPED)
    if card is None:
        pytest.skip("no shipped model card")
    labels = card["dimension_labels"]
    assert [len(rows) for rows in labels] == [16] * 10
    assert min(card["dimension_labels_meta"]["digits_per_class"]) >= 100
