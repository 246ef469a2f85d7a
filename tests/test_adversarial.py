"""Adversarial examples (capsnet.adversarial): the targeted PGD attack's guarantees, its success on the shipped CapsNet,
the attack study with DARCCC's reconstruction check, and `python -m capsnet.adversarial` on a few real MNIST digits
(with an untrained CNN baseline, saved as the trainer saves one)."""
import json
import math
import re
import subprocess
import sys

import pytest
import torch

from capsnet import adversarial
from capsnet.adversarial import MAX_EPS, MAX_STEPS, attack_study, both_correct, random_targets, targeted_pgd
from capsnet.baseline import BaselineCNN, class_scores, save_cnn
from capsnet.checkpoint import load_model_card
from capsnet.typicality import reconstruction_distance

from .conftest import REPO, SHIPPED

needs_shipped = pytest.mark.skipif(not SHIPPED.exists(), reason="no shipped checkpoint")


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    return BaselineCNN().eval()


@pytest.fixture(scope="module")
def digits(model, mnist_test):
    """The first 4 test digits the CapsNet classifies correctly: images (4, 1, 28, 28) in [0, 1] and labels."""
    x, y = mnist_test.batch(torch.arange(200))
    idx = both_correct([model], x, y, 4)
    assert len(idx) == 4
    return x[idx], y[idx]


@pytest.fixture
def cnn_file(tmp_path, cnn):
    path = tmp_path / "cnn.safetensors"
    save_cnn(path, cnn)
    return path


def test_pgd_stays_in_the_eps_ball_and_in_0_1_and_leaves_the_parameters_alone(model, cnn, digits):
    x, y = digits
    before = x.clone()
    targets = random_targets(y, seed=3)
    for m in (model, cnn):
        adv = targeted_pgd(m, x, targets, 0.1, 2, step_size=0.5)  # steps far larger than eps: only projection holds
        assert (adv - x).abs().max() <= 0.1 + 1e-6 and adv.min() >= 0.0 and adv.max() <= 1.0
        assert (adv - x).abs().max() > 0.09  # it did move, up to the budget
        assert not adv.requires_grad and torch.equal(x, before)
        assert all(p.grad is None for p in m.parameters())
        assert torch.equal(targeted_pgd(m, x, targets, 0.0, 1), x)  # eps 0: the input itself
        assert torch.equal(targeted_pgd(m, x, targets, 0.2, 0), x)  # no steps: the input itself
    with pytest.raises(ValueError):
        targeted_pgd(model, x, targets, -0.1, 3)


@needs_shipped
def test_a_targeted_attack_at_eps_03_reaches_the_target_on_most_capsnet_digits(model, digits):
    x, y = digits
    targets = random_targets(y)
    assert (class_scores(model, x).argmax(1) == y).all()
    with torch.no_grad():
        hit = class_scores(model, targeted_pgd(model, x, targets, 0.3, 20)).argmax(1) == targets
    assert int(hit.sum()) >= 3, f"only {int(hit.sum())} of 4 digits reached their target"


def test_random_targets_are_seeded_and_never_the_label():
    labels = torch.arange(10).repeat(100)
    t = random_targets(labels, seed=5)
    assert (t != labels).all() and torch.equal(t, random_targets(labels, seed=5))
    assert not torch.equal(t, random_targets(labels, seed=6))
    for c in range(10):  # every other class is drawn for each label
        assert set(t[labels == c].tolist()) == set(range(10)) - {c}


def test_both_correct_takes_the_first_digits_that_every_model_gets_right(model, cnn, mnist_test):
    x, y = mnist_test.batch(torch.arange(150))
    idx = both_correct([model, cnn], x, y, 5, batch_size=32)
    assert len(idx) == 5 and torch.equal(idx, idx.sort().values)
    for m in (model, cnn):
        assert (class_scores(m, x[idx]).argmax(1) == y[idx]).all()
    skipped = torch.tensor([i for i in range(int(idx[-1])) if i not in idx.tolist()], dtype=torch.long)
    if len(skipped):
        wrong = (class_scores(model, x[skipped]).argmax(1) != y[skipped]) | (cnn(x[skipped]).argmax(1) != y[skipped])
        assert wrong.all()
    assert len(both_correct([model], x[:3], y[:3], 10)) <= 3  # runs out: fewer


