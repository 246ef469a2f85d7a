"""The pose-dimension measures on synthetic images with known answers, and the labelling CLI (capsnet.atlas) on real MNIST."""
import json
import math

import pytest
import torch

from capsnet import atlas, dimensions

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


def rotated_bar(degrees: float, half_len: float = 9.0, half_width: float = 1.2) -> torch.Tensor:
    """A solid bar through the centre, turned `degrees` anticlockwise from the vertical (image y down)."""
    ys = torch.arange(H, dtype=torch.float64)[:, None] - 13.5
    xs = torch.arange(W, dtype=torch.float64)[None, :] - 13.5
    a = math.radians(degrees)
    along = xs * math.sin(a) + ys * math.cos(a)  # the bar's axis: (sin a, cos a) in (x, y-down), top end leaning left
    across = xs * math.cos(a) - ys * math.sin(a)
    return ((along.abs() <= half_len) & (across.abs() <= half_width)).to(torch.float64)


@pytest.mark.parametrize("degrees", [-30.0, -10.0, 0.0, 15.0, 40.0])
def test_rotation_is_the_angle_of_a_turned_bar(degrees):
    assert dimensions.rotation(rotated_bar(degrees))[0].item() == pytest.approx(degrees, abs=1.5)


def test_stroke_width_grows_with_the_stroke_and_ignores_contrast():
    widths = [dimensions.stroke_width(bar(10, w, 4, 20))[0].item() for w in (2, 3, 4)]
    assert widths == pytest.approx([2 * 40 / 44, 2 * 60 / 46, 2 * 80 / 48])  # 2 x area / perimeter
    thin, thick = stroke(sigma=0.8), stroke(sigma=1.6)
    assert dimensions.stroke_width(thick)[0] > 1.5 * dimensions.stroke_width(thin)[0]
    faint = 0.4 * thick  # same stroke, less contrast: less ink, same width
    assert dimensions.stroke_width(faint)[0].item() == pytest.approx(dimensions.stroke_width(thick)[0].item())
    assert dimensions.ink_mass(faint)[0] < 0.5 * dimensions.ink_mass(thick)[0]
    assert dimensions.stroke_width(torch.zeros(H, W))[0].item() == 0.0


def test_local_labels_name_where_the_ink_changes():

    change = torch.zeros(H, W, dtype=torch.float64)
    change[2:8, 20:26] = 0.3  # more ink at the top right
    change[12:16, 2:6] = -0.1
    assert atlas.region(change) == ("top-right", 1)
    assert atlas.region(-change) == ("top-right", -1)
    z = torch.tensor([0.1, -0.05, 0.0, 0.2, 0.0, 0.1, 0.0, 0.0], dtype=torch.float64)  # all under LOCAL_Z
    entry = atlas.label_entry(z, z, z, change, {"std": 0.05}, None)
    assert entry["label"] == "local: more ink top-right" and entry["effect"] == "local"
    strong = z.clone()
    strong[dimensions.EFFECTS.index("shift_x")] = -0.9
    entry = atlas.label_entry(strong, strong, strong, change, {"std": 0.05}, {"transform": "rotation", "abs_rho": 0.9})
    assert entry["label"] == "moves left" and entry["z"] == -0.9 and entry["disagrees"]  # rotation moves no centroid
    entry = atlas.label_entry(strong, strong, strong, change, {"std": 0.05}, {"transform": "shift_x", "abs_rho": 0.9})
    assert not entry["disagrees"]


def test_labels_read_well():
    entry = {"label": "thicker strokes", "effect": "ink", "sign": 1, "strength": 0.12, "explained": 0.8}
    assert dimensions.slider_label(6, entry) == "dim 6 · thicker strokes (+12% ink)"
    assert dimensions.slider_label(3, None) == "dim 3"
    left = {"label": "moves left", "effect": "shift_x", "sign": -1, "strength": 0.8, "explained": 0.7}
    assert dimensions.describe(left) == "moves left (-0.8 px)"


