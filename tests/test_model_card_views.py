"""Model-card views with a realistic card, a partial card and no card at all."""
import copy

import plotly.graph_objects as go
import pytest

from capsnet.checkpoint import load_model_card
from explorer.views.model_card import (
    confusion_matrix_figure,
    model_card_sections,
    per_class_accuracy_figure,
    training_curves_figure,
)

from .conftest import SHIPPED


def _synthetic_card() -> dict:
    cm = [[980 if i == j else 0 for j in range(10)] for i in range(10)]
    cm[4][9] = 3
    cm[7][2] = 2
    hist = [
        {"epoch": e, "lr": 1e-3 * 0.96 ** (e - 1), "loss": 0.1 / e, "train_accuracy": 0.97 + 0.002 * e,
         "train_reconstruction_sse": 20 - e, "test_accuracy": 0.985 + 0.002 * e, "test_reconstruction_sse": 18 - e,
         "seconds": 500.0, "train_images_per_second": 150.0}
        for e in range(1, 4)
    ]  # fmt: skip
    return {
        "name": "CapsNet (Sabour, Frosst & Hinton 2017) on MNIST",
        "paper_test_accuracy": 0.9975,
        "epochs_completed": 3,
        "test_accuracy": 0.9912,
        "test_images": 9805,
        "test_reconstruction_sse": 15.0,
        "per_class_accuracy": [0.99] * 9 + [0.985],
        "confusion_matrix": cm,
        "misclassified": [18, 247, 321, 359, 445],
        "misclassified_predictions": [9, 9, 9, 2, 2],
        "history": hist,
        "wall_time_seconds": 1500.0,
        "config": {"routing_iterations": 3, "primary_types": 32},
        "training": {"epochs": 15, "batch_size": 100, "lr": 0.001},
        "command": "python -m capsnet.train --data-dir ../shared/data/mnist",
        "parameters": 8215568,
        "hardware": {"device": "cpu", "platform": "Linux", "processor": "x86_64", "cpu_count": 2, "torch_threads": 2},
        "versions": {"python": "3.11.7", "torch": "2.14.1"},
        "weights": "trained from scratch by this repository's capsnet.train; no external weights",
    }


@pytest.fixture(params=["synthetic", "shipped"])
def card(request):
    if request.param == "shipped":
        c = load_model_card(SHIPPED) if SHIPPED.exists() else None
        if c is None:
            pytest.skip("no shipped model card yet")
        return c
    return _synthetic_card()


def test_figures_with_card(card):
    fig = training_curves_figure(card)
    assert isinstance(fig, go.Figure)
    names = [t.name for t in fig.data]
    assert "train loss" in names and "test accuracy" in names and "test recon. SSE" in names
    n = len(card["history"])
    assert len(fig.data[0].x) == n

    fig = per_class_accuracy_figure(card)
    assert len(fig.data[0].y) == 10
    assert fig.data[0].y[0] == pytest.approx(100 * card["per_class_accuracy"][0])

    fig = confusion_matrix_figure(card)
    hm = fig.data[0]
    assert len(hm.z) == 10 and len(hm.z[0]) == 10
    assert hm.text[4][9] == str(card["confusion_matrix"][4][9])
    total = sum(map(sum, card["confusion_matrix"]))
    assert str(total) in fig.layout.title.text


def test_markdown_with_card(card):
    md = "".join(model_card_sections(card))
    assert f"{100 * card['test_accuracy']:.2f}%" in md
    assert "99.75%" in md
    assert card["command"] in md
    assert "from scratch" in md
    assert "Epochs" in md and "Wall time" in md and "Hardware" in md
    assert "routing_iterations" in md


def test_no_card():
    for f in (training_curves_figure, per_class_accuracy_figure, confusion_matrix_figure):
        fig = f(None)
        assert isinstance(fig, go.Figure)
        text = fig.layout.annotations[0].text
        assert "No" in text and "python -m capsnet.train" in text
    md = "".join(model_card_sections(None))
    assert "No model card" in md and "python -m capsnet.train" in md
    assert model_card_sections({})[0].startswith("### No model card")


def test_partial_card():
    card = _synthetic_card()
    for key in ("history", "per_class_accuracy", "confusion_matrix", "hardware", "config", "training", "weights"):
        card.pop(key)
    card["test_accuracy"] = None
    assert "no training history" in training_curves_figure(card).layout.annotations[0].text
    assert "no per-class" in per_class_accuracy_figure(card).layout.annotations[0].text
    assert "no confusion" in confusion_matrix_figure(card).layout.annotations[0].text
    md = "".join(model_card_sections(card))
    assert "unknown" in md and "from scratch" in md


def test_views_do_not_mutate_card():
    card = _synthetic_card()
    before = copy.deepcopy(card)
    training_curves_figure(card), per_class_accuracy_figure(card), confusion_matrix_figure(card)
    model_card_sections(card)
    assert card == before


def test_robustness_and_attack_studies_from_the_card():
    from explorer.views.robustness import (NO_ADVERSARIAL, NO_ROBUSTNESS, adversarial_markdown, robustness_figure,
                                           robustness_markdown)  # fmt: skip

    card = {"robustness": {
        "n": 100, "models": ["capsnet", "cnn"], "clean_accuracy": {"capsnet": 0.99, "cnn": 0.98},
        "families": {"rotation": {"unit": "deg", "magnitudes": [0, 30], "accuracy": {"capsnet": [0.99, 0.8], "cnn": [0.98, 0.7]}},
                     "scale": {"unit": "x", "magnitudes": [0.8, 1.0], "accuracy": {"capsnet": [0.9, 0.99], "cnn": [0.85, 0.98]}}},
        "random_affine": {"recipe": "rotation ±20°", "accuracy": {"capsnet": 0.912, "cnn": 0.873}},
        "command": "python -m capsnet.robustness --limit 100"},
        "adversarial": {"digits": 1000, "steps": 10, "threshold": 6.06, "clean_false_positive_rate": 0.012,
                        "rows": [{"model": "capsnet", "eps": 0.1, "targeted_success": 0.25, "detection_rate": 0.9},
                                 {"model": "cnn", "eps": 0.1, "targeted_success": 0.5, "detection_rate": 0.4}]}}  # fmt: skip
    fig = robustness_figure(card)
    assert len(fig.data) == 4 and {t.name for t in fig.data} == {"CapsNet", "CNN baseline"}
    assert list(fig.data[1].y) == [98.0, 70.0] and fig.data[1].line.dash == "dash"
    text = robustness_markdown(card)
    assert "| CapsNet | 99.0% | 91.2% |" in text and "| CNN baseline | 98.0% | 87.3% |" in text and "rotation ±20°" in text
    assert "| 0.1 | 25.0% | 90.0% | 50.0% | 40.0% |" in adversarial_markdown(card) and "1.2%" in adversarial_markdown(card)
    for empty in (None, {}, {"robustness": {"families": {}}, "adversarial": {"rows": []}}):
        assert robustness_markdown(empty) == NO_ROBUSTNESS and adversarial_markdown(empty) == NO_ADVERSARIAL
        assert not robustness_figure(empty).data