def test_the_study_reports_success_error_and_detection_per_eps_and_model(model, cnn, digits):
    x, y = digits
    check = load_model_card(SHIPPED)["reconstruction_check"] if SHIPPED.exists() else {"threshold": 6.0}
    study = attack_study(model, cnn, x, y, [0.3], 2, check, seed=0, batch_size=8)
    assert study["digits"] == 4 and study["steps"] == 2 and study["eps"] == [0.3] and study["seed"] == 0
    assert study["threshold"] == check["threshold"]
    assert [(r["model"], r["eps"]) for r in study["rows"]] == [("capsnet", 0.3), ("cnn", 0.3)]
    _, clean = adversarial.capsnet_check(model, x)
    assert study["clean_false_positive_rate"] == pytest.approx(float((clean > check["threshold"]).double().mean()))
    targets = random_targets(y, 0)
    for row, m in zip(study["rows"], (model, cnn)):
        adv = targeted_pgd(m, x, targets, 0.3, 2)  # no random start: the same adversarials again
        with torch.no_grad():
            pred, out = class_scores(m, adv).argmax(1), model(adv)
        flagged = reconstruction_distance(adv, out.reconstructions) > check["threshold"]
        hit = pred == targets
        assert row["targeted_success"] == pytest.approx(hit.double().mean().item(), abs=1e-4)
        assert row["untargeted_error"] == pytest.approx((pred != y).double().mean().item(), abs=1e-4)
        assert row["successful"] == int(hit.sum())
        assert row["flagged"] == pytest.approx(flagged.double().mean().item(), abs=1e-4)
        expected = flagged[hit].double().mean().item() if hit.any() else None
        assert row["detection_rate"] == (None if expected is None else pytest.approx(expected, abs=1e-4))
        fooled = (out.lengths.argmax(1) == targets).double().mean().item()
        assert row["capsnet_fooled"] == pytest.approx(fooled, abs=1e-4)
        assert 0.0 < row["max_perturbation"] <= 0.3 + 1e-6
    caps = study["rows"][0]
    assert caps["capsnet_fooled"] == caps["targeted_success"] and caps["untargeted_error"] >= caps["targeted_success"]
    text = adversarial.format_table(study)
    assert "cnn rows: the CNN has no decoder" in text and len(text.splitlines()) == 3 + 2 + 2
    args = adversarial._parser().parse_args(["--limit", "4", "--eps", "0.3", "--steps", "2"])
    section = adversarial.card_section(study, args, ["--limit", "4"], scanned=4, runtime=1.5)
    assert section["attack"]["random_start"] is False and section["attack"]["step_size"] == "2.5 eps / steps"
    assert set(section["attack"]["loss"]) == {"capsnet", "cnn"} and section["command"].endswith("--limit 4")
    assert section["rows"] == study["rows"] and section["threshold"] == check["threshold"] and "date" in section
    json.dumps(section)  # it goes into the JSON model card


@pytest.mark.parametrize("flags, says", [
    (["--eps", "0.5"], "--eps"), (["--eps", "0.1", "0"], "--eps"), (["--eps", "nan"], "--eps"),
    (["--steps", "0"], "--steps"), (["--steps", str(MAX_STEPS + 1)], "--steps"), (["--limit", "0"], "--limit"),
    (["--batch-size", "0"], "--batch-size"),
])  # fmt: skip
def test_cli_refuses_bad_flags_in_one_sentence(flags, says, capsys):
    assert adversarial.main(flags) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {says} must be") and err[0].endswith(".")
    assert str(MAX_EPS) in err[0] or says != "--eps"


def test_cli_refuses_missing_checkpoints_and_a_card_without_the_check(shipped_copy, cnn_file, tmp_path, capsys):
    missing = str(tmp_path / "none.safetensors")
    cases = [
        (["--checkpoint", str(shipped_copy), "--cnn-checkpoint", missing], "no CNN baseline"),
        (["--checkpoint", missing, "--cnn-checkpoint", str(cnn_file)], "No checkpoint at"),
        (["--checkpoint", str(shipped_copy), "--cnn-checkpoint", str(shipped_copy)], "is not a CNN baseline"),
    ]
    card = json.loads(shipped_copy.with_suffix(".json").read_text())
    card.pop("reconstruction_check", None)
    shipped_copy.with_suffix(".json").write_text(json.dumps(card))
    cases.append((["--checkpoint", str(shipped_copy), "--cnn-checkpoint", str(cnn_file)], "no reconstruction_check"))
    for flags, says in cases:
        assert adversarial.main(flags) == 2, flags
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and says in err[0], err


def test_cli_runs_end_to_end_and_leaves_the_card_alone_below_1000_digits(shipped_copy, cnn_file, mnist_dir, capsys):
    card_before = shipped_copy.with_suffix(".json").read_bytes()
    flags = ["--checkpoint", str(shipped_copy), "--cnn-checkpoint", str(cnn_file), "--data-dir", str(mnist_dir),
             "--limit", "3", "--eps", "0.3", "--steps", "1", "--batch-size", "50"]
    assert adversarial.main(flags) == 0
    out, err = capsys.readouterr()
    assert "attacking the first 3 MNIST test digits both models classify correctly" in out and err == ""
    rows = [line.split() for line in out.splitlines() if re.match(r"(capsnet|cnn) +[0-9.]+ ", line)]
    assert [(r[0], float(r[1])) for r in rows] == [("capsnet", 0.3), ("cnn", 0.3)]
    for r in rows:
        assert all(0.0 <= float(v.rstrip("%")) <= 100.0 for v in r[2:4]) and math.isfinite(float(r[-1]))
    assert "not stored in the model card: 3 digits" in out
    assert shipped_copy.with_suffix(".json").read_bytes() == card_before


def test_python_m_runs_the_cli():
    done = subprocess.run([sys.executable, "-m", "capsnet.adversarial", "--eps", "0.5"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip() == f"error: --eps must be in (0, {MAX_EPS}], got 0.5."
