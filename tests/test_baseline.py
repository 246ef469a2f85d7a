"""The CNN baseline (capsnet/baseline.py): its shape, its checkpoint, `python -m capsnet.train --model cnn`, and the
shipped checkpoints/cnn.safetensors with its card."""
import json
from pathlib import Path

import pytest
import torch

from capsnet.baseline import BaselineCNN, CNNConfig, class_scores, default_cnn_checkpoint, load_pretrained_cnn, save_cnn
from capsnet.checkpoint import CheckpointError, card_path, load_tensors
from capsnet.data import MNISTSplit
from capsnet.evaluate import SLICE, evaluate
from capsnet.train import main as train_main

SHIPPED_CNN = default_cnn_checkpoint()


def test_forward_gives_logits_and_the_size_fits_the_budget():
    torch.manual_seed(0)
    m = BaselineCNN().eval()
    logits = m(torch.rand(3, 1, 28, 28))
    assert logits.shape == (3, 10)
    n = sum(p.numel() for p in m.parameters())
    assert 0.5e6 < n < 3e6  # under 12 MB in float32
    assert [c.out_channels for c in m.convs] == [128, 128, 64] and m.fc1.out_features == 328 and m.fc2.out_features == 192


def test_dropout_only_in_training():
    torch.manual_seed(0)
    m, x = BaselineCNN(), torch.rand(2, 1, 28, 28)
    assert not torch.equal(m.train()(x), m(x))
    assert torch.equal(m.eval()(x), m(x))


@pytest.mark.parametrize("bad", [dict(channels=(8, 8)), dict(dropout=1.0), dict(kernel_size=4), dict(hidden=(0, 4))])
def test_config_refuses_nonsense(bad):
    with pytest.raises(ValueError):
        CNNConfig(**bad)


def test_checkpoint_round_trip_and_refusals(tmp_path, model):
    torch.manual_seed(1)
    m = BaselineCNN(CNNConfig(channels=(8, 8, 4), hidden=(16, 8)))
    save_cnn(tmp_path / "c.safetensors", m)
    back = load_pretrained_cnn(tmp_path / "c.safetensors")
    x = torch.rand(2, 1, 28, 28)
    assert not back.training and back.config == m.config
    assert torch.equal(back(x), m.eval()(x))
    assert torch.equal(class_scores(back, x), back(x))
    assert torch.allclose(class_scores(model, x), model(x).lengths)
    with pytest.raises(CheckpointError, match="not a CNN baseline"):
        load_pretrained_cnn(Path(__file__).resolve().parent.parent / "checkpoints" / "capsnet.safetensors")
    with pytest.raises(CheckpointError):
        load_pretrained_cnn(tmp_path / "missing.safetensors")


def test_train_model_cnn_writes_a_loadable_checkpoint_and_resumes(tmp_path, mnist_dir, capsys):
    out = tmp_path / "cnn.safetensors"
    args = ["--model", "cnn", "--epochs", "1", "--train-limit", "300", "--test-limit", "200", "--batch-size", "50",
            "--data-dir", str(mnist_dir), "--out", str(out), "--no-progress"]
    assert train_main(args) == 0
    card = json.loads(card_path(out).read_text())
    assert card["name"].startswith("CNN baseline") and card["paper_test_accuracy"] == 0.9961
    assert card["test_images"] == 200 and card["test_reconstruction_sse"] is None
    assert card["command"].startswith("python -m capsnet.train --model cnn")
    _, meta = load_tensors(out)
    assert meta["format"] == "capsnet-explorer-cnn/1" and meta["epoch"] == "1"
    assert isinstance(load_pretrained_cnn(out), BaselineCNN)
    assert train_main([*args[:2], "--epochs", "2", *args[4:], "--resume"]) == 0
    assert json.loads(card_path(out).read_text())["epochs_completed"] == 2
    assert "resuming after epoch 1" in capsys.readouterr().err
    assert train_main(["--epochs", "3", *args[4:], "--resume"]) == 2  # a CNN run resumed as a CapsNet
    assert "resumes a cnn run, not --model capsnet" in capsys.readouterr().err


@pytest.mark.skipif(not SHIPPED_CNN.exists(), reason="no shipped CNN baseline (checkpoints/cnn.safetensors)")
def test_shipped_cnn_matches_its_card(mnist_test):
    card = json.loads(card_path(SHIPPED_CNN).read_text())
    assert SHIPPED_CNN.stat().st_size <= 12 * 2**20
    assert card["test_images"] == 10000 and card["command"].startswith("python -m capsnet.train --model cnn")
    assert card["hardware"]["processor"] and card["wall_time_seconds"] > 0
    r = evaluate(load_pretrained_cnn(), MNISTSplit(mnist_test.images[:SLICE], mnist_test.labels[:SLICE]))
    assert abs(r["accuracy"] - card["test_slice_accuracy"]) <= 1 / SLICE + 1e-9
    assert card["test_accuracy"] >= 0.99
