"""The offline routing study: accuracy per number of routing iterations and predictions routing changes."""
import argparse
import json
import shutil

import torch

from capsnet.data import MNISTSplit
from capsnet.evaluate import evaluate, routing_study, run_routing_study

from .conftest import SHIPPED

N = 60


def _part(mnist_test, n=N):
    return MNISTSplit(mnist_test.images[:n], mnist_test.labels[:n])


def test_routing_study_matches_forward_passes(model, mnist_test):
    part = _part(mnist_test)
    s = routing_study(model, part, batch_size=25)
    assert s["n"] == N and s["routing_iterations"] == model.config.routing_iterations
    assert s["iterations"] == [1, 2, 3, 5]
    assert abs(s["accuracy"]["3"] - evaluate(model, part)["accuracy"]) < 1e-9
    x, y = part.batch(torch.arange(N))
    with torch.no_grad():
        uniform = model(x, routing_iterations=1).predictions
        for r in (2, 5):
            p = model(x, routing_iterations=r).predictions
            assert s["changed_vs_uniform"][str(r)] == int((p != uniform).sum())
            assert abs(s["accuracy"][str(r)] - (p == y).float().mean().item()) < 1e-9
        routed = model(x).predictions
    assert s["changed_vs_uniform"]["1"] == 0
    assert s["changed_by_routing"] == int((routed != uniform).sum())
    assert s["changed_indices"] == torch.nonzero(routed != uniform).flatten().tolist()
    assert s["fixed_by_routing"] == int(((routed == y) & (uniform != y)).sum())
    assert s["broken_by_routing"] == int(((routed != y) & (uniform == y)).sum())
    assert s["fixed_by_routing"] - s["broken_by_routing"] == int((routed == y).sum() - (uniform == y).sum())


def test_routing_study_is_stored_in_the_model_card(model, mnist_test, tmp_path, capsys):
    weights = tmp_path / "capsnet.safetensors"
    card = SHIPPED.with_suffix(".json")
    if card.exists():
        shutil.copy(card, weights.with_suffix(".json"))
    else:
        weights.with_suffix(".json").write_text(json.dumps({"name": "test"}))
    before = json.loads(weights.with_suffix(".json").read_text())
    args = argparse.Namespace(checkpoint=str(weights), batch_size=100, limit=None)
    assert run_routing_study(model, _part(mnist_test, 40), args) == 0
    after = json.loads(weights.with_suffix(".json").read_text())
    stored = after.pop("routing_study")
    before.pop("routing_study", None)
    assert after == before  # the rest of the card is kept
    assert stored["n"] == 40 and set(stored["accuracy"]) == {"1", "2", "3", "5"}
    assert stored["runtime_s"] > 0 and "--routing-study" in stored["command"]
    assert "predictions against uniform couplings" in capsys.readouterr().out
    # a partial run (--limit) is printed, not stored
    args.limit = 20
    weights.with_suffix(".json").write_text(json.dumps(before))
    assert run_routing_study(model, _part(mnist_test, 20), args) == 0
    assert "routing_study" not in json.loads(weights.with_suffix(".json").read_text())
