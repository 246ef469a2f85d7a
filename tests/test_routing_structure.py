"""Routing-structure views on the real model and real MNIST digits: the contribution identity, the link widths,
the fixed coupling scale, polarization, logits, the uniform-coupling counterfactual and the blank-image change."""
import json
import math

import numpy as np
import pytest
import torch

from capsnet import primary_capsule_position
from explorer.views import routing_dynamics
from explorer.views import contributions
from explorer.views import couplings


@pytest.fixture(scope="module")
def digits(mnist_test):
    return mnist_test.images[:4].float().div(255.0).unsqueeze(1)


@pytest.fixture(scope="module")
def outs(model, digits):
    with torch.inference_mode():
        return [model(digits[i : i + 1], trace_routing=True) for i in range(len(digits))]


def test_contributions_add_up_to_the_pre_squash_length(outs):
    for out in outs:
        norms = contributions.pre_squash_norms(out)
        for it in (1, 2, 3):
            a = contributions.contributions(out, it)
            np.testing.assert_allclose(a.sum(0), contributions.pre_squash_norms(out, it), rtol=1e-4, atol=1e-5)
        for k in range(10):
            assert contributions.contribution_grid(out, k).sum() == pytest.approx(norms[k], rel=1e-4)
        np.testing.assert_allclose(contributions.type_summary(out).sum(0), norms, rtol=1e-4)
        # and squash(|s_j|) is the digit capsule's length
        np.testing.assert_allclose(norms**2 / (1 + norms**2), out.lengths[0].numpy(), rtol=1e-4)


def test_contribution_grid_layout_and_panels(outs):
    out = outs[0]
    k1, k2 = contributions.ranked_classes(out)
    assert k1 == int(out.predictions[0]) and k2 != k1
    assert out.lengths[0, k2] == out.lengths[0].topk(2).values[1]
    p = contributions.contribution_panels(out)
    np.testing.assert_allclose(p["grids"][2], p["grids"][0] - p["grids"][1])
    a = out.contributions[0, -1]
    for idx in (0, 37, 800, 1151):
        t, r, c = primary_capsule_position(idx)
        assert p["grids"][0][t, r, c] == pytest.approx(a[idx, k1].item())


def test_pixel_map_spreads_each_position_over_its_receptive_field(outs):
    grid = contributions.contribution_grid(outs[0], 3)
    m = contributions.contribution_pixel_map(grid)
    assert m.shape == (28, 28)
    assert m.sum() == pytest.approx(17 * 17 * grid.sum(), rel=1e-4)  # every field is 17x17
    assert (m[27, :] == 0).all() and (m[:, 27] == 0).all()  # no capsule sees the last row / column
    assert m[0, 0] == pytest.approx(grid[:, 0, 0].sum(), rel=1e-5)  # only position (0, 0) sees pixel (0, 0)


