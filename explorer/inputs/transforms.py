"""Input transforms for the explorer: affine warps of a 28x28 input, one or a batch at a time.

Conventions: a positive angle rotates the digit counter-clockwise as displayed
(like torchvision's `rotate`; equal to torchvision's `affine(angle=-angle, ...)`,
whose angle is clockwise), scale > 1 enlarges it, dx moves it right
and dy moves it down, in pixels; all about the image centre. Pixels that come
from outside the image are 0 (background) and values are clipped to [0, 1].
"""
from __future__ import annotations

import numpy as np
import torch

from capsnet import CapsNetConfig
from capsnet.equivariance import affine

IMAGE_SIZE = CapsNetConfig().image_size  # 28


def _as_chw(image28) -> torch.Tensor:
    """(28,28), (1,28,28) or (1,1,28,28) tensor / array -> float32 (1,28,28) tensor (uint8 scaled to [0,1])."""
    if isinstance(image28, torch.Tensor):
        t = image28.detach()
    else:
        t = torch.as_tensor(np.asarray(image28))
    if t.dtype == torch.uint8:
        t = t.float() / 255.0
    t = t.float().cpu()
    if t.dim() == 4 and t.shape[:2] == (1, 1):
        t = t[0]
    elif t.dim() == 2:
        t = t[None]
    if tuple(t.shape) != (1, IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"expected a (1,28,28) or (28,28) image, got shape {tuple(image28.shape)}")
    return t


def transform_batch(image28, angles_deg, scales=1.0, dxs=0.0, dys=0.0) -> torch.Tensor:
    """One image warped by N (broadcast) parameter sets in one grid_sample call -> (N, 1, 28, 28) in [0,1]
    (`capsnet.equivariance.affine`, the same warp the pose trajectories and the offline matrix use)."""
    img = _as_chw(image28)
    f64 = lambda v: np.asarray(v, np.float64)  # noqa: E731
    return affine(img[None], f64(angles_deg), f64(scales), f64(dxs), f64(dys))


def transform_image(image28, angle_deg: float = 0.0, scale: float = 1.0, dx: float = 0.0, dy: float = 0.0) -> torch.Tensor:
    """Rotate (degrees, counter-clockwise), scale and shift (pixels) a 28x28 image about its centre -> (1,28,28)
    float tensor in [0,1]; zero fill. The identity returns the (clipped) input unchanged."""
    img = _as_chw(image28)
    if angle_deg == 0 and scale == 1 and dx == 0 and dy == 0:
        return img.clamp(0.0, 1.0)
    return transform_batch(img, [angle_deg], [scale], [dx], [dy])[0]
