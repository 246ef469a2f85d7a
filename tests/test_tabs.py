"""The tabs' plain functions (explorer/tabs/, views/capsule_map.py, session.new_analysis), without Gradio events."""
import json
import numpy as np
import pytest
import torch

from capsnet import CapsNet, primary_capsule_index, primary_capsule_position
from explorer.inputs.examples import MnistExamples, synthetic_examples
from explorer.session import Labelled, new_analysis
from explorer.tabs import examples as examples_tab
from explorer.tabs import routing as routing_tab
from explorer.tabs import transforms as transforms_tab
from explorer.views import capsule_map
from explorer.views import capsules as capsule_views
from explorer.views import couplings


@pytest.fixture(scope="module")
def untrained_model():
    torch.manual_seed(0)
    return CapsNet().eval()


@pytest.fixture(scope="module")
def analysis(untrained_model):
    return capsule_views.analyse(untrained_model, torch.tensor(synthetic_examples()[3][2])[None], "example")


# ---------------------------------------------------------------- capsule map


def test_coupling_map_image_shape_and_click_roundtrip(analysis):
    img = capsule_map.coupling_map_image(analysis.output, 3, selected=500)
    assert img.dtype == np.uint8 and img.shape == (*capsule_map.map_size(), 3)
    for index in (0, 35, 36, 500, 1151):
        y, x = capsule_map.cell_of(index)
        assert capsule_map.capsule_at_pixel((x + 0.5) * capsule_map.CELL, (y + 0.5) * capsule_map.CELL) == index
        assert capsule_map.capsule_from_select([(x + 0.2) * capsule_map.CELL, (y + 0.8) * capsule_map.CELL]) == index
    gap_x = couplings.GRID * capsule_map.CELL + 2  # the empty column between the first two tiles
    assert capsule_map.capsule_at_pixel(gap_x, 5) is None
    assert capsule_map.capsule_at_pixel(-1, 5) is None and capsule_map.capsule_at_pixel(10**5, 5) is None
    assert capsule_map.capsule_from_select(None) is None and capsule_map.capsule_from_select("x") is None


def test_coupling_map_image_iteration_one_is_white_and_selection_outlined(analysis):
    out = analysis.output
    first = capsule_map.coupling_map_image(out, 3, 1, activity_floor=0.0)
    # uniform couplings are white (veil fully off only at length 1, so allow the veil's grey)
    y, x = capsule_map.cell_of(0)
    px = first[y * capsule_map.CELL + 3, x * capsule_map.CELL + 3].astype(int)
    assert abs(px[0] - px[1]) < 3 and abs(px[1] - px[2]) < 3  # neutral (white or grey), not red/blue
    a = capsule_map.coupling_map_image(out, 3, selected=None)
    b = capsule_map.coupling_map_image(out, 3, selected=200)
    assert (a != b).any()
    assert np.allclose(capsule_map.diverging(np.array([0.0]))[0], [247, 247, 247])
    assert capsule_map.veil_opacity(np.array([0.1, 1.0]), 0.5).tolist() == pytest.approx([capsule_map.VEIL_MAX, 0.0])


# ---------------------------------------------------------------- routing tab


def test_resolve_capsule_and_iteration(analysis):
    most = int(analysis.output.primary_lengths[0].argmax())
    assert routing_tab.resolve_capsule(analysis) == most
    assert routing_tab.resolve_capsule(analysis, 5, 2, 3) == primary_capsule_index(5, 2, 3)
    assert routing_tab.resolve_capsule(analysis, 40, 2, 3) == most  # out of range
    assert routing_tab.resolve_capsule(analysis, float("nan"), 2, 3) == most
    assert routing_tab.clamp_iteration(analysis, None) == 3 and routing_tab.clamp_iteration(analysis, 1) == 1
    assert routing_tab.clamp_iteration(analysis, 9) == 3


