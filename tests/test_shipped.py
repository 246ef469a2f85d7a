"""The shipped checkpoint: loads fast, and reaches the accuracy its model card claims."""
import json
import time

import pytest

from capsnet import load_pretrained
from capsnet.checkpoint import card_path, load_tensors
from capsnet.data import MNISTSplit
from capsnet.evaluate import SLICE, evaluate

from .conftest import SHIPPED

pytestmark = pytest.mark.skipif(not SHIPPED.exists(), reason="no shipped checkpoint (checkpoints/capsnet.safetensors)")


@pytest.fixture(scope="module")
def card():
    return json.loads(card_path(SHIPPED).read_text())


@pytest.fixture(scope="module")
def shipped_model():
    return load_pretrained()


def test_loads_on_cpu_in_under_a_second():
    times = []
    for _ in range(3):
        t = time.perf_counter()
        m = load_pretrained()
        times.append(time.perf_counter() - t)
    assert min(times) < 1.0, times
    assert not m.training and next(m.parameters()).device.type == "cpu"


def test_card_belongs_to_these_weights(card):
    _, meta = load_tensors(SHIPPED)
    assert int(meta["epoch"]) == card["epochs_completed"] == len(card["history"])
    assert abs(float(meta["test_accuracy"]) - card["test_accuracy"]) < 1e-6
    assert card["command"].startswith("python -m capsnet.train")
    assert card["test_images"] == 10000
    assert len(card["per_class_accuracy"]) == 10
    assert sum(map(sum, card["confusion_matrix"])) == 10000
    assert len(card["misclassified"]) == round(10000 * (1 - card["test_accuracy"]))
    assert card["test_reconstruction_sse"] > 0


def test_accuracy_on_fixed_slice_matches_card(shipped_model, card, mnist_test):
    part = MNISTSplit(mnist_test.images[:SLICE], mnist_test.labels[:SLICE])
    r = evaluate(shipped_model, part)
    assert abs(r["accuracy"] - card["test_slice_accuracy"]) <= 1 / SLICE + 1e-9
    assert r["accuracy"] >= 0.99


@pytest.mark.slow
def test_accuracy_on_whole_test_set_matches_card(shipped_model, card, mnist_test):
    r = evaluate(shipped_model, mnist_test)
    assert abs(r["accuracy"] - card["test_accuracy"]) <= 2 / 10000 + 1e-9
    assert abs(r["reconstruction_sse"] - card["test_reconstruction_sse"]) < 0.05 * card["test_reconstruction_sse"]
