"""Robustness of the CapsNet against the CNN baseline (capsnet.robustness): accuracy under the Transforms tab's
transforms, the affNIST-style random affine, and the CLI, on real MNIST test digits with small real, untrained
models (their accuracy is near chance, but every number must equal the one computed directly)."""

import pytest
import torch

from capsnet import equivariance, robustness
from capsnet.baseline import BaselineCNN, CNNConfig, class_scores, save_cnn
from capsnet.checkpoint import save_weights
from capsnet.model import CapsNet, CapsNetConfig

N = 24  # test digits for the library checks
IDENTITY_AFFINE = dict(angle_deg=0.0, shear=0.0, scale_x=1.0, scale_y=1.0, dx=0.0, dy=0.0)


@pytest.fixture(scope="module")
def digits(mnist_test):
    return mnist_test.images[:N].unsqueeze(1).float().div(255.0), mnist_test.labels[:N]


@pytest.fixture(scope="module")
def models():
    """A small untrained CapsNet and a small untrained CNN left in train mode (dropout on): the code must score in
    eval mode."""
    torch.manual_seed(0)
    caps = CapsNet(CapsNetConfig(conv1_channels=16, primary_types=4, decoder_hidden=(16, 16))).eval()
    return {"capsnet": caps, "cnn": BaselineCNN(CNNConfig(channels=(16, 16, 16), hidden=(32, 32)))}


def plain_accuracy(model, x, labels):
    was = model.training
    model.eval()
    with torch.inference_mode():
        acc = float((class_scores(model, x).argmax(1) == labels).double().mean())
    model.train(was)
    return acc


def test_identity_magnitudes_give_the_plain_accuracy(digits, models):
    x, y = digits
    plain = {name: plain_accuracy(m, x, y) for name, m in models.items()}
    for name in robustness.GRID:
        got = robustness.accuracy_under(models, x, y, name, [equivariance.IDENTITY[name]], batch_size=12)
        assert got == {m: [pytest.approx(plain[m])] for m in models}, name
    assert models["cnn"].training  # the caller's mode is restored


def test_predictions_are_made_in_eval_mode_and_batches_do_not_matter(digits, models):
    x, _ = digits
    models["cnn"].eval()
    with torch.inference_mode():
        expected = {name: class_scores(m, x).argmax(1) for name, m in models.items()}
    models["cnn"].train()
    for batch_size in (5, N):
        got = robustness.predictions(models, x, batch_size)
        assert all(torch.equal(got[name], expected[name]) for name in models), batch_size
    assert models["cnn"].training


def test_a_transform_is_scored_on_the_transformed_digits(digits, models):
    x, y = digits
    caps = models["capsnet"]
    got = robustness.accuracy_under(caps, x, y, "rotation", [30.0, 0.0], clean=-1.0)
    assert got[0] == pytest.approx(plain_accuracy(caps, equivariance.affine(x, angles_deg=30.0), y))
    assert got[1] == -1.0  # with `clean` given, the identity point is taken from it, not recomputed
    with pytest.raises(ValueError, match="unknown transform"):
        robustness.accuracy_under(caps, x, y, "shear", [0.0], clean=1.0)
    thick = robustness.accuracy_under(models, x, y, "thickness", [2.0], batch_size=7)
    assert thick["cnn"] == [pytest.approx(plain_accuracy(models["cnn"], equivariance.thickness(x, 2.0), y))]


def test_grid_starts_or_passes_through_the_identity_and_stays_in_the_limits():
    for name, values in robustness.GRID.items():
        lo, hi = equivariance.LIMITS[name]
        assert equivariance.IDENTITY[name] in values and all(lo <= v <= hi for v in values)
        assert list(values) == sorted(values)


