"""capsnet.equivariance: the input transforms, Spearman's rho, one-pass sweeps and the offline matrix command."""
import json
import shutil

import pytest
import torch

from capsnet import equivariance

from .conftest import SHIPPED


def stroke_images() -> torch.Tensor:
    """Synthetic strokes: a 3 px vertical bar, a 1 px diagonal, a ring, a soft (anti-aliased) bar."""
    imgs = torch.zeros(4, 1, 28, 28)
    imgs[0, 0, 6:22, 12:15] = 1.0
    for i in range(6, 22):
        imgs[1, 0, i, i] = 1.0
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    r = ((yy - 14) ** 2 + (xx - 14) ** 2).sqrt()
    imgs[2, 0] = ((r > 5) & (r < 8)).float()
    imgs[3, 0, 6:22, 11:16] = torch.tensor([0.3, 0.8, 1.0, 0.8, 0.3])
    return imgs


def test_thickness_changes_ink_mass_in_the_expected_direction():
    x = stroke_images()
    mass = x.sum((1, 2, 3))
    thick, thin = equivariance.thickness(x, 1.0).sum((1, 2, 3)), equivariance.thickness(x, -1.0).sum((1, 2, 3))
    assert (thick > mass).all() and (thin < mass).all()
    # the 3 px bar: one dilation with the cross adds a 1 px border on every side (5 x 18 minus 4 corners)
    assert thick[0] == pytest.approx(5 * 18 - 4) and thin[0] == pytest.approx(1 * 14)
    # over the whole sweep the ink mass rises strictly, and the middle (0) is the input itself
    values = equivariance.sweep_values("thickness")
    swept = equivariance.apply_transform(x, "thickness", values)
    ink = swept.sum((2, 3, 4))
    assert (ink[:, 1:] > ink[:, :-1]).all()
    assert torch.equal(swept[:, values.index(0.0)], x)
    # fractions blend between whole steps, and more steps keep going in the same direction
    half = equivariance.thickness(x, 0.5).sum((1, 2, 3))
    assert torch.allclose(half, (mass + thick) / 2, atol=1e-4)
    assert (equivariance.thickness(x, 2.0).sum((1, 2, 3)) > thick).all()
    assert (equivariance.thickness(x, -2.0).sum((1, 2, 3)) <= thin).all()


def test_spearman_on_known_sequences():
    v = list(range(1, 11))
    up = torch.tensor([float(i) ** 3 for i in v])  # monotone, far from linear: rho 1 while Pearson's r < 1
    y = torch.stack([up, -up, torch.ones(10), torch.tensor([2.0, 1, 4, 3, 6, 5, 8, 7, 10, 9])])
    rho = equivariance.spearman(v, y)
    assert rho[0].item() == pytest.approx(1.0) and rho[1].item() == pytest.approx(-1.0)
    assert rho[2].item() == 0.0  # a constant dimension follows nothing
    # adjacent swaps: sum d^2 = 10, rho = 1 - 6 * 10 / (10 * 99)
    assert rho[3].item() == pytest.approx(1 - 60 / 990)
    # ties get average ranks: ranks of [1, 2, 2, 3] are [1, 2.5, 2.5, 4]
    assert torch.equal(equivariance.ranks(torch.tensor([1.0, 2.0, 2.0, 3.0])),
                       torch.tensor([1.0, 2.5, 2.5, 4.0], dtype=torch.float64))
    assert equivariance.spearman([1, 2, 3, 4], torch.tensor([1.0, 2.0, 2.0, 3.0])).item() == pytest.approx(
        0.9486833, abs=1e-6)
    # decreasing transform values reverse the sign; batched dims give one rho per row
    assert equivariance.spearman(v[::-1], up).item() == pytest.approx(-1.0)
    assert equivariance.spearman(v, torch.randn(3, 5, 10)).shape == (3, 5)


def test_affine_conventions():
    x = torch.zeros(1, 1, 28, 28)
    x[0, 0, 10, 20] = 1.0  # right of and above the centre (13.5, 13.5)
    right = equivariance.affine(x, dxs=3.0)
    assert right[0, 0, 10, 23] == pytest.approx(1.0, abs=1e-4)
    down = equivariance.affine(x, dys=2.0)
    assert down[0, 0, 12, 20] == pytest.approx(1.0, abs=1e-4)
    ccw = equivariance.affine(x, angles_deg=90.0)  # counter-clockwise on screen: right-of-centre goes to above-centre
    r, c = divmod(int(ccw.flatten().argmax()), 28)
    assert (r, c) == (7, 10)
    big = equivariance.affine(stroke_images()[:1], scales=1.3)
    assert big.sum() > stroke_images()[0].sum()
    swept = equivariance.apply_transform(stroke_images(), "rotation", [-10.0, 0.0, 10.0])
    assert swept.shape == (4, 3, 1, 28, 28) and torch.equal(swept[:, 1], stroke_images())