def test_overlay_and_figures_are_valid_plotly(outs, digits):
    out = outs[1]
    img, span = contributions.contribution_overlay(out, digits[1, 0])
    assert img.dtype == np.uint8 and img.shape == (112, 3 * 112 + 2 * contributions.PANEL_GAP, 3)
    assert span > 0
    figs = [contributions.contribution_grids_figure(out), contributions.type_summary_figure(out),
            contributions.links_figure(out), routing_dynamics.polarization_figure(out),
            routing_dynamics.logits_figure(out), routing_dynamics.counterfactual_figure(out),
            routing_dynamics.blank_change_figure(out)]  # fmt: skip
    for f in figs:
        d = f.to_dict()  # plotly.js knows subplot axes as x, x2, ... (an "x1" would silently use default axes)
        assert not {"xaxis1", "yaxis1"} & set(d["layout"])
        assert all(t.get("xaxis") != "x1" and t.get("yaxis") != "y1" for t in d["data"])
        go_fig = f.to_plotly()  # plotly validates every property
        assert len(go_fig.data) >= 1
        assert json.loads(f.to_json())["data"]
    g = figs[0].to_plotly()
    k1, k2 = contributions.ranked_classes(out)
    tiles = couplings.tile_layout(contributions.contribution_grid(out, k1))
    np.testing.assert_allclose(np.array(g.data[0].z, dtype=float), np.round(tiles, 5), equal_nan=True)
    assert g.data[0].zmin == -g.data[0].zmax  # symmetric limits, printed in the title
    scale = g.data[0].colorscale  # negative blue, zero white, positive red (explicit, whoever resolves it)
    assert scale[0][1] == "rgb(33,102,172)" and scale[len(scale) // 2][1] == "rgb(247,247,247)" and scale[-1][1] == "rgb(178,24,43)"
    assert f"±{g.data[0].zmax:.4f}" in g.layout.title.text


def test_link_widths_are_proportional_to_contributions(outs):
    out = outs[2]
    for it in (1, 3):
        fig = contributions.links_figure(out, it, k=8).to_dict()
        a = contributions.contributions(out, it)
        top = contributions.top_capsules(out, it, 8)
        assert (np.abs(a).sum(1)[top][:-1] >= np.abs(a).sum(1)[top][1:]).all()
        links = [t for t in fig["data"] if t.get("fill") == "toself"]
        assert len(links) == 20 and {t["meta"] for t in links} == set(range(10))
        widths, values = [], []
        for t in links:
            y = np.array([np.nan if v is None else v for v in t["y"]], float).reshape(-1, 6)
            widths += list(y[:, 3] - y[:, 0])  # band height at the primary capsule's end
            j = t["meta"]
            sign = 1 if t["showlegend"] else -1
            values += [v for v in a[top, j] if v * sign > 0]
        widths, values = np.array(widths), np.abs(values)
        assert len(widths) == np.count_nonzero(a[top])
        np.testing.assert_allclose(widths / widths.max(), np.sort(values)[np.argsort(np.argsort(widths))] / values.max(),
                                   atol=2e-3)  # fmt: skip


def test_coupling_scale_is_fixed_and_polarization_grows(outs):
    for out in outs:
        cap = routing_dynamics.coupling_scale_caption(out, int(out.predictions[0]))
        assert "blue 0.05" in cap and "red 0.15" in cap
        p = routing_dynamics.polarization(out)
        assert p.shape == (3, 1152)
        assert np.allclose(p[0], 0, atol=1e-6)  # uniform at iteration 1
        assert ((p >= 0) & (p <= 1)).all()
        c = out.couplings[0, -1].double().numpy()
        h = -(c * np.log(c)).sum(1)
        np.testing.assert_allclose(p[-1], 1 - h / math.log(10), atol=1e-6)
        assert p[-1].mean() > p[1].mean() > 0  # more iterations polarize more
    fig = routing_dynamics.polarization_figure(outs[0]).to_dict()
    assert [t["name"] for t in fig["data"]] == ["iteration 2", "iteration 3"]  # iteration 1 is all 0, said in the title
    assert all(sum(t["y"][::2]) == 1152 for t in fig["data"]) and "all 1152 capsules at 0" in fig["layout"]["title"]["text"]


def test_logit_and_agreement_histograms(outs):
    out = outs[0]
    b = routing_dynamics.centred_logits(out)
    assert np.allclose(b[0], 0) and np.allclose(b.sum(-1), 0, atol=1e-4)
    np.testing.assert_allclose(routing_dynamics.agreement_by_iteration(out), out.projections[0].numpy())
    fig = routing_dynamics.logits_figure(out).to_dict()
    assert len(fig["data"]) == 2 * 2 * 3  # (logits, agreement) x (digit, others) x iterations
    for t in fig["data"]:
        assert sum(t["y"][::2]) == pytest.approx(1.0, abs=1e-3)  # fractions of votes per histogram


def test_counterfactual_is_one_routing_iteration(model, outs, digits):
    for i, out in enumerate(outs):
        c = routing_dynamics.counterfactual(out)
        with torch.inference_mode():
            one = model(digits[i : i + 1], routing_iterations=1).lengths[0].numpy()
        np.testing.assert_allclose(c["uniform"], one, atol=1e-5)
        assert c["flipped"] == (c["uniform_digit"] != c["routed_digit"])
        text = routing_dynamics.counterfactual_text(out)
        assert ("flips" in text) == c["flipped"]
        assert f"{c['routed'][c['routed_digit']]:.3f}" in text


def test_blank_change_is_zero_for_a_blank_image(model, outs):
    with torch.inference_mode():
        blank = model(torch.zeros(1, 1, 28, 28), trace_routing=True)
    assert float(blank.blank_distance.abs().max()) < 1e-5
    d = outs[0].blank_distance[0].numpy()
    assert d.max() > 0.1
    fig = routing_dynamics.blank_change_figure(outs[0]).to_plotly()
    np.testing.assert_allclose(np.array(fig.data[1].z, float), np.round(couplings.tile_layout(d), 4), equal_nan=True)


def test_views_need_a_traced_forward(model, digits):
    with torch.inference_mode():
        plain = model(digits[:1])
    with pytest.raises(ValueError, match="trace_routing"):
        contributions.contributions(plain)


def test_routing_study_markdown():
    assert "--routing-study" in routing_dynamics.routing_study_markdown(None)
    assert "unreadable" in routing_dynamics.routing_study_markdown({"routing_study": {"accuracy": {"1": 0.9}}})
    s = {"n": 10000, "routing_iterations": 3, "accuracy": {"1": 0.995, "3": 0.9951}, "changed_vs_uniform": {"1": 0, "3": 7},
         "changed_by_routing": 7, "fixed_by_routing": 4, "broken_by_routing": 3, "runtime_s": 12.5}  # fmt: skip
    md = routing_dynamics.routing_study_markdown({"routing_study": s})
    assert "10,000" in md and "**7**" in md and "| 3 | 99.51% | 7 |" in md and "4 fixed" in md


def test_a_test_digit_whose_prediction_routing_flips(model, mnist_test):
    """The model card lists the test digits whose prediction routing changes; the counterfactual view agrees."""
    from capsnet.checkpoint import load_model_card

    from .conftest import SHIPPED

    study = (load_model_card(SHIPPED) or {}).get("routing_study") if SHIPPED.exists() else None
    if not study or not study.get("changed_indices"):
        pytest.skip("no routing study with changed predictions in the shipped model card")
    i = study["changed_indices"][0]
    with torch.inference_mode():
        out = model(mnist_test.images[i : i + 1].float().div(255.0).unsqueeze(1), trace_routing=True)
    c = routing_dynamics.counterfactual(out)
    assert c["flipped"] and c["uniform_digit"] != c["routed_digit"]
    assert "Routing flips the prediction" in routing_dynamics.counterfactual_text(out)
    assert "routing flips" in routing_dynamics.counterfactual_figure(out).to_dict()["layout"]["title"]["text"]