def test_the_general_affine_agrees_with_the_transforms_tab_conventions(digits):
    x, _ = digits
    params = {"angle_deg": torch.tensor([25.0, -10.0]), "shear": torch.zeros(2), "scale_x": torch.tensor([1.2, 0.8]),
              "scale_y": torch.tensor([1.2, 0.8]), "dx": torch.tensor([2.0, -1.5]), "dy": torch.tensor([-3.0, 1.0])}
    A, t = robustness.forward_maps(params)
    theta = robustness.grid_matrices(A, t)
    expected = equivariance.affine_matrices([25.0, -10.0], [1.2, 0.8], [2.0, -1.5], [-3.0, 1.0])
    assert torch.allclose(theta, expected, atol=1e-6)
    warped = robustness.warp(x[:2], theta)
    same = equivariance.affine(x[:2], [25.0, -10.0], [1.2, 0.8], [2.0, -1.5], [-3.0, 1.0])
    assert torch.allclose(warped, same, atol=1e-6) and warped.min() >= 0 and warped.max() <= 1


def test_a_shear_moves_the_bottom_of_a_dot_pattern_right():
    """Shear multiplies y (down) into x: a dot below the centre moves right, one above moves left."""
    img = torch.zeros(1, 1, 28, 28)
    img[0, 0, 20, 14] = img[0, 0, 6, 14] = 1.0  # 6.5 px below / 7.5 px above the centre (13.5, 13.5)
    params = {k: torch.tensor([v]) for k, v in dict(IDENTITY_AFFINE, shear=0.2).items()}
    out = robustness.warp(img, robustness.grid_matrices(*robustness.forward_maps(params)))[0, 0]
    cols = torch.arange(28.0)
    below, above = (out[20] * cols).sum() / out[20].sum(), (out[6] * cols).sum() / out[6].sum()
    assert below == pytest.approx(14 + 0.2 * 6.5, abs=1e-4) and above == pytest.approx(14 - 0.2 * 7.5, abs=1e-4)


def test_random_affine_respects_the_stated_ranges_and_can_be_recovered(digits):
    x, _ = digits
    warped, params = robustness.random_affine(x, torch.Generator().manual_seed(3))
    assert warped.shape == x.shape and warped.min() >= 0 and warped.max() <= 1
    big = robustness.random_affine_params(2000, torch.Generator().manual_seed(1))
    for k, (lo, hi) in robustness.AFFINE_RANGES.items():
        assert lo <= float(big[k].min()) and float(big[k].max()) <= hi, k
        assert big[k].min() < lo + 0.05 * (hi - lo) and big[k].max() > hi - 0.05 * (hi - lo), k  # the whole range
    assert robustness.AFFINE_RANGES["angle_deg"] == (-20.0, 20.0) and robustness.AFFINE_RANGES["shear"] == (-0.2, 0.2)
    # the matrix really is R(angle) @ shear @ scale: decompose the grid matrix back (forward A = inverse of its 2x2)
    theta = robustness.grid_matrices(*robustness.forward_maps(params)).double()
    A = torch.linalg.inv(theta[:, :, :2])
    scale_x = A[:, :, 0].norm(dim=1)
    angle = torch.rad2deg(torch.atan2(-A[:, 1, 0], A[:, 0, 0]))
    c, s = torch.cos(torch.deg2rad(angle)), torch.sin(torch.deg2rad(angle))
    upper = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2) @ A  # R^T A = shear @ scale
    t = -(A @ theta[:, :, 2:])[..., 0] * 28 / 2
    got = {"angle_deg": angle, "scale_x": scale_x, "scale_y": upper[:, 1, 1], "shear": upper[:, 0, 1] / upper[:, 1, 1],
           "dx": t[:, 0], "dy": t[:, 1]}
    for k, v in got.items():
        assert torch.allclose(v, params[k], atol=1e-4), k
    assert upper[:, 1, 0].abs().max() < 1e-5


