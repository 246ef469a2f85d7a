"""Is it a digit? The reconstruction distance (capsnet.typicality, after DARCCC), its CLI on real MNIST, and what
/predict and the page's prediction say with the shipped model card."""
import json

import numpy as np
import pytest
import torch

from capsnet import typicality
from capsnet.checkpoint import load_model_card
from explorer.session import new_analysis, predict
from explorer.views import capsules

from .conftest import SHIPPED

CHECK = {"percentiles": [float(i) for i in range(101)], "threshold": 99.0, "threshold_percentile": 99}


def test_distance_is_euclidean_over_the_pixels():
    ones, zeros = torch.ones(2, 1, 28, 28), torch.zeros(2, 1, 28, 28)
    assert typicality.reconstruction_distance(ones, ones).tolist() == [0.0, 0.0]
    assert typicality.reconstruction_distance(ones, zeros).tolist() == pytest.approx([28.0, 28.0])


def test_percentile_interpolates_between_the_stored_percentiles():
    assert typicality.percentile_of(CHECK, 42.5) == 42.5
    assert typicality.percentile_of(CHECK, -3.0) == 0.0 and typicality.percentile_of(CHECK, 500.0) == 100.0
    assert typicality.percentile_of(None, 1.0) is None
    assert typicality.percentile_of({"percentiles": [1, 2]}, 1.0) is None  # not 101 values: no answer


def test_cli_stores_the_check_in_the_card(shipped_copy, tmp_path, mnist_dir, capsys):
    weights = shipped_copy
    assert typicality.main(["--checkpoint", str(weights), "--data-dir", str(mnist_dir), "--limit", "300"]) == 0
    check = json.loads(weights.with_suffix(".json").read_text())["reconstruction_check"]
    q = check["percentiles"]
    assert len(q) == 101 and q == sorted(q) and check["threshold"] == q[99] and check["digits"] == 300
    assert check["correct"] >= 290 and check["false_positive_rate"] <= 0.02 and "--limit 300" in check["command"]
    assert "stored reconstruction_check" in capsys.readouterr().out
    assert typicality.main(["--limit", "1"]) == 2
    assert typicality.main(["--checkpoint", str(tmp_path / "missing.safetensors")]) == 2


def test_predict_says_whether_the_capsules_recognise_the_input(model, mnist_dir):
    card = load_model_card(SHIPPED)
    if not SHIPPED.exists() or "reconstruction_check" not in (card or {}):
        pytest.skip("no shipped checkpoint with a reconstruction check")
    from capsnet.data import load_mnist

    test = load_mnist(mnist_dir, train=False)
    digit = test.images[0].numpy().astype(np.float32) / 255.0
    noise = np.random.RandomState(0).rand(28, 28).astype(np.float32)
    real, odd = predict(model, digit, None, card), predict(model, noise, None, card)
    assert real["typical"] is True and 0 <= real["reconstruction_percentile"] < 99
    assert odd["typical"] is False and odd["reconstruction_distance"] > card["reconstruction_check"]["threshold"]
    assert predict(model, digit)["typical"] is None  # no card: no verdict, the rest as before
    check = card["reconstruction_check"]
    a, _ = new_analysis(model, noise, "api")
    text = capsules.typicality_text(capsules.typicality(a, check), check, a.digit)
    assert text.startswith("**Not a typical digit:**") and "all but 1%" in text