def test_routing_outputs(analysis):
    m, caption, evidence, fig, field, md, t, r, c = routing_tab.map_outputs(analysis, 3, 2, 5, 2, 3)
    assert m.shape == (*capsule_map.map_size(), 3) and evidence.shape == (28, 28, 3)
    assert "iteration **2 of 3**" in caption
    assert (t, r, c) == (5, 2, 3) and field.shape == (28 * routing_tab.FIELD_SCALE, 28 * routing_tab.FIELD_SCALE, 3)
    assert f"Capsule {primary_capsule_index(5, 2, 3)}" in md and "agreement" in md
    assert json.loads(fig.plot)["layout"]["title"]["text"].startswith("Capsule")
    most_active = int(analysis.output.primary_lengths[0].argmax())  # no (or a bad) position: the most active
    assert routing_tab.map_outputs(analysis, 3, 3, None, 9, 1)[6:] == list(primary_capsule_position(most_active))
    m1, c1, _ = routing_tab.iteration_outputs(analysis, 3, 1, 0)
    m3, c3, _ = routing_tab.iteration_outputs(analysis, 3, 3, 0)
    assert m1.shape == m3.shape and "1 of 3" in c1 and "3 of 3" in c3
    # (an untrained model's primary capsules are all short, hence veiled; without the veil the iterations differ)
    out = analysis.output
    # (on the fixed scale an untrained model's tiny deviations from 0.1 round to white; zoomed in they differ)
    span = max(float(np.abs(out.couplings[0, :, :, 3].numpy() - 0.1).max()), 1e-3)  # the largest deviation
    assert (capsule_map.coupling_map_image(out, 3, 1, activity_floor=0, color_range=span)
            != capsule_map.coupling_map_image(out, 3, 3, activity_floor=0, color_range=span)).any()


def test_routing_summary(analysis):
    s = routing_tab.routing_summary(analysis)
    assert s["digit_class"] == analysis.digit and s["routing_iterations"] == 3
    assert np.asarray(s["couplings"]).shape == (32, 6, 6) and np.asarray(s["primary_lengths"]).shape == (32, 6, 6)
    assert s["iterations"][0]["quantiles"]["median"] == pytest.approx(0.1)
    assert [it["iteration"] for it in s["iterations"]] == [1, 2, 3]
    top = s["iterations"][-1]["top_capsules"][0]
    assert top["index"] == primary_capsule_index(top["type"], top["row"], top["col"])
    assert routing_tab.routing_summary(analysis, 4)["digit_class"] == 4
    assert "couplings" not in routing_tab.routing_summary(analysis, grids=False)
    with pytest.raises(ValueError):
        routing_tab.routing_summary(analysis, 10)


def test_routing_api_errors(untrained_model):
    assert routing_tab.routing_api(None, None, None, "no model")["error"] == "no model"
    assert "0..9" in routing_tab.routing_api(untrained_model, np.zeros((28, 28)), 11)["error"]
    blank = routing_tab.routing_api(untrained_model, np.zeros((40, 40), np.uint8))
    assert blank["digit"] is None and blank["error"]


def test_compare_iterations_outputs(untrained_model, analysis):
    fig = routing_tab.compare_iterations_outputs(untrained_model, analysis, ["1", 3, 3, 99, None])
    assert [int(x) for x in fig.data[0].x] == [1, 3]
    assert routing_tab.compare_iterations_outputs(untrained_model, None, [1]) is None
    assert list(routing_tab.compare_iterations_outputs(untrained_model, analysis, []).data[0].x) == list(routing_tab.COMPARE_DEFAULT)


# ---------------------------------------------------------------- transforms tab


def test_transform_params_and_describe():
    assert transforms_tab.transform_params(None, None, None, None) == transforms_tab.IDENTITY
    assert transforms_tab.transform_params(90, 3, -20, float("nan")) == (45.0, 1.5, -8.0, 0.0)
    assert "none" in transforms_tab.describe(0, 1, 0, 0)
    assert transforms_tab.describe(30, 1.2, 2, 0) == "Transformed input: rotated +30°, scaled ×1.2, shifted (+2, +0) px."


def test_transformed_input_is_not_recentred(untrained_model):
    orig = synthetic_examples()[7][2]
    lab = transforms_tab.transformed_input(orig, 0, 1, 4, 0)
    assert isinstance(lab, Labelled) and "shifted" in lab.note
    a, _ = new_analysis(untrained_model, lab, "transform")
    assert a.source == "transform" and a.note == lab.note
    # the shift survives: the model input is the transformed image, not re-centred by preprocessing
    assert torch.allclose(a.image, lab.image.reshape(1, 28, 28))
    assert transforms_tab.transformed_input(None, 10, 1, 0, 0) is None


