"""Routing inspector: grid layout, couplings, receptive fields, overlays and figures (real model)."""
import math

import numpy as np
import pytest
import torch

from capsnet import primary_capsule_index, primary_capsule_position, receptive_field
from explorer.inputs.examples import synthetic_examples
from explorer.views import couplings
from explorer.views import routing as routing_views



@pytest.fixture(scope="module")
def image():
    return torch.from_numpy(synthetic_examples()[3][2])  # a synthetic 3


@pytest.fixture(scope="module")
def out(model, image):
    with torch.inference_mode():
        return model(image[None, None], routing_iterations=3)


def test_grids_match_capsule_positions(out):
    rng = np.random.default_rng(0)
    for k in (0, 3, 9):
        for it in (1, 2, 3, -1):
            grid = couplings.coupling_grid(out, k, it)
            assert grid.shape == (32, 6, 6)
            i0 = couplings.resolve_iteration(out, it)
            for idx in rng.integers(0, 1152, 20).tolist() + [0, 1151]:
                t, r, c = primary_capsule_position(idx)
                assert grid[t, r, c] == pytest.approx(out.couplings[0, i0, idx, k].item())
    act = couplings.activity_grid(out)
    for idx in (0, 37, 500, 1151):
        t, r, c = primary_capsule_position(idx)
        assert act[t, r, c] == pytest.approx(out.primary_lengths[0, idx].item())


def test_first_iteration_uniform_then_sharpens(out):
    for k in range(10):
        np.testing.assert_allclose(couplings.coupling_grid(out, k, 1), 0.1, atol=1e-6)
    h = couplings.coupling_entropy_by_iteration(out)
    assert h.shape == (3,)
    assert h[0] == pytest.approx(math.log(10), abs=1e-5)
    assert np.all(h[1:] <= h[0] + 1e-6)
    assert couplings.coupling_entropy_by_iteration(out, weighted=False)[0] == pytest.approx(math.log(10), abs=1e-5)


def test_iteration_numbering(out):
    assert couplings.resolve_iteration(out, 1) == 0
    assert couplings.resolve_iteration(out, 3) == couplings.resolve_iteration(out, -1) == 2
    for bad in (0, 4, -4):
        with pytest.raises(ValueError):
            couplings.resolve_iteration(out, bad)
    with pytest.raises(ValueError):
        couplings.coupling_grid(out, 10)


def test_tiled_layout_and_click_mapping(out):
    m = couplings.tile_layout(np.arange(1152))
    assert m.shape == (couplings.MAP_H, couplings.MAP_W) == (27, 55)
    assert np.isnan(m).sum() == 27 * 55 - 1152
    for idx in (0, 35, 36, 300, 1151):
        t, r, c = primary_capsule_position(idx)
        tr, tc = divmod(t, 8)
        y, x = tr * 7 + r, tc * 7 + c
        assert m[y, x] == idx
        assert couplings.capsule_at(y, x) == idx
    assert couplings.capsule_at(6, 0) is None  # gap row between tile rows