def test_random_affine_is_deterministic_for_a_seed(digits):
    x, _ = digits
    a, pa = robustness.random_affine(x, torch.Generator().manual_seed(7))
    b, pb = robustness.random_affine(x, torch.Generator().manual_seed(7))
    c, _ = robustness.random_affine(x, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and all(torch.equal(pa[k], pb[k]) for k in pa) and not torch.equal(a, c)
    first = robustness.random_affine_params(5, torch.Generator().manual_seed(7))
    assert all(torch.equal(first[k], pa[k][:5]) for k in pa)  # a --limit run gets the full run's affines


def test_affine_accuracy_and_the_frame_share(digits, models):
    x, y = digits
    r = robustness.affine_accuracy(models, x, y, seed=0, batch_size=10)
    params = robustness.random_affine_params(N, torch.Generator().manual_seed(0))
    theta = robustness.grid_matrices(*robustness.forward_maps(params))
    assert r["accuracy"]["cnn"] == pytest.approx(plain_accuracy(models["cnn"], robustness.warp(x, theta), y))
    assert 0.5 <= r["inside_frame"] <= 1.0
    ident = {k: torch.full((N,), v) for k, v in IDENTITY_AFFINE.items()}
    far = dict(ident, dx=torch.full((N,), 14.0))
    assert robustness.inside_frame(x, *robustness.forward_maps(ident)).all()
    assert not robustness.inside_frame(x, *robustness.forward_maps(far)).any()


def test_cli_with_limit_prints_the_table_and_leaves_the_card_alone(digits, models, tmp_path, mnist_dir, capsys):
    """End to end on saved copies of the untrained models: the printed clean and affine rows are the library's
    accuracies on the same digits, every grid point gets a row, and --limit stores nothing."""
    caps, cnn = tmp_path / "capsnet.safetensors", tmp_path / "cnn.safetensors"
    save_weights(caps, models["capsnet"])
    save_cnn(cnn, models["cnn"])
    card = caps.with_suffix(".json")
    card.write_text('{"name": "untrained"}\n')
    argv = ["--checkpoint", str(caps), "--cnn-checkpoint", str(cnn), "--data-dir", str(mnist_dir),
            "--limit", "10", "--batch-size", "10"]
    assert robustness.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    x, y = digits[0][:10], digits[1][:10]
    rows = {(r[0], r[1]): r[2:] for r in (line.split() for line in lines) if len(r) == 4 and r[-1].endswith("%")}
    assert len(rows) == sum(len(v) for v in robustness.GRID.values()) + 1  # and the affine row
    clean = next(line.split()[1:] for line in lines if line.startswith("clean "))
    assert clean == [f"{100 * plain_accuracy(models[m], x, y):.2f}%" for m in ("capsnet", "cnn")]
    affine = robustness.affine_accuracy(models, x, y)["accuracy"]
    assert rows[("affine", "random")] == [f"{100 * affine[m]:.2f}%" for m in ("capsnet", "cnn")]
    assert any("10 MNIST test digits" in line for line in lines) and "not stored in the model card" in lines[-1]
    assert card.read_text() == '{"name": "untrained"}\n'


@pytest.mark.parametrize("bad", ["checkpoint", "cnn", "mnist", "limit"])
def test_bad_input_is_one_sentence_and_exit_code_2(bad, tmp_path, mnist_dir, capsys, monkeypatch):
    from torchvision.datasets import MNIST

    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])  # a missing MNIST is not fetched from anywhere
    cnn = tmp_path / "cnn.safetensors"
    save_cnn(cnn, BaselineCNN())
    argv = {"checkpoint": ["--checkpoint", str(tmp_path / "missing.safetensors"), "--cnn-checkpoint", str(cnn)],
            "cnn": ["--cnn-checkpoint", str(tmp_path / "no-cnn.safetensors")],
            "mnist": ["--cnn-checkpoint", str(cnn), "--data-dir", str(tmp_path / "nowhere")],
            "limit": ["--limit", "0"]}[bad]
    if bad != "mnist":
        argv += ["--data-dir", str(mnist_dir)]
    assert robustness.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    named = {"checkpoint": "missing.safetensors", "cnn": "no-cnn.safetensors", "mnist": "MNIST", "limit": "--limit"}
    assert named[bad] in err


def test_the_recipe_is_stated_with_its_ranges():
    text = robustness.recipe()
    assert text.startswith("The affNIST files") and "+-20 degrees" in text and "+-0.2" in text
    assert "0.8-1.2" in text and "+-3 px" in text