def test_transform_view_outputs(untrained_model, analysis):
    from explorer.tabs import equivariance as equivariance_tab

    out = transforms_tab.transform_view_outputs(analysis, 3, None, 10, 1, 0, 0, None)
    assert isinstance(out[0], np.ndarray) and out[0].shape == (28, 28)
    assert out[2:6] == list(transforms_tab.IDENTITY)  # a new original resets the sliders
    moved, _ = new_analysis(untrained_model, transforms_tab.transformed_input(out[0], 20, 1, 0, 0), "transform")
    trajectories = equivariance_tab.trajectory_outputs(untrained_model, out[0], "rotation", None, 0)[0]
    again = transforms_tab.transform_view_outputs(moved, 3, out[0], 20, 1, 0, 0, trajectories)
    assert again[-2] is not None and again[-1].startswith("Transformed input: rotated +20")
    import json

    assert any(sh["x0"] == 20 for sh in json.loads(again[-2].plot)["layout"]["shapes"])  # the marker follows the angle
    assert len(trajectories.values) == 19 and trajectories.lengths.shape == (19, 10)


# ---------------------------------------------------------------- examples tab and inputs


def test_synthetic_input_and_gallery(untrained_model):
    lab = examples_tab.synthetic_input(3)
    assert isinstance(lab, Labelled) and "synthetic 3" in lab.note and "not from MNIST" in lab.note
    assert examples_tab.synthetic_input(99) is None and examples_tab.synthetic_input("x") is None
    assert len(examples_tab.gallery_items()) == len(synthetic_examples())
    a, _ = new_analysis(untrained_model, lab, "example")
    assert a.source == "example" and "synthetic 3" in a.note


def test_new_analysis_blank_float_input(untrained_model):
    a, msg = new_analysis(untrained_model, np.zeros((28, 28), np.float32))
    assert a is None and msg
    a, msg = new_analysis(untrained_model, torch.full((1, 28, 28), float("nan")))
    assert a is None


def test_mnist_helpers(mnist_dir, untrained_model):
    m = MnistExamples(mnist_dir)
    lab = examples_tab.mnist_input(m, 0)
    assert "MNIST test digit **#0**" in lab.note and "true label" in lab.note
    assert examples_tab.random_mnist_input(m, 1).note.startswith("MNIST test digit")
    assert examples_tab.mnist_input(m, 10**6) is None
    card = {"misclassified": [0, 1], "misclassified_predictions": [5, 6]}
    choices = examples_tab.misclassified_choices(m, card)
    assert [v for _, v in choices] == [0, 1] and "predicted 5" in choices[0][0]
    assert examples_tab.misclassified_choices(m, None) == []
    assert "MNIST test set" in examples_tab.mnist_status(m, card)


def test_mnist_unavailable(tmp_path):
    m = MnistExamples(None)
    assert examples_tab.mnist_input(m, 0) is None and examples_tab.random_mnist_input(m) is None
    assert examples_tab.misclassified_choices(m, {"misclassified": [1]}) == []
    assert "unavailable" in examples_tab.mnist_status(m, None)


def test_structure_outputs(analysis):
    """The Routing tab's overview and structure sections for a new input and another iteration (component values)."""
    from explorer.tabs import routing_structure as rs

    grids, counter, counter_md = rs.overview_outputs(analysis, 3)
    overlay, caption, links = rs.contribution_outputs(analysis, 3)
    figures = [grids, counter, links, rs.types_output(analysis, 3), rs.blank_output(analysis),
               *rs.iterations_outputs(analysis, 3)]  # fmt: skip
    for p in figures:
        assert p.type == "plotly" and json.loads(p.plot)["data"]
    assert overlay.dtype == np.uint8 and overlay.ndim == 3
    assert "runner-up" in caption and ("either way" in counter_md or "flips" in counter_md)
    assert "iteration 3" in json.loads(links.plot)["layout"]["title"]["text"]
    assert "iteration 1" in json.loads(rs.contribution_outputs(analysis, 1)[2].plot)["layout"]["title"]["text"]
    assert "iteration 1" in json.loads(rs.grids_output(analysis, 1).plot)["layout"]["title"]["text"]
    # out-of-range iterations fall back to the last one
    assert "iteration 3" in json.loads(rs.contribution_outputs(analysis, 99)[2].plot)["layout"]["title"]["text"]
    summary = routing_tab.routing_summary(analysis, 3, grids=False)
    norms = np.asarray(summary["pre_squash_norms"])
    assert np.asarray(summary["contributions"]).sum() == pytest.approx(norms[3], abs=2e-3)


