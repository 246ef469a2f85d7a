"""Checkpoint round trip and the clear errors for missing, truncated and mismatched files."""
import json
import os
import subprocess
import sys

import pytest
import torch

from capsnet import CapsNet, CapsNetConfig, load_pretrained
from capsnet.checkpoint import CheckpointError, save_tensors, save_weights

from .conftest import REPO


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    m = CapsNet().eval()
    path = tmp_path_factory.mktemp("ckpt") / "m.safetensors"
    save_weights(path, m)
    return m, path


def test_round_trip(saved):
    m, path = saved
    loaded = load_pretrained(path)
    assert not loaded.training
    for k, v in m.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(m(x).lengths, loaded(x).lengths)
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_config_travels_in_the_header(tmp_path):
    m = CapsNet(CapsNetConfig(routing_iterations=5))
    save_weights(tmp_path / "r5.safetensors", m)
    assert load_pretrained(tmp_path / "r5.safetensors").config.routing_iterations == 5


def test_no_pickle_in_the_file(saved):
    _, path = saved
    head = path.read_bytes()[:8]
    n = int.from_bytes(head, "little")
    header = json.loads(path.read_bytes()[8:8 + n])
    assert "__metadata__" in header and "W" in header  # a plain safetensors header, not a pickle


def test_missing_checkpoint_says_how_to_fix(tmp_path):
    with pytest.raises(CheckpointError, match=r"No checkpoint at .*python -m capsnet.train"):
        load_pretrained(tmp_path / "nope.safetensors")


def test_truncated_checkpoint(saved, tmp_path):
    _, path = saved
    bad = tmp_path / "truncated.safetensors"
    bad.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_pretrained(bad)


def test_garbage_checkpoint(tmp_path):
    bad = tmp_path / "garbage.safetensors"
    bad.write_bytes(b"\x00" * 7)
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_pretrained(bad)
    bad.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_pretrained(bad)


def test_mismatched_checkpoint(tmp_path):
    tensors = {k: v for k, v in CapsNet().state_dict().items()}
    tensors["W"] = torch.zeros(1152, 10, 8, 8)
    save_tensors(tmp_path / "shape.safetensors", tensors)
    with pytest.raises(CheckpointError, match=r"does not match this CapsNet.*W has shape"):
        load_pretrained(tmp_path / "shape.safetensors")
    save_tensors(tmp_path / "other.safetensors", {"fc.weight": torch.zeros(3, 3)})
    with pytest.raises(CheckpointError, match="missing"):
        load_pretrained(tmp_path / "other.safetensors")


def test_nan_weights_refused(tmp_path):
    m = CapsNet()
    with torch.no_grad():
        m.W[0, 0, 0, 0] = float("nan")
    save_weights(tmp_path / "nan.safetensors", m)
    with pytest.raises(CheckpointError, match="NaN"):
        load_pretrained(tmp_path / "nan.safetensors")


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(CheckpointError, match="folder"):
        load_pretrained(tmp_path)


def test_evaluate_cli_reports_missing_checkpoint_in_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "capsnet.evaluate", "--checkpoint", str(tmp_path / "x.safetensors")],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.startswith("error: No checkpoint at") and "python -m capsnet.train" in r.stderr


def test_atomic_write_keeps_old_file_when_writer_fails(tmp_path):
    from capsnet.checkpoint import atomic_write

    target = tmp_path / "f.bin"
    target.write_bytes(b"old")

    def failing(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, failing)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_update_model_card_adds_sections_and_keeps_the_rest(tmp_path):
    import json

    from capsnet.checkpoint import atomic_write_json, card_path, update_model_card

    w = tmp_path / "m.safetensors"
    atomic_write_json(card_path(w), {"test_accuracy": 0.99, "history": [1, 2]})
    update_model_card(w, dimension_labels={"0": ["thicker strokes"]})
    card = json.loads(card_path(w).read_text())
    assert card == {"test_accuracy": 0.99, "history": [1, 2], "dimension_labels": {"0": ["thicker strokes"]}}
    with pytest.raises(CheckpointError, match="No readable model card"):
        update_model_card(tmp_path / "none.safetensors", x=1)