def test_receptive_field_matches_convolution(model):
    """Perturbing one input pixel changes only primary capsules whose receptive field contains it."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 1, 28, 28, generator=g)
    with torch.inference_mode():
        base = model.primary_capsules(x)[0]
    for py, px in ((0, 0), (13, 20), (27, 27), (5, 16)):
        x2 = x.clone()
        x2[0, 0, py, px] += 1.0
        with torch.inference_mode():
            changed = (model.primary_capsules(x2)[0] - base).abs().amax(-1) > 0  # (1152,)
        for idx in range(0, 1152, 7):
            t, r, c = primary_capsule_position(idx)
            top, left, bottom, right = receptive_field(r, c)
            inside = top <= py < bottom and left <= px < right
            if not inside:
                assert not changed[idx], (py, px, idx)
        covering = [primary_capsule_index(t, r, c) for t in range(32) for r in range(6) for c in range(6)
                    if receptive_field(r, c)[0] <= py < receptive_field(r, c)[2]
                    and receptive_field(r, c)[1] <= px < receptive_field(r, c)[3]]  # fmt: skip
        if covering:  # the perturbation does reach some capsule whose field covers it
            assert changed[covering].any()
        else:  # the last input row/column feeds only conv1 row/col 19, which PrimaryCaps (stride 2) never reads
            assert not changed.any()


def test_capsule_details(out):
    idx = primary_capsule_index(5, 2, 4)
    d = couplings.capsule_details(out, idx)
    assert (d["type"], d["row"], d["col"]) == (5, 2, 4)
    assert d["couplings"].shape == (10,) and d["couplings_by_iteration"].shape == (3, 10)
    np.testing.assert_allclose(d["couplings_by_iteration"][0], 0.1, atol=1e-6)
    np.testing.assert_allclose(d["couplings"], out.couplings[0, -1, idx].numpy(), rtol=1e-6)
    assert d["couplings"].sum() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(d["agreement"], out.agreement[0, idx].numpy(), rtol=1e-6)
    assert d["length"] == pytest.approx(out.primary_lengths[0, idx].item())
    assert d["receptive_field"] == receptive_field(2, 4) == (4, 8, 21, 25)
    fig = routing_views.capsule_details_figure(out, idx).to_plotly()
    assert len(fig.data) == 4  # 3 iterations of couplings + agreement


def test_overlays(out, image):
    idx = primary_capsule_index(0, 1, 2)
    rf = couplings.receptive_field_overlay(image, idx)
    assert rf.shape == (224, 224, 3) and rf.dtype == np.uint8
    top, left, bottom, right = (8 * v for v in receptive_field(1, 2))
    assert tuple(rf[top, left + 20]) == (0, 200, 255)  # rectangle edge
    assert couplings.receptive_field_overlay(image.numpy(), idx, scale=4).shape == (112, 112, 3)

    m = couplings.routing_evidence_map(out, 3)
    assert m.shape == (28, 28) and m.dtype == np.float32
    assert m.min() >= 0 and m.max() == pytest.approx(1.0)
    raw = couplings.routing_evidence_map(out, 3, normalize=False, relative=False)
    w = (couplings.coupling_grid(out, 3) * couplings.activity_grid(out)).sum(0)
    assert raw[0, 0] == pytest.approx(w[0, 0], rel=1e-5)  # only capsule position (0,0) sees the corner
    assert raw[26, 26] == pytest.approx(w[5, 5], rel=1e-5)
    assert not raw[27].any() and not raw[:, 27].any()  # no receptive field reaches the last row/column
    assert raw[14, 14] == pytest.approx(w.sum(), rel=1e-5)  # the centre is seen by every position
    ev = couplings.routing_evidence_overlay(out, image, 3)
    assert ev.shape == (224, 224, 3) and ev.dtype == np.uint8


def test_relative_evidence(out):
    # before routing every coupling is the uniform 0.1: no pixel routes *towards* any class
    for k in range(10):
        assert not couplings.routing_evidence_map(out, k, iteration=1).any()
    m = couplings.routing_evidence_map(out, 3, normalize=False)
    w = ((couplings.coupling_grid(out, 3) - 0.1) * couplings.activity_grid(out)).sum(0)
    assert m[0, 0] == pytest.approx(max(0.0, w[0, 0]), rel=1e-4, abs=1e-6)
    assert m[14, 14] == pytest.approx(max(0.0, w.sum()), rel=1e-4, abs=1e-6)
    assert m.min() >= 0


def test_evidence_overlay_leaves_zero_evidence_untouched(out):
    blank = np.zeros((28, 28), np.float32)
    img = couplings.routing_evidence_overlay(out, blank, 3, alpha=0.0)
    assert img.max() == 0


def test_sharpening_and_compare_iterations(model, out, image):
    fig = routing_views.coupling_sharpening_figure(out, 3).to_plotly()
    assert len(fig.data) == 2
    assert list(fig.data[0].x) == [1, 2, 3]
    q = routing_views.coupling_quantiles(out, 3)
    assert q.shape == (3, 5)
    np.testing.assert_allclose(q[0], 0.1, atol=1e-6)  # uniform before routing
    assert np.all(np.diff(q, axis=1) >= 0)
    lengths = routing_views.lengths_by_iterations(model, image, (1, 3))
    assert lengths.shape == (2, 10)
    np.testing.assert_allclose(lengths[1], out.lengths[0].numpy(), rtol=1e-4, atol=1e-6)
    fig = routing_views.compare_iterations(model, image, iterations=(1, 2, 3, 5))
    assert len(fig.data) == 10 and list(fig.data[0].x) == [1, 2, 3, 5]