def test_perturbation_grid_in_the_papers_or_the_datas_steps(model):
    """The Perturbations tab's image: the paper's ±0.25 by default, each dimension's ±2σ with the shipped card's
    statistics, and the paper's steps again where a card has none."""
    from capsnet.checkpoint import load_model_card

    from explorer.tabs import perturbations
    from explorer.views import pose as pose_views

    from .conftest import SHIPPED

    card = load_model_card(SHIPPED) if SHIPPED.exists() else None
    if card is None:
        pytest.skip("no shipped model card")
    a = capsule_views.analyse(model, torch.tensor(synthetic_examples()[3][2])[None], "example")
    ui = type("UI", (), {"model": model, "card": card})()
    k = a.digit
    paper, caption = perturbations.grid_image(ui, a, k)
    data, data_caption = perturbations.grid_image(ui, a, k, perturbations.DATA)
    assert "0.25" in caption and "2σ" in data_caption and paper.shape == data.shape and (paper != data).any()
    expected = capsule_views.perturbation_grid(model, a, k, pose_views.data_deltas(card, k))
    assert (data[:, -expected.shape[1]:] == expected).all()  # the labels stand left of the grid
    ui.card = None
    assert perturbations.grid_image(ui, a, k, perturbations.DATA)[1] == caption


def test_transforms_compare_with_the_cnn_baseline(untrained_model, analysis):
    """Along each sweep the CNN's softmax for the class beside the capsule lengths (plot and endpoint), and both
    models' predictions for the current input in the status line."""
    import json

    from capsnet.baseline import BaselineCNN
    from explorer.tabs import equivariance as equivariance_tab

    torch.manual_seed(0)
    cnn = BaselineCNN().eval()
    orig = analysis.image.reshape(28, 28).numpy()
    r, fig, *_ = equivariance_tab.trajectory_outputs(untrained_model, orig, "scale", None, None, None, cnn)
    assert r.baseline.shape == (19, 10) and torch.allclose(r.baseline.sum(1), torch.ones(19), atol=1e-5)
    with torch.inference_mode():
        assert torch.allclose(r.baseline, torch.softmax(cnn(r.images), -1), atol=1e-6)
    cnn_traces = [t for t in json.loads(fig.plot)["data"] if t["name"].startswith("CNN P(")]
    assert len(cnn_traces) == 1 and cnn_traces[0]["y"] == pytest.approx(r.baseline[:, r.digit_class].tolist(), abs=1e-4)
    alone = equivariance_tab.trajectory_outputs(untrained_model, orig, "scale", None, None, None)[1]
    assert not any(t["name"].startswith("CNN") for t in json.loads(alone.plot)["data"])
    api = equivariance_tab.transform_response_api(untrained_model, orig, "rotation", [0, 30], None, cnn)
    assert api["error"] is None and np.asarray(api["cnn_probabilities"]).shape == (2, 10)
    assert "cnn_probabilities" not in equivariance_tab.transform_response_api(untrained_model, orig, "rotation", [0])
    status = transforms_tab.transform_view_outputs(analysis, 3, None, 0, 1, 0, 0, None, cnn=cnn)[-1]
    with torch.inference_mode():
        p = torch.softmax(cnn(analysis.image[None]), -1)[0]
    assert f"CNN baseline: **{int(p.argmax())}** (softmax {float(p.max()):.2f})" in status
    assert f"CapsNet: **{analysis.digit}**" in status
    assert "CNN" not in transforms_tab.transform_view_outputs(analysis, 3, None, 0, 1, 0, 0, None)[-1]
