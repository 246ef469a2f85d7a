"""The Attack tab's plain functions (explorer/tabs/attack.py, explorer/views/attack.py) on the shipped CapsNet and
real MNIST digits; the endpoint over HTTP is in test_app.py, the tab in chromium in test_browser_attack.py."""
import numpy as np
import pytest
import torch

from capsnet.baseline import BaselineCNN
from capsnet.checkpoint import load_model_card
from explorer.tabs.attack import PAGE_MAX_STEPS, attack_api, page_outputs, parse_attack, run_attack
from explorer.views.attack import attack_figure, attack_markdown, perturbation_image

from .conftest import SHIPPED


@pytest.mark.parametrize("args, words", [((10, 0.1, 5), "target"), (("seven", 0.1, 5), "target"), ((2.5, 0.1, 5), "target"),
                                         ((3, 0, 5), "epsilon"), ((3, 0.31, 5), "epsilon"), ((3, "nan", 5), "epsilon"),
                                         ((3, 0.1, 0), "steps"), ((3, 0.1, PAGE_MAX_STEPS + 1), "steps"),
                                         ((3, 0.1, None), "steps")])  # fmt: skip
def test_parse_attack_refuses_in_one_sentence(args, words):
    with pytest.raises(ValueError) as e:
        parse_attack(*args)
    msg = str(e.value)
    assert words in msg.lower() and msg.endswith(".") and msg.count(". ") == 0 and len(msg) < 120


def test_parse_attack_accepts_what_clients_send():
    assert parse_attack("7", "0.3", 100.0) == (7, 0.3, 100)


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    return BaselineCNN().eval()  # untrained: the answer's shape does not depend on training


@pytest.mark.skipif(not SHIPPED.exists(), reason="needs the shipped CapsNet")
def test_run_attack_reaches_the_target_within_epsilon(model, cnn, mnist_test):
    check = (load_model_card(SHIPPED) or {}).get("reconstruction_check")
    x, label = mnist_test.images[0].float().div(255)[None], int(mnist_test.labels[0])
    target = (label + 3) % 10
    a = run_attack(model, cnn, x, target, 0.3, 20, check)
    adv, inp = np.asarray(a["adversarial"]), np.asarray(a["input"])
    assert a["prediction_before"] == label and a["prediction_after"] == target and a["error"] is None
    assert np.abs(adv - inp).max() <= 0.3 + 1e-4 and adv.min() >= 0 and adv.max() <= 1
    assert a["lengths_after"][target] > a["lengths_before"][target]
    assert a["flagged"] is True and a["reconstruction_percentile"] > 90  # DARCCC: the attack is seen
    c = a["cnn"]
    assert np.abs(np.asarray(c["adversarial"]) - inp).max() <= 0.3 + 1e-4
    assert sum(c["probabilities_before"]) == pytest.approx(1, abs=1e-3) and c["probabilities_after"][target] > c["probabilities_before"][target]
    imgs = page_outputs(a)
    assert [i.shape for i in imgs[:4]] == [(168, 168), (168, 168, 3)] * 2
    assert "target reached" in imgs[4] and "CNN baseline" in imgs[4]
    no_cnn = run_attack(model, None, x, target, 0.05, 2, check)
    assert no_cnn["cnn"] is None and "No CNN baseline" in attack_markdown(no_cnn)
    assert page_outputs(no_cnn)[2] is None and len(attack_figure(no_cnn).data) == 2


def test_attack_api_without_a_model_or_with_a_blank_image(model):
    assert attack_api(None, np.ones((28, 28)), 3, 0.1, 5, "no weights.")["error"] == "no weights."
    blank = attack_api(model, np.zeros((28, 28), np.uint8), 3, 0.1, 5)
    assert blank["adversarial"] is None and blank["error"]


def test_perturbation_image_colours_added_and_removed_ink():
    x = np.zeros((28, 28), np.float32)
    x[5, 5] = 1.0
    adv = x.copy()
    adv[0, 0], adv[5, 5] = 0.1, 0.9  # ink added at (0, 0), removed at (5, 5)
    img = perturbation_image(x, adv, 0.1, scale=1)
    assert img.shape == (28, 28, 3) and tuple(img[1, 1]) == (255, 255, 255)
    assert tuple(img[0, 0]) == (255, 0, 0) and tuple(img[5, 5]) == (0, 0, 255)


def test_attack_figure_marks_the_target():
    a = {"target": 4, "lengths_before": [0.1] * 10, "lengths_after": [0.2] * 10,
         "cnn": {"probabilities_before": [0.1] * 10, "probabilities_after": [0.1] * 10}}
    fig = attack_figure(a)
    assert len(fig.data) == 4 and {t.name for t in fig.data} == {"before", "after the attack"}
    assert [s.x0 for s in fig.layout.shapes] == [3.5, 3.5]
