"""Equivariance views and the Transforms tab's trajectory functions, without Gradio events."""
import copy
import json
import time

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from capsnet import CapsNet
from capsnet.equivariance import TRANSFORMS, TransformResponse, transform_response
from explorer.inputs.examples import synthetic_examples
from explorer.tabs import equivariance as equivariance_tab
from explorer.views import equivariance as equivariance_views


def fake_response(transform="rotation") -> TransformResponse:
    """Dim 3 rises with the value, dim 11 falls, dim 5 zig-zags, the rest are constant."""
    values = [-45.0, -20.0, 0.0, 20.0, 45.0]
    poses = torch.zeros(5, 16)
    poses[:, 3] = torch.tensor([0.0, 0.1, 0.15, 0.3, 0.31])
    poses[:, 11] = torch.tensor([0.5, 0.2, 0.1, 0.0, -0.4])
    poses[:, 5] = torch.tensor([0.0, 0.2, 0.1, 0.3, 0.25])
    lengths = torch.full((5, 10), 0.05)
    lengths[:, 7] = torch.tensor([0.6, 0.9, 0.95, 0.9, 0.5])
    return TransformResponse(transform, values, lengths, poses, 7, torch.zeros(5, 1, 28, 28))


def labelled_card() -> dict:
    labels = [[{"label": f"feature {c}.{d}", "effect": "", "sign": 1, "strength": 0.1, "explained": 0.2}
               for d in range(16)] for c in range(10)]  # fmt: skip
    labels[7][3]["label"] = "slant"
    labels[7][11]["label"] = "width"
    return {"dimension_labels": labels}


def test_tracking_dims_and_sentence_without_labels():
    r = fake_response()
    rho = r.rho.tolist()
    assert rho[3] == pytest.approx(1.0) and rho[11] == pytest.approx(-1.0) and rho[0] == 0.0
    assert equivariance_views.tracking_dims(rho, 2) == [3, 11]
    # equal |rho|: 11 moves further
    assert r.tracking(2) == [11, 3] == equivariance_views.tracking_dims(rho, 2, r.spread.tolist())
    text = equivariance_views.tracking_markdown("rotation", rho, 7, card=None, top=2)
    assert text.startswith("**Rotation** is tracked most by dims 3 (ρ = +1.00) and 11 (ρ = -1.00) of digit capsule 7")
    assert "labels" not in text
    assert equivariance_views.dimension_label(None, 7, 3) is None
    assert equivariance_views.dimension_label({"dimension_labels": [[]]}, 7, 3) is None


def test_sentence_and_figure_show_decoder_labels_where_the_card_has_them():
    r, card = fake_response(), labelled_card()
    text = equivariance_views.tracking_markdown("rotation", r.rho.tolist(), 7, card, top=2)
    assert "which the decoder labels “slant” (dim 3) and “width” (dim 11)" in text
    assert "disagree" not in text  # (these labels name no measure)
    fig = equivariance_views.trajectory_spec(r, card, top=2).to_plotly()
    names = [t.name for t in fig.data if t.showlegend]
    assert sorted(names) == ["dim 11 (ρ -1.00) “width”", "dim 3 (ρ +1.00) “slant”"]
    chips = equivariance_views.dimension_chips_html(r.rho.tolist(), 7, card, top=2)
    assert "<em>slant</em>" in chips and 'data-pose-dim="3" data-digit-class="7"' in chips
    card["dimension_labels"][7][3].update(effect="slant")
    card["dimension_labels"][7][11].update(effect="shift_x", label="moves right")
    text = equivariance_views.tracking_markdown("rotation", r.rho.tolist(), 7, card, top=2)
    assert "Encoder and decoder disagree on dim 11:" in text  # a rotation moves the slant, not the centroid


