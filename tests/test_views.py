"""View functions on a real model: figure contents, image sizes, pose edits through model.decode only."""
import numpy as np
import pytest
import torch

from explorer.inputs.preprocess import preprocess
from explorer.views import capsules as capsule_views



@pytest.fixture(scope="module")
def analysis(model, mnist_test):
    image = preprocess(mnist_test.images[0].numpy()).image
    return capsule_views.analyse(model, image)


def test_analyse_shapes(analysis):
    assert tuple(analysis.image.shape) == (1, 28, 28)
    out = analysis.output
    assert tuple(out.lengths.shape) == (1, 10) and tuple(out.poses.shape) == (1, 10, 16)
    assert analysis.digit == int(out.lengths[0].argmax())
    assert analysis.pose(3).shape == (16,)
    s = capsule_views.summary(analysis)
    assert s["digit"] == analysis.digit and len(s["lengths"]) == 10 and len(s["pose"]) == 16 and s["error"] is None


def test_lengths_figure(analysis):
    fig = capsule_views.lengths_figure(analysis).to_plotly()  # (validated against plotly's schema)
    bar = fig.data[0]
    assert list(bar.x) == [str(k) for k in range(10)]
    np.testing.assert_allclose(bar.y, analysis.lengths, rtol=1e-6)
    colors = list(bar.marker.color)
    assert colors[analysis.digit] == capsule_views.PREDICTED_COLOR
    assert sum(c == capsule_views.PREDICTED_COLOR for c in colors) == 1
    guides = sorted(s.y0 for s in fig.layout.shapes)
    assert guides == [capsule_views.M_MINUS, 0.5, capsule_views.M_PLUS]
    assert "%{y:.4f}" in bar.hovertemplate
    other = (analysis.digit + 1) % 10
    colors = list(capsule_views.lengths_figure(analysis, selected=other).to_plotly().data[0].marker.color)
    assert colors[other] == capsule_views.SELECTED_COLOR and colors[analysis.digit] == capsule_views.PREDICTED_COLOR


def test_images(analysis):
    img = capsule_views.model_input_image(analysis, scale=8)
    assert img.shape == (224, 224) and img.dtype == np.uint8
    np.testing.assert_array_equal(img[::8, ::8], capsule_views.to_uint8(analysis.image))


def test_slider_decode_changes_and_reset_restores(model, analysis):
    k = analysis.digit
    actual = capsule_views.decode_pose(model, analysis, k)
    np.testing.assert_allclose(actual, analysis.output.reconstructions[0, 0].numpy(), atol=1e-6)
    pose = analysis.pose(k).copy()
    pose[5] += 0.25
    edited = capsule_views.decode_pose(model, analysis, k, pose)
    assert edited.shape == (28, 28) and np.abs(edited - actual).max() > 1e-3
    restored = capsule_views.decode_pose(model, analysis, k, analysis.pose(k))  # the reset button's pose
    np.testing.assert_allclose(restored, actual, atol=1e-6)
    # "as another digit" equals the model's own masked reconstruction
    other = (k + 3) % 10
    with torch.inference_mode():
        ref = model(analysis.image[None], mask_class=other).reconstructions[0, 0].numpy()
    np.testing.assert_allclose(capsule_views.decode_pose(model, analysis, other), ref, atol=1e-5)


def test_perturbation_grid(model, analysis):
    k = analysis.digit
    poses = capsule_views.perturbation_poses(analysis.output.poses, k)
    assert tuple(poses.shape) == (16 * 11, 10, 16)
    diff = (poses - analysis.output.poses[0]).reshape(16, 11, 10, 16)
    for d in (0, 7, 15):
        np.testing.assert_allclose(diff[d, :, k, d].numpy(), capsule_views.PERTURBATIONS, atol=1e-6)
    assert diff[:, :, k].abs().sum() == pytest.approx(16 * sum(abs(x) for x in capsule_views.PERTURBATIONS), rel=1e-4)
    assert diff[:, :, [c for c in range(10) if c != k]].abs().max() == 0
    recon = capsule_views.perturbation_reconstructions(model, analysis, k)
    assert tuple(recon.shape) == (16, 11, 28, 28)
    decoded = capsule_views.decode_pose(model, analysis, k)
    np.testing.assert_allclose(recon[:, 5].numpy(), np.broadcast_to(decoded, (16, 28, 28)), atol=1e-5)
    grid = capsule_views.perturbation_grid(model, analysis, k)
    assert grid.shape == capsule_views.grid_size() == (16 * 56 + 15 * 2, 11 * 56 + 10 * 2) and grid.dtype == np.uint8
    # each dimension its own steps (the data's ±2σ): row d moves dimension d by its own deltas
    table = np.outer(np.arange(1, 17) / 100.0, np.linspace(-2, 2, 11))
    diff = (capsule_views.perturbation_poses(analysis.output.poses, k, table) - analysis.output.poses[0]).reshape(16, 11, 10, 16)
    for d in (0, 9, 15):
        np.testing.assert_allclose(diff[d, :, k, d].numpy(), table[d], atol=1e-6)
    assert capsule_views.perturbation_reconstructions(model, analysis, k, table).shape == (16, 11, 28, 28)


def test_save_png(tmp_path, model, analysis):
    from PIL import Image

    grid = capsule_views.perturbation_grid(model, analysis, analysis.digit)
    path = capsule_views.save_png(grid, tmp_path / "g.png")
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (grid.shape[1], grid.shape[0])
