"""Checkpoints without pickle: safetensors weights (config in the header) + a JSON model card.

Every file is written to a temporary sibling, fsynced and renamed into place, so a
run killed at any moment leaves either the old file or the new one, never half.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch

from .model import CapsNet, CapsNetConfig
from .settings import settings

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CHECKPOINT = REPO_ROOT / "checkpoints" / "capsnet.safetensors"
TRAIN_HINT = "train one with `python -m capsnet.train` (it writes checkpoints/capsnet.safetensors)"


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable or for another architecture; the message says how to fix it."""


def default_checkpoint() -> Path:
    """$CAPSNET_CHECKPOINT, else the shipped checkpoint: read at each call, so a changed variable counts."""
    return settings().checkpoint or DEFAULT_CHECKPOINT


def card_path(weights: str | os.PathLike) -> Path:
    return Path(weights).with_suffix(".json")


def atlas_path(weights: str | os.PathLike) -> Path:
    """The atlas's difference maps beside the weights (capsnet.atlas): too large for the model card's JSON."""
    p = Path(weights)
    return p.with_name(p.stem + ".atlas.safetensors")


def resume_path(weights: str | os.PathLike) -> Path:
    p = Path(weights)
    return p.with_name(p.stem + ".resume.safetensors")


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call write(tmp_path) and move the result over `path` only once it is complete on disk."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | os.PathLike, obj) -> None:
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=1)
            f.write("\n")

    atomic_write(path, write)


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    from safetensors.torch import save_file

    flat = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(flat, tmp, metadata=metadata))


def load_tensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors file; every way it can fail becomes a CheckpointError that says what to do."""
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"No checkpoint at {path}: {TRAIN_HINT}, or pass the path of an existing one.")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file: pass the .safetensors file inside it.")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for truncation and bad headers
        raise CheckpointError(
            f"Checkpoint {path} is corrupt or truncated ({type(e).__name__}: {e}); "
            f"download it again or {TRAIN_HINT}."
        ) from None
    return tensors, metadata


def model_from_tensors(tensors: dict[str, torch.Tensor], metadata: dict[str, str], path) -> CapsNet:
    try:
        config = CapsNetConfig.from_dict(json.loads(metadata["config"])) if "config" in metadata else CapsNetConfig()
    except (ValueError, TypeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"Checkpoint {path} has an unreadable config ({e}); {TRAIN_HINT}.") from None
    model = CapsNet(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(k for k in set(expected) & set(tensors) if expected[k].shape != tensors[k].shape)
    if missing or unexpected or wrong:
        details = []
        if missing:
            details.append(f"missing {', '.join(missing[:4])}")
        if unexpected:
            details.append(f"unexpected {', '.join(unexpected[:4])}")
        if wrong:
            k = wrong[0]
            details.append(f"{k} has shape {tuple(tensors[k].shape)}, expected {tuple(expected[k].shape)}")
        raise CheckpointError(
            f"Checkpoint {path} does not match this CapsNet ({'; '.join(details)}); "
            f"it was made for another model or version: {TRAIN_HINT}."
        )
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"Checkpoint {path} holds NaN or infinite weights in {bad[0]}; {TRAIN_HINT}.")
    model.load_state_dict(tensors)
    return model


def save_weights(path: str | os.PathLike, model: CapsNet, extra_metadata: dict[str, str] | None = None) -> None:
    meta = {"config": json.dumps(model.config.to_dict()), "format": "capsnet-explorer/1"}
    meta.update(extra_metadata or {})
    save_tensors(path, model.state_dict(), meta)


def load_checkpoint(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> CapsNet:
    path = Path(path) if path is not None else default_checkpoint()
    tensors, metadata = load_tensors(path)
    return model_from_tensors(tensors, metadata, path).to(device)


def load_pretrained(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> CapsNet:
    """The shipped checkpoint (or `path`) as a CapsNet in eval mode."""
    return load_checkpoint(path, device).eval()


def update_model_card(weights: str | os.PathLike | None = None, **sections) -> dict:
    """Add or replace top-level sections of the model card beside `weights` (atomically), keeping the rest.

    Offline analyses (dimension labels, routing counterfactuals, ...) store their results this way, so the
    explorer reads them at startup instead of recomputing them; retraining writes a new card, after which
    they are run again.
    """
    weights = weights if weights is not None else default_checkpoint()
    card = load_model_card(weights)
    if card is None:
        raise CheckpointError(f"No readable model card at {card_path(weights)}: {TRAIN_HINT}.")
    card.update(sections)
    atomic_write_json(card_path(weights), card)
    return card


def load_model_card(weights: str | os.PathLike | None = None) -> dict | None:
    """The JSON model card beside a weights file, or None when there is none or it is unreadable."""
    p = card_path(weights if weights is not None else default_checkpoint())
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None