def test_trajectory_figure_highlights_and_carries_dimensions():
    r = fake_response()
    fig = equivariance_views.trajectory_spec(r, None, top=3, current=20.0).to_plotly()
    assert isinstance(fig, go.Figure)
    pose_traces = [t for t in fig.data if t.customdata is not None]
    assert sorted(int(t.customdata[0]) for t in pose_traces) == list(range(16))
    wide = {int(t.customdata[0]) for t in pose_traces if t.line.width > 2}
    assert wide == {3, 11, 5}  # the three largest |rho| (dim 5's zig-zag still correlates)
    lengths = [t for t in fig.data if t.customdata is None]
    assert len(lengths) == 10 and max(lengths, key=lambda t: t.line.width).name == "length 7"
    assert fig.layout.meta["digit_class"] == 7
    assert {s.x0 for s in fig.layout.shapes} == {0.0, 20.0}  # identity and current value
    spec = equivariance_views.trajectory_spec(r, None, 3, 20.0)
    assert go.Figure(json.loads(spec.to_json())) == fig  # plain JSON, same figure
    # all 16 buttons, strongest first
    chips = equivariance_views.dimension_chips_html(r.rho.tolist(), 7)
    assert chips.count("<button") == 16 and chips.count("eq-dim-top") == 3
    assert chips.index('data-pose-dim="3"') < chips.index('data-pose-dim="5"') < chips.index('data-pose-dim="0"')


def test_heatmap_from_card_and_without_one():
    rng = np.random.default_rng(0)
    m = rng.uniform(0, 1, (10, 16, 5))
    card = {"equivariance": {"transforms": list(TRANSFORMS), "median_abs_rho": m.tolist(),
                             "median_rho": (-m).tolist(), "digits_per_class": [100] * 10,
                             "command": "python -m capsnet.equivariance", "seconds": 12.0, "torch_threads": 1,
                             "method": "Spearman ..."}, **labelled_card()}  # fmt: skip
    fig = equivariance_views.equivariance_heatmap(card)
    heat = [t for t in fig.data if isinstance(t, go.Heatmap)]
    assert len(heat) == 10 and np.allclose(np.asarray(heat[4].z), m[4])
    assert heat[7].customdata[3][0][1] == "slant"  # the decoder's label in the hover
    md = equivariance_views.equivariance_markdown(card)
    assert "over 100 correctly classified" in md and "`python -m capsnet.equivariance`" in md
    for bad in (None, {}, {"equivariance": {"median_abs_rho": "x"}}, {"equivariance": {"median_abs_rho": [[1]]}}):
        f = equivariance_views.equivariance_heatmap(bad)
        assert not [t for t in f.data if isinstance(t, go.Heatmap)]
        assert "python -m capsnet.equivariance" in f.layout.annotations[0].text
        assert "python -m capsnet.equivariance" in equivariance_views.equivariance_markdown(bad)
    no_labels = copy.deepcopy(card)
    del no_labels["dimension_labels"]
    assert equivariance_views.equivariance_heatmap(no_labels).data[7].customdata[3][0][1] == ""


def marker_values(plot) -> set:
    """The x of the vertical lines in a gr.Plot value (PlotData holding plotly JSON)."""
    return {sh["x0"] for sh in json.loads(plot.plot)["layout"]["shapes"]}


@pytest.fixture(scope="module")
def untrained():
    torch.manual_seed(0)
    return CapsNet().eval()


def test_trajectory_outputs_and_marker(untrained):
    orig = synthetic_examples()[7][2]
    r, fig, text, chips, cache = equivariance_tab.trajectory_outputs(untrained, orig, "shift_x", None, current=2.0)
    assert r.transform == "shift_x" and len(r.values) == 19 and r.poses.shape == (19, 16)
    assert "shift in x" in text.lower() and chips.count("<button") == 16
    assert fig.type == "plotly" and 2.0 in marker_values(fig)
    assert equivariance_tab.trajectory_outputs(untrained, orig, "nonsense")[0].transform == "rotation"
    assert equivariance_tab.trajectory_outputs(None, orig, "rotation") == [None, None, "", "", None]
    assert list(cache["responses"]) == ["shift_x"]
    moved = equivariance_tab.redraw(r, None, 0, 1, -3, 0)
    assert -3.0 in marker_values(moved)
    assert equivariance_tab.current_value("thickness", 10, 1, 0, 0) is None
    assert equivariance_tab.current_value("scale", 10, 1.2, 0, 0) == 1.2
    assert equivariance_tab.current_value("rotation", float("nan")) is None


class ForwardCounter:
    """Counts the model's forward passes and the images in them (a forward hook on the real model)."""

    def __init__(self, model):
        self.calls, self.images = 0, 0
        self.handle = model.register_forward_hook(self)

    def __call__(self, module, args, output):
        self.calls += 1
        self.images += args[0].shape[0]


