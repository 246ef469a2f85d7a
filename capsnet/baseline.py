"""The CNN baseline the capsule claims are measured against (Sabour, Frosst & Hinton 2017, section 5).

The paper's baseline: three 5x5 convolutions of 256, 256 and 128 channels (stride 1), then fully connected layers of
328 and 192 units and, with dropout, a 10-way softmax trained with cross entropy: 35.4 M parameters, 141 MB in
float32. Too big to ship beside the CapsNet, and slow on a 2-core CPU: even with pooling its widths train at 37
images/s (benchmarks/bench_cnn_widths.py, AVX2), a 27-minute epoch.

This one keeps the paper's shape (three 5x5 convolutions with ReLU, FC 328 and 192, dropout, cross entropy) at half
the widths (128, 128, 64), with a 2x2 max-pooling after each convolution so that the first fully connected layer
sees 3x3x64 features instead of 28x28x128: 0.87 M parameters, 3.5 MB. It trains at 111 images/s on the same CPU,
and like the paper's baseline it comes close to the CapsNet's MNIST accuracy (99.44% against 99.65%), which is what
makes comparing their robustness meaningful. It is trained by the same script, on the same data with the same 2-pixel shifts
(`python -m capsnet.train --model cnn`).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .checkpoint import CheckpointError, load_tensors, save_tensors

CNN_FORMAT = "capsnet-explorer-cnn/1"


@dataclass(frozen=True)
class CNNConfig:
    channels: tuple[int, int, int] = (128, 128, 64)  # the paper's (256, 256, 128), halved
    kernel_size: int = 5
    hidden: tuple[int, int] = (328, 192)  # the paper's fully connected layers
    dropout: float = 0.5
    num_classes: int = 10
    image_size: int = 28

    def __post_init__(self):
        if len(self.channels) != 3 or len(self.hidden) != 2 or min(*self.channels, *self.hidden) < 1:
            raise ValueError("a CNN baseline needs three positive channel counts and two positive hidden sizes")
        if not 0.0 <= self.dropout < 1.0 or self.kernel_size % 2 == 0:
            raise ValueError("dropout must be in [0, 1) and the kernel size odd")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "CNNConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in known})


class BaselineCNN(nn.Module):
    """(B, 1, 28, 28) in [0, 1] -> logits (B, 10)."""

    def __init__(self, config: CNNConfig = CNNConfig()):
        super().__init__()
        self.config = config
        c, k = (1, *config.channels), config.kernel_size
        self.convs = nn.ModuleList(nn.Conv2d(c[i], c[i + 1], k, padding=k // 2) for i in range(3))
        side = config.image_size // 8  # three 2x2 poolings: 28 -> 14 -> 7 -> 3
        self.fc1 = nn.Linear(c[3] * side * side, config.hidden[0])
        self.fc2 = nn.Linear(*config.hidden)
        self.out = nn.Linear(config.hidden[1], config.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = F.max_pool2d(F.relu(conv(x)), 2)
        x = F.relu(self.fc2(F.relu(self.fc1(x.flatten(1)))))
        return self.out(F.dropout(x, self.config.dropout, self.training))


def default_cnn_checkpoint() -> Path:
    return Path(__file__).resolve().parent.parent / "checkpoints" / "cnn.safetensors"


def save_cnn(path: str | os.PathLike, model: BaselineCNN, extra_metadata: dict[str, str] | None = None) -> None:
    meta = {"config": json.dumps(model.config.to_dict()), "format": CNN_FORMAT, **(extra_metadata or {})}
    save_tensors(path, model.state_dict(), meta)


def cnn_from_tensors(tensors: dict[str, torch.Tensor], metadata: dict[str, str], path) -> BaselineCNN:
    hint = "retrain it with `python -m capsnet.train --model cnn`"
    if metadata.get("format") != CNN_FORMAT:
        raise CheckpointError(f"{path} is not a CNN baseline checkpoint (format {metadata.get('format')!r}); {hint}.")
    try:
        model = BaselineCNN(CNNConfig.from_dict(json.loads(metadata["config"])))
        model.load_state_dict(tensors)
    except (KeyError, ValueError, TypeError, RuntimeError) as e:
        raise CheckpointError(f"{path} does not hold a readable CNN baseline ({str(e)[:120]}); {hint}.") from None
    if any(v.is_floating_point() and not torch.isfinite(v).all() for v in tensors.values()):
        raise CheckpointError(f"{path} holds NaN or infinite weights; {hint}.")
    return model


def load_pretrained_cnn(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> BaselineCNN:
    """The shipped CNN baseline (or `path`) in eval mode: forward takes (B, 1, 28, 28) in [0, 1], returns logits."""
    path = Path(path) if path is not None else default_cnn_checkpoint()
    if not path.is_file():
        raise CheckpointError(f"No CNN baseline at {path}: train one with `python -m capsnet.train --model cnn`.")
    tensors, metadata = load_tensors(path)
    return cnn_from_tensors(tensors, metadata, path).to(device).eval()


@torch.inference_mode()
def probabilities(cnn: BaselineCNN, images: torch.Tensor) -> torch.Tensor:
    """(B, 10) the CNN's softmax for images (B, 1, 28, 28) in [0, 1], on the CNN's device, returned on the CPU: what
    the explorer shows beside the capsule lengths."""
    return torch.softmax(cnn(images.float().to(next(cnn.parameters()).device)), -1).float().cpu()


def class_scores(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(B, 10) scores whose argmax is the prediction, for either model: a CapsNet's digit-capsule lengths or the
    CNN's logits. What the robustness and attack code compares the two by."""
    if isinstance(model, BaselineCNN):
        return model(x)
    return model(x).lengths


__all__ = ["BaselineCNN", "CNNConfig", "class_scores", "probabilities", "cnn_from_tensors", "default_cnn_checkpoint",
           "load_pretrained_cnn", "save_cnn"]
