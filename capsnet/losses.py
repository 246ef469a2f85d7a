"""Margin loss (Eq. 4) plus the down-weighted reconstruction loss (Section 4.1)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .model import CapsNetOutput

M_PLUS, M_MINUS, LAMBDA = 0.9, 0.1, 0.5
RECONSTRUCTION_WEIGHT = 0.0005


def margin_loss(lengths: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-image margin loss on raw capsule lengths (no softmax), summed over classes: (B,)."""
    T = F.one_hot(labels.long(), lengths.shape[1]).to(lengths.dtype)
    present = T * F.relu(M_PLUS - lengths) ** 2
    absent = LAMBDA * (1.0 - T) * F.relu(lengths - M_MINUS) ** 2
    return (present + absent).sum(dim=1)


def reconstruction_sse(reconstructions: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Per-image sum of squared errors over the 784 pixels: (B,)."""
    return ((reconstructions - images) ** 2).flatten(1).sum(dim=1)


def capsule_loss(out: CapsNetOutput, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Scalar training loss: batch mean of margin loss + 0.0005 x per-image SSE.

    `out` must come from model(images, labels) so the decoder saw the true class.
    """
    per_image = margin_loss(out.lengths, labels) + RECONSTRUCTION_WEIGHT * reconstruction_sse(out.reconstructions, images)
    return per_image.mean()