def test_values_are_checked_with_clear_messages():
    assert equivariance.sweep_values("rotation") == [float(a) for a in range(-45, 46, 5)]
    assert len(equivariance.sweep_values("scale")) == 19 and equivariance.sweep_values("scale")[9] == 1.0
    for name, values, words in [
        ("skew", [0], "unknown transform"),
        ("rotation", [], "empty"),
        ("rotation", ["a"], "numbers"),
        ("scale", [0.0], "[0.25, 3]"),
        ("shift_x", [float("nan")], "shift_x values"),
        ("thickness", list(range(65)), "at most 64"),
    ]:
        with pytest.raises(ValueError, match=r".*" + words.replace("[", r"\[").replace("]", r"\]")):
            equivariance.check_values(name, values)


def test_sweep_is_one_batch_and_its_identity_point_is_the_plain_forward_pass(model, mnist_test):
    x, _ = mnist_test.batch(torch.arange(3))
    calls = []
    hook = model.conv1.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    try:
        r = equivariance.transform_response(model, x[1], "rotation")
        assert calls == [19]  # one forward pass of 19 images
        calls.clear()
        r_no_identity = equivariance.transform_response(model, x[1], "scale", [0.8, 1.2])
        assert calls == [3]  # the untransformed input rides along to decide the class
    finally:
        hook.remove()
    with torch.inference_mode():
        plain = model(x[1:2])
    k = int(plain.predictions[0])
    assert r.digit_class == k == r_no_identity.digit_class
    assert r.lengths.shape == (19, 10) and r.poses.shape == (19, 16) and r.images.shape == (19, 1, 28, 28)
    i0 = r.values.index(0.0)
    assert torch.allclose(r.lengths[i0], plain.lengths[0], atol=1e-5)
    assert torch.allclose(r.poses[i0], plain.poses[0, k], atol=1e-5)
    assert len(r.tracking(3)) == 3 and r.rho.shape == (16,)
    assert abs(float(r.rho[r.tracking(1)[0]])) == pytest.approx(float(r.rho.abs().max()))
    j = r.to_json()
    assert set(j) == {"transform", "values", "lengths", "poses", "digit_class"} and len(j["poses"][0]) == 16


def test_offline_command_writes_the_matrix_to_the_model_card(tmp_path, mnist_dir, capsys):
    if not SHIPPED.exists():
        pytest.skip("no shipped checkpoint")
    weights = tmp_path / "capsnet.safetensors"
    shutil.copy(SHIPPED, weights)
    shutil.copy(SHIPPED.with_suffix(".json"), tmp_path / "capsnet.json")
    before = json.loads((tmp_path / "capsnet.json").read_text())
    rc = equivariance.main(["--checkpoint", str(weights), "--data-dir", str(mnist_dir), "--per-class", "1", "--points", "3"])
    assert rc == 0
    card = json.loads((tmp_path / "capsnet.json").read_text())
    e = card["equivariance"]
    assert e["transforms"] == list(equivariance.TRANSFORMS) and e["digits_per_class"] == [1] * 10
    m = torch.tensor(e["median_abs_rho"])
    assert m.shape == (10, 16, 5) and bool(((m >= 0) & (m <= 1)).all())
    assert torch.allclose(torch.tensor(e["median_rho"]).abs(), m, atol=1e-4)  # one digit: median of |rho| = |rho|
    assert e["values"]["rotation"] == [-45.0, 0.0, 45.0] and "Spearman" in e["method"]
    assert e["command"].startswith("python -m capsnet.equivariance --checkpoint")
    rest = lambda c: {k: v for k, v in c.items() if k != "equivariance"}  # noqa: E731
    assert rest(card) == rest(before)  # the rest of the card is kept
    assert "fewer than 100" in capsys.readouterr().err
    assert equivariance.main(["--checkpoint", str(tmp_path / "missing.safetensors")]) == 2