def test_sweep_cache_prefetches_in_one_pass_and_switches_without_a_forward_pass(untrained):
    """The Transforms tab: the chosen sweep (one pass of 19 images), then the other four together (one pass of
    76), after which choosing any transform redraws from the cache; a new original starts a new cache."""
    orig = synthetic_examples()[7][2]
    count = ForwardCounter(untrained)
    try:
        first = equivariance_tab.trajectory_outputs(untrained, orig, "rotation", None, 0.0)
        assert (count.calls, count.images) == (1, 19)
        cache = equivariance_tab.sweeps_for(untrained, orig, TRANSFORMS, first[-1])
        assert (count.calls, count.images) == (2, 19 + 4 * 19) and set(cache["responses"]) == set(TRANSFORMS)
        for name in TRANSFORMS:
            r = equivariance_tab.trajectory_outputs(untrained, orig, name, None, None, cache)[0]
            assert r is cache["responses"][name]
        assert count.calls == 2
        # the batched sweeps equal one-at-a-time sweeps, and share the class of the untransformed input
        alone = transform_response(untrained, torch.as_tensor(orig), "thickness")
        together = cache["responses"]["thickness"]
        assert together.digit_class == alone.digit_class == first[0].digit_class
        assert torch.allclose(together.poses, alone.poses, atol=1e-5)
        assert torch.allclose(together.lengths, alone.lengths, atol=1e-5)
        other = synthetic_examples()[3][2]
        fresh = equivariance_tab.trajectory_outputs(untrained, other, "rotation", None, None, cache)[-1]
        assert count.calls == 4 and list(fresh["responses"]) == ["rotation"]
        assert np.array_equal(fresh["original"], np.asarray(other, np.float32))
    finally:
        count.handle.remove()


def test_batch_threads_only_in_the_calling_thread():
    """A sweep may use 2 torch threads while other requests' threads keep their one; the count comes back."""
    import threading

    from explorer.session import batch_threads

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        seen = {}

        def other():
            torch.zeros(4).add_(1)  # torch sets a thread's count on its first parallel op
            seen["before"] = torch.get_num_threads()
            inside.wait()
            seen["during"] = torch.get_num_threads()
            done.set()

        inside, done = threading.Event(), threading.Event()
        t = threading.Thread(target=other)
        t.start()
        while "before" not in seen:
            time.sleep(0.01)
        with batch_threads(2) as n:
            assert n == 2 and torch.get_num_threads() == 2
            inside.set()
            done.wait(10)
        t.join()
        assert seen == {"before": 1, "during": 1}
        assert torch.get_num_threads() == 1
        with batch_threads(1) as n:  # never fewer than the thread has
            assert n == 1
    finally:
        torch.set_num_threads(before)


def test_transform_response_api_errors_are_json(untrained):
    from PIL import Image

    img = Image.fromarray((255 - np.asarray(synthetic_examples()[7][2]) * 255).astype(np.uint8))
    ok = equivariance_tab.transform_response_api(untrained, img, "thickness", "-0.5, 0, 0.5")
    assert ok["error"] is None and ok["values"] == [-0.5, 0.0, 0.5] and len(ok["lengths"][0]) == 10
    assert len(ok["poses"]) == 3 and len(ok["poses"][0]) == 16 and 0 <= ok["digit_class"] <= 9
    assert len(equivariance_tab.transform_response_api(untrained, img, "rotation")["values"]) == 19
    for args, words in [
        ((img, "skew", None), "unknown transform"),
        ((img, "rotation", "abc"), "list of numbers"),
        ((img, "rotation", {"a": 1}), "list of numbers"),
        ((img, "scale", [5]), "[0.25, 3]"),
        ((Image.new("L", (40, 40), 255), "rotation", None), "Nothing to read"),
    ]:
        res = equivariance_tab.transform_response_api(untrained, *args)
        assert res["digit_class"] is None and words.lower() in res["error"].lower()
    assert "No model" in equivariance_tab.transform_response_api(None, img, "rotation")["error"]
    # the identity point of the endpoint is the untransformed forward pass
    direct = transform_response(untrained, torch.zeros(28, 28).index_fill_(0, torch.arange(8, 20), 1.0), "scale", [1.0])
    assert direct.values == [1.0]