def test_cli_stores_labels_in_the_card_and_is_idempotent(shipped_copy, mnist_dir, capsys):
    weights = shipped_copy
    before = json.loads(weights.with_suffix(".json").read_text())
    args = ["--checkpoint", str(weights), "--data-dir", str(mnist_dir), "--per-class", "3", "--held-out", "3"]
    assert atlas.main(args) == 0
    first = weights.with_suffix(".json").read_text()
    card = json.loads(first)
    for key, value in before.items():
        if key not in ("dimension_labels", "dimension_labels_meta"):
            assert card[key] == value  # the rest of the card is kept
    labels = card["dimension_labels"]
    assert len(labels) == 10 and all(len(rows) == 16 for rows in labels)
    for rows in labels:
        for r in rows:
            assert {"label", "effect", "sign", "strength", "z", "z_all", "z_paper", "region", "pose", "encoder",
                    "disagrees"} <= set(r)  # fmt: skip
            if r["effect"] == "local":
                assert r["label"].startswith("local: ") and abs(r["z"]) < 0.25
            else:
                assert r["effect"] in dimensions.EFFECTS and r["label"] == dimensions.WORDS[(r["effect"], r["sign"])]
                assert abs(r["z"]) == max(abs(v) for v in r["z_all"].values()) and r["strength"] >= 0
            assert r["pose"]["p1"] <= r["pose"]["p50"] <= r["pose"]["p99"] and r["pose"]["std"] >= 0
    meta = card["dimension_labels_meta"]
    assert meta["digits_per_class"] == [3] * 10 and "--per-class 3" in meta["command"]
    assert 0 <= meta["held_out"]["largest_effect"] <= 1 and meta["held_out"]["digits_per_class"] == 3
    assert sum(meta["summary"]["labels_by_effect"].values()) == 160
    maps = atlas.load_maps(weights)  # the difference maps beside the weights, and the poses they were made from
    assert maps.shape == (10, 16, 28, 28) and torch.isfinite(maps).all() and maps.abs().max() > 0
    poses = atlas.load_poses(weights)
    assert poses.shape == (10, 3, 16) and torch.isfinite(poses).all()
    for cls, rows in enumerate(labels):  # the stored percentiles are those of the stored poses
        assert float(poses[cls, :, 0].median()) == pytest.approx(rows[0]["pose"]["p50"], abs=1e-3)
    assert atlas.main(args) == 0
    assert weights.with_suffix(".json").read_text() == first  # same inputs, same file
    assert torch.equal(atlas.load_maps(weights), maps)
    assert "stored dimension_labels" in capsys.readouterr().out


def test_maps_that_are_missing_or_unreadable_are_none(tmp_path):
    from capsnet.checkpoint import atlas_path

    weights = tmp_path / "capsnet.safetensors"
    assert atlas.load_maps(weights) is None
    atlas_path(weights).write_bytes(b"not a safetensors file")
    assert atlas.load_maps(weights) is None
    atlas.save_maps(weights, torch.zeros(10, 16, 5, 5))  # not 28 x 28 maps
    assert atlas.load_maps(weights) is None
    atlas.save_maps(weights, torch.full((10, 16, 28, 28), 0.5))
    assert atlas.load_maps(weights).dtype == torch.float32 and not list(tmp_path.glob(".*.tmp"))


def test_cli_reports_bad_input(tmp_path, capsys):
    assert atlas.main(["--checkpoint", str(tmp_path / "missing.safetensors")]) == 2
    assert "No checkpoint" in capsys.readouterr().err
    assert atlas.main(["--per-class", "1"]) == 2
    assert atlas.main(["--held-out", "-1"]) == 2


def test_shipped_card_has_labels_for_every_dimension():
    from capsnet.checkpoint import load_model_card

    card = load_model_card(SHIPPED)
    if card is None:
        pytest.skip("no shipped model card")
    labels = card["dimension_labels"]
    assert [len(rows) for rows in labels] == [16] * 10
    assert min(card["dimension_labels_meta"]["digits_per_class"]) >= 100
